"""Ask S3 to expire frames after the configured number of days (the frames bucket's lifecycle rule).

Reporting is the one owner of this rule (issue 19 row 8): the topology's provisioning and the CloudFormation
bucket declare none, ingest sets none, and only reporting's task role may read and write the configuration.
"""

from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from shared.logging import get_logger

log = get_logger(__name__)

RULE_ID = "expire-frames"


class LifecycleError(Exception):
    """S3 refused or could not be reached; the next retention run asks again."""


async def request_frame_expiry(s3: Any, *, bucket: str, days: int) -> None:
    """Set (idempotently) the bucket's `expire-frames` rule so frames older than `days` are deleted by S3.

    Other lifecycle rules on the bucket are kept: S3 replaces the whole configuration on every put.
    """
    rule = {
        "ID": RULE_ID,
        "Status": "Enabled",
        "Filter": {"Prefix": ""},  # frames, alert copies and detector records alike
        "Expiration": {"Days": days},
        "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1},
    }
    try:
        try:
            current = (await s3.get_bucket_lifecycle_configuration(Bucket=bucket)).get("Rules", [])
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "NoSuchLifecycleConfiguration":
                raise
            current = []
        others = [existing for existing in current if existing.get("ID") != RULE_ID]
        await s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": [*others, rule]})
    except (ClientError, BotoCoreError) as exc:
        raise LifecycleError(f"could not set the lifecycle of s3://{bucket} to {days} days: {exc}") from exc
    log.info("frames lifecycle requested", bucket=bucket, expire_days=days, other_rules=len(others))
