"""The two pieces of deploy/ that run code: the container health check and the migration custom resource.

The custom resource talks to ECS on the moto server (the real botocore client, so parameter names are
checked against the ECS API model) and answers CloudFormation on a real local HTTP endpoint.
"""

import json
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import boto3
import pytest

from deploy import migration_runner

ROOT = Path(__file__).resolve().parents[3]
HEALTHCHECK = ROOT / "deploy" / "docker" / "healthcheck.py"


class _Recorder(BaseHTTPRequestHandler):
    received: list[tuple[str, str, bytes]] = []
    health_status = 200

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        self.send_response(self.health_status if self.path == "/healthz" else 404)
        self.end_headers()

    def do_PUT(self) -> None:  # noqa: N802
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.received.append(("PUT", self.path, body))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def http_server() -> Iterator[HTTPServer]:
    server = HTTPServer(("127.0.0.1", 0), _Recorder)
    _Recorder.received = []
    _Recorder.health_status = 200
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def run_healthcheck(service: str, port: int) -> int:
    env = {"PATH": "/usr/bin:/bin", f"{service.upper()}_PORT": str(port)}
    return subprocess.run(
        [sys.executable, str(HEALTHCHECK), service], env=env, capture_output=True, timeout=30
    ).returncode


def test_healthcheck_passes_only_while_healthz_answers_2xx(http_server: HTTPServer) -> None:
    port = http_server.server_address[1]
    assert run_healthcheck("ingest", port) == 0
    _Recorder.health_status = 503
    assert run_healthcheck("ingest", port) == 1
    http_server.shutdown()
    http_server.server_close()
    assert run_healthcheck("ingest", port) == 1  # nothing listening
    assert subprocess.run([sys.executable, str(HEALTHCHECK), "nope"], capture_output=True).returncode == 2


@pytest.fixture
def ecs(aws_endpoint: str) -> Any:
    return boto3.client("ecs", endpoint_url=aws_endpoint, region_name="us-east-1")


@pytest.fixture
def network(aws_endpoint: str) -> tuple[str, str]:
    """A subnet and a security group on the emulator: ECS checks that they exist."""
    ec2 = boto3.client("ec2", endpoint_url=aws_endpoint, region_name="us-east-1")
    vpc = ec2.create_vpc(CidrBlock="10.42.0.0/16")["Vpc"]["VpcId"]
    ec2.modify_vpc_attribute(VpcId=vpc, EnableDnsHostnames={"Value": True})  # as a Fargate VPC has
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.42.1.0/24")["Subnet"]["SubnetId"]
    group = ec2.create_security_group(GroupName=f"migrate-{uuid.uuid4().hex[:8]}", Description="t", VpcId=vpc)[
        "GroupId"
    ]
    return subnet, group


def migration_properties(ecs: Any, network: tuple[str, str]) -> dict[str, Any]:
    cluster = ecs.create_cluster(clusterName=f"ppe-{uuid.uuid4().hex[:8]}")["cluster"]["clusterName"]
    task = ecs.register_task_definition(
        family="ppe-migrate",
        requiresCompatibilities=["FARGATE"],
        networkMode="awsvpc",
        cpu="256",
        memory="512",
        # moto sums container-level memory, so give the container one (ECS would take the task-level value)
        containerDefinitions=[
            {
                "name": "migrate",
                "image": "ppe/ingest:test",
                "memory": 512,
                "command": ["python", "-m", "shared.migrate"],
            }
        ],
    )["taskDefinition"]["taskDefinitionArn"]
    return {
        "Cluster": cluster,
        "TaskDefinition": task,
        "Subnets": [network[0]],
        "SecurityGroups": [network[1]],
        "ImageTag": "t1",
    }


def test_migration_runner_succeeds_when_the_task_stops_with_exit_0(ecs: Any, network: tuple[str, str]) -> None:
    props = migration_properties(ecs, network)

    def stop_when_started() -> None:
        # GIVEN the migration task runs, WHEN it finishes (ECS stops it, exit code 0) ...
        for _ in range(100):
            arns = ecs.list_tasks(cluster=props["Cluster"])["taskArns"]
            if arns:
                ecs.stop_task(cluster=props["Cluster"], task=arns[0], reason="Essential container in task exited")
                return
            time.sleep(0.05)

    stopper = threading.Thread(target=stop_when_started)
    stopper.start()
    status, reason = migration_runner.run_migrations(ecs, props, lambda: 600_000, poll_s=0.1)
    stopper.join()
    # ... THEN the deploy may go on
    assert status == "SUCCESS", reason
    arn = reason.rsplit(" ", 1)[-1]
    (task,) = ecs.describe_tasks(cluster=props["Cluster"], tasks=[arn])["tasks"]
    assert task["launchType"] == "FARGATE" and task["startedBy"] == "cfn-migrations"


def test_migration_runner_fails_the_deploy_when_the_task_outlives_the_runner(
    ecs: Any, network: tuple[str, str]
) -> None:
    props = migration_properties(ecs, network)
    status, reason = migration_runner.run_migrations(ecs, props, lambda: 10_000, poll_s=0.1)
    assert status == "FAILED" and "still running" in reason


class _Context:
    @staticmethod
    def get_remaining_time_in_millis() -> int:
        return 600_000


def cfn_event(http_server: HTTPServer, request_type: str, props: dict[str, Any]) -> dict[str, Any]:
    return {
        "RequestType": request_type,
        "ResponseURL": f"http://127.0.0.1:{http_server.server_address[1]}/response?sig=1",
        "StackId": "arn:aws:cloudformation:us-east-1:123456789012:stack/ppe/1",
        "RequestId": "req-1",
        "LogicalResourceId": "MigrationsApplied",
        "ResourceProperties": props,
    }


def test_handler_reports_failure_to_cloudformation_instead_of_hanging(
    http_server: HTTPServer, ecs: Any, network: tuple[str, str]
) -> None:
    props = migration_properties(ecs, network) | {"Cluster": "no-such-cluster"}
    status = migration_runner.handler(cfn_event(http_server, "Create", props), _Context(), ecs=ecs)
    assert status == "FAILED"
    ((method, path, body),) = _Recorder.received
    answer = json.loads(body)
    assert (method, path) == ("PUT", "/response?sig=1")
    assert answer["Status"] == "FAILED" and answer["Reason"]
    assert (answer["RequestId"], answer["LogicalResourceId"], answer["PhysicalResourceId"]) == (
        "req-1",
        "MigrationsApplied",
        "migrations",
    )


def test_handler_leaves_the_schema_alone_on_delete(http_server: HTTPServer, ecs: Any, network: tuple[str, str]) -> None:
    props = migration_properties(ecs, network)
    event = cfn_event(http_server, "Delete", props) | {"PhysicalResourceId": "migrations"}
    assert migration_runner.handler(event, _Context(), ecs=ecs) == "SUCCESS"
    assert ecs.list_tasks(cluster=props["Cluster"])["taskArns"] == []
    assert json.loads(_Recorder.received[0][2])["Status"] == "SUCCESS"


def test_runner_fits_inline_in_the_template() -> None:
    assert len((ROOT / "deploy" / "migration_runner.py").read_text()) < 4096  # CloudFormation ZipFile limit


class _StoppedWithExit:
    """Answers like ECS for a task whose container exited non-zero: the moto server always reports exit 0."""

    def __init__(self, exit_code: int) -> None:
        self.exit_code = exit_code

    def run_task(self, **kwargs: Any) -> dict[str, Any]:
        return {"tasks": [{"taskArn": "arn:aws:ecs:us-east-1:123456789012:task/c/1"}], "failures": []}

    def describe_tasks(self, **kwargs: Any) -> dict[str, Any]:
        return {
            "tasks": [
                {
                    "lastStatus": "STOPPED",
                    "stoppedReason": "Essential container in task exited",
                    "containers": [{"exitCode": self.exit_code}],
                }
            ]
        }


def test_migration_runner_fails_the_deploy_when_the_migration_exits_non_zero() -> None:
    props = {"Cluster": "c", "TaskDefinition": "td", "Subnets": ["s"], "SecurityGroups": ["g"]}
    status, reason = migration_runner.run_migrations(_StoppedWithExit(1), props, lambda: 600_000, poll_s=0)
    assert status == "FAILED" and "exited 1" in reason and "migrate" in reason
