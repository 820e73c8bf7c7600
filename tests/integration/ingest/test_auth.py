"""Camera keys and the admin API: a key works only for its camera; rotate and disable take effect."""

from typing import Any

from shared.sqs import QueueResolver
from tests.integration.ingest.conftest import ADMIN_TOKEN, Ingest, admin_headers, queued, stored_keys
from tests.unit.ingest.images import jpeg


async def test_camera_a_key_cannot_post_as_camera_b(
    ingest: Ingest, s3_client: Any, sqs_client: Any, resolver: QueueResolver
) -> None:
    (_, key_a), (camera_b, key_b) = await ingest.register(), await ingest.register()

    as_b = await ingest.post_jpeg(camera_b, key_a, jpeg())

    assert as_b.status_code == 403 and as_b.json()["code"] == "camera_mismatch"
    assert await stored_keys(s3_client, ingest.deps.store.bucket) == []
    assert await queued(sqs_client, await resolver.url("frames-received")) == []
    assert (await ingest.post_jpeg(camera_b, key_b, jpeg())).status_code == 202


async def test_a_camera_cannot_read_another_cameras_frame(ingest: Ingest) -> None:
    (camera_a, key_a), (_, key_b) = await ingest.register(), await ingest.register()
    frame_id = (await ingest.post_jpeg(camera_a, key_a, jpeg())).json()["frame_id"]
    assert (await ingest.client.get(f"/v1/frames/{frame_id}", headers={"X-API-Key": key_a})).status_code == 200
    response = await ingest.client.get(f"/v1/frames/{frame_id}", headers={"X-API-Key": key_b})
    assert response.status_code == 404 and response.json()["code"] == "frame_not_found"


async def test_missing_and_unknown_keys_are_401(ingest: Ingest) -> None:
    camera_id, _ = await ingest.register()
    missing = await ingest.client.post("/v1/frames", params={"camera_id": camera_id}, content=jpeg())
    unknown = await ingest.post_jpeg(camera_id, "ppe_not-a-key", jpeg())
    assert (missing.status_code, missing.json()["code"]) == (401, "missing_api_key")
    assert (unknown.status_code, unknown.json()["code"]) == (401, "invalid_api_key")


async def test_rotating_a_key_retires_the_old_one(ingest: Ingest) -> None:
    camera_id, old_key = await ingest.register()
    assert (await ingest.post_jpeg(camera_id, old_key, jpeg())).status_code == 202

    rotated = await ingest.client.post(f"/v1/admin/cameras/{camera_id}/rotate-key", headers=admin_headers())

    assert rotated.status_code == 200
    new_key = rotated.json()["api_key"]
    assert new_key != old_key
    assert (await ingest.post_jpeg(camera_id, old_key, jpeg())).status_code == 401
    assert (await ingest.post_jpeg(camera_id, new_key, jpeg())).status_code == 202


async def test_a_disabled_camera_is_refused_until_enabled(ingest: Ingest) -> None:
    camera_id, key = await ingest.register()
    disabled = await ingest.client.post(f"/v1/admin/cameras/{camera_id}/disable", headers=admin_headers())
    assert disabled.status_code == 200 and disabled.json()["enabled"] is False

    refused = await ingest.post_jpeg(camera_id, key, jpeg())
    assert (refused.status_code, refused.json()["code"]) == (403, "camera_disabled")

    await ingest.client.post(f"/v1/admin/cameras/{camera_id}/enable", headers=admin_headers())
    assert (await ingest.post_jpeg(camera_id, key, jpeg())).status_code == 202


async def test_the_admin_api_needs_the_admin_token(ingest: Ingest) -> None:
    camera_id, camera_key = await ingest.register()
    body = {"camera_id": "intruder-cam", "site_id": "s", "zone_id": "z"}
    wrong = ({}, {"Authorization": "Bearer wrong-token-of-some-length"}, {"Authorization": f"Bearer {camera_key}"})
    for headers in wrong:
        response = await ingest.client.post("/v1/admin/cameras", json=body, headers=headers)
        assert (response.status_code, response.json()["code"]) == (401, "admin_unauthorized")
    assert (await ingest.client.get("/v1/admin/cameras/intruder-cam", headers=admin_headers())).status_code == 404
    listed = await ingest.client.get("/v1/admin/cameras", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    assert camera_id in [camera["camera_id"] for camera in listed.json()]


async def test_admin_create_is_validated_and_unique(ingest: Ingest) -> None:
    camera_id, _ = await ingest.register()
    duplicate = await ingest.client.post(
        "/v1/admin/cameras", json={"camera_id": camera_id, "site_id": "s", "zone_id": "z"}, headers=admin_headers()
    )
    assert duplicate.status_code == 409, duplicate.text
    assert duplicate.json()["code"] == "camera_exists"
    invalid = await ingest.client.post(
        "/v1/admin/cameras",
        json={"camera_id": "a/b", "site_id": "s", "zone_id": "z", "required_ppe": ["HARD_HAT"]},
        headers=admin_headers(),
    )
    assert invalid.status_code == 422
    assert {tuple(d["loc"][-1:]) for d in invalid.json()["details"]} >= {("camera_id",), ("0",)}


async def test_camera_reads_its_own_settings(ingest: Ingest) -> None:
    camera_id, key = await ingest.register(sampling={"target_fps": 2.5}, required_ppe=["FACE_COVER"])
    me = await ingest.client.get("/v1/cameras/me", headers={"X-API-Key": key})
    assert me.status_code == 200
    assert me.json()["camera_id"] == camera_id
    assert me.json()["sampling"]["target_fps"] == 2.5
    assert me.json()["required_ppe"] == ["FACE_COVER"]


async def test_a_camera_key_cannot_move_its_frames_to_another_site(
    ingest: Ingest, s3_client: Any, sqs_client: Any, resolver: QueueResolver
) -> None:
    # GIVEN a camera registered at site-a / gate
    camera_id, key = await ingest.register()
    for override in ({"site_id": "other-site"}, {"zone_id": "other-zone"}, {"site_id": "other-site", "zone_id": "g"}):
        # WHEN its key posts a frame naming another site or zone
        response = await ingest.post_jpeg(camera_id, key, jpeg(), **override)
        # THEN it is refused, and nothing lands anywhere
        assert (response.status_code, response.json()["code"]) == (403, "location_override_forbidden"), override
    assert await stored_keys(s3_client, ingest.deps.store.bucket) == []
    assert await queued(sqs_client, await resolver.url("frames-received")) == []
    # naming its own registration is fine
    assert (await ingest.post_jpeg(camera_id, key, jpeg(), site_id="site-a", zone_id="gate")).status_code == 202


async def test_an_admin_grant_lets_a_camera_override_its_zone(
    ingest: Ingest, sqs_client: Any, resolver: QueueResolver
) -> None:
    camera_id, key = await ingest.register()
    assert (await ingest.client.get(f"/v1/admin/cameras/{camera_id}", headers=admin_headers())).json()[
        "allow_location_override"
    ] is False
    url = f"/v1/admin/cameras/{camera_id}/location-override"
    assert (await ingest.client.put(url, json={"allowed": True})).status_code == 401
    granted = await ingest.client.put(url, json={"allowed": True}, headers=admin_headers())
    assert granted.status_code == 200 and granted.json()["allow_location_override"] is True
    ingest.deps.cameras.invalidate()
    response = await ingest.post_jpeg(camera_id, key, jpeg(), zone_id="preset-3")
    assert response.status_code == 202, response.text
    messages = await queued(sqs_client, await resolver.url("frames-received"))
    assert messages[0]["payload"]["context"]["zone_id"] == "preset-3"


async def test_admin_json_routes_check_the_token_before_reading_the_body(ingest: Ingest) -> None:
    camera_id, _ = await ingest.register()
    routes = [
        ("POST", "/v1/admin/cameras"),
        ("PUT", f"/v1/admin/cameras/{camera_id}/location-override"),
        ("POST", f"/v1/admin/cameras/{camera_id}/rotate-key"),
    ]
    for method, path in routes:
        # WHEN a malformed or oversized body comes without the token
        for body in (b"{bad", b"{" + b" " * (1024 * 1024) + b"}"):
            response = await ingest.client.request(
                method, path, content=body, headers={"Content-Type": "application/json"}
            )
            # THEN the answer is 401: the body was never parsed
            assert (response.status_code, response.json()["code"]) == (401, "admin_unauthorized"), (path, body[:4])
    # with the token, the body is parsed (422) and bounded (413)
    bad = await ingest.client.post(
        "/v1/admin/cameras", content=b"{bad", headers={**admin_headers(), "Content-Type": "application/json"}
    )
    assert bad.status_code == 422
    big = await ingest.client.post(
        "/v1/admin/cameras",
        content=b"{" + b" " * (1024 * 1024) + b"}",
        headers={**admin_headers(), "Content-Type": "application/json"},
    )
    assert (big.status_code, big.json()["code"]) == (413, "body_too_large")
