"""Alembic environment: the URL comes from the same settings the services use (DATABASE_URL)."""

from alembic import context
from sqlalchemy import engine_from_config, pool

from shared.config import PlatformSettings, normalise_database_url

config = context.config
if not config.get_main_option("sqlalchemy.url"):
    url = PlatformSettings().database_url
    if not url:
        raise SystemExit("DATABASE_URL is not set: export it (postgresql+psycopg://...) and run again")
    config.set_main_option("sqlalchemy.url", normalise_database_url(url).replace("%", "%%"))


def run_migrations_offline() -> None:
    context.configure(url=config.get_main_option("sqlalchemy.url"), literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connectable = engine_from_config(config.get_section(config.config_ini_section, {}), prefix="sqlalchemy.", poolclass=pool.NullPool)
    with connectable.connect() as connection:
        context.configure(connection=connection)
        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
