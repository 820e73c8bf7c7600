"""Read the committed CloudFormation templates the way the tests need: resolve references to the physical
names of queues and buckets, independently of the generator's own helpers."""

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

CFN_DIR = Path(__file__).resolve().parents[3] / "deploy" / "cloudformation"
PREFIX = "test-prefix-"  # stands for the QueuePrefix parameter


def load(name: str) -> dict[str, Any]:
    with (CFN_DIR / name).open() as fh:
        template: dict[str, Any] = yaml.safe_load(fh)
    return template


@dataclass(frozen=True)
class Target:
    """What a policy Resource points at."""

    kind: str  # "queue", "bucket", "objects", "any", "other"
    name: str  # physical queue name, bucket logical id, or a description


class Template:
    def __init__(self, body: dict[str, Any]) -> None:
        self.body = body
        self.resources: dict[str, dict[str, Any]] = body["Resources"]

    def of_type(self, type_: str) -> dict[str, dict[str, Any]]:
        return {name: res for name, res in self.resources.items() if res["Type"] == type_}

    def queue_name(self, logical: str) -> str:
        name = self.resources[logical]["Properties"]["QueueName"]
        assert set(name) == {"Fn::Sub"}, f"{logical}: QueueName must be a ${{QueuePrefix}} substitution, got {name}"
        return str(name["Fn::Sub"]).replace("${QueuePrefix}", PREFIX)

    def queues_by_name(self) -> dict[str, dict[str, Any]]:
        return {self.queue_name(name): res for name, res in self.of_type("AWS::SQS::Queue").items()}

    def logical_of_queue(self, physical: str) -> str:
        for name in self.of_type("AWS::SQS::Queue"):
            if self.queue_name(name) == physical:
                return name
        raise KeyError(physical)

    def target(self, value: Any) -> Target:
        if value == "*":
            return Target("any", "*")
        if isinstance(value, dict) and "Fn::GetAtt" in value:
            logical, attribute = value["Fn::GetAtt"]
            resource_type = self.resources[logical]["Type"]
            if resource_type == "AWS::SQS::Queue" and attribute == "Arn":
                return Target("queue", self.queue_name(logical))
            if resource_type == "AWS::S3::Bucket" and attribute == "Arn":
                return Target("bucket", logical)
            return Target("other", f"{logical}.{attribute}")
        if isinstance(value, dict) and "Fn::Sub" in value and isinstance(value["Fn::Sub"], list):
            text, variables = value["Fn::Sub"]
            if text.startswith("${Bucket}/") and set(variables) == {"Bucket"}:
                bucket = self.target(variables["Bucket"])
                assert bucket.kind == "bucket", bucket
                return Target("objects", f"{bucket.name}:{text.removeprefix('${Bucket}/')}")
        if isinstance(value, dict) and "Ref" in value:
            return Target("other", f"Ref {value['Ref']}")
        return Target("other", repr(value))

    def statements(self, role_logical: str) -> list[dict[str, Any]]:
        """Every statement of the role's inline policies; an Fn::If statement counts with its granting branch."""
        out: list[dict[str, Any]] = []
        for policy in self.resources[role_logical]["Properties"].get("Policies", []):
            for statement in policy["PolicyDocument"]["Statement"]:
                if "Fn::If" in statement:
                    _, then, otherwise = statement["Fn::If"]
                    assert otherwise == {"Ref": "AWS::NoValue"}, statement
                    statement = then
                out.append(statement)
        return out

    def grants(self, role_logical: str) -> set[tuple[str, Target]]:
        result: set[tuple[str, Target]] = set()
        for statement in self.statements(role_logical):
            assert statement["Effect"] == "Allow"
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
            for action in actions:
                for resource in resources:
                    result.add((action, self.target(resource)))
        return result

    def ecs_service(self, service: str) -> dict[str, Any]:
        """The ECS service whose task definition runs a container named after the platform service."""
        for name, res in self.of_type("AWS::ECS::Service").items():
            task = self.task_definition_of(name)
            if [c["Name"] for c in task["Properties"]["ContainerDefinitions"]] == [service]:
                return res
        raise KeyError(f"no ECS service runs a container named {service!r}")

    def task_definition_of(self, ecs_service_logical: str) -> dict[str, Any]:
        ref = self.resources[ecs_service_logical]["Properties"]["TaskDefinition"]
        return self.resources[ref["Ref"]]

    def task_definition(self, service: str) -> dict[str, Any]:
        for res in self.of_type("AWS::ECS::TaskDefinition").values():
            if [c["Name"] for c in res["Properties"]["ContainerDefinitions"]] == [service]:
                return res
        raise KeyError(service)

    def role_of(self, task_definition: dict[str, Any], key: str) -> str:
        value = task_definition["Properties"][key]
        logical, attribute = value["Fn::GetAtt"]
        assert attribute == "Arn"
        return str(logical)
