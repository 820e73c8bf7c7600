"""docker-compose.yml, checked without a Docker engine: every service, port and variable against the code."""

import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from pydantic import ValidationError

from deploy import catalog
from shared.config import PlatformSettings
from shared.local_secrets import COPIES, GENERATED_SECRETS, new_secret

ROOT = Path(__file__).resolve().parents[3]
APP_SERVICES = [svc.name for svc in catalog.SERVICES]
# ${NAME}, ${NAME:-default}, ${NAME-default}, ${NAME:?error}, ${NAME?error}
VARIABLE = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}")


def interpolate(value: Any) -> str:
    """What compose substitutes with an empty host environment; a variable without a default is an error."""

    def substitute(match: re.Match[str]) -> str:
        if match["op"] in (":-", "-"):
            return match["arg"]
        raise AssertionError(f"{match[0]} has no default: `docker compose up` alone would not start")

    return VARIABLE.sub(substitute, str(value))


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    with (ROOT / "docker-compose.yml").open() as fh:
        loaded: dict[str, Any] = yaml.safe_load(fh)
    return loaded


def environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment", {})
    assert isinstance(env, dict), "use the mapping form of environment"
    return {key: interpolate(value) for key, value in env.items()}


def with_generated_secrets(env: dict[str, str]) -> dict[str, str]:
    """What `shared.local_secrets exec` gives the service: generated values where compose left a secret empty."""
    filled = env | {name: new_secret(name) for name in GENERATED_SECRETS if name in env and not env[name]}
    copies = {key: filled.get(source, new_secret(source)) for key, source in COPIES.items() if key in env and not env[key]}
    return filled | copies


def settings_env_names(cls: type[PlatformSettings]) -> set[str]:
    return {setting.env for setting in catalog.env_settings(cls)}


def build_settings(
    cls: type[PlatformSettings], env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> PlatformSettings:
    for name in settings_env_names(cls):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return cls()


def test_one_compose_up_brings_the_whole_platform(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert set(APP_SERVICES) <= set(services)
    for name in APP_SERVICES:
        depends = services[name]["depends_on"]
        assert depends["provision"]["condition"] == "service_completed_successfully", name
    provision = services["provision"]
    assert provision["command"] == ["python", "-m", "shared.provision"]
    for dependency, spec in provision["depends_on"].items():
        assert spec["condition"] == "service_healthy", dependency
        assert "healthcheck" in services[dependency], f"{dependency} needs a healthcheck to be waited on"


def test_every_service_reads_every_variable_it_is_given(
    compose: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    services = compose["services"]
    for name in APP_SERVICES:
        env = environment(services[name])
        cls = catalog.settings_class(name) or PlatformSettings
        settings_vars, provisional = catalog.service_env_settings(name)
        readable = {s.env for s in settings_vars} | set(catalog.NON_SETTINGS_ENV)
        unread = set(env) - readable
        if provisional:  # no config.py on this branch yet: its own prefix cannot be judged
            unread = {var for var in unread if not var.startswith(f"{name.upper()}_")}
        assert not unread, f"{name}: {sorted(unread)} are read by no settings class (typo or stale variable?)"
        missing = {s.env for s in settings_vars if s.required} - set(env)
        assert not missing, f"{name}: required settings without a value: {sorted(missing)}"
        try:
            build_settings(cls, with_generated_secrets(env), monkeypatch)
        except ValidationError as exc:
            raise AssertionError(f"{name} would refuse to start with the compose environment:\n{exc}") from exc
        assert ("DATABASE_URL" in env) is catalog.service(name).uses_database, name
    provision_env = environment(services["provision"])
    assert not set(provision_env) - settings_env_names(PlatformSettings) - set(catalog.NON_SETTINGS_ENV)
    settings = build_settings(PlatformSettings, provision_env, monkeypatch)
    assert settings.database_url and settings.aws_endpoint_url


def test_no_token_ships_in_the_file_and_every_service_starts_with_generated_ones(compose: dict[str, Any]) -> None:
    # Issue 19 row 10: the file used to carry fixed tokens that passed the services' secret checks.
    services = compose["services"]
    secrets_job = services["secrets"]
    assert secrets_job["command"][:4] == ["python", "-m", "shared.local_secrets", "create"]
    path = secrets_job["command"][4]
    for name in APP_SERVICES:
        service = services[name]
        settings_vars, _ = catalog.service_env_settings(name)
        secret_names = {s.env for s in settings_vars if s.secret and s.env != "DATABASE_URL"}
        env = environment(service)
        assert {k: v for k, v in env.items() if k in secret_names and v} == {}, f"{name} ships a secret value"
        required = {s.env for s in settings_vars if s.required and s.secret and s.env != "DATABASE_URL"}
        assert required <= set(GENERATED_SECRETS), f"{name}: {required - set(GENERATED_SECRETS)} never generated"
        assert service["command"] == [
            "python", "-m", "shared.local_secrets", "exec", path, "--", "python", "-m", f"services.{name}.main"
        ], name
        assert any(str(volume).startswith("secrets:/run/ppe") for volume in service["volumes"]), name
        assert services["secrets"]["volumes"] == ["secrets:/run/ppe"]
        assert service["depends_on"]["secrets"]["condition"] == "service_completed_successfully", name


def test_local_secrets_are_created_once_private_and_given_to_the_service(tmp_path: Path) -> None:
    import os
    import stat
    import subprocess
    import sys

    path = tmp_path / "run" / "secrets.env"
    command = [sys.executable, "-m", "shared.local_secrets"]
    subprocess.run([*command, "create", str(path)], cwd=ROOT, check=True, capture_output=True)
    first = path.read_text()
    subprocess.run([*command, "create", str(path)], cwd=ROOT, check=True, capture_output=True)
    assert path.read_text() == first, "a second start keeps the tokens"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    printed = subprocess.run(
        [*command, "exec", str(path), "--", sys.executable, "-c",
         "import os; print(os.environ['INGEST_ADMIN_TOKEN'], os.environ['NOTIFIER_ADMIN_TOKEN'])"],
        cwd=ROOT, check=True, capture_output=True, text=True,
        env={**os.environ, "INGEST_ADMIN_TOKEN": "", "NOTIFIER_ADMIN_TOKEN": "operator-chosen-token-0123456789"},
    ).stdout.split()
    generated = dict(line.split("=", 1) for line in first.splitlines() if "=" in line and not line.startswith("#"))
    assert printed == [generated["INGEST_ADMIN_TOKEN"], "operator-chosen-token-0123456789"]
    assert len(generated["INGEST_ADMIN_TOKEN"]) >= 32 and set(generated) == set(GENERATED_SECRETS)


def test_the_zone_editor_gets_ingests_generated_admin_token(compose: dict[str, Any], tmp_path: Path) -> None:
    # compose gives reporting REPORTING_INGEST_ADMIN_TOKEN empty; exec fills it with ingest's generated token
    import os
    import subprocess
    import sys

    path = tmp_path / "secrets.env"
    command = [sys.executable, "-m", "shared.local_secrets"]
    subprocess.run([*command, "create", str(path)], cwd=ROOT, check=True, capture_output=True)
    printed = subprocess.run(
        [*command, "exec", str(path), "--", sys.executable, "-c",
         "import os; print(os.environ['REPORTING_INGEST_ADMIN_TOKEN'])"],
        cwd=ROOT, check=True, capture_output=True, text=True,
        env={**os.environ, "INGEST_ADMIN_TOKEN": "", "REPORTING_INGEST_ADMIN_TOKEN": ""},
    ).stdout.strip()
    generated = dict(line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)
    assert printed == generated["INGEST_ADMIN_TOKEN"]
    assert environment(compose["services"]["reporting"])["REPORTING_INGEST_ADMIN_TOKEN"] == ""


def test_ports_match_the_settings_and_stay_on_localhost(compose: dict[str, Any]) -> None:
    for svc in catalog.SERVICES:
        service = compose["services"][svc.name]
        env = environment(service)
        assert env[f"{svc.name.upper()}_PORT"] == str(svc.port)
        assert env.get(f"{svc.name.upper()}_HOST") == "0.0.0.0", f"{svc.name} must listen beyond its container"
        published = [str(port).split(":") for port in service["ports"]]
        assert published == [["127.0.0.1", str(svc.port), str(svc.port)]], svc.name


def test_services_reach_the_emulator_and_the_database_by_service_name(compose: dict[str, Any]) -> None:
    services = compose["services"]
    postgres = environment(services["postgres"])
    for name in APP_SERVICES + ["provision"]:
        env = environment(services[name])
        endpoint = urlsplit(env["AWS_ENDPOINT_URL"])
        assert endpoint.hostname in services, f"{name}: {endpoint.hostname} is not a compose service"
        if "DATABASE_URL" in env:
            url = urlsplit(env["DATABASE_URL"])
            assert url.hostname == "postgres"
            assert (url.username, url.password, url.path.lstrip("/")) == (
                postgres["POSTGRES_USER"],
                postgres["POSTGRES_PASSWORD"],
                postgres["POSTGRES_DB"],
            ), name
        assert env["PPE_QUEUE_PREFIX"] == environment(services["provision"])["PPE_QUEUE_PREFIX"]
        assert env["PPE_FRAMES_BUCKET"] == environment(services["provision"])["PPE_FRAMES_BUCKET"]


def test_images_are_pinned_and_ours_are_built_from_their_dockerfile(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        if "build" in service:
            dockerfile = ROOT / service["build"]["dockerfile"]
            assert dockerfile.is_file(), f"{name}: {dockerfile} missing"
            assert service["build"]["context"] == "."
            if name in APP_SERVICES:
                assert dockerfile.name == f"{name}.Dockerfile"
        else:
            image = service["image"]
            tag = image.rsplit(":", 1)[-1] if ":" in image else ""
            assert re.fullmatch(r"\d+(\.\d+)+(-[a-z0-9.-]+)?", tag), f"{name}: {image} is not pinned to a version"


def test_the_provision_container_command_provisions_the_topology_and_migrates(
    compose: dict[str, Any], aws_endpoint: str, empty_database_url: str
) -> None:
    """GIVEN the provision service's environment, with its hosts pointed at the test emulator and database,
    WHEN its command runs, THEN every topology queue and DLQ, the bucket and every migration exist."""
    import os
    import subprocess
    import sys
    import uuid

    import boto3
    import sqlalchemy as sa

    from shared.topology import TOPOLOGY

    service = compose["services"]["provision"]
    env = environment(service)
    suffix = uuid.uuid4().hex[:8]
    env |= {
        "AWS_ENDPOINT_URL": aws_endpoint,
        "DATABASE_URL": empty_database_url,
        "PPE_QUEUE_PREFIX": f"c{suffix}-",  # the session's emulator is shared: keep names apart
        "PPE_FRAMES_BUCKET": f"compose-{suffix}",
    }
    result = subprocess.run(
        [sys.executable if part == "python" else part for part in service["command"]],
        env={"PATH": os.environ["PATH"], **env},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    sqs = boto3.client("sqs", endpoint_url=aws_endpoint, region_name=env["AWS_REGION"])
    listed = {url.rsplit("/", 1)[-1] for url in sqs.list_queues(QueueNamePrefix=f"c{suffix}-").get("QueueUrls", [])}
    expected = {spec.physical_name(f"c{suffix}-") for spec in TOPOLOGY.queues}
    expected |= {spec.dlq_physical_name(f"c{suffix}-") for spec in TOPOLOGY.queues}
    assert listed == expected
    s3 = boto3.client("s3", endpoint_url=aws_endpoint, region_name=env["AWS_REGION"])
    s3.head_bucket(Bucket=f"compose-{suffix}")
    from alembic.script import ScriptDirectory

    from shared.config import normalise_database_url
    from shared.migrate import alembic_config

    heads = set(ScriptDirectory.from_config(alembic_config(empty_database_url)).get_heads())
    engine = sa.create_engine(normalise_database_url(empty_database_url))
    try:
        with engine.connect() as conn:
            applied = set(conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalars())
    finally:
        engine.dispose()
    assert applied == heads, "every service's Alembic branch must be at its head"
