"""Sign-in and the incident console on AWS: one generated session key for every service that accepts sessions,
the cookie Secure behind HTTPS, and reporting reaching the (private) notifier by its Cloud Map name with the
notifier's own admin token, through a security group rule of exactly that port."""

from typing import Any

import pytest

from deploy import catalog
from tests.unit.deploy.cfn_model import Template, load
from tests.unit.deploy.test_safe_defaults import public_action

SIGN_IN_SERVICES = ("ingest", "notifier", "reporting")


@pytest.fixture(scope="module")
def platform() -> Template:
    return Template(load("platform.yaml"))


def container(platform: Template, service: str) -> dict[str, Any]:
    (found,) = platform.task_definition(service)["Properties"]["ContainerDefinitions"]
    return found  # type: ignore[no-any-return]  # parsed YAML


def secrets(platform: Template, service: str) -> dict[str, Any]:
    return {item["Name"]: item["ValueFrom"] for item in container(platform, service).get("Secrets", [])}


def environment(platform: Template, service: str) -> dict[str, Any]:
    return {item["Name"]: item["Value"] for item in container(platform, service)["Environment"]}


def test_every_service_that_accepts_sessions_gets_the_same_generated_session_key(platform: Template) -> None:
    refs = {service: secrets(platform, service).get("PPE_SESSION_KEY") for service in SIGN_IN_SERVICES}
    assert set(map(str, refs.values())) == {str({"Ref": "SessionKeySecret"})}, refs
    secret = platform.resources["SessionKeySecret"]
    assert secret["Type"] == "AWS::SecretsManager::Secret"
    assert secret["Properties"]["GenerateSecretString"]["PasswordLength"] >= 32  # AccessSettings' minimum
    assert "PPE_SESSION_KEY" not in secrets(platform, "detector") and "PPE_SESSION_KEY" not in environment(
        platform, "detector")
    for service in SIGN_IN_SERVICES:  # Secure exactly when the load balancer speaks HTTPS
        assert environment(platform, service)["PPE_COOKIE_SECURE"] == {"Fn::If": ["HasCertificate", "true", "false"]}


def test_reporting_reaches_the_notifier_by_its_private_name_with_the_notifier_s_admin_token(
    platform: Template,
) -> None:
    notifier = catalog.service("notifier")
    env = environment(platform, "reporting")
    assert env["REPORTING_NOTIFIER_URL"] == {"Fn::Sub": f"http://notifier.${{AWS::StackName}}.internal:{notifier.port}"}
    assert secrets(platform, "reporting")["REPORTING_NOTIFIER_ADMIN_TOKEN"] == secrets(platform, "notifier")[
        "NOTIFIER_ADMIN_TOKEN"]
    # the name: a private namespace of the stack's VPC, a record per running notifier task
    namespace = platform.resources["ServiceDiscoveryNamespace"]["Properties"]
    assert namespace["Name"] == {"Fn::Sub": "${AWS::StackName}.internal"} and namespace["Vpc"] == {"Ref": "VpcId"}
    discovery = platform.resources["NotifierDiscoveryService"]["Properties"]
    assert discovery["Name"] == "notifier" and discovery["DnsConfig"]["DnsRecords"] == [{"Type": "A", "TTL": 10}]
    registries = platform.ecs_service("notifier")["Properties"]["ServiceRegistries"]
    assert registries == [{"RegistryArn": {"Fn::GetAtt": ["NotifierDiscoveryService", "Arn"]}}]
    # the way in: reporting's tasks, the notifier's port, nothing else; still not on the load balancer
    (ingress,) = [r["Properties"] for r in platform.of_type("AWS::EC2::SecurityGroupIngress").values()
                  if r["Properties"]["GroupId"] == {"Ref": "NotifierSecurityGroup"}]
    assert ingress["SourceSecurityGroupId"] == {"Ref": "ReportingSecurityGroup"}
    assert ingress["FromPort"] == ingress["ToPort"] == notifier.port and ingress["IpProtocol"] == "tcp"
    assert "LoadBalancers" not in platform.ecs_service("notifier")["Properties"]


def test_rule_and_channel_changes_are_not_on_the_public_listener_and_the_console_is(platform: Template) -> None:
    for method in ("POST", "PUT", "DELETE"):
        assert public_action(platform, "reporting", method, "/api/v1/notifications/rules/7") == "fixed-response"
        assert public_action(platform, "reporting", method, "/api/v1/notifications/channels") == "fixed-response"
    assert public_action(platform, "reporting", "GET", "/api/v1/notifications/rules") == "forward"
    assert public_action(platform, "reporting", "POST", "/api/v1/console/incidents/i-1/acknowledge") == "forward"
    assert public_action(platform, "reporting", "POST", "/api/v1/auth/login") == "forward"
    assert public_action(platform, "reporting", "GET", "/audit") == "forward"
