"""The OpenAPI description of the Rekognition-compatible `POST /`.

The route reads its body itself (the SigV4 check needs the exact bytes), so FastAPI cannot infer the request
and response shapes; they are written here: the `X-Amz-Target` header naming the operation, the JSON 1.1 body
of DetectProtectiveEquipment / DetectCustomLabels (one path serves both, as on AWS), the answers built from
the same pydantic models the engines return, and the `{"__type", "Message"}` error body. A schema fuzzer
(tests/integration/detector/test_api_fuzz.py) checks the running service against it.
"""

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from shared.rekognition import DetectCustomLabelsResponse, DetectProtectiveEquipmentResponse, SummarizationAttributes

AMZ_JSON = "application/x-amz-json-1.1"
TARGETS = ("RekognitionService.DetectProtectiveEquipment", "RekognitionService.DetectCustomLabels")
REF = "#/components/schemas/{model}"

AWS_ERROR = {
    "type": "object",
    "properties": {
        "__type": {"type": "string", "description": "AWS error type, e.g. InvalidParameterException."},
        "Message": {"type": "string", "description": "What was wrong and what to do."},
    },
    "required": ["__type", "Message"],
}

S3_OBJECT = {
    "type": "object",
    "properties": {
        "Bucket": {"type": "string", "minLength": 3, "maxLength": 255},
        "Name": {"type": "string", "minLength": 1, "maxLength": 1024},
        "Version": {"type": "string", "minLength": 1, "maxLength": 1024},
    },
    "required": ["Bucket", "Name"],
}

IMAGE = {
    "type": "object",
    "description": "Exactly one of Bytes (base64 JPEG / PNG, at most 5 MB decoded) or S3Object.",
    "properties": {"Bytes": {"type": "string", "format": "byte"}, "S3Object": S3_OBJECT},
    "minProperties": 1,
    "maxProperties": 1,
}


def _request_body(attributes_ref: str) -> dict[str, Any]:
    return {
        "type": "object",
        "description": "DetectProtectiveEquipment: Image, SummarizationAttributes. "
        "DetectCustomLabels: Image, ProjectVersionArn, MinConfidence, MaxResults.",
        "properties": {
            "Image": IMAGE,
            "SummarizationAttributes": {"$ref": attributes_ref},
            "ProjectVersionArn": {"type": "string", "minLength": 1, "maxLength": 2048},
            "MinConfidence": {"type": "number", "minimum": 0, "maximum": 100},
            "MaxResults": {"type": "integer", "minimum": 0},
        },
        "required": ["Image"],
    }


def rekognition_operation(refs: dict[str, str]) -> dict[str, Any]:
    """The `post` operation object of `/`."""
    error = {"content": {AMZ_JSON: {"schema": {"$ref": REF.format(model="AwsError")}}}}
    return {
        "summary": "Rekognition DetectProtectiveEquipment / DetectCustomLabels (AWS JSON 1.1, SigV4-signed)",
        "operationId": "rekognition",
        "parameters": [
            {"name": "X-Amz-Target", "in": "header", "required": True, "schema": {"type": "string", "enum": TARGETS}},
        ],
        "requestBody": {"required": True, "content": {AMZ_JSON: {"schema": _request_body(refs["attributes"])}}},
        "responses": {
            "200": {
                "description": "The operation's answer, as AWS sends it (no nulls).",
                "content": {AMZ_JSON: {"schema": {"anyOf": [{"$ref": refs["ppe"]}, {"$ref": refs["labels"]}]}}},
            },
            "400": {"description": "Bad request, bad signature, unknown operation or model: AWS error type.", **error},
            "500": {"description": "ThrottlingException / InternalServerError: retry later.", **error},
        },
    }


def install(app: FastAPI) -> None:
    """Make `app.openapi()` describe `POST /` (the rest FastAPI infers from the other routes)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(title=app.title, version=app.version, routes=app.routes)
            models: list[tuple[type[BaseModel], JsonSchemaMode]] = [
                (DetectProtectiveEquipmentResponse, "serialization"),
                (DetectCustomLabelsResponse, "serialization"),
                (SummarizationAttributes, "validation"),
            ]
            keys, definitions = models_json_schema(models, ref_template=REF)
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            components.update(definitions.get("$defs", {}))
            components["AwsError"] = AWS_ERROR
            names = ("ppe", "labels", "attributes")
            refs = {name: keys[(model, mode)]["$ref"] for name, (model, mode) in zip(names, models, strict=True)}
            schema["paths"].setdefault("/", {})["post"] = rekognition_operation(refs)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI documents replacing app.openapi
