"""Digests: a seeded week of events rendered to PDF and HTML, its figures read back from the PDF's text and
checked against numbers computed here from the seed; downloads (audited); e-mail to subscribers through a real
SMTP server (aiosmtpd), once per period across replicas and re-runs, on real PostgreSQL.

`PPE_UPDATE_DOCS_SCREENSHOT=1` writes page 1 of the PDF to docs/digest.png.
"""

import asyncio
import io
import os
import re
import statistics
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from email.message import Message
from pathlib import Path
from urllib.parse import quote, unquote
from zoneinfo import ZoneInfo

import pypdf
import pypdfium2
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from services.reporting.adapters.digest_repository import DigestRepository
from services.reporting.adapters.repository import ReportingRepository
from services.reporting.digest import render
from services.reporting.digest.figures import Digest, Period
from services.reporting.digest.mail import SmtpSettings
from services.reporting.digest.sender import DigestJob
from services.reporting.domain import frame_record
from shared.access import audit, store
from shared.access.roles import Role
from shared.contracts import IncidentChanged
from tests.integration.access.conftest import make_user, token_for
from tests.integration.notifier.receivers import SmtpReceiver, free_port
from tests.integration.reporting.builders import frame_analyzed, incident, person
from tests.integration.reporting.conftest import app_client

DOCS_PNG = Path(__file__).resolve().parents[3] / "docs" / "digest.png"
SITE, TZ = "site-d", "Europe/Berlin"  # UTC+1 all week (summer time starts on 29 March)
BERLIN = ZoneInfo(TZ)
MONDAY = date(2026, 3, 2)
END_DAY = date(2026, 3, 9)  # the week Mon 2 .. Sun 8 March
ZONES = {"loading-dock": "cam-dock", "workshop": "cam-shop"}
Worn = tuple[bool | None, bool | None]  # (head cover, face cover): True worn, False missing, None not visible


@dataclass(frozen=True)
class SeedFrame:
    frame_id: str
    local: datetime  # Berlin wall-clock time
    zone: str
    persons: list[Worn]
    site: str = SITE


def week_of_frames() -> list[SeedFrame]:
    """Three rounds a day in each zone; bare heads in the 14:00 round, no face cover in the workshop every other
    day, a face not visible on Thursday at 10:00; plus frames just outside the week and one of another site."""
    frames = []
    for day in range(7):
        for hour in (8, 10, 14):
            for zone in ZONES:
                persons: list[Worn] = [(True, True), (True, True)]
                if hour == 14:
                    persons.append((False, True))
                if zone == "workshop" and day % 2 == 0:
                    persons.append((True, False))
                if day == 3 and hour == 10:
                    persons.append((True, None))
                local = datetime(2026, 3, 2 + day, hour, 5, tzinfo=BERLIN)
                frames.append(SeedFrame(f"{zone}-{day}-{hour}", local, zone, persons))
    frames.append(SeedFrame("first-minutes", datetime(2026, 3, 2, 0, 30, tzinfo=BERLIN), "workshop", [(False, False)]))
    frames.append(SeedFrame("next-week", datetime(2026, 3, 9, 0, 30, tzinfo=BERLIN), "workshop", [(False, False)]))
    frames.append(SeedFrame("last-week", datetime(2026, 3, 1, 23, 50, tzinfo=BERLIN), "workshop", [(False, False)]))
    frames.append(SeedFrame("other-site", datetime(2026, 3, 4, 9, 0, tzinfo=BERLIN), "workshop", [(False, False)],
                            site="site-other"))
    return frames


def started(day: int, hour: int) -> datetime:
    return datetime(2026, 3, 2 + day, hour, 0, tzinfo=BERLIN).astimezone(UTC)


# (id, camera, severity, started, seconds to acknowledge, seconds to resolve, verdict); None = not (yet)
INCIDENTS = [
    ("d1", "cam-dock", "critical", started(0, 14), 90, 600, "confirmed"),
    ("d2", "cam-dock", "warning", started(1, 14), 300, 1200, "confirmed"),
    ("d3", "cam-shop", "warning", started(2, 10), 45, 180, "false_positive"),
    ("d4", "cam-shop", "critical", started(3, 14), 600, 3600, None),
    ("d5", "cam-dock", "info", started(4, 8), None, None, None),
    ("d6", "cam-shop", "warning", started(5, 14), 120, None, None),
]


def incident_changes() -> list[IncidentChanged]:
    changes = []
    for incident_id, camera, severity, start, ack_s, resolve_s, verdict in INCIDENTS:
        zone = "loading-dock" if camera == "cam-dock" else "workshop"
        change = incident(incident_id, started_at=start, site_id=SITE, zone_id=zone, camera_id=camera,
                          severity=severity, version=3, status="resolved" if resolve_s else "updated")
        changes.append(change.model_copy(update={
            "acknowledged_at": start + timedelta(seconds=ack_s) if ack_s else None,
            "acknowledged_by": "user:olga" if ack_s else None,
            "resolved_at": start + timedelta(seconds=resolve_s) if resolve_s else None,
            "last_seen_at": start + timedelta(seconds=resolve_s or 60),
            "review": verdict, "review_reason": "a poster of a person" if verdict == "false_positive" else None,
        }))
    # outside the digest: the next week, and another site
    changes.append(incident("d7", started_at=datetime(2026, 3, 9, 9, 0, tzinfo=UTC), site_id=SITE))
    changes.append(incident("o1", started_at=started(2, 9), site_id="site-other"))
    return changes


async def seed_week(repository: ReportingRepository) -> None:
    await repository.set_site_timezone(site_id=SITE, timezone=TZ)
    for seeded in week_of_frames():
        persons = [person(n, head=head, face=face) for n, (head, face) in enumerate(seeded.persons)]
        payload = frame_analyzed(seeded.frame_id, captured_at=seeded.local.astimezone(UTC), site_id=seeded.site,
                                 zone_id=seeded.zone, camera_id=ZONES[seeded.zone], persons=persons)
        assert await repository.ingest_frame(frame_record(payload))
    for change in incident_changes():
        await repository.record_incident(change, changed_at=change.last_seen_at)


# ---- the expectations, computed from the seed alone ---------------------------------------------------

def verdict(worn: Worn) -> str:
    if False in worn:
        return "without"
    return "indeterminate" if None in worn else "with"


def in_week(seeded: SeedFrame) -> bool:
    return seeded.site == SITE and MONDAY <= seeded.local.date() < END_DAY


def expected_counts(pick: Callable[[Worn], str], zone: str | None = None) -> dict[str, int]:
    counts = {"with": 0, "without": 0, "indeterminate": 0}
    for seeded in week_of_frames():
        if in_week(seeded) and zone in (None, seeded.zone):
            for worn in seeded.persons:
                counts[pick(worn)] += 1
    return counts


def rate(counts: dict[str, int]) -> str:
    return f"{100 * counts['with'] / (counts['with'] + counts['without']):.1f} %"


def one_type(index: int) -> Callable[[Worn], str]:
    return lambda worn: {True: "with", False: "without", None: "indeterminate"}[worn[index]]


def text_of(pdf: bytes) -> str:
    reader = pypdf.PdfReader(io.BytesIO(pdf))
    return " ".join(" ".join(page.extract_text() for page in reader.pages).split())


@pytest.fixture
async def week(engine: AsyncEngine) -> ReportingRepository:
    repository = ReportingRepository(engine)
    await seed_week(repository)
    return repository


async def weekly_digest(repository: ReportingRepository) -> Digest:
    digests = DigestRepository(repository)
    span = await digests.window(Period.WEEKLY, site_id=SITE, end_day=END_DAY)
    return await digests.digest(span, now=datetime(2026, 3, 9, 7, 0, tzinfo=UTC))


async def test_the_pdf_of_a_seeded_week_shows_its_figures(week: ReportingRepository, tmp_path: Path) -> None:
    # GIVEN a week of frames and incidents of site-d, and some just outside it
    # WHEN its weekly digest is rendered to PDF
    pdf = render.pdf(await weekly_digest(week))
    text = text_of(pdf)

    # THEN the text read back from the PDF holds the figures computed here from the seed
    overall = expected_counts(verdict)
    observed = sum(overall.values())
    assert "PPE compliance digest: site-d" in text
    assert "Weekly, Mon 02 Mar to Sun 08 Mar 2026 (Europe/Berlin)" in text
    assert f"Compliance rate {rate(overall)}" in text
    assert (f"Persons observed {observed} ({overall['with']} with PPE, {overall['without']} without, "
            f"{overall['indeterminate']} indeterminate)") in text
    for zone in ZONES:
        counts = expected_counts(verdict, zone)
        assert f"{zone} {counts['with']} {counts['without']} {counts['indeterminate']} {rate(counts)}" in text
    for name, index in (("HEAD_COVER", 0), ("FACE_COVER", 1)):
        counts = expected_counts(one_type(index))
        assert f"{name} {counts['with']} {counts['without']} {counts['indeterminate']} {rate(counts)}" in text

    # incidents that started in the week: 6 (d7 is next week's, o1 another site's)
    assert "Incidents 6 (2 critical, 3 warning, 1 info); 2 still open" in text
    acknowledged = sorted(row[4] for row in INCIDENTS if row[4] is not None)  # 45 90 120 300 600
    assert statistics.median(acknowledged) == 120 and acknowledged[4] == 600  # p90, nearest rank: 5th of 5
    assert "Time to acknowledge median 2 min 00 s, 90th percentile 10 min 00 s (5 acknowledged, 1 not)" in text
    corrected = sorted(row[5] for row in INCIDENTS if row[5] is not None and row[6] != "false_positive")
    assert corrected == [600, 1200, 3600]  # median 1200 s, p90 = 3rd of 3
    assert "Time to correct median 20 min 00 s, 90th percentile 1 h 00 min (3 corrected)" in text
    assert "Alert precision 66.7 % (2 confirmed of 3 reviewed, 1 false positive)" in text
    # precision by camera: incidents, reviewed, confirmed, false positives, precision
    assert "cam-dock 3 2 2 0 100.0 %" in text and "cam-shop 3 1 0 1 0.0 %" in text

    # top hours (local): 14:00 has a bare head per zone per day, plus the workshop's faces every other day
    without_by_hour: dict[int, int] = {}
    for seeded in week_of_frames():
        if in_week(seeded):
            hour = seeded.local.hour
            without_by_hour[hour] = without_by_hour.get(hour, 0) + sum(verdict(w) == "without" for w in seeded.persons)
    top_hour, top_count = max(without_by_hour.items(), key=lambda item: (item[1], -item[0]))
    assert top_hour == 14 and f"14:00-14:59 {top_count}" in text
    assert re.search(r"cam-shop workshop \d+ [\d.]+ %", text)  # the worst camera heads the top locations

    # AND the charts are pictures in the PDF
    reader = pypdf.PdfReader(io.BytesIO(pdf))
    assert sum(len(page.images) for page in reader.pages) >= 3

    # page 1, as a picture, for the docs (and to see it renders)
    page = pypdfium2.PdfDocument(pdf)[0]
    target = DOCS_PNG if os.environ.get("PPE_UPDATE_DOCS_SCREENSHOT") == "1" else tmp_path / "digest.png"
    page.render(scale=1.4).to_pil().save(target)
    assert target.stat().st_size > 20_000


async def test_a_daily_digest_covers_one_local_day(week: ReportingRepository) -> None:
    digests = DigestRepository(week)
    digest = await digests.digest(await digests.window(Period.DAILY, site_id=SITE, end_day=MONDAY + timedelta(1)))
    monday = [s for s in week_of_frames() if s.site == SITE and s.local.date() == MONDAY]
    assert digest.overall.observed == sum(len(s.persons) for s in monday)  # incl. 00:30 local (Sunday in UTC)
    assert [moment.hour for moment, _ in digest.trend] == [0, 8, 10, 14]  # local hours
    assert digest.incidents.total == 1
    assert "Daily, Mon 02 Mar 2026 (Europe/Berlin)" in text_of(render.pdf(digest))


async def test_downloads_are_pdf_and_html_and_audited(week: ReportingRepository, engine: AsyncEngine) -> None:
    async with app_client(week) as client:
        pdf = await client.get(f"/api/v1/digests/{SITE}.pdf?period=weekly&end={END_DAY}")
        page = await client.get(f"/api/v1/digests/{SITE}.html?period=weekly&end={END_DAY}")
        bad = await client.get(f"/api/v1/digests/{SITE}.pdf?period=monthly")
    assert pdf.status_code == 200, pdf.text
    assert pdf.headers["content-type"] == "application/pdf" and pdf.content.startswith(b"%PDF")
    assert 'filename="ppe-digest-site-d-weekly-20260302.pdf"' in pdf.headers["content-disposition"]
    assert f"Compliance rate {rate(expected_counts(verdict))}" in text_of(pdf.content)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert page.text.count('src="data:image/png;base64,') == 3
    assert f"<td>Compliance rate</td><td>{rate(expected_counts(verdict))}</td>" in page.text
    assert bad.status_code == 422
    records = await audit.read(engine, sites=None, action="digest.download")
    assert [(r["actor"], r["site_id"], r["target"], r["details"]["format"]) for r in reversed(records)] == [
        ("service:reporting-analyst", SITE, f"digest:{SITE}:weekly:2026-03-02", "pdf"),
        ("service:reporting-analyst", SITE, f"digest:{SITE}:weekly:2026-03-02", "html"),
    ]


def attachments(message: Message) -> dict[str, bytes]:
    return {part.get_filename() or "": part.get_payload(decode=True)  # type: ignore[misc]
            for part in message.walk() if part.get_filename()}


async def test_subscribers_get_each_digest_once_by_email(week: ReportingRepository, engine: AsyncEngine) -> None:
    # GIVEN a viewer of site-d subscribed to its weekly and daily digests, through the API
    olga = await make_user(engine, "olga", roles={SITE: Role.VIEWER})
    lost = await make_user(engine, "lost", roles={"site-other": Role.VIEWER})
    async with app_client(week) as client:
        headers = {"Authorization": f"Bearer {await token_for(engine, olga)}"}
        for period in ("weekly", "daily"):
            answer = await client.put(f"/api/v1/digests/subscriptions/{SITE}/{period}",
                                      json={"email": "olga@example.com"}, headers=headers)
            assert answer.status_code == 200, answer.text
        refused = await client.put(f"/api/v1/digests/subscriptions/{SITE}/weekly", json={"email": "x@example.com"},
                                   headers={"Authorization": f"Bearer {await token_for(engine, lost)}"})
        mine = (await client.get("/api/v1/digests/subscriptions", headers=headers)).json()
        bad_address = await client.put(f"/api/v1/digests/subscriptions/{SITE}/weekly", json={"email": "olga"},
                                       headers=headers)
    assert refused.status_code == 403
    assert bad_address.status_code == 422
    assert [(s["site_id"], s["period"], s["email"]) for s in mine] == [
        (SITE, "daily", "olga@example.com"), (SITE, "weekly", "olga@example.com")]

    digests = DigestRepository(week)
    now = datetime(2026, 3, 9, 6, 30, tzinfo=BERLIN)  # Monday, after the 06:00 ready hour
    with SmtpReceiver() as smtp:
        job = DigestJob(digests, SmtpSettings(host="127.0.0.1", port=smtp.port, sender="digest@ppe.example"))
        # WHEN the schedule runs, runs again, and a second replica runs too
        assert await job.run_once(now=now) == 2
        assert await job.run_once(now=now) == 0
        replica = DigestJob(digests, SmtpSettings(host="127.0.0.1", port=smtp.port, sender="digest@ppe.example"))
        assert await replica.run_once(now=now + timedelta(minutes=5)) == 0
        received = list(smtp.mailbox.messages)

    # THEN each digest went out once: the week Mon 2 - Sun 8 March and the day Sunday 8 March
    assert sorted(message["Subject"].replace("\r\n", "") for _, message in received) == [  # unfolded
        "PPE compliance digest: site-d, Daily, Sun 08 Mar 2026 (Europe/Berlin)",
        "PPE compliance digest: site-d, Weekly, Mon 02 Mar to Sun 08 Mar 2026 (Europe/Berlin)",
    ]
    weekly = next(message for _, message in received if "Weekly" in message["Subject"])
    assert [to for to, _ in received] == [["olga@example.com"], ["olga@example.com"]]
    files = attachments(weekly)
    weekly_pdf = files["ppe-digest-site-d-weekly-20260302.pdf"]
    assert f"Compliance rate {rate(expected_counts(verdict))}" in text_of(weekly_pdf)
    html = next(part for part in weekly.walk() if part.get_content_type() == "text/html")
    body = html.get_payload(decode=True).decode()  # type: ignore[union-attr]
    assert "Time to acknowledge" in body and body.count('src="cid:') == 3
    assert {"trend.png", "zones.png", "hours.png"} <= set(files)
    sends = await digests.sends(site_id=SITE)
    assert [(s["period"], s["period_start"], s["attempts"], s["sent_at"] is not None) for s in sends] == [
        ("weekly", datetime(2026, 3, 1, 23, 0, tzinfo=UTC), 1, True),
        ("daily", datetime(2026, 3, 7, 23, 0, tzinfo=UTC), 1, True),
    ]

    # AND unsubscribing stops the next one
    async with app_client(week) as client:
        gone = await client.delete(f"/api/v1/digests/subscriptions/{SITE}/daily", headers=headers)
    assert gone.status_code == 204
    with SmtpReceiver() as smtp:
        job = DigestJob(digests, SmtpSettings(host="127.0.0.1", port=smtp.port, sender="digest@ppe.example"))
        assert await job.run_once(now=now + timedelta(days=1)) == 0  # Tuesday: no daily any more, weekly sent


async def test_a_failed_send_is_recorded_and_retried_after_a_pause(
    week: ReportingRepository, engine: AsyncEngine
) -> None:
    user = await make_user(engine, "piet", roles={SITE: Role.ANALYST})
    digests = DigestRepository(week)
    await digests.subscribe(user_id=user, site_id=SITE, period=Period.WEEKLY, email="piet@example.com")
    now = datetime(2026, 3, 9, 7, 0, tzinfo=BERLIN)
    down = DigestJob(digests, SmtpSettings(host="127.0.0.1", port=free_port(), sender="d@ppe.example"), retry_s=0.5)
    assert await down.run_once(now=now) == 0
    (row,) = await digests.sends(site_id=SITE)
    assert row["sent_at"] is None and row["attempts"] == 1 and "127.0.0.1" in row["last_error"]
    with SmtpReceiver() as smtp:
        up = DigestJob(digests, SmtpSettings(host="127.0.0.1", port=smtp.port, sender="d@ppe.example"))
        assert await up.run_once(now=now) == 0  # still paused
        await asyncio.sleep(0.6)
        assert await up.run_once(now=now) == 1
    (row,) = await digests.sends(site_id=SITE)
    assert row["sent_at"] is not None and row["attempts"] == 2


async def test_the_command_renders_a_digest_by_hand(
    week: ReportingRepository, migrated_database_url: str, tmp_path: Path
) -> None:
    env = {**os.environ, "DATABASE_URL": migrated_database_url}
    for name in ("week.pdf", "week.html"):
        done = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "services.reporting.digest", "--site", SITE, "--period", "weekly",
             "--end", END_DAY.isoformat(), "--out", str(tmp_path / name)],
            env=env, capture_output=True, text=True, timeout=120, check=False,
        )
        assert done.returncode == 0, done.stderr
    assert f"Compliance rate {rate(expected_counts(verdict))}" in text_of((tmp_path / "week.pdf").read_bytes())
    assert "Mon 02 Mar to Sun 08 Mar 2026" in (tmp_path / "week.html").read_text()


async def test_one_claim_wins_among_concurrent_senders_and_only_live_users_are_due(
    week: ReportingRepository, engine: AsyncEngine
) -> None:
    digests = DigestRepository(week)
    ids = {name: await make_user(engine, name, roles={SITE: Role.VIEWER}) for name in ("ann", "ben", "cid")}
    global_viewer = await make_user(engine, "gil", global_role=Role.VIEWER)
    for user_id in [*ids.values(), global_viewer]:
        await digests.subscribe(user_id=user_id, site_id=SITE, period=Period.WEEKLY, email="x@example.com")
    async with engine.begin() as conn:
        await store.update_user(conn, ids["ben"], global_role=None, roles={SITE: Role.VIEWER}, disabled=True)
        await store.update_user(conn, ids["cid"], global_role=None, roles={"site-other": Role.ADMIN}, disabled=False)
    # a disabled user and a user who lost the site are not due; a global role holds on every site
    live = await digests.live_subscriptions()
    assert sorted(s.username for s in live) == ["ann", "gil"]

    # twenty senders claim ann's weekly digest at once: exactly one wins
    (ann,) = [s for s in live if s.username == "ann"]
    span = await digests.window(Period.WEEKLY, site_id=SITE, end_day=END_DAY)
    claims = await asyncio.gather(*(digests.claim(ann, span, lease_s=600, max_attempts=5) for _ in range(20)))
    assert claims.count(True) == 1


async def test_a_site_named_in_any_script_downloads_with_its_name_kept(week: ReportingRepository) -> None:
    # found by the fuzzer: a site id outside latin-1 in Content-Disposition was a 500 (the header is latin-1)
    site = 'Baustelle "Süd" 東京;x'
    async with app_client(week) as client:
        pdf = await client.get(f"/api/v1/digests/{quote(site, safe='')}.pdf?period=weekly&end={END_DAY}")
    assert pdf.status_code == 200, pdf.text
    disposition = pdf.headers["content-disposition"]
    assert disposition.startswith('attachment; filename="ppe-digest-Baustelle _S_d_ ___x-weekly-20260302.pdf"; ')
    assert unquote(disposition.split("filename*=UTF-8''", 1)[1]) == f"ppe-digest-{site}-weekly-20260302.pdf"
