"""The detector process as `make run` starts it: its Rekognition-compatible API answers only signed calls.

Unsigned, mis-signed, unknown-key, tampered and stale calls get the AWS error types an SDK knows; boto3 with a
DETECTOR_API_KEYS pair works unchanged; an oversized body is refused while it arrives; the port is loopback only.
"""

import asyncio
import base64
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import botocore.auth
import httpx
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from shared.config import PlatformSettings
from tests.conftest import REPO_ROOT, free_port
from tests.integration.detector.conftest import (
    API_ACCESS_KEY,
    API_KEYS,
    API_SECRET_KEY,
    ppe_answer,
    rekognition_client,
)
from tests.integration.detector.fake_rekognition import FakeRekognition
from tests.integration.detector.test_main_process import wait_ready
from tests.support.images import photo_jpeg

TARGET = "RekognitionService.DetectProtectiveEquipment"


@pytest.fixture
async def detector(
    platform_settings: PlatformSettings, s3_client: Any, fake_rekognition: FakeRekognition
) -> AsyncIterator[tuple[str, int]]:
    """`python -m services.detector.main`, API only, DETECTOR_HOST unset (the default bind)."""
    await s3_client.create_bucket(Bucket=platform_settings.frames_bucket)
    fake_rekognition.defaults["DetectProtectiveEquipment"] = ppe_answer()
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if k != "DETECTOR_HOST"},
        "PPE_LOG_FORMAT": "json",
        "DETECTOR_PORT": str(port),
        "DETECTOR_CONSUME": "false",
        "DETECTOR_PPE_ENGINE": "rekognition",
        "DETECTOR_REKOGNITION_ENDPOINT_URL": fake_rekognition.url,
        "DETECTOR_CUSTOM_LABEL_MODELS": "{}",
        "DETECTOR_CUSTOM_LABEL_SITES": "{}",
        "DETECTOR_API_KEYS": API_KEYS,
        "DETECTOR_API_S3_OBJECTS": json.dumps([f"{platform_settings.frames_bucket}/uploads/"]),
    }
    process = await asyncio.to_thread(
        subprocess.Popen, [sys.executable, "-m", "services.detector.main"], env=env, cwd=REPO_ROOT
    )
    try:
        await wait_ready(f"http://127.0.0.1:{port}", process)
        yield f"http://127.0.0.1:{port}", port
    finally:
        process.terminate()
        await asyncio.to_thread(process.wait, 30)


@pytest.fixture
def image() -> bytes:
    return photo_jpeg()


def signed_request(url: str, body: bytes, *, secret: str = API_SECRET_KEY, access_key: str = API_ACCESS_KEY
                   ) -> AWSRequest:
    """A request signed the way boto3 signs it (botocore's signer), to send with httpx and tamper with."""
    request = AWSRequest(
        method="POST",
        url=f"{url}/",
        data=body,
        headers={"X-Amz-Target": TARGET, "Content-Type": "application/x-amz-json-1.1"},
    )
    SigV4Auth(Credentials(access_key, secret), "rekognition", "us-east-1").add_auth(request)
    return request


def post(url: str, request: AWSRequest, *, body: bytes | None = None) -> httpx.Response:
    headers = {name: value for name, value in request.headers.items()}
    return httpx.post(f"{url}/", headers=headers, content=request.body if body is None else body, timeout=30)


def assert_aws_error(response: httpx.Response, aws_type: str) -> str:
    assert response.status_code == 400, response.text
    assert response.headers["x-amzn-errortype"] == aws_type
    body = response.json()
    assert set(body) == {"__type", "Message"} and body["__type"] == aws_type, body
    return str(body["Message"])


async def test_only_correctly_signed_calls_are_answered(
    detector: tuple[str, int], image: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    url, _ = detector
    payload = json.dumps({"Image": {"Bytes": base64.b64encode(image).decode()}}).encode()

    # GIVEN boto3 with the configured key pair: the call works unchanged
    good = rekognition_client(url)
    answer = await asyncio.to_thread(good.detect_protective_equipment, Image={"Bytes": image})
    assert len(answer["Persons"]) == 2

    # WHEN nobody signs
    unsigned = await asyncio.to_thread(
        httpx.post, f"{url}/", headers={"X-Amz-Target": TARGET}, content=payload, timeout=30
    )
    # THEN Rekognition's missing-token error, not an analysis
    assert_aws_error(unsigned, "MissingAuthenticationTokenException")

    # WHEN boto3 signs with the right key id and a wrong secret, or with a key id we never issued
    for client, error in [
        (rekognition_client(url, secret_key="not-the-secret-0123456789abcdef"), "InvalidSignatureException"),
        (rekognition_client(url, access_key="AKIAUNKNOWNCLIENT000"), "UnrecognizedClientException"),
    ]:
        with pytest.raises(client.exceptions.ClientError) as caught:
            await asyncio.to_thread(client.detect_protective_equipment, Image={"Bytes": image})
        # THEN the SDK raises the typed auth error with a 400
        assert caught.value.response["Error"]["Code"] == error
        assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400

    # WHEN a bogus signature is sent under a real key id (the reproduction got 200)
    request = signed_request(url, payload)
    bogus = dict(request.headers.items())
    bogus["Authorization"] = str(bogus["Authorization"]).rsplit("Signature=", 1)[0] + "Signature=" + "0" * 64
    response = await asyncio.to_thread(httpx.post, f"{url}/", headers=bogus, content=payload, timeout=30)
    assert_aws_error(response, "InvalidSignatureException")

    # WHEN a correctly signed request has its body swapped in flight
    tampered = await asyncio.to_thread(post, url, request, body=payload.replace(b"Bytes", b"Bytez"))
    assert_aws_error(tampered, "InvalidSignatureException")
    # ... while the untouched request still passes
    assert (await asyncio.to_thread(post, url, request)).status_code == 200

    # WHEN a request was signed 20 minutes ago (a replay)
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda: datetime.now(UTC) - timedelta(minutes=20))
    stale = signed_request(url, payload)
    monkeypatch.undo()
    message = assert_aws_error(await asyncio.to_thread(post, url, stale), "InvalidSignatureException")
    assert message.startswith("Signature expired")


async def test_an_oversized_body_is_refused_while_it_arrives(detector: tuple[str, int]) -> None:
    url, port = detector
    request = signed_request(url, b"{}")
    headers = "".join(
        f"{name}: {value}\r\n" for name, value in request.headers.items() if name.lower() != "content-length"
    )
    # GIVEN a chunked upload (no Content-Length) under a real key id that never ends
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"POST / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nTransfer-Encoding: chunked\r\n{headers}\r\n".encode())
    chunk = b"A" * (1024 * 1024)
    for _ in range(8):  # 8 MiB, over the 5.4 MiB limit; the terminating chunk is never sent
        writer.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
        await writer.drain()
    # WHEN we wait for an answer without finishing the body
    status_line = await asyncio.wait_for(reader.readline(), timeout=10)
    head = (await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=10)).decode().lower()
    writer.close()
    # THEN the detector has already refused it: it counted while reading
    assert b" 400 " in status_line
    assert "x-amzn-errortype: imagetoolargeexception" in head
    # and a declared Content-Length over the limit is refused before any byte is read
    declared = await asyncio.to_thread(post, url, request, body=b"{" + b" " * (7 * 1024 * 1024) + b"}")
    assert_aws_error(declared, "ImageTooLargeException")
    assert httpx.get(f"{url}/healthz").status_code == 200


def listen_addresses(port: int) -> set[str]:
    """Local addresses of the sockets listening on `port`, from the kernel's own table (IPv4 and IPv6)."""
    found: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        if not os.path.exists(table):
            continue
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            address, port_hex = fields[1].rsplit(":", 1)
            if int(port_hex, 16) == port and fields[3] == "0A":  # 0A: LISTEN
                found.add(address)
    return found


async def test_the_api_listens_on_loopback_unless_configured(detector: tuple[str, int]) -> None:
    _, port = detector
    assert listen_addresses(port) == {"0100007F"}  # 127.0.0.1, nothing on 0.0.0.0
