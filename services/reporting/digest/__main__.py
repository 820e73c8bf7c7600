"""Render one site's digest to a file, by hand: `python -m services.reporting.digest --site site-a --period weekly
--out digest.pdf` (`.html` for HTML). Reads DATABASE_URL; `--end` is the local day after the period (default: the
latest complete period)."""

import argparse
import asyncio
from datetime import UTC, date, datetime
from pathlib import Path

from services.reporting.adapters.digest_repository import DigestRepository
from services.reporting.adapters.repository import ReportingRepository
from services.reporting.config import ExportSettings
from services.reporting.digest import render
from services.reporting.digest.figures import Digest, Period, latest_end_day
from shared.db import make_engine


async def build(database_url: str, *, site_id: str, period: Period, end_day: date | None) -> Digest:
    engine = make_engine(database_url)
    try:
        reporting = ReportingRepository(engine)
        digests = DigestRepository(reporting)
        timezone = await reporting.site_timezone(site_id)
        end_day = end_day or latest_end_day(period, now=datetime.now(UTC), timezone=timezone)
        return await digests.digest(await digests.window(period, site_id=site_id, end_day=end_day))
    finally:
        await engine.dispose()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m services.reporting.digest", description=__doc__)
    parser.add_argument("--site", required=True, help="site id")
    parser.add_argument("--period", choices=[p.value for p in Period], default=Period.WEEKLY.value)
    parser.add_argument("--end", type=date.fromisoformat, default=None,
                        help="local day after the period, YYYY-MM-DD (default: the latest complete period)")
    parser.add_argument("--out", type=Path, required=True, help="file to write: .pdf or .html")
    args = parser.parse_args(argv)
    settings = ExportSettings()
    if not settings.database_url:
        parser.error("DATABASE_URL is not set: point it at reporting's PostgreSQL")
    digest = asyncio.run(build(settings.database_url, site_id=args.site, period=Period(args.period), end_day=args.end))
    out: Path = args.out
    out.write_bytes(render.html(digest).encode() if out.suffix.lower() == ".html" else render.pdf(digest))
    print(out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
