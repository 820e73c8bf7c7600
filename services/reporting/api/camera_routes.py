"""Camera management for admins, through reporting: register a camera on a site, rotate its key, disable and
enable it. Ingest keeps the cameras; reporting checks the caller (admin on the body's site to register, on the
camera's site as ingest has it otherwise) and calls ingest's admin API server-side with ingest's admin token,
which the browser never holds. The list is the zone editor's `GET /api/v1/cameras`.

Ingest records each change under its admin token (`service:ingest-admin`); it does not take an acting user
(the notifier does, `X-PPE-Acting-User`), so reporting writes the same `camera.*` record in the user's name, as
the zone editor does for zones (docs/access.md, "Pages").
"""

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request

from services.reporting.adapters.ingest_admin import IngestRefused, IngestUnavailable
from services.reporting.api.schemas import CameraIn, CameraKeyOut, EditorCameraOut, error_responses
from services.reporting.api.zone_routes import CameraId, camera_site, editor_camera, ingest_error, ingest_of
from shared.access.http import Require, audit_change, body, lookup
from shared.access.roles import Principal, Role
from shared.logging import get_logger

log = get_logger(__name__)

router = APIRouter(
    prefix="/api/v1/cameras",
    responses=error_responses(
        forbidden="The caller is not an admin of the camera's site (of the body's site, to register one).",
        not_found="Unknown camera, or the link to ingest is off (REPORTING_INGEST_URL unset).",
        unavailable="Ingest or the audit trail did not answer: retry later.",
    ),
)
NewCameraAdmin = Annotated[Principal, Depends(Require(Role.ADMIN, body()))]
CameraAdmin = Annotated[Principal, Depends(Require(Role.ADMIN, lookup(camera_site)))]


async def _audited(request: Request, who: Principal, action: str, camera: EditorCameraOut, **details: Any) -> None:
    await audit_change(request.app.state.access, who, action, site_id=camera.site_id,
                       target=f"camera:{camera.camera_id}", details=details)
    log.info("camera changed through the console", action=action, camera_id=camera.camera_id, actor=who.name)


def _with_key(raw: dict[str, Any]) -> CameraKeyOut:
    return CameraKeyOut(camera=editor_camera(raw["camera"]), api_key=str(raw["api_key"]))


@router.post("", status_code=201, response_model=CameraKeyOut,
             summary="Register a camera on a site (admin of the site); its API key is shown once")
async def register(camera: CameraIn, request: Request, who: NewCameraAdmin) -> CameraKeyOut:
    try:
        created = _with_key(await ingest_of(request).create_camera(camera.model_dump(mode="json")))
    except (IngestRefused, IngestUnavailable) as exc:
        raise ingest_error(exc) from exc
    await _audited(request, who, "camera.create", created.camera, zone_id=created.camera.zone_id)
    return created


@router.post("/{camera_id}/rotate-key", response_model=CameraKeyOut,
             summary="Issue a new API key (admin of the camera's site); the old key stops working")
async def rotate_key(camera_id: CameraId, request: Request, who: CameraAdmin) -> CameraKeyOut:
    try:
        rotated = _with_key(await ingest_of(request).rotate_key(camera_id))
    except (IngestRefused, IngestUnavailable) as exc:
        raise ingest_error(exc) from exc
    await _audited(request, who, "camera.rotate_key", rotated.camera)
    return rotated


async def _set_enabled(request: Request, who: Principal, camera_id: str, enabled: bool) -> EditorCameraOut:
    try:
        camera = editor_camera(await ingest_of(request).set_enabled(camera_id, enabled))
    except (IngestRefused, IngestUnavailable) as exc:
        raise ingest_error(exc) from exc
    await _audited(request, who, "camera.enable" if enabled else "camera.disable", camera)
    return camera


@router.post("/{camera_id}/disable", response_model=EditorCameraOut,
             summary="Disable a camera (admin of its site): ingest refuses its frames with 403 from now on")
async def disable(camera_id: CameraId, request: Request, who: CameraAdmin) -> EditorCameraOut:
    return await _set_enabled(request, who, camera_id, False)


@router.post("/{camera_id}/enable", response_model=EditorCameraOut,
             summary="Enable a disabled camera again (admin of its site)")
async def enable(camera_id: CameraId, request: Request, who: CameraAdmin) -> EditorCameraOut:
    return await _set_enabled(request, who, camera_id, True)
