"""The one declarative description of queues and buckets.

The local stack, the tests and deploy/ (CloudFormation) all read `TOPOLOGY`; nothing else names a queue.
`provision()` creates what is described (idempotently) on whatever endpoint the client points at.
"""

import json
from dataclasses import dataclass, field
from typing import Any

from shared.logging import get_logger

log = get_logger(__name__)

# SQS's own limit on AWS: set it explicitly so emulators enforce the same.
MAX_MESSAGE_BYTES = 262_144


@dataclass(frozen=True)
class QueueSpec:
    name: str  # logical name, without prefix or .fifo suffix
    description: str
    fifo: bool = False
    visibility_timeout_s: int = 60
    max_receive_count: int = 5  # deliveries before the redrive policy moves a message to the DLQ
    retention_s: int = 4 * 24 * 3600
    dlq_retention_s: int = 14 * 24 * 3600
    consumers: tuple[str, ...] = ()
    producers: tuple[str, ...] = ()

    def physical_name(self, prefix: str) -> str:
        return f"{prefix}{self.name}" + (".fifo" if self.fifo else "")

    def dlq_physical_name(self, prefix: str) -> str:
        return f"{prefix}{self.name}-dlq" + (".fifo" if self.fifo else "")


@dataclass(frozen=True)
class BucketSpec:
    name_setting: str  # which PlatformSettings field holds the bucket name
    description: str
    writers: tuple[str, ...] = ()
    readers: tuple[str, ...] = ()


@dataclass(frozen=True)
class Topology:
    queues: tuple[QueueSpec, ...]
    buckets: tuple[BucketSpec, ...]
    # message type -> logical queues that receive it (the fan-out a topic would do)
    routes: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def queue(self, name: str) -> QueueSpec:
        for spec in self.queues:
            if spec.name == name:
                return spec
        raise KeyError(f"no queue named {name!r} in the topology (known: {[q.name for q in self.queues]})")


TOPOLOGY = Topology(
    queues=(
        QueueSpec(
            name="frames-received",
            description="FrameReceived from ingest, analysed by the detector.",
            visibility_timeout_s=60,
            producers=("ingest",),
            consumers=("detector",),
        ),
        QueueSpec(
            name="frames-analyzed-notifier",
            description="FrameAnalyzed for the notifier; FIFO, grouped by camera, so tracking sees frames in order.",
            fifo=True,
            visibility_timeout_s=60,
            producers=("detector",),
            consumers=("notifier",),
        ),
        QueueSpec(
            name="frames-analyzed-reporting",
            description="FrameAnalyzed for reporting's anonymised compliance events.",
            visibility_timeout_s=60,
            producers=("detector",),
            consumers=("reporting",),
        ),
        QueueSpec(
            name="incidents-reporting",
            description="IncidentChanged from the notifier, for reporting's incident list.",
            visibility_timeout_s=60,
            producers=("notifier",),
            consumers=("reporting",),
        ),
        QueueSpec(
            name="notifier-deliveries",
            description="Alert deliveries waiting to be sent (retried with backoff, DLQ when they keep failing).",
            visibility_timeout_s=60,
            max_receive_count=8,
            producers=("notifier",),
            consumers=("notifier",),
        ),
    ),
    buckets=(
        BucketSpec(
            name_setting="frames_bucket",
            description="Frame images, keyed frames/<site>/<camera>/<yyyy>/<mm>/<dd>/<frame id>.<ext>.",
            writers=("ingest",),
            readers=("detector", "notifier", "reporting"),  # reporting: the zone editor's blurred snapshot
        ),
    ),
    routes={
        "FrameReceived": ("frames-received",),
        "FrameAnalyzed": ("frames-analyzed-notifier", "frames-analyzed-reporting"),
        "IncidentChanged": ("incidents-reporting",),
        "NotificationRequested": ("notifier-deliveries",),
    },
)


def queue_attributes(spec: QueueSpec, dlq_arn: str | None) -> dict[str, str]:
    attributes = {
        "VisibilityTimeout": str(spec.visibility_timeout_s),
        "MessageRetentionPeriod": str(spec.retention_s),
        "MaximumMessageSize": str(MAX_MESSAGE_BYTES),
        "ReceiveMessageWaitTimeSeconds": "20",
    }
    if spec.fifo:
        attributes["FifoQueue"] = "true"
        attributes["ContentBasedDeduplication"] = "false"
    if dlq_arn:
        attributes["RedrivePolicy"] = json.dumps(
            {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(spec.max_receive_count)}
        )
    return attributes


async def provision_queues(sqs: Any, *, prefix: str, topology: Topology = TOPOLOGY) -> dict[str, str]:
    """Create every queue and its DLQ (idempotent). Returns logical name -> queue URL."""
    urls: dict[str, str] = {}
    for spec in topology.queues:
        dlq_attributes = {
            "MessageRetentionPeriod": str(spec.dlq_retention_s), "MaximumMessageSize": str(MAX_MESSAGE_BYTES)
        }
        if spec.fifo:
            dlq_attributes["FifoQueue"] = "true"
        created = await sqs.create_queue(QueueName=spec.dlq_physical_name(prefix), Attributes=dlq_attributes)
        dlq_url = created["QueueUrl"]
        found = await sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])
        dlq_arn = found["Attributes"]["QueueArn"]
        url = (await sqs.create_queue(QueueName=spec.physical_name(prefix), Attributes={
            k: v for k, v in queue_attributes(spec, None).items() if k in ("FifoQueue",)
        }))["QueueUrl"]
        # create_queue refuses to change attributes of an existing queue; set them explicitly instead.
        attributes = queue_attributes(spec, dlq_arn)
        attributes.pop("FifoQueue", None)
        await sqs.set_queue_attributes(QueueUrl=url, Attributes=attributes)
        urls[spec.name] = url
        urls[f"{spec.name}-dlq"] = dlq_url
        log.info("queue provisioned", queue=spec.physical_name(prefix), dlq=spec.dlq_physical_name(prefix))
    return urls


async def provision_buckets(s3: Any, names: dict[str, str], *, region: str, topology: Topology = TOPOLOGY) -> None:
    """Create every bucket with encryption (idempotent).

    The bucket's lifecycle (expiry) is not set here: reporting's retention runs own it alone
    (REPORTING_FRAMES_RETENTION_DAYS, services/reporting/adapters/lifecycle.py), so a re-provision never
    overwrites the expiry an operator configured.
    """
    for spec in topology.buckets:
        bucket = names[spec.name_setting]
        try:
            kwargs: dict[str, Any] = {"Bucket": bucket}
            if region != "us-east-1":
                kwargs["CreateBucketConfiguration"] = {"LocationConstraint": region}
            await s3.create_bucket(**kwargs)
        except s3.exceptions.BucketAlreadyOwnedByYou:
            pass
        await s3.put_bucket_encryption(
            Bucket=bucket,
            ServerSideEncryptionConfiguration={
                "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
            },
        )
        log.info("bucket provisioned", bucket=bucket)
