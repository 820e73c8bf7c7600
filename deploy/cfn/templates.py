"""The two templates: parameters, conditions, resources and outputs assembled from the parts."""

import json
from typing import Any

from deploy import catalog
from deploy.catalog import ServiceDeploy
from deploy.cfn.database import app_secret_resources, database_resources
from deploy.cfn.intrinsics import (
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
from deploy.cfn.messaging import bucket_resources, queue_resources
from deploy.cfn.migrations import migration_resources
from deploy.cfn.services import LISTENER_PORTS, OPERATOR_SETTINGS, required_setting_parameters, service_resources
from deploy.cfn.web import web_resources
from shared.topology import TOPOLOGY, Topology


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
            "AllowedPattern": r"^(arn:aws[a-z-]*:acm:[a-z0-9-]+:\d{12}:certificate/[A-Za-z0-9-]+)?$",
            "Description": (
                "ACM certificate for the HTTPS listeners (443 ingest, 8443 reporting). Required unless "
                "AllowInsecureHttp is true (see the CertificateRequired rule)."
            ),
        },
        "AllowInsecureHttp": {
            "Type": "String",
            "Default": "false",
            "AllowedValues": ["false", "true"],
            "Description": (
                "true: without a certificate, serve plain HTTP on 80 / 8083 (camera keys and tokens in clear "
                "text; for a test stack only)."
            ),
        },
        "DetectorApiAccessKeyId": {
            "Type": "String",
            "Default": "PPEDETECTORCLIENT",
            "AllowedPattern": "^[A-Za-z0-9]{8,128}$",
            "Description": (
                "Access key id of the detector's Rekognition-compatible API; its secret is generated and the "
                "pair is in the DetectorApiKeysSecret output (DETECTOR_API_KEYS)."
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
        "DatabaseEngineVersion": {
            "Type": "String",
            "Default": "16",
            "Description": "PostgreSQL major (RDS picks its current minor, then upgrades minors) or major.minor.",
        },
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
    resources.update(web_resources())
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
        "DetectorApiKeysSecret": {
            "Value": ref(secret_id("detector", "api_keys")),
            "Description": "ACCESS_KEY_ID:SECRET of the detector API (boto3 credentials of its clients).",
        },
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
        "Rules": {
            "CertificateRequired": {
                "Assertions": [
                    {
                        "Assert": {
                            "Fn::Or": [
                                {"Fn::Not": [{"Fn::Equals": [ref("CertificateArn"), ""]}]},
                                {"Fn::Equals": [ref("AllowInsecureHttp"), "true"]},
                            ]
                        },
                        "AssertDescription": (
                            "Give CertificateArn (an ACM certificate) so the load balancer serves HTTPS; plain "
                            "HTTP needs AllowInsecureHttp=true, for a test stack only."
                        ),
                    }
                ]
            }
        },
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
