"""Issue 19 row 10 and the detector's keys: what the rendered platform.yaml does on AWS by default.

Each test reads the committed template (the one operators deploy) and would fail on the template before the
issue: HTTP allowed without a certificate, admin routes on the internet-facing listener, DATABASE_URL without
sslmode=require, and no DETECTOR_API_KEYS (the detector API refused every call).
"""

import fnmatch
from typing import Any

import pytest
from fastapi import FastAPI
from sqlalchemy.engine import make_url

from deploy import catalog
from services.detector.config import parse_api_keys
from shared.config import normalise_database_url
from shared.db_roles import role_name
from tests.unit.deploy.cfn_model import Template, load


@pytest.fixture(scope="module")
def platform() -> Template:
    return Template(load("platform.yaml"))


def evaluate(node: Any, parameters: dict[str, str]) -> Any:
    """The few intrinsic functions CloudFormation rules use, enough to check our assertions."""
    if isinstance(node, dict) and len(node) == 1:
        ((name, args),) = node.items()
        if name == "Ref":
            return parameters[args]
        if name == "Fn::Equals":
            return evaluate(args[0], parameters) == evaluate(args[1], parameters)
        if name == "Fn::Not":
            return not evaluate(args[0], parameters)
        if name == "Fn::Or":
            return any(evaluate(arg, parameters) for arg in args)
        if name == "Fn::And":
            return all(evaluate(arg, parameters) for arg in args)
    return node


CERT = "arn:aws:acm:eu-west-1:123456789012:certificate/0a1b2c3d-0000-1111-2222-333344445555"


@pytest.mark.parametrize(
    ("certificate", "allow_insecure", "accepted"),
    [("", "false", False), (CERT, "false", True), ("", "true", True), (CERT, "true", True)],
)
def test_a_stack_without_a_certificate_is_refused_unless_http_is_asked_for(
    platform: Template, certificate: str, allow_insecure: str, accepted: bool
) -> None:
    parameters = {"CertificateArn": certificate, "AllowInsecureHttp": allow_insecure}
    assert platform.body["Parameters"]["AllowInsecureHttp"]["Default"] == "false"
    (rule,) = platform.body["Rules"].values()
    assert all(evaluate(a["Assert"], parameters) for a in rule["Assertions"]) is accepted


def listener_rules(platform: Template, service: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    listener = platform.resources[f"{service.capitalize()}Listener"]["Properties"]
    rules = [
        res["Properties"]
        for res in platform.of_type("AWS::ElasticLoadBalancingV2::ListenerRule").values()
        if res["Properties"]["ListenerArn"] == {"Ref": f"{service.capitalize()}Listener"}
    ]
    return listener, sorted(rules, key=lambda rule: rule["Priority"])


def public_action(platform: Template, service: str, method: str, path: str) -> str:
    """What the internet-facing listener does with a request: "forward" or "fixed-response"."""
    listener, rules = listener_rules(platform, service)
    for rule in rules:
        matched = True
        for condition in rule["Conditions"]:
            if condition["Field"] == "path-pattern":
                matched &= any(fnmatch.fnmatchcase(path, p) for p in condition["PathPatternConfig"]["Values"])
            elif condition["Field"] == "http-request-method":
                matched &= method in condition["HttpRequestMethodConfig"]["Values"]
        if matched:
            return str(rule["Actions"][0]["Type"])
    return str(listener["DefaultActions"][0]["Type"])


def operations(app: FastAPI) -> list[tuple[str, str, str]]:
    """(method, concrete path, summary) of every documented operation of the app."""
    found = []
    for path, item in app.openapi()["paths"].items():
        concrete = path.replace("{", "x").replace("}", "x")
        for method, operation in item.items():
            found.append((method.upper(), concrete, str(operation.get("summary", ""))))
    return found


def ingest_app() -> FastAPI:
    from services.ingest.api import IngestDeps, build_app
    from services.ingest.config import IngestSettings

    settings = IngestSettings(admin_token="x" * 32)
    deps = IngestDeps(settings, None, None, None, None, None, None, None, None)  # type: ignore[arg-type]
    return build_app(deps)


def test_ingest_admin_routes_are_not_on_the_public_listener_and_camera_routes_are(platform: Template) -> None:
    ops = operations(ingest_app())
    admin = [(m, p) for m, p, _ in ops if p.startswith("/v1/admin")]
    cameras = [(m, p) for m, p, _ in ops if p.startswith("/v1/") and not p.startswith("/v1/admin")]
    assert admin and cameras
    assert {public_action(platform, "ingest", m, p) for m, p in admin} == {"fixed-response"}
    assert {public_action(platform, "ingest", m, p) for m, p in cameras} == {"forward"}
    assert public_action(platform, "ingest", "GET", "/metrics") == "fixed-response"
    assert public_action(platform, "ingest", "GET", "/healthz") == "forward"


def test_reporting_admin_operations_are_not_on_the_public_listener(platform: Template) -> None:
    from services.reporting.adapters.repository import ReportingRepository
    from services.reporting.api.app import Tokens, build_app

    tokens = Tokens(analyst="a" * 32, admin="b" * 32)
    app = build_app(repository=ReportingRepository(None), tokens=tokens, retention=None)  # type: ignore[arg-type]
    ops = operations(app)
    admin = [(m, p) for m, p, summary in ops if "(admin)" in summary]
    analyst = [(m, p) for m, p, _ in ops if m == "GET" and p.startswith("/api/v1/")]
    assert len(admin) >= 2 and analyst
    assert {public_action(platform, "reporting", m, p) for m, p in admin} == {"fixed-response"}
    assert {public_action(platform, "reporting", m, p) for m, p in analyst} == {"forward"}


def test_every_database_url_requires_tls(platform: Template) -> None:
    for name in ["DatabaseUrlSecret"] + [f"{s.title}DatabaseUrlSecret" for s in catalog.SERVICES if s.uses_database]:
        url = platform.resources[name]["Properties"]["SecretString"]["Fn::Sub"]
        assert url.endswith("?sslmode=require"), name
        resolved = url.split("//", 1)[0] + "//ppe_user:pw@db.example:5432/" + url.rsplit("/", 1)[1]
        parsed = make_url(normalise_database_url(resolved))
        assert (parsed.drivername, parsed.query) == ("postgresql+psycopg", {"sslmode": "require"}), name


def test_each_service_connects_as_its_own_role_and_only_migrations_as_the_master(platform: Template) -> None:
    seen_urls = set()
    for svc in catalog.SERVICES:
        (container,) = platform.task_definition(svc.name)["Properties"]["ContainerDefinitions"]
        urls = [s["ValueFrom"]["Ref"] for s in container.get("Secrets", []) if s["Name"] == "DATABASE_URL"]
        if not svc.uses_database:
            assert urls == [], svc.name
            continue
        (url_secret,) = urls
        assert url_secret != "DatabaseUrlSecret", f"{svc.name} must not connect as the master user"
        url = platform.resources[url_secret]["Properties"]["SecretString"]["Fn::Sub"]
        assert url.startswith(f"postgresql://{role_name(svc.name)}:"), svc.name
        role_secret = url.split("${", 1)[1].split("}", 1)[0]
        migrate = platform.resources["MigrateTaskDefinition"]["Properties"]["ContainerDefinitions"][0]
        given = {s["Name"]: s["ValueFrom"]["Ref"] for s in migrate["Secrets"]}
        assert given[f"PPE_DB_ROLE_PASSWORD_{svc.name.upper()}"] == role_secret, "the role gets the URL's password"
        seen_urls.add(url_secret)
    assert len(seen_urls) == len([s for s in catalog.SERVICES if s.uses_database])


def test_the_detector_gets_api_keys_its_settings_accept(platform: Template) -> None:
    (container,) = platform.task_definition("detector")["Properties"]["ContainerDefinitions"]
    secrets = {item["Name"]: item["ValueFrom"]["Ref"] for item in container["Secrets"]}
    composed = platform.resources[secrets["DETECTOR_API_KEYS"]]["Properties"]["SecretString"]["Fn::Sub"]
    generated_id = composed.split("${")[2].split("}")[0]
    assert platform.resources[generated_id]["Properties"]["GenerateSecretString"]["PasswordLength"] >= 32
    # resolve it as CloudFormation would, with the parameter's default and a generated 48-character secret
    default_key_id = platform.body["Parameters"]["DetectorApiAccessKeyId"]["Default"]
    resolved = composed.replace("${DetectorApiAccessKeyId}", default_key_id)
    resolved = resolved.replace(f"{{{{resolve:secretsmanager:${{{generated_id}}}:SecretString}}}}", "Q" * 48)
    assert parse_api_keys(resolved) == {default_key_id: "Q" * 48}
    assert platform.body["Outputs"]["DetectorApiKeysSecret"]["Value"] == {"Ref": secrets["DETECTOR_API_KEYS"]}
