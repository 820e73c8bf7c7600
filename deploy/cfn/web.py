"""The web UI's wiring on AWS: sign-in and the incident console.

- One generated `PPE_SESSION_KEY` (Secrets Manager) for every service that accepts sign-in sessions (ingest,
  notifier, reporting: they verify the same cookies), and `PPE_COOKIE_SECURE` true when the load balancer
  speaks HTTPS.
- Reporting reaches the notifier (not on the load balancer) by its Cloud Map name inside the VPC
  (`REPORTING_NOTIFIER_URL`), with the notifier's own generated admin token (`REPORTING_NOTIFIER_ADMIN_TOKEN`),
  and the notifier's security group lets reporting's tasks in on its port.
"""

from typing import Any

from deploy import catalog
from deploy.catalog import ServiceDeploy
from deploy.cfn.intrinsics import get_att, if_, ref, secret_id, sub

SESSION_KEY_SECRET = "SessionKeySecret"
NAMESPACE = "ServiceDiscoveryNamespace"
NOTIFIER_DISCOVERY = "NotifierDiscoveryService"


def _reads(svc: ServiceDeploy, env: str) -> bool:
    settings, _ = catalog.service_env_settings(svc.name)
    return any(setting.env == env for setting in settings)


def web_environment(svc: ServiceDeploy) -> dict[str, Any]:
    """Plain variables (env -> value) the web UI needs in this service's container."""
    found: dict[str, Any] = {}
    if _reads(svc, "PPE_COOKIE_SECURE"):
        found["PPE_COOKIE_SECURE"] = if_("HasCertificate", "true", "false")
    if _reads(svc, "REPORTING_NOTIFIER_URL"):
        notifier = catalog.service("notifier")
        found["REPORTING_NOTIFIER_URL"] = sub(f"http://notifier.${{AWS::StackName}}.internal:{notifier.port}")
    return found


def web_secrets(svc: ServiceDeploy) -> list[dict[str, Any]]:
    """Secrets (Secrets Manager) the web UI needs in this service's container."""
    found = []
    if _reads(svc, "PPE_SESSION_KEY"):
        found.append({"Name": "PPE_SESSION_KEY", "ValueFrom": ref(SESSION_KEY_SECRET)})
    if _reads(svc, "REPORTING_NOTIFIER_ADMIN_TOKEN"):
        found.append({"Name": "REPORTING_NOTIFIER_ADMIN_TOKEN", "ValueFrom": ref(secret_id("notifier", "admin_token"))})
    return found


def service_registries(svc: ServiceDeploy) -> list[dict[str, Any]] | None:
    """The notifier's tasks register their addresses under its Cloud Map name."""
    return [{"RegistryArn": get_att(NOTIFIER_DISCOVERY, "Arn")}] if svc.name == "notifier" else None


def web_resources() -> dict[str, Any]:
    notifier = catalog.service("notifier")
    return {
        SESSION_KEY_SECRET: {
            "Type": "AWS::SecretsManager::Secret",
            "Properties": {
                "Description": "PPE_SESSION_KEY: signs sign-in sessions; the same on ingest, notifier and reporting "
                "(generated; updating it signs everyone out)",
                "GenerateSecretString": {"PasswordLength": 64, "ExcludePunctuation": True},
            },
        },
        NAMESPACE: {
            "Type": "AWS::ServiceDiscovery::PrivateDnsNamespace",
            "Properties": {
                "Name": sub("${AWS::StackName}.internal"),
                "Vpc": ref("VpcId"),
                "Description": "Names of the services that other services call inside the VPC",
            },
        },
        NOTIFIER_DISCOVERY: {
            "Type": "AWS::ServiceDiscovery::Service",
            "Properties": {
                "Name": "notifier",
                "DnsConfig": {
                    "NamespaceId": get_att(NAMESPACE, "Id"),
                    "RoutingPolicy": "MULTIVALUE",
                    "DnsRecords": [{"Type": "A", "TTL": 10}],
                },
                "HealthCheckCustomConfig": {"FailureThreshold": 1},
            },
        },
        "NotifierIngressFromReporting": {
            "Type": "AWS::EC2::SecurityGroupIngress",
            "Properties": {
                "Description": "reporting's incident console and rules page call the notifier's API",
                "GroupId": ref("NotifierSecurityGroup"),
                "IpProtocol": "tcp",
                "FromPort": notifier.port,
                "ToPort": notifier.port,
                "SourceSecurityGroupId": ref("ReportingSecurityGroup"),
            },
        },
    }
