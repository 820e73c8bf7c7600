"""RDS PostgreSQL, its credentials, the composed DATABASE_URL and the services' generated secrets."""

import json
from typing import Any

from deploy import catalog
from deploy.catalog import ServiceDeploy
from deploy.cfn.intrinsics import (
    DB_NAME,
    DB_USER,
    ref,
    secret_id,
    sub,
)
from shared.db_roles import role_name


def database_resources(services: tuple[ServiceDeploy, ...]) -> dict[str, Any]:
    clients = [svc for svc in services if svc.uses_database]
    resources: dict[str, Any] = {
        "DatabaseSecurityGroup": {
            "Type": "AWS::EC2::SecurityGroup",
            "Properties": {
                "GroupDescription": "PostgreSQL: reachable only from the services that own tables",
                "VpcId": ref("VpcId"),
                "SecurityGroupIngress": [
                    {
                        "Description": f"{svc.name} tasks",
                        "IpProtocol": "tcp",
                        "FromPort": 5432,
                        "ToPort": 5432,
                        "SourceSecurityGroupId": ref(f"{svc.title}SecurityGroup"),
                    }
                    for svc in clients
                ]
                + [
                    {
                        "Description": "migration task",
                        "IpProtocol": "tcp",
                        "FromPort": 5432,
                        "ToPort": 5432,
                        "SourceSecurityGroupId": ref("MigrateSecurityGroup"),
                    }
                ],
            },
        },
        "DatabaseSubnetGroup": {
            "Type": "AWS::RDS::DBSubnetGroup",
            "Properties": {"DBSubnetGroupDescription": "PPE platform database", "SubnetIds": ref("PrivateSubnetIds")},
        },
        "DatabaseMasterSecret": {
            "Type": "AWS::SecretsManager::Secret",
            "Properties": {
                "Description": "PostgreSQL master credentials of the PPE platform",
                "GenerateSecretString": {
                    "SecretStringTemplate": json.dumps({"username": DB_USER}),
                    "GenerateStringKey": "password",
                    "PasswordLength": 40,
                    # Alphanumeric only, so the password can sit in DATABASE_URL without escaping.
                    "ExcludePunctuation": True,
                },
            },
        },
        "Database": {
            "Type": "AWS::RDS::DBInstance",
            "DeletionPolicy": "Snapshot",
            "UpdateReplacePolicy": "Snapshot",
            "Properties": {
                "Engine": "postgres",
                "EngineVersion": ref("DatabaseEngineVersion"),
                "DBInstanceClass": ref("DatabaseInstanceClass"),
                "AllocatedStorage": ref("DatabaseAllocatedStorage"),
                "StorageType": "gp3",
                "StorageEncrypted": True,
                "DBName": DB_NAME,
                "MasterUsername": sub("{{resolve:secretsmanager:${DatabaseMasterSecret}:SecretString:username}}"),
                "MasterUserPassword": sub("{{resolve:secretsmanager:${DatabaseMasterSecret}:SecretString:password}}"),
                "DBSubnetGroupName": ref("DatabaseSubnetGroup"),
                "VPCSecurityGroups": [ref("DatabaseSecurityGroup")],
                "MultiAZ": ref("DatabaseMultiAz"),
                "PubliclyAccessible": False,
                "BackupRetentionPeriod": 7,
                "DeletionProtection": ref("DatabaseDeletionProtection"),
                "AutoMinorVersionUpgrade": True,
            },
        },
        "DatabaseSecretAttachment": {
            "Type": "AWS::SecretsManager::SecretTargetAttachment",
            "Properties": {
                "SecretId": ref("DatabaseMasterSecret"),
                "TargetId": ref("Database"),
                "TargetType": "AWS::RDS::DBInstance",
            },
        },
        "DatabaseUrlSecret": {
            "Type": "AWS::SecretsManager::Secret",
            "Properties": {
                "Description": "DATABASE_URL of the migration task (the master user; services have their own roles)",
                # sslmode=require: the client refuses a connection that is not encrypted (RDS offers TLS).
                "SecretString": sub(
                    "postgresql://{{resolve:secretsmanager:${DatabaseMasterSecret}:SecretString:username}}:"
                    "{{resolve:secretsmanager:${DatabaseMasterSecret}:SecretString:password}}"
                    f"@${{Database.Endpoint.Address}}:${{Database.Endpoint.Port}}/{DB_NAME}?sslmode=require"
                ),
            },
        },
    }
    resources.update(service_role_resources(clients))
    return resources


def role_secret_id(svc: ServiceDeploy) -> str:
    return f"{svc.title}DatabaseRoleSecret"


def url_secret_id(svc: ServiceDeploy) -> str:
    return f"{svc.title}DatabaseUrlSecret"


def service_role_resources(clients: list[ServiceDeploy]) -> dict[str, Any]:
    """Per service with tables: a generated password for its own role (shared/db_roles.py, applied by the
    migration task) and the DATABASE_URL naming that role, which is all the service's task may read."""
    resources: dict[str, Any] = {}
    for svc in clients:
        resources[role_secret_id(svc)] = {
            "Type": "AWS::SecretsManager::Secret",
            "Properties": {
                "Description": f"password of the {role_name(svc.name)} database role (its own tables only)",
                "GenerateSecretString": {"PasswordLength": 40, "ExcludePunctuation": True},
            },
        }
        resources[url_secret_id(svc)] = {
            "Type": "AWS::SecretsManager::Secret",
            "Properties": {
                "Description": f"DATABASE_URL of the {svc.name} service (role {role_name(svc.name)}, TLS required)",
                "SecretString": sub(
                    f"postgresql://{role_name(svc.name)}:"
                    f"{{{{resolve:secretsmanager:${{{role_secret_id(svc)}}}:SecretString}}}}"
                    f"@${{Database.Endpoint.Address}}:${{Database.Endpoint.Port}}/{DB_NAME}?sslmode=require"
                ),
            },
        }
    return resources


# Generated secrets whose variable is a composed value: (service, field) -> (generated part's logical id, the
# value as an Fn::Sub string around ${Generated}). DETECTOR_API_KEYS is `ACCESS_KEY_ID:SECRET`: the secret
# access key is generated, the key id is a parameter; clients read the pair from the composed secret.
COMPOSED_SECRETS: dict[tuple[str, str], tuple[str, str]] = {
    ("detector", "api_keys"): ("DetectorApiSecretAccessKey", "${DetectorApiAccessKeyId}:${Generated}"),

}


def app_secret_resources(services: tuple[ServiceDeploy, ...]) -> dict[str, Any]:
    resources: dict[str, Any] = {}
    for svc in services:
        for setting in generated_secrets(svc):
            composed = COMPOSED_SECRETS.get((svc.name, setting.field))
            if composed is not None:
                generated_id, template = composed
                resources[generated_id] = {
                    "Type": "AWS::SecretsManager::Secret",
                    "Properties": {
                        "Description": f"generated part of {setting.env} of the {svc.name} service",
                        "GenerateSecretString": {"PasswordLength": 48, "ExcludePunctuation": True},
                    },
                }
                resources[secret_id(svc.name, setting.field)] = {
                    "Type": "AWS::SecretsManager::Secret",
                    "Properties": {
                        "Description": f"{setting.env} of the {svc.name} service (composed; clients read it here)",
                        "SecretString": sub(
                            template.replace(
                                "${Generated}", f"{{{{resolve:secretsmanager:${{{generated_id}}}:SecretString}}}}"
                            )
                        ),
                    },
                }
                continue
            resources[secret_id(svc.name, setting.field)] = {
                "Type": "AWS::SecretsManager::Secret",
                "Properties": {
                    "Description": f"{setting.env} of the {svc.name} service (generated; rotate by updating it)",
                    "GenerateSecretString": {"PasswordLength": 48, "ExcludePunctuation": True},
                },
            }
    return resources


# Optional secrets worth a generated value on AWS (keys we issue ourselves, not credentials of other systems).
GENERATED_OPTIONAL_SECRETS = frozenset(
    {("notifier", "webhook_secret"), ("detector", "api_keys")}  # without api_keys the detector API refuses all
)


def generated_secrets(svc: ServiceDeploy) -> list[catalog.EnvSetting]:
    settings, _ = catalog.service_env_settings(svc.name)
    return [
        s
        for s in settings
        if s.secret and s.env != "DATABASE_URL" and (s.required or (svc.name, s.field) in GENERATED_OPTIONAL_SECRETS)
    ]
