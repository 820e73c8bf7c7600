"""HTTP API of ingest (FastAPI): thin routes over FrameIntake, the camera directory and the admin repository."""

import asyncio
import math
import os
import time
from dataclasses import dataclass
from typing import Annotated, Any

from botocore.exceptions import BotoCoreError, ClientError
from fastapi import Depends, FastAPI, Query, Request, Response, Security
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import APIKeyHeader
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest, multiprocess
from pydantic import ValidationError
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.ingest.adapters.cameras import CameraDirectory
from services.ingest.adapters.db import (
    DATABASE_ERRORS,
    CameraExists,
    CameraRepository,
    FrameLedger,
    SharedRateLimiter,
)
from services.ingest.config import IngestSettings
from services.ingest.domain import Camera, IngestError, RateLimiter, Reason, hash_api_key, new_api_key
from services.ingest.handlers import FrameIntake, unavailable
from services.ingest.schemas import (
    CameraCreate,
    CameraOut,
    CameraWithKey,
    ErrorBody,
    FrameAccepted,
    FrameMetadata,
    FrameQuery,
    Health,
    LocationOverride,
)
from shared.access.http import NOT_FOUND, Access, Forbidden, Require, audit_change, lookup, query, service_tokens
from shared.access.http import body as body_site
from shared.access.roles import Principal, Role
from shared.contracts import ZoneLayout
from shared.equipment import UnknownEquipment
from shared.http_guard import Guard, Refusal
from shared.logging import get_logger
from shared.s3 import FrameStore, StorageError
from shared.sqs import QueueResolver

log = get_logger(__name__)

REQUESTS = Counter("ingest_requests_total", "HTTP requests by route and status.", ["method", "route", "status"])
REJECTS = Counter("ingest_rejects_total", "Refused requests by reason.", ["reason"])
ACCEPTED = Counter("ingest_frames_accepted_total", "Frames accepted (duplicate = same client_frame_id).", ["duplicate"])
BYTES = Counter("ingest_bytes_total", "Image bytes by outcome.", ["outcome"])
LATENCY = Histogram(
    "ingest_request_seconds",
    "Request latency by route.",
    ["route"],
    buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)

FRAME_QUEUE = "frames-received"
IMAGE_TYPES = ("image/jpeg", "image/png", "application/octet-stream")


@dataclass
class IngestDeps:
    """Everything the app talks to, built by main.py (or a test) in a fixed order."""

    settings: IngestSettings
    cameras: CameraDirectory
    camera_repository: CameraRepository
    ledger: FrameLedger
    store: FrameStore
    resolver: QueueResolver
    sqs: Any
    intake: FrameIntake
    limiter: RateLimiter | SharedRateLimiter
    access: Access | None = None  # None: only INGEST_ADMIN_TOKEN (tests of the camera side)


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


class MetricsMiddleware:
    """Counts and times every request by its route template (not its raw path: bounded label values)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route = getattr(scope.get("route"), "path", "unmatched")
            REQUESTS.labels(scope["method"], route, str(status)).inc()
            LATENCY.labels(route).observe(time.perf_counter() - started)


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


def validation_error(exc: ValidationError | RequestValidationError) -> IngestError:
    details = [
        {"loc": [str(part) for part in item.get("loc", ())], "msg": str(item.get("msg", "")), "type": item.get("type")}
        for item in exc.errors()
    ]
    error = IngestError(Reason.invalid_request, "invalid request fields: see details, fix them and resend")
    error.extra["details"] = jsonable_encoder(details)
    return error


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
    app.add_middleware(MetricsMiddleware)
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
            intake = await deps.intake.accept(camera, metadata, data)
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
    register_health_routes(app, deps)
    return app


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


def check_equipment(settings: Any, names: Any, *, where: str) -> None:
    """Refuse equipment names that are neither Rekognition types nor in PPE_CUSTOM_EQUIPMENT (422)."""
    try:
        settings.catalogue().check(names, where=where)
    except UnknownEquipment as exc:
        raise IngestError(Reason.invalid_request, str(exc)) from exc


def check_zones(settings: Any, layout: ZoneLayout | None) -> None:
    for zone in layout.zones if layout is not None else []:
        check_equipment(settings, zone.required_equipment, where=f"zone {zone.zone_id} required_equipment")


def register_admin_routes(app: FastAPI, deps: IngestDeps, access: Access) -> None:
    """Each route names the role it needs and where the site comes from (docs/access.md); every change is
    audited."""
    repository = deps.camera_repository

    async def camera_site(request: Request) -> object:
        try:
            camera = await repository.get(request.path_params["camera_id"])
        except DATABASE_ERRORS as exc:
            raise unavailable("the camera database", exc, deps.settings.retry_after_s) from exc
        return NOT_FOUND if camera is None else camera.site_id

    Reader = Annotated[Principal, Depends(Require(Role.VIEWER, lookup(camera_site)))]
    Changer = Annotated[Principal, Depends(Require(Role.ADMIN, lookup(camera_site)))]

    async def audited(who: Principal, action: str, camera: Camera, **details: Any) -> Camera:
        await access_audit(who, action, camera.site_id, camera.camera_id, details)
        return camera

    async def access_audit(who: Principal, action: str, site_id: str, camera_id: str, details: Any) -> None:
        try:
            await audit_change(access, who, action, site_id=site_id, target=f"camera:{camera_id}", details=details)
        except DATABASE_ERRORS as exc:
            raise unavailable("the audit trail (PostgreSQL)", exc, deps.settings.retry_after_s) from exc

    async def changed(camera_id: str, **values: Any) -> Camera:
        try:
            camera = await repository.update(camera_id, **values)
        except DATABASE_ERRORS as exc:
            raise unavailable("the camera database", exc, deps.settings.retry_after_s) from exc
        if camera is None:
            raise IngestError(Reason.camera_not_found, f"no camera {camera_id}: create it first")
        deps.cameras.invalidate()
        return camera

    @app.post(
        "/v1/admin/cameras",
        status_code=201,
        response_model=CameraWithKey,
        responses=errors(401, 409, 422, 503),
        tags=["admin"],
    )
    async def create_camera(
        body: CameraCreate, who: Annotated[Principal, Depends(Require(Role.ADMIN, body_site()))]
    ) -> CameraWithKey:
        """Register a camera; the response holds its API key (shown once)."""
        check_equipment(deps.settings, body.required_ppe, where="required_ppe")
        check_zones(deps.settings, body.zones)
        api_key = new_api_key()
        camera = Camera(
            camera_id=body.camera_id,
            site_id=body.site_id,
            zone_id=body.zone_id,
            required_ppe=tuple(body.required_ppe),
            min_confidence=body.min_confidence,
            key_hash=hash_api_key(api_key),
            enabled=True,
            rate_limit_per_s=body.rate_limit_per_s,
            sampling=body.sampling.model_dump(),
            zones=body.zones,
            allow_location_override=body.allow_location_override,
        )
        try:
            await repository.create(camera)
        except CameraExists as exc:
            raise IngestError(Reason.camera_exists, f"camera {body.camera_id} exists: rotate its key instead") from exc
        except DATABASE_ERRORS as exc:
            raise unavailable("the camera database", exc, deps.settings.retry_after_s) from exc
        log.info("camera registered", camera_id=camera.camera_id, site_id=camera.site_id)
        await audited(who, "camera.create", camera, zone_id=camera.zone_id, zones=body.zones is not None)
        return CameraWithKey(camera=CameraOut.of(camera), api_key=api_key)

    @app.get(
        "/v1/admin/cameras",
        response_model=list[CameraOut],
        responses=errors(401, 503),
        tags=["admin"],
    )
    async def list_cameras(
        who: Annotated[Principal, Depends(Require(Role.VIEWER, query()))],
        site_id: Annotated[str | None, Query(max_length=128, description="Only this site's cameras.")] = None,
    ) -> list[CameraOut]:
        """The cameras of the caller's sites (all of them for a global role)."""
        sites = who.sites(Role.VIEWER)
        try:
            return [
                CameraOut.of(camera) for camera in await repository.list()
                if (sites is None or camera.site_id in sites) and site_id in (None, camera.site_id)
            ]
        except DATABASE_ERRORS as exc:
            raise unavailable("the camera database", exc, deps.settings.retry_after_s) from exc

    @app.get(
        "/v1/admin/cameras/{camera_id}",
        response_model=CameraOut,
        responses=errors(401, 404, 503),
        tags=["admin"],
    )
    async def get_camera(camera_id: str, who: Reader) -> CameraOut:
        try:
            camera = await repository.get(camera_id)
        except DATABASE_ERRORS as exc:
            raise unavailable("the camera database", exc, deps.settings.retry_after_s) from exc
        if camera is None:
            raise IngestError(Reason.camera_not_found, f"no camera {camera_id}")
        return CameraOut.of(camera)

    @app.put(
        "/v1/admin/cameras/{camera_id}/zones",
        response_model=CameraOut,
        responses=errors(401, 404, 422, 503),
        tags=["admin"],
    )
    async def put_zones(camera_id: str, body: ZoneLayout, who: Changer) -> CameraOut:
        """Replace the camera's polygon zones (`{"zones": []}` removes them); frames posted from now on carry them."""
        check_zones(deps.settings, body)
        camera = await changed(camera_id, zones=body.model_dump(mode="json") if body.zones else None)
        log.info("camera zones set", camera_id=camera_id, zones=[zone.zone_id for zone in body.zones])
        await audited(who, "zones.set", camera, zones=[zone.zone_id for zone in body.zones])
        return CameraOut.of(camera)

    @app.post(
        "/v1/admin/cameras/{camera_id}/rotate-key",
        response_model=CameraWithKey,
        responses=errors(401, 404, 503),
        tags=["admin"],
    )
    async def rotate_key(camera_id: str, who: Changer) -> CameraWithKey:
        """Issue a new API key; the old one stops working (within INGEST_CAMERA_CACHE_TTL_S on other workers)."""
        api_key = new_api_key()
        camera = await changed(camera_id, key_hash=hash_api_key(api_key))
        log.info("camera key rotated", camera_id=camera_id)
        await audited(who, "camera.rotate_key", camera)
        return CameraWithKey(camera=CameraOut.of(camera), api_key=api_key)

    @app.post(
        "/v1/admin/cameras/{camera_id}/disable",
        response_model=CameraOut,
        responses=errors(401, 404, 503),
        tags=["admin"],
    )
    async def disable_camera(camera_id: str, who: Changer) -> CameraOut:
        """Refuse the camera's frames with 403 from now on."""
        log.info("camera disabled", camera_id=camera_id)
        return CameraOut.of(await audited(who, "camera.disable", await changed(camera_id, enabled=False)))

    @app.post(
        "/v1/admin/cameras/{camera_id}/enable",
        response_model=CameraOut,
        responses=errors(401, 404, 503),
        tags=["admin"],
    )
    async def enable_camera(camera_id: str, who: Changer) -> CameraOut:
        log.info("camera enabled", camera_id=camera_id)
        return CameraOut.of(await audited(who, "camera.enable", await changed(camera_id, enabled=True)))

    @app.put(
        "/v1/admin/cameras/{camera_id}/location-override",
        response_model=CameraOut,
        responses=errors(401, 404, 422, 503),
        tags=["admin"],
    )
    async def set_location_override(camera_id: str, body: LocationOverride, who: Changer) -> CameraOut:
        """Allow (or stop allowing) this camera's frames to name another site / zone than its registration."""
        log.info("camera location override changed", camera_id=camera_id, allowed=body.allowed)
        camera = await changed(camera_id, allow_location_override=body.allowed)
        return CameraOut.of(await audited(who, "camera.location_override", camera, allowed=body.allowed))


def register_health_routes(app: FastAPI, deps: IngestDeps) -> None:
    @app.get("/healthz", response_model=Health, tags=["ops"])
    async def healthz() -> Health:
        """The process is up (no dependency checks)."""
        return Health(status="ok")

    @app.get("/readyz", response_model=Health, responses={503: {"model": Health}}, tags=["ops"])
    async def readyz() -> JSONResponse:
        """Checks the frames bucket, the frames-received queue and PostgreSQL."""

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
        body = Health(status="ready" if ready else "not_ready", checks=results)
        return JSONResponse(body.model_dump(), status_code=200 if ready else 503)

    @app.get("/metrics", tags=["ops"], response_class=Response)
    async def metrics() -> Response:
        """Prometheus metrics."""
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):  # INGEST_WORKERS > 1: every worker's figures, summed
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]  # prometheus_client is untyped here
            return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
