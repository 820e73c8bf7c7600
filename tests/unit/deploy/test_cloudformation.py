"""The CloudFormation templates: generated, lint-clean, and faithful to the topology the services use."""

import subprocess
import sys

import pytest

from deploy import catalog, cfn
from shared.topology import MAX_MESSAGE_BYTES, TOPOLOGY
from tests.unit.deploy.cfn_model import CFN_DIR, PREFIX, Template, load

TEMPLATES = sorted(path.name for path in CFN_DIR.glob("*.yaml"))


@pytest.fixture(scope="module")
def platform() -> Template:
    return Template(load("platform.yaml"))


def test_every_rendered_template_is_committed_and_current() -> None:
    rendered = cfn.render_all()
    assert sorted(rendered) == TEMPLATES
    for name, text in rendered.items():
        assert (CFN_DIR / name).read_text() == text, (
            f"deploy/cloudformation/{name} is stale (topology or a settings class changed): "
            "run `python -m deploy.cfn render` and commit the result"
        )


@pytest.mark.parametrize("name", TEMPLATES)
def test_cfn_lint_reports_no_errors(name: str) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from cfnlint.runner import main; sys.argv[0] = 'cfn-lint'; sys.exit(main())",
            str(CFN_DIR / name),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, f"cfn-lint {name}:\n{result.stdout}\n{result.stderr}"


def test_every_topology_queue_has_its_dlq_and_redrive(platform: Template) -> None:
    queues = platform.queues_by_name()
    expected_names = {spec.physical_name(PREFIX) for spec in TOPOLOGY.queues} | {
        spec.dlq_physical_name(PREFIX) for spec in TOPOLOGY.queues
    }
    assert set(queues) == expected_names, "the template's queues must be exactly the topology's queues and DLQs"
    for spec in TOPOLOGY.queues:
        main = queues[spec.physical_name(PREFIX)]["Properties"]
        dlq = queues[spec.dlq_physical_name(PREFIX)]["Properties"]
        assert main["VisibilityTimeout"] == spec.visibility_timeout_s, spec.name
        assert main["MessageRetentionPeriod"] == spec.retention_s, spec.name
        assert main["MaximumMessageSize"] == MAX_MESSAGE_BYTES == dlq["MaximumMessageSize"]
        assert bool(main.get("FifoQueue", False)) is spec.fifo, spec.name
        assert bool(dlq.get("FifoQueue", False)) is spec.fifo, f"{spec.name}: a FIFO queue needs a FIFO DLQ"
        if spec.fifo:
            assert main["ContentBasedDeduplication"] is False  # the publisher sends a deduplication id
        assert dlq["MessageRetentionPeriod"] == spec.dlq_retention_s, spec.name
        redrive = main["RedrivePolicy"]
        assert int(redrive["maxReceiveCount"]) == spec.max_receive_count, spec.name
        target = platform.target(redrive["deadLetterTargetArn"])
        assert (target.kind, target.name) == ("queue", spec.dlq_physical_name(PREFIX)), spec.name
        assert "RedrivePolicy" not in dlq, f"{spec.name}: a DLQ must not redrive further"


def test_frames_bucket_is_encrypted_and_private_and_reporting_gets_its_expiry(platform: Template) -> None:
    buckets = platform.of_type("AWS::S3::Bucket")
    assert len(buckets) == len(TOPOLOGY.buckets) == 1
    (properties,) = (res["Properties"] for res in buckets.values())
    # the expiry is reporting's to set (one owner): the template passes the operator's days to it
    assert "LifecycleConfiguration" not in properties
    (container,) = platform.task_definition("reporting")["Properties"]["ContainerDefinitions"]
    env = {item["Name"]: item["Value"] for item in container["Environment"]}
    assert env["REPORTING_FRAMES_RETENTION_DAYS"] == {"Ref": "ReportingFramesRetentionDays"}
    encryption = properties["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]
    assert encryption["ServerSideEncryptionByDefault"]["SSEAlgorithm"] in {"AES256", "aws:kms"}
    assert all(properties["PublicAccessBlockConfiguration"].values())
    assert len(properties["PublicAccessBlockConfiguration"]) == 4


def test_every_service_runs_on_fargate_with_its_port_logs_and_health_check(platform: Template) -> None:
    for svc in catalog.SERVICES:
        ecs_service = platform.ecs_service(svc.name)
        task = platform.task_definition(svc.name)["Properties"]
        assert task["RequiresCompatibilities"] == ["FARGATE"] and task["NetworkMode"] == "awsvpc"
        (container,) = task["ContainerDefinitions"]
        assert container["PortMappings"] == [{"ContainerPort": svc.port, "Protocol": "tcp"}]
        environment = {item["Name"]: item["Value"] for item in container["Environment"]}
        assert environment[f"{svc.name.upper()}_PORT"] == str(svc.port)
        assert container["LogConfiguration"]["LogDriver"] == "awslogs"
        log_group = container["LogConfiguration"]["Options"]["awslogs-group"]["Ref"]
        assert platform.resources[log_group]["Type"] == "AWS::Logs::LogGroup"
        assert container["HealthCheck"]["Command"][-1] == svc.name
        assert ecs_service["Properties"]["NetworkConfiguration"]["AwsvpcConfiguration"]["AssignPublicIp"] == "DISABLED"
        assert ecs_service["Properties"]["DeploymentConfiguration"]["DeploymentCircuitBreaker"] == {
            "Enable": True,
            "Rollback": True,
        }
        if svc.public:
            (balancer,) = ecs_service["Properties"]["LoadBalancers"]
            target_group = platform.resources[balancer["TargetGroupArn"]["Ref"]]["Properties"]
            assert balancer["ContainerPort"] == target_group["Port"] == svc.port
            assert target_group["HealthCheckPath"] == "/healthz"
        else:
            assert "LoadBalancers" not in ecs_service["Properties"]


def test_container_environment_matches_the_settings_class(platform: Template) -> None:
    for svc in catalog.SERVICES:
        settings, _ = catalog.service_env_settings(svc.name)
        readable = {setting.env for setting in settings}
        secret_names = {setting.env for setting in settings if setting.secret} | {"DATABASE_URL"}
        (container,) = platform.task_definition(svc.name)["Properties"]["ContainerDefinitions"]
        plain = {item["Name"] for item in container["Environment"]}
        secret = {item["Name"] for item in container.get("Secrets", [])}
        assert not (plain | secret) - readable, f"{svc.name} sets variables its settings class never reads"
        assert not plain & secret_names, f"{svc.name}: secrets must come from Secrets Manager, not plain environment"
        missing = {s.env for s in settings if s.required} - plain - secret
        assert not missing, f"{svc.name}: required settings without a value: {missing}"
        assert ("DATABASE_URL" in secret) is svc.uses_database, svc.name
        for item in container.get("Secrets", []):
            secret_resource = platform.resources[item["ValueFrom"]["Ref"]]
            assert secret_resource["Type"] == "AWS::SecretsManager::Secret"


def test_queue_consumers_scale_on_visible_messages_per_running_task(platform: Template) -> None:
    policies = platform.of_type("AWS::ApplicationAutoScaling::ScalingPolicy")
    by_service: dict[str, dict] = {}
    for policy in policies.values():
        target = platform.resources[policy["Properties"]["ScalingTargetId"]["Ref"]]
        resource_id = target["Properties"]["ResourceId"]["Fn::Sub"]
        ecs_logical = resource_id.split("${")[-1].removesuffix(".Name}")
        (container,) = platform.task_definition_of(ecs_logical)["Properties"]["ContainerDefinitions"]
        by_service[container["Name"]] = policy["Properties"]["TargetTrackingScalingPolicyConfiguration"]
    assert set(by_service) == {svc.name for svc in catalog.SERVICES}

    for name in ("detector", "notifier"):
        metrics = by_service[name]["CustomizedMetricSpecification"]["Metrics"]
        queues = {
            platform.queue_name(m["MetricStat"]["Metric"]["Dimensions"][0]["Value"]["Fn::GetAtt"][0])
            for m in metrics
            if "MetricStat" in m and m["MetricStat"]["Metric"]["MetricName"] == "ApproximateNumberOfMessagesVisible"
        }
        consumed = {spec.physical_name(PREFIX) for spec in TOPOLOGY.queues if name in spec.consumers}
        assert queues == consumed, f"{name} must scale on the backlog of exactly the queues it consumes"
        tasks = [
            m for m in metrics if "MetricStat" in m and m["MetricStat"]["Metric"]["MetricName"] == "RunningTaskCount"
        ]
        assert len(tasks) == 1
        (expression,) = [m for m in metrics if m.get("ReturnData")]
        assert expression["Expression"].endswith(f"/ {tasks[0]['Id']}")
    assert by_service["ingest"]["PredefinedMetricSpecification"]["PredefinedMetricType"] == "ALBRequestCountPerTarget"


def test_migrations_run_before_any_service_rolls(platform: Template) -> None:
    (runner_name,) = platform.of_type("Custom::Migrations")
    runner = platform.resources[runner_name]["Properties"]
    task = platform.resources[runner["TaskDefinition"]["Ref"]]["Properties"]
    (container,) = task["ContainerDefinitions"]
    assert container["Command"] == ["python", "-m", "shared.migrate"]
    # the master URL, and the passwords of the services' own roles it (re)applies after migrating
    assert [s["Name"] for s in container["Secrets"]] == ["DATABASE_URL"] + [
        f"PPE_DB_ROLE_PASSWORD_{svc.name.upper()}" for svc in catalog.SERVICES if svc.uses_database
    ]
    assert runner["ImageTag"] == {"Ref": "ImageTag"}, "a new image must re-run the migrations"
    for name, service in platform.of_type("AWS::ECS::Service").items():
        assert runner_name in service.get("DependsOn", []), f"{name} could start before the migrations ran"


def test_stateful_resources_survive_stack_deletion(platform: Template) -> None:
    for name, resource in platform.resources.items():
        if resource["Type"] in ("AWS::SQS::Queue", "AWS::S3::Bucket"):
            assert resource["DeletionPolicy"] == "Retain", name
        if resource["Type"] == "AWS::RDS::DBInstance":
            assert resource["DeletionPolicy"] == "Snapshot", name
            assert resource["Properties"]["StorageEncrypted"] is True
            assert resource["Properties"]["PubliclyAccessible"] is False


def test_every_dlq_has_an_alarm_on_its_depth(platform: Template) -> None:
    watched = set()
    for alarm in platform.of_type("AWS::CloudWatch::Alarm").values():
        properties = alarm["Properties"]
        if properties["MetricName"] == "ApproximateNumberOfMessagesVisible":
            (dimension,) = properties["Dimensions"]
            watched.add(platform.queue_name(dimension["Value"]["Fn::GetAtt"][0]))
            assert properties["ComparisonOperator"] == "GreaterThanThreshold" and properties["Threshold"] == 0
    assert watched == {spec.dlq_physical_name(PREFIX) for spec in TOPOLOGY.queues}


# Fargate's CPU units -> the memory sizes (MiB) it accepts with them.
FARGATE_MEMORY = {
    256: {512, 1024, 2048},
    512: set(range(1024, 4096 + 1, 1024)),
    1024: set(range(2048, 8192 + 1, 1024)),
    2048: set(range(4096, 16384 + 1, 1024)),
    4096: set(range(8192, 30720 + 1, 1024)),
}


def test_default_task_sizes_are_valid_fargate_pairs(platform: Template) -> None:
    parameters = platform.body["Parameters"]
    for svc in catalog.SERVICES:
        task = platform.task_definition(svc.name)["Properties"]
        cpu = int(parameters[task["Cpu"]["Ref"]]["Default"])
        memory = int(parameters[task["Memory"]["Ref"]]["Default"])
        assert memory in FARGATE_MEMORY[cpu], f"{svc.name}: {cpu} CPU units cannot have {memory} MiB"
    (migrate,) = [
        res["Properties"]
        for res in platform.of_type("AWS::ECS::TaskDefinition").values()
        if res["Properties"]["ContainerDefinitions"][0]["Name"] == "migrate"
    ]
    assert int(migrate["Memory"]) in FARGATE_MEMORY[int(migrate["Cpu"])]
