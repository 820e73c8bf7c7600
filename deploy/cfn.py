"""Render the CloudFormation templates in deploy/cloudformation/ from the topology and the settings classes.

    python -m deploy.cfn render   # rewrite deploy/cloudformation/*.yaml
    python -m deploy.cfn check    # exit 1 if a committed template differs from what render would write

Queues, DLQs, redrive, the bucket's lifecycle and every task role's permissions come from
`shared.topology.TOPOLOGY`; each container's environment comes from its service's settings class
(deploy/catalog.py). Edit those, not the YAML.
"""

import json
import sys
from pathlib import Path
from typing import Any

import yaml

from deploy import catalog
from deploy.catalog import ServiceDeploy
from deploy.iam import RESOURCELESS_ACTIONS, task_role_statements
from shared.topology import MAX_MESSAGE_BYTES, TOPOLOGY, QueueSpec, Topology, queue_attributes

OUT_DIR = Path(__file__).resolve().parent / "cloudformation"
MIGRATE_COMMAND = ["python", "-m", "shared.migrate"]
HEALTHCHECK = "/opt/ppe/healthcheck.py"
DB_NAME = "ppe"
DB_USER = "ppe"

# SQS attribute (as shared.topology.queue_attributes writes it) -> CloudFormation property and type.
QUEUE_PROPERTIES: dict[str, type] = {
    "VisibilityTimeout": int,
    "MessageRetentionPeriod": int,
    "MaximumMessageSize": int,
    "ReceiveMessageWaitTimeSeconds": int,
    "FifoQueue": bool,
    "ContentBasedDeduplication": bool,
}


def ref(name: str) -> dict[str, Any]:
    return {"Ref": name}


def get_att(resource: str, attribute: str) -> dict[str, Any]:
    return {"Fn::GetAtt": [resource, attribute]}


def sub(text: str) -> dict[str, Any]:
    return {"Fn::Sub": text}


def if_(condition: str, then: Any, otherwise: Any) -> dict[str, Any]:
    return {"Fn::If": [condition, then, otherwise]}


NO_VALUE = ref("AWS::NoValue")


def logical_id(name: str, suffix: str = "") -> str:
    return "".join(part.capitalize() for part in name.replace("_", "-").split("-")) + suffix


def queue_id(name: str) -> str:
    return logical_id(name, "Queue")


def dlq_id(name: str) -> str:
    return logical_id(name, "Dlq")


def bucket_id(name_setting: str) -> str:
    return logical_id(name_setting.removesuffix("_bucket"), "Bucket")


def _physical(spec: QueueSpec, dlq: bool) -> dict[str, Any]:
    # physical_name() with a placeholder prefix, so the template's name is the topology's name.
    name = spec.dlq_physical_name("${QueuePrefix}") if dlq else spec.physical_name("${QueuePrefix}")
    return sub(name)


def queue_resources(topology: Topology) -> dict[str, Any]:
    resources: dict[str, Any] = {}
    for spec in topology.queues:
        dlq_properties: dict[str, Any] = {
            "QueueName": _physical(spec, dlq=True),
            "MessageRetentionPeriod": spec.dlq_retention_s,
            "MaximumMessageSize": MAX_MESSAGE_BYTES,
            "SqsManagedSseEnabled": True,
        }
        if spec.fifo:
            dlq_properties["FifoQueue"] = True
        resources[dlq_id(spec.name)] = {
            "Type": "AWS::SQS::Queue",
            "DeletionPolicy": "Retain",
            "UpdateReplacePolicy": "Retain",
            "Properties": dlq_properties,
        }
        attributes = queue_attributes(spec, "DLQ")
        properties: dict[str, Any] = {"QueueName": _physical(spec, dlq=False)}
        for key, value in attributes.items():
            if key == "RedrivePolicy":
                redrive = json.loads(value)
                properties["RedrivePolicy"] = {
                    "deadLetterTargetArn": get_att(dlq_id(spec.name), "Arn"),
                    "maxReceiveCount": int(redrive["maxReceiveCount"]),
                }
            else:
                convert = QUEUE_PROPERTIES[key]
                properties[key] = (value == "true") if convert is bool else convert(value)
        properties["SqsManagedSseEnabled"] = True
        resources[queue_id(spec.name)] = {
            "Type": "AWS::SQS::Queue",
            "DeletionPolicy": "Retain",
            "UpdateReplacePolicy": "Retain",
            "Properties": properties,
        }
        resources[logical_id(spec.name, "DlqAlarm")] = {
            "Type": "AWS::CloudWatch::Alarm",
            "Properties": {
                "AlarmDescription": sub(
                    f"Messages are dead-lettered from {spec.physical_name('${QueuePrefix}')}: inspect the DLQ, "
                    "fix the cause, then redrive (docs/deploy.md)."
                ),
                "Namespace": "AWS/SQS",
                "MetricName": "ApproximateNumberOfMessagesVisible",
                "Dimensions": [{"Name": "QueueName", "Value": get_att(dlq_id(spec.name), "QueueName")}],
                "Statistic": "Maximum",
                "Period": 300,
                "EvaluationPeriods": 1,
                "Threshold": 0,
                "ComparisonOperator": "GreaterThanThreshold",
                "TreatMissingData": "notBreaching",
                "AlarmActions": if_("HasAlarmTopic", [ref("AlarmTopicArn")], NO_VALUE),
            },
        }
    return resources


def bucket_resources(topology: Topology) -> dict[str, Any]:
    resources: dict[str, Any] = {}
    for spec in topology.buckets:
        bid = bucket_id(spec.name_setting)
        resources[bid] = {
            "Type": "AWS::S3::Bucket",
            "DeletionPolicy": "Retain",
            "UpdateReplacePolicy": "Retain",
            "Properties": {
                "BucketEncryption": {
                    "ServerSideEncryptionConfiguration": [{"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
                },
                "PublicAccessBlockConfiguration": {
                    "BlockPublicAcls": True,
                    "BlockPublicPolicy": True,
                    "IgnorePublicAcls": True,
                    "RestrictPublicBuckets": True,
                },
                "OwnershipControls": {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]},
                "LifecycleConfiguration": {
                    "Rules": [
                        {
                            "Id": "expire-frames",
                            "Status": "Enabled",
                            "ExpirationInDays": spec.expire_days,
                            "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1},
                        }
                    ]
                },
            },
        }
        resources[f"{bid}Policy"] = {
            "Type": "AWS::S3::BucketPolicy",
            "Properties": {
                "Bucket": ref(bid),
                "PolicyDocument": {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Sid": "DenyInsecureTransport",
                            "Effect": "Deny",
                            "Principal": "*",
                            "Action": "s3:*",
                            "Resource": [get_att(bid, "Arn"), sub(f"${{{bid}.Arn}}/*")],
                            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                        }
                    ],
                },
            },
        }
    return resources


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
                "EnablePerformanceInsights": True,
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
                "Description": "DATABASE_URL of the PPE services (composed from the master secret)",
                "SecretString": sub(
                    "postgresql://{{resolve:secretsmanager:${DatabaseMasterSecret}:SecretString:username}}:"
                    "{{resolve:secretsmanager:${DatabaseMasterSecret}:SecretString:password}}"
                    f"@${{Database.Endpoint.Address}}:${{Database.Endpoint.Port}}/{DB_NAME}"
                ),
            },
        },
    }
    return resources


def secret_id(service: str, field: str) -> str:
    return logical_id(service) + logical_id(field, "Secret")


def app_secret_resources(services: tuple[ServiceDeploy, ...]) -> dict[str, Any]:
    resources: dict[str, Any] = {}
    for svc in services:
        for setting in generated_secrets(svc):
            resources[secret_id(svc.name, setting.field)] = {
                "Type": "AWS::SecretsManager::Secret",
                "Properties": {
                    "Description": f"{setting.env} of the {svc.name} service (generated; rotate by updating it)",
                    "GenerateSecretString": {"PasswordLength": 48, "ExcludePunctuation": True},
                },
            }
    return resources


# Optional settings an operator chooses per deployment: (service, field) -> template parameter.
OPERATOR_SETTINGS: dict[tuple[str, str], dict[str, Any]] = {
    ("detector", "ppe_engine"): {
        "Type": "String",
        "Default": "local",
        "AllowedValues": ["local", "rekognition"],
        "Description": "DETECTOR_PPE_ENGINE: the baked offline models (local) or Amazon Rekognition.",
    },
}


# Optional secrets worth a generated value on AWS (keys we issue ourselves, not credentials of other systems).
GENERATED_OPTIONAL_SECRETS = frozenset({("notifier", "webhook_secret")})


def generated_secrets(svc: ServiceDeploy) -> list[catalog.EnvSetting]:
    settings, _ = catalog.service_env_settings(svc.name)
    return [
        s
        for s in settings
        if s.secret and s.env != "DATABASE_URL" and (s.required or (svc.name, s.field) in GENERATED_OPTIONAL_SECRETS)
    ]


def operator_parameters(svc: ServiceDeploy) -> dict[str, str]:
    """env name -> parameter id, for the operator settings this service's class has."""
    settings, _ = catalog.service_env_settings(svc.name)
    return {s.env: parameter_id(svc, s.field) for s in settings if (svc.name, s.field) in OPERATOR_SETTINGS}


def container_environment(svc: ServiceDeploy) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(environment, secrets) of the service's container, from the variables its settings class reads."""
    settings, _ = catalog.service_env_settings(svc.name)
    upper = svc.name.upper()
    (frames,) = [bucket for bucket in TOPOLOGY.buckets if bucket.name_setting == "frames_bucket"]
    fixed: dict[str, Any] = {
        "AWS_REGION": ref("AWS::Region"),
        "PPE_QUEUE_PREFIX": ref("QueuePrefix"),
        "PPE_FRAMES_BUCKET": ref(bucket_id("frames_bucket")),
        "PPE_LOG_FORMAT": "json",
        "PPE_LOG_LEVEL": ref("LogLevel"),
        f"{upper}_PORT": str(svc.port),
        f"{upper}_HOST": "0.0.0.0",
        # reporting's retention runs re-apply the bucket expiry: keep it the topology's
        f"{upper}_FRAMES_RETENTION_DAYS": str(frames.expire_days),
        # the notifier requeues a delivery until the queue's redrive takes it: same count
        f"{upper}_DELIVERY_MAX_RECEIVES": str(TOPOLOGY.queue("notifier-deliveries").max_receive_count),
    }
    fixed.update({env: ref(param) for env, param in operator_parameters(svc).items()})
    environment: list[dict[str, Any]] = []
    secrets: list[dict[str, Any]] = []
    generated = {setting.env for setting in generated_secrets(svc)}
    for setting in settings:
        if setting.env == "DATABASE_URL":
            if svc.uses_database:
                secrets.append({"Name": "DATABASE_URL", "ValueFrom": ref("DatabaseUrlSecret")})
        elif setting.env in fixed:
            environment.append({"Name": setting.env, "Value": fixed[setting.env]})
        elif setting.env in generated:
            secrets.append({"Name": setting.env, "ValueFrom": ref(secret_id(svc.name, setting.field))})
        elif setting.required:
            environment.append({"Name": setting.env, "Value": ref(parameter_id(svc, setting.field))})
    return environment, secrets


def parameter_id(svc: ServiceDeploy, field: str) -> str:
    return svc.title + logical_id(field)


def required_setting_parameters(services: tuple[ServiceDeploy, ...]) -> dict[str, Any]:
    parameters: dict[str, Any] = {}
    for svc in services:
        settings, _ = catalog.service_env_settings(svc.name)
        for setting in settings:
            if setting.required and not setting.secret and setting.env != "DATABASE_URL":
                parameters[parameter_id(svc, setting.field)] = {
                    "Type": "String",
                    "Description": f"{setting.env} of the {svc.name} service (required by its settings class).",
                }
    return parameters


def _log_group(name: str) -> dict[str, Any]:
    return {
        "Type": "AWS::Logs::LogGroup",
        "DeletionPolicy": "Delete",
        "UpdateReplacePolicy": "Delete",
        "Properties": {
            "LogGroupName": sub(f"/ppe/${{AWS::StackName}}/{name}"),
            "RetentionInDays": ref("LogRetentionDays"),
        },
    }


def _assume(service: str) -> dict[str, Any]:
    return {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}],
    }


def _image(name: str) -> dict[str, Any]:
    return sub(
        f"${{AWS::AccountId}}.dkr.ecr.${{AWS::Region}}.${{AWS::URLSuffix}}/${{EcrRepositoryPrefix}}/{name}:${{ImageTag}}"
    )


def execution_role(title: str, image_name: str, secret_refs: list[Any]) -> dict[str, Any]:
    statements: list[dict[str, Any]] = [
        {"Sid": "EcrLogin", "Effect": "Allow", "Action": ["ecr:GetAuthorizationToken"], "Resource": "*"},
        {
            "Sid": "PullImage",
            "Effect": "Allow",
            "Action": ["ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"],
            "Resource": sub(
                f"arn:${{AWS::Partition}}:ecr:${{AWS::Region}}:${{AWS::AccountId}}:repository/${{EcrRepositoryPrefix}}/{image_name}"
            ),
        },
        {
            "Sid": "WriteLogs",
            "Effect": "Allow",
            "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
            "Resource": get_att(f"{title}LogGroup", "Arn"),
        },
    ]
    if secret_refs:
        statements.append(
            {
                "Sid": "ReadSecrets",
                "Effect": "Allow",
                "Action": ["secretsmanager:GetSecretValue"],
                "Resource": secret_refs,
            }
        )
    return {
        "Type": "AWS::IAM::Role",
        "Properties": {
            "Description": f"ECS agent role of {title}: pull its image, write its logs, read its secrets",
            "AssumeRolePolicyDocument": _assume("ecs-tasks.amazonaws.com"),
            "Policies": [
                {"PolicyName": "execution", "PolicyDocument": {"Version": "2012-10-17", "Statement": statements}}
            ],
        },
    }


def _health_check(name: str) -> dict[str, Any]:
    return {
        "Command": ["CMD", "python", HEALTHCHECK, name],
        "Interval": 15,
        "Timeout": 5,
        "Retries": 3,
        "StartPeriod": 60 if name == "detector" else 20,
    }


def _log_configuration(title: str, stream_prefix: str) -> dict[str, Any]:
    return {
        "LogDriver": "awslogs",
        "Options": {
            "awslogs-group": ref(f"{title}LogGroup"),
            "awslogs-region": ref("AWS::Region"),
            "awslogs-stream-prefix": stream_prefix,
        },
    }


def service_resources(svc: ServiceDeploy, topology: Topology) -> dict[str, Any]:
    title = svc.title
    environment, secrets = container_environment(svc)
    resources: dict[str, Any] = {f"{title}LogGroup": _log_group(svc.name)}
    statements = task_role_statements(
        svc.name,
        queue_arn=lambda name: get_att(queue_id(name), "Arn"),
        dlq_arn=lambda name: get_att(dlq_id(name), "Arn"),
        bucket_arn=lambda setting: get_att(bucket_id(setting), "Arn"),
        records_prefix=catalog.records_prefix(svc),
        sets_bucket_lifecycle=svc.sets_bucket_lifecycle,
        topology=topology,
    )
    if svc.name == "notifier":
        statements.append(
            if_(
                "HasNotifierSnsTopics",
                {
                    "Sid": "PublishAlerts",
                    "Effect": "Allow",
                    "Action": ["sns:Publish"],
                    "Resource": ref("NotifierSnsTopicArns"),
                },
                NO_VALUE,
            )
        )
    task_role: dict[str, Any] = {
        "Type": "AWS::IAM::Role",
        "Properties": {
            "Description": f"What the {svc.name} service may do (derived from shared/topology.py)",
            "AssumeRolePolicyDocument": _assume("ecs-tasks.amazonaws.com"),
        },
    }
    if statements:
        task_role["Properties"]["Policies"] = [
            {"PolicyName": svc.name, "PolicyDocument": {"Version": "2012-10-17", "Statement": statements}}
        ]
    resources[f"{title}TaskRole"] = task_role
    resources[f"{title}ExecutionRole"] = execution_role(title, svc.name, [s["ValueFrom"] for s in secrets])
    resources[f"{title}SecurityGroup"] = {
        "Type": "AWS::EC2::SecurityGroup",
        "Properties": {
            "GroupDescription": f"{svc.name} tasks",
            "VpcId": ref("VpcId"),
            "SecurityGroupIngress": (
                [
                    {
                        "Description": "load balancer",
                        "IpProtocol": "tcp",
                        "FromPort": svc.port,
                        "ToPort": svc.port,
                        "SourceSecurityGroupId": ref("LoadBalancerSecurityGroup"),
                    }
                ]
                if svc.public
                else NO_VALUE
            ),
        },
    }
    container: dict[str, Any] = {
        "Name": svc.name,
        "Image": _image(svc.name),
        "Essential": True,
        "PortMappings": [{"ContainerPort": svc.port, "Protocol": "tcp"}],
        "Environment": environment,
        "HealthCheck": _health_check(svc.name),
        "LogConfiguration": _log_configuration(title, svc.name),
        # SIGTERM drains in-flight messages; give it up to the queue's visibility timeout.
        "StopTimeout": 60,
    }
    if secrets:
        container["Secrets"] = secrets
    resources[f"{title}TaskDefinition"] = {
        "Type": "AWS::ECS::TaskDefinition",
        "Properties": {
            "Family": sub(f"${{AWS::StackName}}-{svc.name}"),
            "RequiresCompatibilities": ["FARGATE"],
            "NetworkMode": "awsvpc",
            "Cpu": ref(f"{title}Cpu"),
            "Memory": ref(f"{title}Memory"),
            "RuntimePlatform": {"CpuArchitecture": "X86_64", "OperatingSystemFamily": "LINUX"},
            "ExecutionRoleArn": get_att(f"{title}ExecutionRole", "Arn"),
            "TaskRoleArn": get_att(f"{title}TaskRole", "Arn"),
            "ContainerDefinitions": [container],
        },
    }
    security_groups = [ref(f"{title}SecurityGroup")]
    service: dict[str, Any] = {
        "Type": "AWS::ECS::Service",
        "DependsOn": ["MigrationsApplied"] + ([f"{title}Listener"] if svc.public else []),
        "Properties": {
            "Cluster": ref("Cluster"),
            "LaunchType": "FARGATE",
            "TaskDefinition": ref(f"{title}TaskDefinition"),
            "DesiredCount": ref(f"{title}MinTasks"),
            "DeploymentConfiguration": {
                "MinimumHealthyPercent": 100,
                "MaximumPercent": 200,
                "DeploymentCircuitBreaker": {"Enable": True, "Rollback": True},
            },
            "NetworkConfiguration": {
                "AwsvpcConfiguration": {
                    "AssignPublicIp": "DISABLED",
                    "Subnets": ref("PrivateSubnetIds"),
                    "SecurityGroups": security_groups,
                }
            },
            "PropagateTags": "SERVICE",
        },
    }
    if svc.public:
        service["Properties"]["HealthCheckGracePeriodSeconds"] = 60
        service["Properties"]["LoadBalancers"] = [
            {"ContainerName": svc.name, "ContainerPort": svc.port, "TargetGroupArn": ref(f"{title}TargetGroup")}
        ]
        resources[f"{title}TargetGroup"] = {
            "Type": "AWS::ElasticLoadBalancingV2::TargetGroup",
            "Properties": {
                "VpcId": ref("VpcId"),
                "TargetType": "ip",
                "Protocol": "HTTP",
                "Port": svc.port,
                "HealthCheckPath": "/healthz",
                "HealthCheckIntervalSeconds": 15,
                "HealthyThresholdCount": 2,
                "UnhealthyThresholdCount": 3,
                "TargetGroupAttributes": [{"Key": "deregistration_delay.timeout_seconds", "Value": "30"}],
            },
        }
        resources[f"{title}Listener"] = {
            "Type": "AWS::ElasticLoadBalancingV2::Listener",
            "Properties": {
                "LoadBalancerArn": ref("LoadBalancer"),
                "Port": if_("HasCertificate", LISTENER_PORTS[svc.name][0], LISTENER_PORTS[svc.name][1]),
                "Protocol": if_("HasCertificate", "HTTPS", "HTTP"),
                "Certificates": if_("HasCertificate", [{"CertificateArn": ref("CertificateArn")}], NO_VALUE),
                "SslPolicy": if_("HasCertificate", "ELBSecurityPolicy-TLS13-1-2-2021-06", NO_VALUE),
                "DefaultActions": [{"Type": "forward", "TargetGroupArn": ref(f"{title}TargetGroup")}],
            },
        }
    resources[f"{title}Service"] = service
    resources.update(scaling_resources(svc, topology))
    return resources


# HTTPS port with a certificate, HTTP port without one.
LISTENER_PORTS = {"ingest": (443, 80), "reporting": (8443, 8083)}


def scaling_resources(svc: ServiceDeploy, topology: Topology) -> dict[str, Any]:
    title = svc.title
    resources: dict[str, Any] = {
        f"{title}ScalableTarget": {
            "Type": "AWS::ApplicationAutoScaling::ScalableTarget",
            "Properties": {
                "ServiceNamespace": "ecs",
                "ScalableDimension": "ecs:service:DesiredCount",
                "ResourceId": sub(f"service/${{Cluster}}/${{{title}Service.Name}}"),
                "MinCapacity": ref(f"{title}MinTasks"),
                "MaxCapacity": ref(f"{title}MaxTasks"),
            },
        }
    }
    policy: dict[str, Any] = {"ScaleInCooldown": 120, "ScaleOutCooldown": 60}
    if svc.scaling == "queue-depth":
        consumed = [spec for spec in topology.queues if svc.name in spec.consumers]
        metrics: list[dict[str, Any]] = [
            {
                "Id": f"q{index}",
                "Label": spec.name,
                "ReturnData": False,
                "MetricStat": {
                    "Metric": {
                        "Namespace": "AWS/SQS",
                        "MetricName": "ApproximateNumberOfMessagesVisible",
                        "Dimensions": [{"Name": "QueueName", "Value": get_att(queue_id(spec.name), "QueueName")}],
                    },
                    "Stat": "Sum",
                },
            }
            for index, spec in enumerate(consumed)
        ]
        metrics.append(
            {
                "Id": "tasks",
                "Label": "running tasks",
                "ReturnData": False,
                "MetricStat": {
                    "Metric": {
                        "Namespace": "ECS/ContainerInsights",
                        "MetricName": "RunningTaskCount",
                        "Dimensions": [
                            {"Name": "ClusterName", "Value": ref("Cluster")},
                            {"Name": "ServiceName", "Value": get_att(f"{title}Service", "Name")},
                        ],
                    },
                    "Stat": "Average",
                },
            }
        )
        backlog = " + ".join(f"q{index}" for index in range(len(consumed)))
        metrics.append(
            {
                "Id": "backlog_per_task",
                "Label": "visible messages per running task",
                "Expression": f"({backlog}) / tasks",
                "ReturnData": True,
            }
        )
        policy["TargetValue"] = ref(f"{title}MessagesPerTask")
        policy["CustomizedMetricSpecification"] = {"Metrics": metrics}
    elif svc.scaling == "request-count":
        policy["TargetValue"] = ref(f"{title}RequestsPerTarget")
        policy["PredefinedMetricSpecification"] = {
            "PredefinedMetricType": "ALBRequestCountPerTarget",
            "ResourceLabel": sub(f"${{LoadBalancer.LoadBalancerFullName}}/${{{title}TargetGroup.TargetGroupFullName}}"),
        }
    else:
        policy["TargetValue"] = ref(f"{title}CpuTarget")
        policy["PredefinedMetricSpecification"] = {"PredefinedMetricType": "ECSServiceAverageCPUUtilization"}
    resources[f"{title}ScalingPolicy"] = {
        "Type": "AWS::ApplicationAutoScaling::ScalingPolicy",
        "Properties": {
            "PolicyName": sub(f"${{AWS::StackName}}-{svc.name}-{svc.scaling}"),
            "PolicyType": "TargetTrackingScaling",
            "ScalingTargetId": ref(f"{title}ScalableTarget"),
            "TargetTrackingScalingPolicyConfiguration": policy,
        },
    }
    return resources


def migration_resources() -> dict[str, Any]:
    """The one-off task that applies every service's Alembic branch, and its run before the services roll."""
    resources: dict[str, Any] = {
        "MigrateLogGroup": _log_group("migrate"),
        "MigrateExecutionRole": execution_role("Migrate", "ingest", [ref("DatabaseUrlSecret")]),
        "MigrateTaskRole": {
            "Type": "AWS::IAM::Role",
            "Properties": {
                "Description": "The migration task needs no AWS API at all",
                "AssumeRolePolicyDocument": _assume("ecs-tasks.amazonaws.com"),
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
                        "Image": _image("ingest"),
                        "Essential": True,
                        "Command": MIGRATE_COMMAND,
                        "Environment": [{"Name": "PPE_LOG_FORMAT", "Value": "json"}],
                        "Secrets": [{"Name": "DATABASE_URL", "ValueFrom": ref("DatabaseUrlSecret")}],
                        "LogConfiguration": _log_configuration("Migrate", "migrate"),
                    }
                ],
            },
        },
    }
    resources.update(migration_runner_resources())
    return resources


def migration_runner_resources() -> dict[str, Any]:
    code = (Path(__file__).resolve().parent / "migration_runner.py").read_text()
    return {
        "MigrationRunnerRole": {
            "Type": "AWS::IAM::Role",
            "Properties": {
                "Description": "Runs the migration task and waits for it (custom resource before the services roll)",
                "AssumeRolePolicyDocument": _assume("lambda.amazonaws.com"),
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


def parameters(services: tuple[ServiceDeploy, ...]) -> dict[str, Any]:
    params: dict[str, Any] = {
        "VpcId": {"Type": "AWS::EC2::VPC::Id", "Description": "VPC to run in."},
        "PrivateSubnetIds": {
            "Type": "List<AWS::EC2::Subnet::Id>",
            "Description": (
                "Private subnets (with a NAT route for AWS APIs and webhooks) for tasks and the database; "
                "two AZs at least."
            ),
        },
        "PublicSubnetIds": {
            "Type": "List<AWS::EC2::Subnet::Id>",
            "Description": "Public subnets for the load balancer; two AZs at least.",
        },
        "IngressCidr": {
            "Type": "String",
            "Default": "0.0.0.0/0",
            "AllowedPattern": r"^\d{1,3}(\.\d{1,3}){3}/\d{1,2}$",
            "Description": "Who may reach the load balancer (cameras and analysts).",
        },
        "CertificateArn": {
            "Type": "String",
            "Default": "",
            "Description": (
                "ACM certificate for HTTPS listeners (443 ingest, 8443 reporting). Empty: HTTP on 80 / 8083."
            ),
        },
        "EcrRepositoryPrefix": {
            "Type": "String",
            "Default": "ppe",
            "Description": (
                "Repositories are <prefix>/ingest, /detector, /notifier, /reporting (deploy/cloudformation/ecr.yaml)."
            ),
        },
        "ImageTag": {
            "Type": "String",
            "MinLength": 1,
            "Description": "Image tag to run; a new tag re-runs migrations first.",
        },
        "QueuePrefix": {
            "Type": "String",
            "Default": "ppe-",
            "AllowedPattern": "^[A-Za-z0-9_-]{0,40}$",
            "Description": "Prefix of every queue name (PPE_QUEUE_PREFIX), so deployments can share an account.",
        },
        "LogLevel": {"Type": "String", "Default": "INFO", "AllowedValues": ["DEBUG", "INFO", "WARNING", "ERROR"]},
        "LogRetentionDays": {"Type": "Number", "Default": 30, "AllowedValues": [7, 14, 30, 60, 90, 180, 365]},
        "AlarmTopicArn": {
            "Type": "String",
            "Default": "",
            "Description": "SNS topic for dead-letter alarms (optional).",
        },
        "NotifierSnsTopicArns": {
            "Type": "CommaDelimitedList",
            "Default": "",
            "Description": "SNS topics the notifier's sns channels may publish to (optional).",
        },
        "DatabaseInstanceClass": {"Type": "String", "Default": "db.t4g.medium"},
        "DatabaseEngineVersion": {"Type": "String", "Default": "16.10", "Description": "PostgreSQL version."},
        "DatabaseAllocatedStorage": {"Type": "Number", "Default": 50, "MinValue": 20, "Description": "GiB."},
        "DatabaseMultiAz": {"Type": "String", "Default": "true", "AllowedValues": ["true", "false"]},
        "DatabaseDeletionProtection": {"Type": "String", "Default": "true", "AllowedValues": ["true", "false"]},
    }
    for svc in services:
        params[f"{svc.title}Cpu"] = {
            "Type": "String",
            "Default": str(svc.cpu),
            "AllowedValues": ["256", "512", "1024", "2048", "4096"],
            "Description": f"Fargate CPU units per {svc.name} task.",
        }
        params[f"{svc.title}Memory"] = {
            "Type": "String",
            "Default": str(svc.memory),
            "Description": f"MiB per {svc.name} task (must be a valid Fargate pair with the CPU).",
        }
        params[f"{svc.title}MinTasks"] = {"Type": "Number", "Default": 2 if svc.public else 1, "MinValue": 1}
        params[f"{svc.title}MaxTasks"] = {"Type": "Number", "Default": 10, "MinValue": 1}
        if svc.scaling == "queue-depth":
            params[f"{svc.title}MessagesPerTask"] = {
                "Type": "Number",
                "Default": 20 if svc.name == "detector" else 50,
                "MinValue": 1,
                "Description": f"Target visible messages per {svc.name} task (queue-depth target tracking).",
            }
        elif svc.scaling == "request-count":
            params[f"{svc.title}RequestsPerTarget"] = {
                "Type": "Number",
                "Default": 1200,
                "MinValue": 1,
                "Description": f"Target ALB requests per minute per {svc.name} task.",
            }
        else:
            params[f"{svc.title}CpuTarget"] = {"Type": "Number", "Default": 60, "MinValue": 10, "MaxValue": 90}
    params.update(required_setting_parameters(services))
    for svc in services:
        settings, _ = catalog.service_env_settings(svc.name)
        for setting in settings:
            if (svc.name, setting.field) in OPERATOR_SETTINGS:
                params[parameter_id(svc, setting.field)] = OPERATOR_SETTINGS[(svc.name, setting.field)]
    return params


def platform_template(
    topology: Topology = TOPOLOGY, services: tuple[ServiceDeploy, ...] = catalog.SERVICES
) -> dict[str, Any]:
    resources: dict[str, Any] = {}
    resources.update(queue_resources(topology))
    resources.update(bucket_resources(topology))
    resources.update(database_resources(services))
    resources.update(app_secret_resources(services))
    resources["Cluster"] = {
        "Type": "AWS::ECS::Cluster",
        "Properties": {
            # RunningTaskCount, the divisor of the queue-depth scaling metric, comes from Container Insights.
            "ClusterSettings": [{"Name": "containerInsights", "Value": "enabled"}],
        },
    }
    public = [svc for svc in services if svc.public]
    resources["LoadBalancerSecurityGroup"] = {
        "Type": "AWS::EC2::SecurityGroup",
        "Properties": {
            "GroupDescription": "PPE load balancer",
            "VpcId": ref("VpcId"),
            "SecurityGroupIngress": [
                {
                    "Description": f"{svc.name} listener",
                    "IpProtocol": "tcp",
                    "FromPort": if_("HasCertificate", LISTENER_PORTS[svc.name][0], LISTENER_PORTS[svc.name][1]),
                    "ToPort": if_("HasCertificate", LISTENER_PORTS[svc.name][0], LISTENER_PORTS[svc.name][1]),
                    "CidrIp": ref("IngressCidr"),
                }
                for svc in public
            ],
        },
    }
    resources["LoadBalancer"] = {
        "Type": "AWS::ElasticLoadBalancingV2::LoadBalancer",
        "Properties": {
            "Type": "application",
            "Scheme": "internet-facing",
            "Subnets": ref("PublicSubnetIds"),
            "SecurityGroups": [ref("LoadBalancerSecurityGroup")],
            "LoadBalancerAttributes": [
                {"Key": "routing.http.drop_invalid_header_fields.enabled", "Value": "true"},
                {"Key": "idle_timeout.timeout_seconds", "Value": "60"},
            ],
        },
    }
    for svc in services:
        resources.update(service_resources(svc, topology))
    resources.update(migration_resources())
    outputs: dict[str, Any] = {
        "LoadBalancerDns": {
            "Value": get_att("LoadBalancer", "DNSName"),
            "Description": "Point cameras and analysts here.",
        },
        "ClusterName": {"Value": ref("Cluster")},
        "MigrateTaskDefinition": {"Value": ref("MigrateTaskDefinition"), "Description": "Run by hand: docs/deploy.md."},
        "MigrateSecurityGroup": {"Value": ref("MigrateSecurityGroup")},
        "FramesBucketName": {"Value": ref(bucket_id("frames_bucket"))},
        "DatabaseEndpoint": {"Value": get_att("Database", "Endpoint.Address")},
        "DatabaseUrlSecretArn": {"Value": ref("DatabaseUrlSecret")},
    }
    for svc in services:
        outputs[f"{svc.title}ServiceName"] = {"Value": get_att(f"{svc.title}Service", "Name")}
    for spec in topology.queues:
        outputs[f"{queue_id(spec.name)}Url"] = {"Value": ref(queue_id(spec.name))}
        outputs[f"{dlq_id(spec.name)}Url"] = {"Value": ref(dlq_id(spec.name))}
    return {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": "PPE compliance platform on ECS Fargate: SQS, S3, RDS PostgreSQL, one autoscaled service "
        "per component. Generated by `python -m deploy.cfn render` from shared/topology.py; do not edit.",
        "Parameters": parameters(services),
        "Conditions": {
            "HasCertificate": {"Fn::Not": [{"Fn::Equals": [ref("CertificateArn"), ""]}]},
            "HasAlarmTopic": {"Fn::Not": [{"Fn::Equals": [ref("AlarmTopicArn"), ""]}]},
            "HasNotifierSnsTopics": {
                "Fn::Not": [{"Fn::Equals": [{"Fn::Join": ["", ref("NotifierSnsTopicArns")]}, ""]}]
            },
        },
        "Resources": resources,
        "Outputs": outputs,
    }


def ecr_template(services: tuple[ServiceDeploy, ...] = catalog.SERVICES) -> dict[str, Any]:
    resources: dict[str, Any] = {}
    outputs: dict[str, Any] = {}
    lifecycle = {
        "rules": [
            {
                "rulePriority": 1,
                "description": "keep the last 30 images (rollback targets)",
                "selection": {"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": 30},
                "action": {"type": "expire"},
            }
        ]
    }
    for svc in services:
        rid = f"{svc.title}Repository"
        resources[rid] = {
            "Type": "AWS::ECR::Repository",
            "DeletionPolicy": "Retain",
            "UpdateReplacePolicy": "Retain",
            "Properties": {
                "RepositoryName": sub(f"${{RepositoryPrefix}}/{svc.name}"),
                "ImageTagMutability": "IMMUTABLE",
                "ImageScanningConfiguration": {"ScanOnPush": True},
                "EncryptionConfiguration": {"EncryptionType": "AES256"},
                "LifecyclePolicy": {"LifecyclePolicyText": json.dumps(lifecycle, indent=2)},
            },
        }
        outputs[f"{rid}Uri"] = {"Value": get_att(rid, "RepositoryUri")}
    return {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": "Image repositories of the PPE platform (deploy before platform.yaml and push the images). "
        "Generated by `python -m deploy.cfn render`; do not edit.",
        "Parameters": {
            "RepositoryPrefix": {
                "Type": "String",
                "Default": "ppe",
                "AllowedPattern": "^[a-z0-9][a-z0-9._/-]{0,100}$",
                "Description": "Must equal platform.yaml's EcrRepositoryPrefix.",
            }
        },
        "Resources": resources,
        "Outputs": outputs,
    }


class _Dumper(yaml.SafeDumper):
    def ignore_aliases(self, data: Any) -> bool:
        return True


def _str_presenter(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    if "\n" in value:
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|")
    return dumper.represent_scalar("tag:yaml.org,2002:str", value)


_Dumper.add_representer(str, _str_presenter)


def to_yaml(template: dict[str, Any]) -> str:
    header = (
        "# Generated by `python -m deploy.cfn render` from shared/topology.py and services/*/config.py. Do not edit.\n"
    )
    return header + yaml.dump(template, Dumper=_Dumper, sort_keys=False, width=120, allow_unicode=True)


def render_all() -> dict[str, str]:
    return {"platform.yaml": to_yaml(platform_template()), "ecr.yaml": to_yaml(ecr_template())}


def check_resourceless(template: dict[str, Any]) -> None:
    """Guard for the generator itself: "*" only for actions that take no resource."""
    for name, resource in template["Resources"].items():
        if resource["Type"] != "AWS::IAM::Role":
            continue
        for policy in resource["Properties"].get("Policies", []):
            for statement in policy["PolicyDocument"]["Statement"]:
                if "Fn::If" in statement:
                    statement = statement["Fn::If"][1]
                if statement.get("Resource") == "*" and not set(statement["Action"]) <= RESOURCELESS_ACTIONS:
                    raise ValueError(f"{name}: {statement['Sid']} grants {statement['Action']} on every resource")


def main(argv: list[str]) -> int:
    command = argv[0] if argv else "render"
    rendered = render_all()
    check_resourceless(platform_template())
    provisional = [svc.name for svc in catalog.SERVICES if catalog.service_env_settings(svc.name)[1]]
    if command == "render":
        OUT_DIR.mkdir(parents=True, exist_ok=True)
        for name, text in rendered.items():
            (OUT_DIR / name).write_text(text)
            print(f"wrote {OUT_DIR / name}")
        if provisional:
            print(f"note: no config.py yet for {provisional}; their environment is the shared settings only")
        return 0
    if command == "check":
        stale = [
            name
            for name, text in rendered.items()
            if not (OUT_DIR / name).is_file() or (OUT_DIR / name).read_text() != text
        ]
        if stale:
            print(f"stale templates {stale}: run `python -m deploy.cfn render` and commit the result", file=sys.stderr)
            return 1
        print("templates are up to date")
        return 0
    print("usage: python -m deploy.cfn [render|check]", file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
