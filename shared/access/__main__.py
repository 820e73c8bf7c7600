"""Access commands (DATABASE_URL from the environment, as the services read it):

    python -m shared.access create-admin --username NAME   # password from $PPE_ADMIN_PASSWORD, else asked
    python -m shared.access create-admin --username NAME --reset   # new password, global admin, enabled
    python -m shared.access verify-audit                   # exit 0 when the audit chain is intact, 1 when not
"""

import argparse
import asyncio
import getpass
import os
import sys

from shared.access import audit
from shared.access.admin import ensure_admin
from shared.access.store import AccessError, check_password
from shared.config import PlatformSettings
from shared.db import make_engine


async def _create_admin(args: argparse.Namespace) -> int:
    password = os.environ.get("PPE_ADMIN_PASSWORD") or getpass.getpass(f"password for {args.username}: ")
    try:
        check_password(password)
    except AccessError as exc:
        print(f"refused: {exc}", file=sys.stderr)
        return 2
    engine = make_engine(PlatformSettings().database_url, pool_size=1)
    try:
        outcome = await ensure_admin(engine, username=args.username, password=password, reset=args.reset)
    finally:
        await engine.dispose()
    if outcome == "exists":
        print(f"a user named {args.username} exists (unchanged): add --reset to give it this password and the "
              "global admin role", file=sys.stderr)
        return 1
    print(f"global admin {args.username}: {outcome}")
    return 0


async def _verify() -> int:
    engine = make_engine(PlatformSettings().database_url, pool_size=1)
    try:
        verdict = await audit.verify(engine)
    finally:
        await engine.dispose()
    if verdict.ok:
        print(f"audit chain intact: {verdict.records} records; head seq {verdict.head_seq} hash {verdict.head_hash}")
        return 0
    print(f"audit chain BROKEN at record {verdict.bad_seq}: {verdict.problem} "
          f"({verdict.records} records verified before it)", file=sys.stderr)
    return 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m shared.access", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    create = sub.add_parser("create-admin", help="create (or --reset) a global admin")
    create.add_argument("--username", default="admin")
    create.add_argument("--reset", action="store_true", help="the user exists: set this password, make it admin")
    sub.add_parser("verify-audit", help="check the audit trail's hash chain")
    args = parser.parse_args(argv)
    if args.command == "create-admin":
        return asyncio.run(_create_admin(args))
    return asyncio.run(_verify())


if __name__ == "__main__":
    raise SystemExit(main())
