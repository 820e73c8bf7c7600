"""Apply (or roll back) the database migrations of every service: `python -m shared.migrate [upgrade|downgrade REV]`.

After an upgrade, the services' own database roles are (re)applied when their passwords are given
(PPE_DB_ROLE_PASSWORD_<SERVICE>, the migration task on AWS): see shared/db_roles.py.
"""

import sys
from pathlib import Path

from alembic import command
from alembic.config import Config

from shared.config import PlatformSettings, normalise_database_url
from shared.db_roles import apply_roles, passwords_from_env

ROOT = Path(__file__).resolve().parent.parent


def alembic_config(database_url: str) -> Config:
    config = Config(str(ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(ROOT / "migrations"))
    config.set_main_option("sqlalchemy.url", normalise_database_url(database_url).replace("%", "%%"))
    return config


def upgrade(database_url: str, revision: str = "heads") -> None:
    command.upgrade(alembic_config(database_url), revision)


def downgrade(database_url: str, revision: str) -> None:
    command.downgrade(alembic_config(database_url), revision)


def main(argv: list[str]) -> int:
    url = PlatformSettings().database_url
    if not url:
        print("DATABASE_URL is not set; nothing to migrate", file=sys.stderr)
        return 2
    if argv[:1] == ["downgrade"]:
        downgrade(url, argv[1] if len(argv) > 1 else "base")
    else:
        upgrade(url)
        passwords = passwords_from_env()
        if passwords:
            apply_roles(url, passwords)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
