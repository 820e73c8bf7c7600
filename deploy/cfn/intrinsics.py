"""Intrinsic-function helpers and the logical ids every part of the templates agrees on."""

from pathlib import Path
from typing import Any

from deploy.catalog import ServiceDeploy

OUT_DIR = Path(__file__).resolve().parents[1] / "cloudformation"


MIGRATE_COMMAND = ["python", "-m", "shared.migrate"]


HEALTHCHECK = "/opt/ppe/healthcheck.py"


DB_NAME = "ppe"


DB_USER = "ppe"


def ref(name: str) -> dict[str, Any]:
    return {"Ref": name}


def get_att(resource: str, attribute: str) -> dict[str, Any]:
    return {"Fn::GetAtt": [resource, attribute]}


def sub(text: str) -> dict[str, Any]:
    return {"Fn::Sub": text}


def if_(condition: str, then: Any, otherwise: Any) -> dict[str, Any]:
    return {"Fn::If": [condition, then, otherwise]}


NO_VALUE = ref("AWS::NoValue")


def logical_id(name: str, suffix: str = "") -> str:
    return "".join(part.capitalize() for part in name.replace("_", "-").split("-")) + suffix


def queue_id(name: str) -> str:
    return logical_id(name, "Queue")


def dlq_id(name: str) -> str:
    return logical_id(name, "Dlq")


def bucket_id(name_setting: str) -> str:
    return logical_id(name_setting.removesuffix("_bucket"), "Bucket")


def secret_id(service: str, field: str) -> str:
    return logical_id(service) + logical_id(field, "Secret")


def parameter_id(svc: ServiceDeploy, field: str) -> str:
    return svc.title + logical_id(field)
