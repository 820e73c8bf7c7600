"""One ECS Fargate service per component: roles, security group, task definition, load balancer entry."""

from typing import Any

from deploy import catalog
from deploy.catalog import ServiceDeploy
from deploy.cfn.database import generated_secrets, url_secret_id
from deploy.cfn.intrinsics import (
    HEALTHCHECK,
    NO_VALUE,
    bucket_id,
    dlq_id,
    get_att,
    if_,
    parameter_id,
    queue_id,
    ref,
    secret_id,
    sub,
)
from deploy.cfn.scaling import scaling_resources
from deploy.cfn.web import service_registries, web_environment, web_secrets
from deploy.iam import task_role_statements
from shared.topology import TOPOLOGY, Topology

# Optional settings an operator chooses per deployment: (service, field) -> template parameter.
OPERATOR_SETTINGS: dict[tuple[str, str], dict[str, Any]] = {
    ("detector", "ppe_engine"): {
        "Type": "String",
        "Default": "local",
        "AllowedValues": ["local", "rekognition"],
        "Description": "DETECTOR_PPE_ENGINE: the baked offline models (local) or Amazon Rekognition.",
    },
    # Reporting alone owns the frames bucket's lifecycle rule (its retention runs set it); the bucket resource
    # declares none, so a stack update never fights it.
    ("reporting", "frames_retention_days"): {
        "Type": "Number",
        "Default": 30,
        "MinValue": 1,
        "MaxValue": 3650,
        "Description": "REPORTING_FRAMES_RETENTION_DAYS: days S3 keeps frames, alert copies and detector records.",
    },
}


def operator_parameters(svc: ServiceDeploy) -> dict[str, str]:
    """env name -> parameter id, for the operator settings this service's class has."""
    settings, _ = catalog.service_env_settings(svc.name)
    return {s.env: parameter_id(svc, s.field) for s in settings if (svc.name, s.field) in OPERATOR_SETTINGS}


def container_environment(svc: ServiceDeploy) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(environment, secrets) of the service's container, from the variables its settings class reads."""
    settings, _ = catalog.service_env_settings(svc.name)
    upper = svc.name.upper()
    fixed: dict[str, Any] = {
        "AWS_REGION": ref("AWS::Region"),
        "PPE_QUEUE_PREFIX": ref("QueuePrefix"),
        "PPE_FRAMES_BUCKET": ref(bucket_id("frames_bucket")),
        "PPE_LOG_FORMAT": "json",
        "PPE_LOG_LEVEL": ref("LogLevel"),
        f"{upper}_PORT": str(svc.port),
        f"{upper}_HOST": "0.0.0.0",
        # the notifier requeues a delivery until the queue's redrive takes it: same count
        f"{upper}_DELIVERY_MAX_RECEIVES": str(TOPOLOGY.queue("notifier-deliveries").max_receive_count),
    }
    fixed.update({env: ref(param) for env, param in operator_parameters(svc).items()})
    fixed.update(web_environment(svc))
    environment: list[dict[str, Any]] = []
    secrets: list[dict[str, Any]] = []
    generated = {setting.env for setting in generated_secrets(svc)}
    for setting in settings:
        if setting.env == "DATABASE_URL":
            if svc.uses_database:
                # its own role's URL: the master user is the migration task's alone
                secrets.append({"Name": "DATABASE_URL", "ValueFrom": ref(url_secret_id(svc))})
        elif setting.env in fixed:
            environment.append({"Name": setting.env, "Value": fixed[setting.env]})
        elif setting.env in generated:
            secrets.append({"Name": setting.env, "ValueFrom": ref(secret_id(svc.name, setting.field))})
        elif setting.required:
            environment.append({"Name": setting.env, "Value": ref(parameter_id(svc, setting.field))})
    return environment, secrets + web_secrets(svc)


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


def log_group(name: str) -> dict[str, Any]:
    return {
        "Type": "AWS::Logs::LogGroup",
        "DeletionPolicy": "Delete",
        "UpdateReplacePolicy": "Delete",
        "Properties": {
            "LogGroupName": sub(f"/ppe/${{AWS::StackName}}/{name}"),
            "RetentionInDays": ref("LogRetentionDays"),
        },
    }


def assume_role_policy(service: str) -> dict[str, Any]:
    return {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}],
    }


def image_uri(name: str) -> dict[str, Any]:
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
            "AssumeRolePolicyDocument": assume_role_policy("ecs-tasks.amazonaws.com"),
            "Policies": [
                {"PolicyName": "execution", "PolicyDocument": {"Version": "2012-10-17", "Statement": statements}}
            ],
        },
    }


def health_check(name: str) -> dict[str, Any]:
    return {
        "Command": ["CMD", "python", HEALTHCHECK, name],
        "Interval": 15,
        "Timeout": 5,
        "Retries": 3,
        "StartPeriod": 60 if name == "detector" else 20,
    }


def log_configuration(title: str, stream_prefix: str) -> dict[str, Any]:
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
    resources: dict[str, Any] = {f"{title}LogGroup": log_group(svc.name)}
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
            "AssumeRolePolicyDocument": assume_role_policy("ecs-tasks.amazonaws.com"),
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
        "Image": image_uri(svc.name),
        "Essential": True,
        "PortMappings": [{"ContainerPort": svc.port, "Protocol": "tcp"}],
        "Environment": environment,
        "HealthCheck": health_check(svc.name),
        "LogConfiguration": log_configuration(title, svc.name),
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
    if (registries := service_registries(svc)) is not None:
        service["Properties"]["ServiceRegistries"] = registries
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
                "DefaultActions": [
                    forward(title) if svc.name not in PUBLIC_PATHS else NOT_ON_THE_PUBLIC_ENTRY
                ],
            },
        }
        resources.update(listener_rules(svc))
    resources[f"{title}Service"] = service
    resources.update(scaling_resources(svc, topology))
    return resources


# The public load balancer keeps admin routes (and metrics, readiness) off the internet. A service listed in
# PUBLIC_PATHS gets only those paths forwarded; one listed in ADMIN_ROUTES gets everything but those.
# Admins reach the full API inside the VPC (docs/deploy.md, "Admin routes").
PUBLIC_PATHS: dict[str, tuple[str, ...]] = {
    "ingest": ("/v1/frames", "/v1/frames/*", "/v1/cameras/me", "/healthz"),
}
# (path patterns, methods or () for every method) refused on the public listener
ADMIN_ROUTES: dict[str, tuple[tuple[tuple[str, ...], tuple[str, ...]], ...]] = {
    "reporting": (
        (("/api/v1/retention/*", "/metrics", "/readyz"), ()),
        (("/api/v1/sites/*",), ("PUT", "POST", "PATCH", "DELETE")),
        (("/api/v1/cameras/*",), ("PUT", "POST", "PATCH", "DELETE")),  # the zone editor's writes
        (("/api/v1/notifications/*",), ("PUT", "POST", "PATCH", "DELETE")),  # rule and channel changes
    ),
}
NOT_ON_THE_PUBLIC_ENTRY = {
    "Type": "fixed-response",
    "FixedResponseConfig": {
        "StatusCode": "404",
        "ContentType": "application/json",
        "MessageBody": '{"detail": "not served on the public load balancer; admin routes answer inside the VPC"}',
    },
}


def forward(title: str) -> dict[str, Any]:
    return {"Type": "forward", "TargetGroupArn": ref(f"{title}TargetGroup")}


def listener_rules(svc: ServiceDeploy) -> dict[str, Any]:
    title = svc.title
    rules: list[tuple[list[dict[str, Any]], dict[str, Any]]] = []
    if svc.name in PUBLIC_PATHS:
        allowed = {"Field": "path-pattern", "PathPatternConfig": {"Values": list(PUBLIC_PATHS[svc.name])}}
        rules.append(([allowed], forward(title)))
    for paths, methods in ADMIN_ROUTES.get(svc.name, ()):
        conditions: list[dict[str, Any]] = [{"Field": "path-pattern", "PathPatternConfig": {"Values": list(paths)}}]
        if methods:
            conditions.append({"Field": "http-request-method", "HttpRequestMethodConfig": {"Values": list(methods)}})
        rules.append((conditions, NOT_ON_THE_PUBLIC_ENTRY))
    return {
        f"{title}ListenerRule{index}": {
            "Type": "AWS::ElasticLoadBalancingV2::ListenerRule",
            "Properties": {
                "ListenerArn": ref(f"{title}Listener"),
                "Priority": index,
                "Conditions": conditions,
                "Actions": [action],
            },
        }
        for index, (conditions, action) in enumerate(rules, start=1)
    }


# HTTPS port with a certificate, HTTP port without one.
LISTENER_PORTS = {"ingest": (443, 80), "reporting": (8443, 8083)}
