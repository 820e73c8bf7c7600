"""POST /v1/frames against the real moto server and PostgreSQL: acceptance, every refusal, idempotency."""

import asyncio
import hashlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from services.ingest.domain import FrameRecord, new_frame_id
from shared.contracts import Envelope, FrameReceived
from shared.sqs import QueueResolver
from tests.integration.ingest.conftest import CAPTURED_AT, Ingest, ingest_settings, queued, running, stored_keys
from tests.unit.ingest.images import jpeg, noisy_jpeg, png, png_header_only, with_exif_orientation

QUEUE = "frames-received"


async def test_a_jpeg_is_stored_and_announced(
    ingest: Ingest, s3_client: Any, sqs_client: Any, resolver: QueueResolver
) -> None:
    camera_id, key = await ingest.register(required_ppe=["HEAD_COVER", "HAND_COVER"], min_confidence=75)
    data = jpeg(1280, 720)

    response = await ingest.post_jpeg(camera_id, key, data, client_frame_id="c-1")

    assert response.status_code == 202, response.text
    body = response.json()
    assert body["duplicate"] is False and body["status"] == "committed"
    assert (body["width"], body["height"], body["content_type"]) == (1280, 720, "image/jpeg")
    assert body["key"] == f"frames/site-a/{camera_id}/2026/11/26/{body['frame_id']}.jpg"
    stored = await s3_client.get_object(Bucket=body["bucket"], Key=body["key"])
    async with stored["Body"] as stream:
        assert await stream.read() == data
    assert stored["ContentType"] == "image/jpeg"
    assert stored["Metadata"]["camera-id"] == camera_id
    assert stored["Metadata"]["captured-at"] == CAPTURED_AT
    assert stored["Metadata"]["sha256"] == hashlib.sha256(data).hexdigest()

    messages = await queued(sqs_client, await resolver.url(QUEUE))
    assert len(messages) == 1
    envelope = Envelope[FrameReceived].model_validate(messages[0])
    assert envelope.correlation_id == body["frame_id"] and envelope.producer == "ingest"
    payload = envelope.payload
    context, frame = payload.context, payload.frame
    assert (context.camera_id, context.site_id, context.zone_id) == (camera_id, "site-a", "gate")
    assert (frame.bucket, frame.key, frame.size_bytes) == (body["bucket"], body["key"], len(data))
    assert payload.client_frame_id == "c-1"
    assert payload.summarization.MinConfidence == 75
    assert [t.value for t in payload.summarization.RequiredEquipmentTypes] == ["HEAD_COVER", "HAND_COVER"]

    status = await ingest.client.get(body["status_url"], headers={"X-API-Key": key})
    assert status.status_code == 200 and status.json()["frame_id"] == body["frame_id"]


async def test_multipart_png_with_metadata_in_the_form_and_overrides(
    ingest: Ingest, sqs_client: Any, resolver: QueueResolver
) -> None:
    camera_id, key = await ingest.register(allow_location_override=True)  # a PTZ camera: zone per preset
    form = {
        "camera_id": camera_id,
        "captured_at": "2026-11-26T09:30:00+01:00",
        "zone_id": "preset-2",
        "required_ppe": ["FACE_COVER", "HEAD_COVER"],
        "min_confidence": "90",
    }
    response = await ingest.client.post(
        "/v1/frames", data=form, files={"image": ("f.png", png(320, 180), "image/png")}, headers={"X-API-Key": key}
    )
    assert response.status_code == 202, response.text
    body = response.json()
    assert body["content_type"] == "image/png" and body["key"].endswith(".png")
    payload = Envelope[FrameReceived].model_validate((await queued(sqs_client, await resolver.url(QUEUE)))[0]).payload
    assert payload.context.zone_id == "preset-2"
    assert payload.summarization.MinConfidence == 90
    assert {t.value for t in payload.summarization.RequiredEquipmentTypes} == {"FACE_COVER", "HEAD_COVER"}


async def test_exif_orientation_is_applied_to_the_reported_size(ingest: Ingest) -> None:
    camera_id, key = await ingest.register()
    response = await ingest.post_jpeg(camera_id, key, with_exif_orientation(jpeg(640, 360), 6))
    assert response.status_code == 202, response.text
    assert (response.json()["width"], response.json()["height"]) == (360, 640)


async def test_the_type_comes_from_the_bytes_not_the_header(ingest: Ingest) -> None:
    camera_id, key = await ingest.register()
    response = await ingest.post_jpeg(camera_id, key, png(200, 100), content_type="image/jpeg")
    assert response.status_code == 202 and response.json()["content_type"] == "image/png"


def _multipart(data: bytes) -> dict[str, Any]:
    return {"files": {"image": ("f.jpg", data, "image/jpeg")}}


REFUSALS = [
    # (id, how to post, status, code)
    ("not-an-image", {"content": b"hello, world" * 20}, 415, "unsupported_media_type"),
    ("gif", {"content": b"GIF89a" + b"\x00" * 200}, 415, "unsupported_media_type"),
    ("text-content-type", {"content": jpeg(), "content_type": "text/plain"}, 415, "unsupported_media_type"),
    ("truncated-jpeg", {"content": jpeg()[:5000]}, 400, "invalid_image"),
    ("too-small", {"content": jpeg(63, 100)}, 400, "image_dimensions"),
    ("too-large-sides", {"content": jpeg(4097, 80, quality=30)}, 400, "image_dimensions"),
    ("png-bomb-header", {"content": png_header_only(60_000, 60_000)}, 400, "image_dimensions"),
    ("over-4mb-raw", {"content": noisy_jpeg(4 * 1024 * 1024 + 1)}, 413, "body_too_large"),
    ("over-4mb-multipart", {"multipart": noisy_jpeg(4 * 1024 * 1024 + 1)}, 413, "body_too_large"),
    ("multipart-without-image", {"form_only": True}, 422, "invalid_request"),
    ("missing-captured-at", {"content": jpeg(), "params": {"captured_at": None}}, 422, "invalid_request"),
    ("naive-time", {"content": jpeg(), "params": {"captured_at": "2026-11-26T08:30:00"}}, 422, "invalid_request"),
    ("unknown-ppe", {"content": jpeg(), "params": {"required_ppe": "HARD_HAT"}}, 422, "invalid_request"),
    ("confidence-over-100", {"content": jpeg(), "params": {"min_confidence": "101"}}, 422, "invalid_request"),
    ("unsafe-client-id", {"content": jpeg(), "params": {"client_frame_id": "../../etc"}}, 422, "invalid_request"),
    ("unknown-parameter", {"content": jpeg(), "params": {"bogus": "1"}}, 422, "invalid_request"),
]


@pytest.mark.parametrize(("how", "status", "code"), [r[1:] for r in REFUSALS], ids=[r[0] for r in REFUSALS])
async def test_refused_frames_get_a_typed_error_and_store_nothing(
    ingest: Ingest,
    s3_client: Any,
    sqs_client: Any,
    resolver: QueueResolver,
    how: dict[str, Any],
    status: int,
    code: str,
) -> None:
    camera_id, key = await ingest.register()
    params = {"camera_id": camera_id, "captured_at": CAPTURED_AT, **how.get("params", {})}
    params = {k: v for k, v in params.items() if v is not None}
    headers = {"X-API-Key": key}
    if "multipart" in how:
        files = _multipart(how["multipart"])
        response = await ingest.client.post("/v1/frames", params=params, headers=headers, **files)
    elif how.get("form_only"):
        response = await ingest.client.post("/v1/frames", params=params, headers=headers, files={"note": (None, "x")})
    else:
        headers["Content-Type"] = how.get("content_type", "image/jpeg")
        response = await ingest.client.post("/v1/frames", params=params, headers=headers, content=how["content"])

    assert response.status_code == status, response.text
    assert response.json()["code"] == code and response.json()["message"]
    assert await stored_keys(s3_client, ingest.deps.store.bucket) == []
    assert await queued(sqs_client, await resolver.url(QUEUE)) == []


async def test_same_client_frame_id_returns_the_original_frame_and_stores_once(
    ingest: Ingest, s3_client: Any, sqs_client: Any, resolver: QueueResolver
) -> None:
    camera_id, key = await ingest.register()
    data = jpeg(640, 360)

    first = await ingest.post_jpeg(camera_id, key, data, client_frame_id="cf-7")
    again = await ingest.post_jpeg(camera_id, key, data, client_frame_id="cf-7")
    other_image = await ingest.post_jpeg(camera_id, key, jpeg(640, 360, quality=50), client_frame_id="cf-7")

    assert first.status_code == 202 and first.json()["duplicate"] is False
    assert again.status_code == 200 and again.json()["duplicate"] is True
    assert again.json()["frame_id"] == first.json()["frame_id"]
    assert other_image.status_code == 409 and other_image.json()["code"] == "idempotency_conflict"
    assert other_image.json()["frame_id"] == first.json()["frame_id"]
    assert len(await stored_keys(s3_client, ingest.deps.store.bucket)) == 1
    assert len(await queued(sqs_client, await resolver.url(QUEUE))) == 1


async def test_same_client_frame_id_on_another_camera_is_another_frame(ingest: Ingest) -> None:
    (camera_a, key_a), (camera_b, key_b) = await ingest.register(), await ingest.register()
    data = jpeg()
    first = await ingest.post_jpeg(camera_a, key_a, data, client_frame_id="n-1")
    second = await ingest.post_jpeg(camera_b, key_b, data, client_frame_id="n-1")
    assert first.status_code == second.status_code == 202
    assert first.json()["frame_id"] != second.json()["frame_id"]


async def test_concurrent_duplicates_create_one_frame(
    ingest: Ingest, s3_client: Any, sqs_client: Any, resolver: QueueResolver
) -> None:
    import asyncio

    camera_id, key = await ingest.register(rate_limit_per_s=100)
    data = jpeg()
    responses = await asyncio.gather(
        *(ingest.post_jpeg(camera_id, key, data, client_frame_id="race") for _ in range(6))
    )
    statuses = sorted(r.status_code for r in responses)
    assert statuses.count(202) == 1, statuses
    assert set(statuses) <= {200, 202, 409}
    frame_ids = {r.json()["frame_id"] for r in responses}
    assert len(frame_ids) == 1
    assert len(await stored_keys(s3_client, ingest.deps.store.bucket)) == 1
    assert len(await queued(sqs_client, await resolver.url(QUEUE))) == 1


async def test_rate_limit_answers_429_with_retry_after(ingest: Ingest) -> None:
    camera_id, key = await ingest.register(rate_limit_per_s=1)
    data = jpeg(128, 128)
    statuses = [(await ingest.post_jpeg(camera_id, key, data)).status_code for _ in range(2)]
    limited = await ingest.post_jpeg(camera_id, key, data)
    assert statuses == [202, 202]  # burst = 2 s x 1 frame/s
    assert limited.status_code == 429 and limited.json()["code"] == "rate_limited"
    assert int(limited.headers["Retry-After"]) >= 1
    other_id, other_key = await ingest.register(rate_limit_per_s=1)
    assert (await ingest.post_jpeg(other_id, other_key, data)).status_code == 202


async def test_rate_limit_holds_across_ingest_workers(
    ingest: Ingest, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a camera limited to 1 frame/s (burst 2) and a second ingest worker on the same database
    camera_id, key = await ingest.register(rate_limit_per_s=1)
    data = jpeg(128, 128)
    async for second in running(ingest_settings(monkeypatch, database_url)):
        # WHEN the camera's frames are spread over both workers
        first_two = [(await worker.post_jpeg(camera_id, key, data)).status_code for worker in (ingest, second)]
        third = await second.post_jpeg(camera_id, key, data)
        # THEN the camera's budget is one budget: the third frame is refused whichever worker gets it
        assert first_two == [202, 202]
        assert third.status_code == 429 and third.json()["code"] == "rate_limited"
        assert int(third.headers["Retry-After"]) >= 1


async def test_camera_id_defaults_to_the_keys_camera(ingest: Ingest) -> None:
    camera_id, key = await ingest.register()
    response = await ingest.client.post(
        "/v1/frames",
        params={"captured_at": CAPTURED_AT},
        content=jpeg(),
        headers={"X-API-Key": key, "Content-Type": "image/jpeg"},
    )
    assert response.status_code == 202, response.text
    assert response.json()["camera_id"] == camera_id


async def test_a_chunked_body_is_counted_and_cut_off_past_4_mb(ingest: Ingest, s3_client: Any) -> None:
    camera_id, key = await ingest.register()
    data = noisy_jpeg(4 * 1024 * 1024 + 1)

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: only the counter can stop it
        for start in range(0, len(data), 256 * 1024):
            yield data[start : start + 256 * 1024]

    response = await ingest.client.post(
        "/v1/frames",
        params={"captured_at": CAPTURED_AT},
        content=chunks(),
        headers={"X-API-Key": key, "Content-Type": "image/jpeg"},
    )
    assert response.status_code == 413 and response.json()["code"] == "body_too_large"
    assert await stored_keys(s3_client, ingest.deps.store.bucket) == []


async def test_a_reservation_left_by_a_crashed_writer_is_taken_over(ingest: Ingest) -> None:
    camera_id, key = await ingest.register()
    data = jpeg()
    # GIVEN a pending row for client id "crashed" whose writer died long ago (never committed)
    stale = FrameRecord(
        frame_id=new_frame_id(),
        camera_id=camera_id,
        client_frame_id="crashed",
        status="pending",
        sha256=hashlib.sha256(data).hexdigest(),
        bucket=ingest.deps.store.bucket,
        key="frames/x/never-written.jpg",
        content_type="image/jpeg",
        size_bytes=len(data),
        width=640,
        height=360,
        captured_at=datetime.now(UTC),
        received_at=datetime.now(UTC) - timedelta(hours=1),
    )
    assert await ingest.deps.ledger.reserve(stale) is None

    # WHEN the camera retries that client id
    response = await ingest.post_jpeg(camera_id, key, data, client_frame_id="crashed")

    # THEN the retry takes the reservation over and commits the frame under the FIRST frame id and key:
    # the crashed writer may already have queued it, and one image must stay one frame
    assert response.status_code == 202, response.text
    assert (response.json()["frame_id"], response.json()["key"]) == (stale.frame_id, stale.key)
    committed = await ingest.deps.ledger.get(stale.frame_id)
    assert committed is not None and committed.status == "committed"


async def test_a_stale_reservation_of_another_image_is_taken_over_under_a_new_id(ingest: Ingest) -> None:
    camera_id, key = await ingest.register()
    stale = FrameRecord(
        frame_id=new_frame_id(),
        camera_id=camera_id,
        client_frame_id="crashed-2",
        status="pending",
        sha256="0" * 64,  # not the image the camera sends now
        bucket=ingest.deps.store.bucket,
        key="frames/x/never-written.jpg",
        content_type="image/jpeg",
        size_bytes=1,
        width=640,
        height=360,
        captured_at=datetime.now(UTC),
        received_at=datetime.now(UTC) - timedelta(hours=1),
    )
    assert await ingest.deps.ledger.reserve(stale) is None
    response = await ingest.post_jpeg(camera_id, key, jpeg(), client_frame_id="crashed-2")
    assert response.status_code == 202, response.text
    assert response.json()["frame_id"] != stale.frame_id
    assert await ingest.deps.ledger.get(stale.frame_id) is None


async def test_the_ledger_purge_deletes_rows_past_the_retention_and_keeps_the_rest(
    ingest: Ingest,
) -> None:
    # GIVEN a committed frame of today and two ledger rows (committed, abandoned) received 40 days ago
    camera_id, key = await ingest.register()
    recent = await ingest.post_jpeg(camera_id, key, jpeg(), client_frame_id="recent")
    assert recent.status_code == 202, recent.text
    old_ids = []
    for client_frame_id, status in (("old-committed", "committed"), ("old-pending", "pending")):
        old = FrameRecord(
            frame_id=new_frame_id(),
            camera_id=camera_id,
            client_frame_id=client_frame_id,
            status=status,
            sha256="1" * 64,
            bucket=ingest.deps.store.bucket,
            key=f"frames/site-a/{camera_id}/old/{client_frame_id}.jpg",
            content_type="image/jpeg",
            size_bytes=1,
            width=640,
            height=360,
            captured_at=datetime.now(UTC) - timedelta(days=40),
            received_at=datetime.now(UTC) - timedelta(days=40),
        )
        assert await ingest.deps.ledger.reserve(old) is None
        if status == "committed":
            await ingest.deps.ledger.commit(old.frame_id)
        old_ids.append(old.frame_id)

    # WHEN the ledger purge runs with a 30-day retention
    deleted = await ingest.deps.ledger.purge_schedule(retention_days=30, interval_s=3600).run_once()

    # THEN both old rows (and their raw-frame keys) are gone, today's frame stays
    assert deleted == {"ingest_frames": 2}
    assert [await ingest.deps.ledger.get(frame_id) for frame_id in old_ids] == [None, None]
    assert await ingest.deps.ledger.get(recent.json()["frame_id"]) is not None



async def test_a_writer_killed_between_the_send_and_the_commit_leaves_one_frame_id_for_the_image(
    platform_settings: Any,
    provisioned: dict[str, str],
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
    s3_client: Any,
    sqs_client: Any,
    resolver: QueueResolver,
) -> None:
    # Issue 19 row 9: before the take-over kept the first frame id, the retry stored and queued the same image
    # again under a second one (two frames downstream, two alerts). Short pending timeout: the retry may take over.
    settings = ingest_settings(monkeypatch, database_url, INGEST_PENDING_TIMEOUT_S="0.5")
    async for ingest in running(settings):
        camera_id, key = await ingest.register()
        await queued(sqs_client, await resolver.url(QUEUE))  # start from an empty queue
        data = jpeg(800, 600)

        # GIVEN a writer that stored and queued the frame and died before its ledger commit (the commit never
        # runs: exactly the state a kill there leaves; its camera got no answer)
        async def killed(frame_id: str) -> None:
            return None

        monkeypatch.setattr(ingest.deps.ledger, "commit", killed)
        first = await ingest.post_jpeg(camera_id, key, data, client_frame_id="killed-1")
        first_id = first.json()["frame_id"]
        assert (await ingest.deps.ledger.get(first_id)).status == "pending"  # type: ignore[union-attr]
        monkeypatch.undo()
        monkeypatch.setenv("DATABASE_URL", database_url)

        # WHEN the camera sends the same image with the same client id, within and after the pending timeout
        early = await ingest.post_jpeg(camera_id, key, data, client_frame_id="killed-1")
        await asyncio.sleep(0.6)
        retry = await ingest.post_jpeg(camera_id, key, data, client_frame_id="killed-1")

        # THEN the early retry is told to come back (409 frame_in_progress, which the agent retries) and the later
        # one commits the FIRST frame id and key: one frame id, one object, however often it was queued
        assert early.status_code == 409 and early.json()["code"] == "frame_in_progress", early.text
        assert retry.status_code == 202, retry.text
        assert (retry.json()["frame_id"], retry.json()["key"]) == (first_id, first.json()["key"])
        assert (await ingest.deps.ledger.get(first_id)).status == "committed"  # type: ignore[union-attr]
        prefix = first.json()["key"].rsplit("/", 1)[0]
        assert await stored_keys(s3_client, ingest.deps.store.bucket, prefix) == [first.json()["key"]]
        bodies = await queued(sqs_client, await resolver.url(QUEUE))
        messages = [Envelope[FrameReceived].model_validate(m) for m in bodies]
        assert {m.payload.context.frame_id for m in messages} == {first_id}
