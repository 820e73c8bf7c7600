"""How ingest answers a refusal: the typed error body, its status and Retry-After, the OpenAPI error list."""

from typing import Any

from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from services.ingest.domain import IngestError, Reason
from services.ingest.metrics import REJECTS
from services.ingest.schemas import ErrorBody
from shared.equipment import UnknownEquipment
from shared.http_guard import Refusal


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    descriptions = {
        400: "Invalid image: undecodable, truncated, or a side outside 64..4096 px.",
        401: "Missing or unknown API key / admin token.",
        403: "The key belongs to another camera, or the camera is disabled.",
        404: "Unknown camera or frame.",
        408: "The body was not received within INGEST_BODY_TIMEOUT_S.",
        409: "client_frame_id already used for another image, or still being stored; or the camera exists.",
        413: "Body or image over 4 MB.",
        415: "Not JPEG or PNG (by magic bytes), or an unsupported Content-Type.",
        422: "Invalid metadata or body fields; `details` lists them.",
        429: "Per-camera rate limit; see Retry-After.",
        503: "S3, SQS or PostgreSQL unavailable; nothing was stored; see Retry-After.",
    }
    return {status: {"model": ErrorBody, "description": descriptions[status]} for status in statuses}


def error_response(error: IngestError) -> JSONResponse:
    REJECTS.labels(error.reason.value).inc()
    body = ErrorBody(
        code=error.reason, message=error.message, status=error.status, retry_after_s=error.retry_after_s, **error.extra
    )
    headers = {"Retry-After": str(error.retry_after_s)} if error.retry_after_s else None
    return JSONResponse(body.model_dump(mode="json", exclude_none=True), status_code=error.status, headers=headers)


def refusal(error: IngestError) -> Refusal:
    """An IngestError as the Guard middleware answers it (before any route runs)."""
    REJECTS.labels(error.reason.value).inc()
    body = ErrorBody(code=error.reason, message=error.message, status=error.status, **error.extra)
    return error.status, body.model_dump(mode="json", exclude_none=True), {}


def validation_error(exc: ValidationError | RequestValidationError) -> IngestError:
    details = [
        {"loc": [str(part) for part in item.get("loc", ())], "msg": str(item.get("msg", "")), "type": item.get("type")}
        for item in exc.errors()
    ]
    error = IngestError(Reason.invalid_request, "invalid request fields: see details, fix them and resend")
    error.extra["details"] = jsonable_encoder(details)
    return error


def check_equipment(settings: Any, names: Any, *, where: str) -> None:
    """Refuse equipment names that are neither Rekognition types nor in PPE_CUSTOM_EQUIPMENT (422)."""
    try:
        settings.catalogue().check(names, where=where)
    except UnknownEquipment as exc:
        raise IngestError(Reason.invalid_request, str(exc)) from exc
