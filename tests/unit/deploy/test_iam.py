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
    svc = catalog.service(service)
    own = catalog.records_prefix(svc)
    frames = {(a, t) for a, t in grants if a.startswith("s3:") and t.kind == "objects" and t.name.endswith(":frames/*")}
    assert {a for a, _ in frames} == (
        ({"s3:PutObject"} if service in bucket.writers else set())
        | ({"s3:GetObject"} if service in bucket.readers else set())
    ), service
    records = {(a, t) for a, t in grants if a.startswith("s3:") and t.kind == "objects" and (a, t) not in frames}
    if own is None:
        assert not records, f"{service} may only touch frames/: {records}"
    else:
        assert {a for a, _ in records} == {"s3:GetObject", "s3:PutObject"}
        assert {t.name.split(":", 1)[1] for _, t in records} == {f"{own}*"}, "only its own records prefix"
    on_bucket = {a for a, t in grants if a.startswith("s3:") and t.kind == "bucket"}
    expected_on_bucket = {"s3:ListBucket"} if frames or records else set()
    if svc.sets_bucket_lifecycle:
        expected_on_bucket |= {"s3:GetLifecycleConfiguration", "s3:PutLifecycleConfiguration"}
    assert on_bucket == expected_on_bucket, service
    assert not {(a, t) for a, t in grants if a.startswith("s3:") and t.kind not in ("objects", "bucket")}


def test_detector_writes_only_its_own_records_and_reporting_only_the_expiry(platform: Template) -> None:
    detector_puts = {t.name for a, t in platform.grants(task_role(platform, "detector")) if a == "s3:PutObject"}
    assert len(detector_puts) == 1 and not detector_puts.pop().endswith(":frames/*"), "the detector never writes frames"
    reporting_writes = {a for a, t in platform.grants(task_role(platform, "reporting")) if is_write(a)}
    assert {a for a in reporting_writes if a.startswith("s3:")} == {"s3:PutLifecycleConfiguration"}


def test_one_service_owns_the_bucket_lifecycle_and_holds_what_it_calls(platform: Template) -> None:
    # Issue 19 row 8: topology, ingest and reporting each wrote the rule; on AWS reporting could not read it
    # (GetLifecycleConfiguration) and ingest could not write it. Now reporting alone reads and writes it.
    lifecycle = {
        svc.name: {a for a, _ in platform.grants(task_role(platform, svc.name)) if "Lifecycle" in a}
        for svc in catalog.SERVICES
    }
    assert lifecycle == {
        svc.name: (
            {"s3:GetLifecycleConfiguration", "s3:PutLifecycleConfiguration"} if svc.name == "reporting" else set()
        )
        for svc in catalog.SERVICES
    }
    assert [svc.name for svc in catalog.SERVICES if svc.sets_bucket_lifecycle] == ["reporting"]
    for bucket in platform.of_type("AWS::S3::Bucket").values():
        assert "LifecycleConfiguration" not in bucket["Properties"], "the template would fight reporting's rule"


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
