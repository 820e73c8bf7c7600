"""The migration task and the custom resource that runs it before the services roll."""

from pathlib import Path
from typing import Any

from deploy import catalog
from deploy.cfn.database import role_secret_id
from deploy.cfn.intrinsics import (
    MIGRATE_COMMAND,
    get_att,
    ref,
    sub,
)
from deploy.cfn.services import assume_role_policy, execution_role, image_uri, log_configuration, log_group
from shared.db_roles import PASSWORD_ENV


def migration_resources() -> dict[str, Any]:
    """The one-off task that applies every service's Alembic branch, and its run before the services roll.

    It connects as the master user and then (re)applies each service's own database role with the password
    from that service's role secret (shared/db_roles.py)."""
    role_passwords = [
        {"Name": PASSWORD_ENV.format(svc.name.upper()), "ValueFrom": ref(role_secret_id(svc))}
        for svc in catalog.SERVICES
        if svc.uses_database
    ]
    secrets = [{"Name": "DATABASE_URL", "ValueFrom": ref("DatabaseUrlSecret")}, *role_passwords]
    resources: dict[str, Any] = {
        "MigrateLogGroup": log_group("migrate"),
        "MigrateExecutionRole": execution_role("Migrate", "ingest", [item["ValueFrom"] for item in secrets]),
        "MigrateTaskRole": {
            "Type": "AWS::IAM::Role",
            "Properties": {
                "Description": "The migration task needs no AWS API at all",
                "AssumeRolePolicyDocument": assume_role_policy("ecs-tasks.amazonaws.com"),
            },
        },
        "MigrateSecurityGroup": {
            "Type": "AWS::EC2::SecurityGroup",
            "Properties": {"GroupDescription": "migration task", "VpcId": ref("VpcId")},
        },
        "MigrateTaskDefinition": {
            "Type": "AWS::ECS::TaskDefinition",
            "Properties": {
                "Family": sub("${AWS::StackName}-migrate"),
                "RequiresCompatibilities": ["FARGATE"],
                "NetworkMode": "awsvpc",
                "Cpu": "256",
                "Memory": "512",
                "ExecutionRoleArn": get_att("MigrateExecutionRole", "Arn"),
                "TaskRoleArn": get_att("MigrateTaskRole", "Arn"),
                "ContainerDefinitions": [
                    {
                        "Name": "migrate",
                        # Every image carries shared/ and migrations/; ingest's is the smallest.
                        "Image": image_uri("ingest"),
                        "Essential": True,
                        "Command": MIGRATE_COMMAND,
                        "Environment": [{"Name": "PPE_LOG_FORMAT", "Value": "json"}],
                        "Secrets": secrets,
                        "LogConfiguration": log_configuration("Migrate", "migrate"),
                    }
                ],
            },
        },
    }
    resources.update(migration_runner_resources())
    return resources


def migration_runner_resources() -> dict[str, Any]:
    code = (Path(__file__).resolve().parents[1] / "migration_runner.py").read_text()
    return {
        "MigrationRunnerRole": {
            "Type": "AWS::IAM::Role",
            "Properties": {
                "Description": "Runs the migration task and waits for it (custom resource before the services roll)",
                "AssumeRolePolicyDocument": assume_role_policy("lambda.amazonaws.com"),
                "Policies": [
                    {
                        "PolicyName": "run-migrations",
                        "PolicyDocument": {
                            "Version": "2012-10-17",
                            "Statement": [
                                {
                                    "Sid": "RunMigrateTask",
                                    "Effect": "Allow",
                                    "Action": ["ecs:RunTask"],
                                    "Resource": ref("MigrateTaskDefinition"),
                                    "Condition": {"ArnEquals": {"ecs:cluster": get_att("Cluster", "Arn")}},
                                },
                                {
                                    "Sid": "WatchMigrateTask",
                                    "Effect": "Allow",
                                    "Action": ["ecs:DescribeTasks"],
                                    "Resource": sub(
                                        "arn:${AWS::Partition}:ecs:${AWS::Region}:${AWS::AccountId}:task/${Cluster}/*"
                                    ),
                                },
                                {
                                    "Sid": "PassTaskRoles",
                                    "Effect": "Allow",
                                    "Action": ["iam:PassRole"],
                                    "Resource": [
                                        get_att("MigrateExecutionRole", "Arn"),
                                        get_att("MigrateTaskRole", "Arn"),
                                    ],
                                },
                                {
                                    "Sid": "WriteLogs",
                                    "Effect": "Allow",
                                    "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
                                    "Resource": get_att("MigrationRunnerLogGroup", "Arn"),
                                },
                            ],
                        },
                    }
                ],
            },
        },
        "MigrationRunnerLogGroup": {
            "Type": "AWS::Logs::LogGroup",
            "DeletionPolicy": "Delete",
            "UpdateReplacePolicy": "Delete",
            "Properties": {
                "LogGroupName": sub("/aws/lambda/${AWS::StackName}-migration-runner"),
                "RetentionInDays": ref("LogRetentionDays"),
            },
        },
        "MigrationRunner": {
            "Type": "AWS::Lambda::Function",
            "DependsOn": ["MigrationRunnerLogGroup"],
            "Properties": {
                "FunctionName": sub("${AWS::StackName}-migration-runner"),
                "Description": "Runs `python -m shared.migrate` as an ECS task and fails the deploy if it fails",
                "Runtime": "python3.12",
                "Handler": "index.handler",
                "Timeout": 900,
                "MemorySize": 128,
                "Role": get_att("MigrationRunnerRole", "Arn"),
                "Code": {"ZipFile": code},
            },
        },
        "MigrationsApplied": {
            "Type": "Custom::Migrations",
            "Properties": {
                "ServiceToken": get_att("MigrationRunner", "Arn"),
                "Cluster": ref("Cluster"),
                "TaskDefinition": ref("MigrateTaskDefinition"),
                "Subnets": ref("PrivateSubnetIds"),
                "SecurityGroups": [ref("MigrateSecurityGroup")],
                # A new image tag changes this property, so CloudFormation runs the migrations again.
                "ImageTag": ref("ImageTag"),
            },
        },
    }
