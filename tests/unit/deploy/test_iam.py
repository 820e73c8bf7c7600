"""Least privilege, read from the rendered template: each service may do what the topology says, nothing more."""

import pytest

from deploy import catalog
from shared.topology import TOPOLOGY
from tests.unit.deploy.cfn_model import PREFIX, Target, Template, load

# Read-only actions that IAM defines without a resource type, so "*" is their only possible Resource.
RESOURCELESS_READS = {
    "rekognition:DetectProtectiveEquipment",
    "rekognition:DetectCustomLabels",
    "ecr:GetAuthorizationToken",
}
READ_PREFIXES = ("Get", "List", "Describe", "Detect", "Receive", "BatchGet", "BatchCheck", "Head")
# Receiving a message changes nothing; deleting or hiding one does.
QUEUE_WRITES = {"sqs:SendMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility", "sqs:ReceiveMessage"}


def is_write(action: str) -> bool:
    return not action.split(":", 1)[1].startswith(READ_PREFIXES)


@pytest.fixture(scope="module")
def platform() -> Template:
    return Template(load("platform.yaml"))


def task_role(platform: Template, service: str) -> str:
    return platform.role_of(platform.task_definition(service), "TaskRoleArn")


def expected_queue_grants(service: str) -> set[tuple[str, str]]:
    grants: set[tuple[str, str]] = set()
    for spec in TOPOLOGY.queues:
        if service in spec.producers:
            grants.add(("sqs:SendMessage", spec.physical_name(PREFIX)))
        if service in spec.consumers:
            for action in ("sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility"):
                grants.add((action, spec.physical_name(PREFIX)))
            grants.add(("sqs:SendMessage", spec.dlq_physical_name(PREFIX)))  # malformed messages go straight there
    return grants


def test_no_role_has_wildcard_actions_or_writes_on_wildcard_resources(platform: Template) -> None:
    for name in platform.of_type("AWS::IAM::Role"):
        for statement in platform.statements(name):
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            assert not [a for a in actions if "*" in a], f"{name}: wildcard action in {statement}"
        for action, target in platform.grants(name):
            if target.kind == "any":
                assert action in RESOURCELESS_READS, f"{name}: {action} on every resource"
            if is_write(action) and target.kind == "other":
                assert "*" not in target.name, f"{name}: {action} on a wildcard resource {target.name}"


@pytest.mark.parametrize("service", [svc.name for svc in catalog.SERVICES])
def test_queue_permissions_are_exactly_what_the_topology_gives(platform: Template, service: str) -> None:
    granted = {
        (action, target.name)
        for action, target in platform.grants(task_role(platform, service))
        if action in QUEUE_WRITES and target.kind == "queue"
    }
    assert granted == expected_queue_grants(service)
    # and no SQS action reaches a resource that is not one of the topology's queues
    other = {
        (a, t) for a, t in platform.grants(task_role(platform, service)) if a.startswith("sqs:") and t.kind != "queue"
    }
    assert not other, f"{service}: SQS actions on non-queue resources {other}"


@pytest.mark.parametrize("service", [svc.name for svc in catalog.SERVICES])
def test_bucket_permissions_follow_writers_and_readers(platform: Template, service: str) -> None:
    grants = platform.grants(task_role(platform, service))
    (bucket,) = TOPOLOGY.buckets
    puts = {t for a, t in grants if a == "s3:PutObject"}
    gets = {t for a, t in grants if a == "s3:GetObject"}
    assert bool(puts) is (service in bucket.writers), service
    assert bool(gets) is (service in bucket.readers), service
    for target in puts | gets:
        assert target.kind == "objects" and target.name.endswith(":frames/*"), f"{service}: {target}"
    s3_actions = {a for a, _ in grants if a.startswith("s3:")}
    assert s3_actions <= {"s3:PutObject", "s3:GetObject", "s3:ListBucket"}, f"{service}: {s3_actions}"


def test_ingest_can_write_frames_and_send_to_the_frames_queue_nothing_more(platform: Template) -> None:
    writes = {(a, t) for a, t in platform.grants(task_role(platform, "ingest")) if is_write(a)}
    (bucket_target,) = {t for a, t in writes if a == "s3:PutObject"}
    assert writes == {
        ("s3:PutObject", bucket_target),
        ("sqs:SendMessage", Target("queue", TOPOLOGY.queue("frames-received").physical_name(PREFIX))),
    }


def test_only_the_detector_calls_rekognition(platform: Template) -> None:
    for svc in catalog.SERVICES:
        actions = {a for a, _ in platform.grants(task_role(platform, svc.name)) if a.startswith("rekognition:")}
        expected = (
            {"rekognition:DetectProtectiveEquipment", "rekognition:DetectCustomLabels"}
            if svc.name == "detector"
            else set()
        )
        assert actions == expected, svc.name


def test_each_execution_role_reads_only_its_own_secrets(platform: Template) -> None:
    for svc in catalog.SERVICES:
        task = platform.task_definition(svc.name)
        (container,) = task["Properties"]["ContainerDefinitions"]
        own = {item["ValueFrom"]["Ref"] for item in container.get("Secrets", [])}
        role = platform.role_of(task, "ExecutionRoleArn")
        readable = {
            t.name.removeprefix("Ref ") for a, t in platform.grants(role) if a == "secretsmanager:GetSecretValue"
        }
        assert readable == own, svc.name
        if not svc.uses_database:
            assert "DatabaseUrlSecret" not in readable, f"{svc.name} has no tables and must not read DATABASE_URL"
