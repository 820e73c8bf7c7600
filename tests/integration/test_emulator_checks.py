"""devstack.emulator answers moto's FIFO and retention checks without scanning the queue: same answers as moto."""

import uuid
from typing import Any

import pytest
from botocore.exceptions import ClientError


async def fifo(sqs: Any, *, content_dedup: bool) -> str:
    name = f"emu-{uuid.uuid4().hex[:8]}.fifo"
    attributes = {"FifoQueue": "true", "ContentBasedDeduplication": str(content_dedup).lower()}
    return str((await sqs.create_queue(QueueName=name, Attributes=attributes))["QueueUrl"])


async def test_fifo_without_content_deduplication_still_requires_ids(sqs_client: Any) -> None:
    url = await fifo(sqs_client, content_dedup=False)
    with pytest.raises(ClientError) as missing_dedup:
        await sqs_client.send_message(QueueUrl=url, MessageBody="a", MessageGroupId="g")
    assert missing_dedup.value.response["Error"]["Code"] == "InvalidParameterValue"
    with pytest.raises(ClientError) as missing_group:
        await sqs_client.send_message(QueueUrl=url, MessageBody="a", MessageDeduplicationId="d")
    assert missing_group.value.response["Error"]["Code"] in ("MissingParameter", "MissingRequiredParameterException")


async def test_fifo_with_content_deduplication_dedupes_and_messages_are_received(sqs_client: Any) -> None:
    url = await fifo(sqs_client, content_dedup=True)
    for body in ("same", "same", "other"):
        await sqs_client.send_message(QueueUrl=url, MessageBody=body, MessageGroupId="g")
    received = (await sqs_client.receive_message(QueueUrl=url, MaxNumberOfMessages=10))["Messages"]
    assert [m["Body"] for m in received] == ["same", "other"]


HOSTS = [
    None,
    "moto_api",
    "instance_metadata",
    "s3.us-east-1.amazonaws.com",
    "sqs.us-east-1.amazonaws.com",
    "sns.eu-west-1.amazonaws.com",
    "rekognition.us-east-1.amazonaws.com",
    "frames.s3.amazonaws.com",
    "s3",
    "unknown.example.com",
]


def test_remembered_backend_lookup_gives_moto_s_answers(monkeypatch: pytest.MonkeyPatch) -> None:
    from moto import backends
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication
    from moto.server import create_backend_app

    from devstack.emulator import _remembered_backend_lookup

    original = DomainDispatcherApplication.get_backend_for_host
    monkeypatch.setattr(DomainDispatcherApplication, "get_backend_for_host", original)  # restored after the test
    expected = [original(DomainDispatcherApplication(create_backend_app), host) for host in HOSTS]
    assert expected[3:5] == ["s3", "sqs"]  # the lookup really distinguishes services

    _remembered_backend_lookup()
    app = DomainDispatcherApplication(create_backend_app)
    assert [app.get_backend_for_host(host) for host in HOSTS] == expected
    # a second round answers from memory: moto's module listing is not walked again
    listed = 0
    walk = backends.list_of_moto_modules

    def counting() -> Any:
        nonlocal listed
        listed += 1
        return walk()

    monkeypatch.setattr(backends, "list_of_moto_modules", counting)
    assert [app.get_backend_for_host(host) for host in HOSTS] == expected
    assert listed == 0
