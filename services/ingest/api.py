"""HTTP API of ingest (FastAPI): thin camera routes over FrameHandler and the camera directory.

The admin routes are in admin_routes.py, the error bodies in api_errors.py, what the app talks to in deps.py;
health, readiness, metrics and request metrics come from shared.http like every service's.
"""

import asyncio
import math
from typing import Annotated, Any

from botocore.exceptions import BotoCoreError, ClientError
from fastapi import Depends, FastAPI, Query, Request, Response, Security
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import APIKeyHeader
from pydantic import ValidationError
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Scope

from services.ingest.adapters.db import DATABASE_ERRORS
from services.ingest.admin_routes import register_admin_routes
from services.ingest.api_errors import check_equipment, error_response, errors, refusal, validation_error
from services.ingest.config import IngestSettings
from services.ingest.deps import IngestDeps
from services.ingest.domain import Camera, IngestError, Reason
from services.ingest.handlers import FramePost, unavailable
from services.ingest.metrics import ACCEPTED, BYTES
from services.ingest.schemas import CameraOut, FrameAccepted, FrameMetadata, FrameQuery, Health
from shared.access.http import Access, Forbidden, service_tokens
from shared.access.roles import Role
from shared.http import Readiness, instrument
from shared.http_guard import Guard, Refusal
from shared.logging import get_logger
from shared.s3 import StorageError

__all__ = ["IngestDeps", "build_app"]

log = get_logger(__name__)


FRAME_QUEUE = "frames-received"
IMAGE_TYPES = ("image/jpeg", "image/png", "application/octet-stream")


FRAME_BODY = {
    "requestBody": {
        "required": True,
        "description": "The image (JPEG or PNG, at most 4 MB, each side 64..4096 px), raw or as a multipart "
        "`image` part; a multipart body may carry the metadata fields beside it.",
        "content": {
            "image/jpeg": {"schema": {"type": "string", "format": "binary"}},
            "image/png": {"schema": {"type": "string", "format": "binary"}},
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["image"],
                    "properties": {
                        "image": {"type": "string", "format": "binary", "description": "The image file."},
                        **{
                            name: {"type": "string", "description": field.description or name}
                            for name, field in FrameMetadata.model_fields.items()
                        },
                    },
                }
            },
        },
    }
}


def guarded(app: ASGIApp, settings: IngestSettings, access: Access) -> Guard:
    """Credentials before any body is read: a user or INGEST_ADMIN_TOKEN for /v1/admin, a camera key for the rest.

    The camera key is looked up by the route's dependency, which runs before /v1/frames reads its body.
    """

    async def accepts(scope: Scope, headers: Any) -> bool:
        if scope["path"].startswith("/v1/admin"):
            return await access.accepts(scope, headers)
        return bool(headers.get("x-api-key"))

    def unauthorised(scope: Scope) -> Refusal:
        if scope["path"].startswith("/v1/admin"):
            return refusal(IngestError(
                Reason.admin_unauthorized,
                "sign in, or send Authorization: Bearer <personal API token or INGEST_ADMIN_TOKEN>",
            ))
        return refusal(IngestError(Reason.missing_api_key, "send the camera's API key in the X-API-Key header"))

    def too_large(limit: int) -> Refusal:
        return refusal(IngestError(Reason.body_too_large, f"body is over the {limit} byte limit", limit_bytes=limit))

    return Guard(
        app,
        accepts=accepts,
        unauthorised=unauthorised,
        too_large=too_large,
        own_body_limit=("/v1/frames",),  # read_body counts against INGEST_MAX_IMAGE_BYTES
        max_body_bytes=settings.max_json_body_bytes,
    )


async def read_body(request: Request, *, limit: int, timeout_s: float) -> bytes:
    """Read at most `limit` bytes, counting as they arrive; refuse early by Content-Length when it says more."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise IngestError(
            Reason.body_too_large, f"body is {declared} bytes; the limit is {limit}: send a smaller image",
            limit_bytes=limit,
        )
    body = bytearray()
    try:
        async with asyncio.timeout(timeout_s):
            async for chunk in request.stream():
                body += chunk
                if len(body) > limit:
                    raise IngestError(
                        Reason.body_too_large, f"body is over the {limit} byte limit: send a smaller image",
                        limit_bytes=limit,
                    )
    except TimeoutError as exc:
        raise IngestError(
            Reason.body_timeout, f"body not received within {timeout_s}s: check the uplink and retry", retry_after_s=1
        ) from exc
    except ClientDisconnect as exc:
        raise IngestError(Reason.invalid_request, "client disconnected before the body was complete") from exc
    return bytes(body)


def merge_metadata(query: FrameQuery, form_fields: dict[str, list[str]]) -> FrameMetadata:
    values: dict[str, Any] = query.model_dump(exclude_none=True)
    for name, items in form_fields.items():
        if name not in FrameMetadata.model_fields:
            raise IngestError(Reason.invalid_request, f"unknown form field {name!r}: send only `image` and metadata")
        value: Any = items if name == "required_ppe" else items[-1]
        if name in values and values[name] != value:
            raise IngestError(Reason.invalid_request, f"{name} differs between query and form: send it once")
        values[name] = value
    if "required_ppe" in values:  # accept repeated parameters and comma-separated lists alike
        values["required_ppe"] = [item.strip() for entry in values["required_ppe"] for item in entry.split(",")]
    try:
        return FrameMetadata.model_validate(values)
    except ValidationError as exc:
        raise validation_error(exc) from exc


def build_app(deps: IngestDeps) -> FastAPI:
    settings = deps.settings
    app = FastAPI(
        title="PPE ingest",
        version="1.0.0",
        description="Frame intake for cameras: validate, store on S3, enqueue FrameReceived. "
        "Cameras authenticate with X-API-Key; the admin API with `Authorization: Bearer <INGEST_ADMIN_TOKEN>`.",
    )
    access = deps.access or Access(
        engine=None, service_tokens=service_tokens({settings.admin_token: ("ingest-admin", Role.ADMIN)})
    )
    app.add_middleware(guarded, settings=settings, access=access)
    api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="The camera's API key.")

    @app.exception_handler(IngestError)
    async def _ingest_error(request: Request, exc: IngestError) -> JSONResponse:
        return error_response(exc)

    @app.exception_handler(Forbidden)
    async def _forbidden(request: Request, exc: Forbidden) -> JSONResponse:
        return error_response(IngestError(Reason.forbidden, str(exc.detail)))

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response(validation_error(exc))

    async def current_camera(api_key: Annotated[str | None, Security(api_key_header)]) -> Camera:
        if not api_key:
            raise IngestError(Reason.missing_api_key, "send the camera's API key in the X-API-Key header")
        try:
            camera = await deps.cameras.by_api_key(api_key)
        except DATABASE_ERRORS as exc:
            raise unavailable("the camera database", exc, settings.retry_after_s) from exc
        if camera is None:
            raise IngestError(Reason.invalid_api_key, "unknown API key: check it, or ask an admin to rotate it")
        if not camera.enabled:
            raise IngestError(Reason.camera_disabled, f"camera {camera.camera_id} is disabled: ask an admin")
        return camera

    CameraDep = Annotated[Camera, Depends(current_camera)]

    @app.post(
        "/v1/frames",
        status_code=202,
        response_model=FrameAccepted,
        summary="Post one frame",
        openapi_extra=FRAME_BODY,
        responses={
            200: {"model": FrameAccepted, "description": "Same client_frame_id and image again: the original frame."},
            **errors(400, 401, 403, 408, 409, 413, 415, 422, 429, 503),
        },
    )
    async def post_frame(request: Request, camera: CameraDep, query: Annotated[FrameQuery, Query()]) -> Response:
        try:
            wait_s = await deps.limiter.take(camera.camera_id, camera.rate_limit_per_s)
        except DATABASE_ERRORS as exc:
            raise unavailable("the rate-limit store (PostgreSQL)", exc, settings.retry_after_s) from exc
        if wait_s > 0:
            retry = max(1, math.ceil(wait_s))
            raise IngestError(
                Reason.rate_limited, f"camera {camera.camera_id} is over its rate limit: slow down", retry_after_s=retry
            )
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type == "multipart/form-data":
            data, form_fields = await read_multipart(request, settings)
        elif content_type in IMAGE_TYPES:
            data = await read_body(request, limit=settings.max_image_bytes, timeout_s=settings.body_timeout_s)
            form_fields = {}
        else:
            raise IngestError(
                Reason.unsupported_media_type,
                f"Content-Type {content_type or '(none)'} not accepted: send image/jpeg, image/png or multipart",
            )
        metadata = merge_metadata(query, form_fields)
        if metadata.camera_id is not None and metadata.camera_id != camera.camera_id:
            raise IngestError(
                Reason.camera_mismatch, f"this API key belongs to another camera, not {metadata.camera_id}"
            )
        if metadata.required_ppe is not None:
            check_equipment(settings, metadata.required_ppe, where="required_ppe")
        try:
            intake = await deps.intake.handle(FramePost(camera, metadata, data))
        except IngestError:
            BYTES.labels("rejected").inc(len(data))
            raise
        BYTES.labels("accepted").inc(len(data))
        ACCEPTED.labels(str(intake.duplicate).lower()).inc()
        body = FrameAccepted.of(intake.record, duplicate=intake.duplicate)
        return JSONResponse(body.model_dump(mode="json"), status_code=200 if intake.duplicate else 202)

    @app.get("/v1/frames/{frame_id}", response_model=FrameAccepted, responses=errors(401, 403, 404, 503))
    async def get_frame(frame_id: str, camera: CameraDep) -> FrameAccepted:
        """The intake record of one of this camera's frames."""
        try:
            record = await deps.ledger.get(frame_id)
        except DATABASE_ERRORS as exc:
            raise unavailable("the frame database", exc, settings.retry_after_s) from exc
        if record is None or record.camera_id != camera.camera_id:
            raise IngestError(Reason.frame_not_found, f"no frame {frame_id} for camera {camera.camera_id}")
        return FrameAccepted.of(record, duplicate=False)

    @app.get("/v1/cameras/me", response_model=CameraOut, responses=errors(401, 403, 503))
    async def my_camera(camera: CameraDep) -> CameraOut:
        """The calling camera's settings and sampling hints."""
        return CameraOut.of(camera)

    register_admin_routes(app, deps, access)
    return instrument(app, lambda: readiness(deps))


async def read_multipart(request: Request, settings: IngestSettings) -> tuple[bytes, dict[str, list[str]]]:
    limit = settings.max_image_bytes + settings.multipart_overhead_bytes
    body = await read_body(request, limit=limit, timeout_s=settings.body_timeout_s)
    request._body = body  # Starlette parses the form from the already-bounded body
    try:
        form = await request.form(max_files=1, max_fields=16, max_part_size=4096)
    except MultiPartException as exc:
        raise IngestError(Reason.invalid_request, f"malformed multipart body: {exc.message}") from exc
    try:
        image = form.get("image")
        if not isinstance(image, UploadFile):
            raise IngestError(Reason.invalid_request, "multipart body has no `image` file part")
        data = await image.read()
        fields: dict[str, list[str]] = {}
        for name, value in form.multi_items():
            if name != "image":
                if not isinstance(value, str):
                    raise IngestError(Reason.invalid_request, f"form field {name!r} must be text, not a file")
                fields.setdefault(name, []).append(value)
    finally:
        await form.close()
    if len(data) > settings.max_image_bytes:
        raise IngestError(
            Reason.body_too_large,
            f"image is {len(data)} bytes; the limit is {settings.max_image_bytes}: send a smaller image",
            limit_bytes=settings.max_image_bytes,
        )
    return data, fields


async def readiness(deps: IngestDeps) -> Readiness:
    """Ready when the frames bucket, the frames-received queue and PostgreSQL answer."""

    async def queue() -> None:
        url = await deps.resolver.url(FRAME_QUEUE)
        await deps.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])

    checks = {"s3": deps.store.ping(), "sqs": queue(), "database": deps.ledger.ping()}
    results: dict[str, str] = {}
    for name, check in checks.items():
        try:
            async with asyncio.timeout(3):
                await check
            results[name] = "ok"
        except (TimeoutError, StorageError, ClientError, BotoCoreError, *DATABASE_ERRORS) as exc:
            # the prober is unauthenticated: the error text (hosts, names) goes to the log only
            log.warning("readiness check failed", check=name, error=f"{type(exc).__name__}: {exc}"[:300])
            results[name] = "unavailable"
    ready = all(value == "ok" for value in results.values())
    return Readiness(ready, Health(status="ready" if ready else "not_ready", checks=results).model_dump())
