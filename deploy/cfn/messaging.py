"""SQS queues, DLQs, their alarms and the frames bucket: straight from shared/topology.py."""

import json
from typing import Any

from deploy.cfn.intrinsics import (
    NO_VALUE,
    bucket_id,
    dlq_id,
    get_att,
    if_,
    logical_id,
    queue_id,
    ref,
    sub,
)
from shared.topology import MAX_MESSAGE_BYTES, QueueSpec, Topology, queue_attributes

# SQS attribute (as shared.topology.queue_attributes writes it) -> CloudFormation property and type.
QUEUE_PROPERTIES: dict[str, type] = {
    "VisibilityTimeout": int,
    "MessageRetentionPeriod": int,
    "MaximumMessageSize": int,
    "ReceiveMessageWaitTimeSeconds": int,
    "FifoQueue": bool,
    "ContentBasedDeduplication": bool,
}


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
