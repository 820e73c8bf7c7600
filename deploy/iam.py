"""Least-privilege task-role statements, derived from who produces and consumes what in the topology.

A producer of a queue may send to it; a consumer may receive, delete and extend visibility on it, and
send to its dead-letter queue (malformed messages go there directly). Bucket writers put frames,
readers get them. Nothing else is granted, and nothing that writes uses a wildcard resource.
"""

from collections.abc import Callable
from typing import Any

from shared.topology import TOPOLOGY, Topology

Ref = Any  # a CloudFormation value: a plain string or an intrinsic function dict

# GetQueueAttributes: readiness checks and backlog gauges read the queue's attributes.
SEND_ACTIONS = ["sqs:GetQueueAttributes", "sqs:GetQueueUrl", "sqs:SendMessage"]
CONSUME_ACTIONS = [
    "sqs:ChangeMessageVisibility",
    "sqs:DeleteMessage",
    "sqs:GetQueueAttributes",
    "sqs:GetQueueUrl",
    "sqs:ReceiveMessage",
]
# Actions that take no resource-level permission in IAM, so their Resource must be "*"; all read-only.
RESOURCELESS_ACTIONS = frozenset(
    {
        "rekognition:DetectProtectiveEquipment",  # no resource type in the IAM reference
        "rekognition:DetectCustomLabels",  # project-version ARNs are the operator's; images come by bytes or S3
        "ecr:GetAuthorizationToken",
    }
)

EXTRA_STATEMENTS: dict[str, list[dict[str, Any]]] = {
    "detector": [
        {
            "Sid": "AnalyseWithRekognition",
            "Effect": "Allow",
            "Action": ["rekognition:DetectCustomLabels", "rekognition:DetectProtectiveEquipment"],
            "Resource": "*",
        }
    ],
}


def _sid(*words: str) -> str:
    return "".join(part.capitalize() for word in words for part in word.replace("_", "-").split("-"))


def task_role_statements(
    service: str,
    *,
    queue_arn: Callable[[str], Ref],
    dlq_arn: Callable[[str], Ref],
    bucket_arn: Callable[[str], Ref],
    records_prefix: str | None = None,
    sets_bucket_lifecycle: bool = False,
    topology: Topology = TOPOLOGY,
) -> list[dict[str, Any]]:
    """IAM statements for one service's task role. `bucket_arn(name_setting)` gives the bucket's ARN.

    `records_prefix`: a key prefix of the frames bucket the service reads and writes its own records under.
    `sets_bucket_lifecycle`: the service sets the frames bucket's expiry (reporting's retention runs).
    """
    statements: list[dict[str, Any]] = []
    for spec in topology.queues:
        if service in spec.producers:
            statements.append(
                {
                    "Sid": _sid("send", spec.name),
                    "Effect": "Allow",
                    "Action": SEND_ACTIONS,
                    "Resource": queue_arn(spec.name),
                }
            )
        if service in spec.consumers:
            statements.append(
                {
                    "Sid": _sid("consume", spec.name),
                    "Effect": "Allow",
                    "Action": CONSUME_ACTIONS,
                    "Resource": queue_arn(spec.name),
                }
            )
            statements.append(
                {
                    "Sid": _sid("dead-letter", spec.name),
                    "Effect": "Allow",
                    "Action": SEND_ACTIONS,
                    "Resource": dlq_arn(spec.name),
                }
            )
    for bucket in topology.buckets:
        objects = {"Fn::Sub": ["${Bucket}/frames/*", {"Bucket": bucket_arn(bucket.name_setting)}]}
        if service in bucket.writers:
            statements.append(
                {
                    "Sid": _sid("write", bucket.name_setting),
                    "Effect": "Allow",
                    "Action": ["s3:PutObject"],
                    "Resource": objects,
                }
            )
        if service in bucket.readers:
            statements.append(
                {
                    "Sid": _sid("read", bucket.name_setting),
                    "Effect": "Allow",
                    "Action": ["s3:GetObject"],
                    "Resource": objects,
                }
            )
        if records_prefix is not None and bucket.name_setting == "frames_bucket":
            statements.append(
                {
                    "Sid": _sid("own-records"),
                    "Effect": "Allow",
                    "Action": ["s3:GetObject", "s3:PutObject"],
                    "Resource": {
                        "Fn::Sub": [f"${{Bucket}}/{records_prefix}*", {"Bucket": bucket_arn(bucket.name_setting)}]
                    },
                }
            )
        if sets_bucket_lifecycle and bucket.name_setting == "frames_bucket":
            statements.append(
                {
                    "Sid": _sid("set-expiry", bucket.name_setting),
                    "Effect": "Allow",
                    # Get first: S3 replaces the whole configuration, so other rules are read and kept.
                    "Action": ["s3:GetLifecycleConfiguration", "s3:PutLifecycleConfiguration"],
                    "Resource": bucket_arn(bucket.name_setting),
                }
            )
        if service in bucket.writers or service in bucket.readers or records_prefix is not None:
            # HeadBucket (readiness) needs ListBucket; it also turns a missing key into 404 instead of 403.
            statements.append(
                {
                    "Sid": _sid("list", bucket.name_setting),
                    "Effect": "Allow",
                    "Action": ["s3:ListBucket"],
                    "Resource": bucket_arn(bucket.name_setting),
                }
            )
    statements.extend(EXTRA_STATEMENTS.get(service, []))
    return statements
