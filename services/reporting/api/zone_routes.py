"""The zone editor's API: cameras and their zones (kept by ingest, reached through its admin API), a camera's
face-blurred snapshot, and the equipment a zone may require.

Reading takes the viewer role on the camera's site; saving zones takes the admin role there (docs/access.md);
every snapshot view is an audit record. Ingest's admin token stays in reporting (`REPORTING_INGEST_ADMIN_TOKEN`);
the browser never sees it.
"""

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, Response

from services.reporting.adapters.ingest_admin import IngestAdmin, IngestRefused, IngestUnavailable
from services.reporting.adapters.snapshots import Snapshots
from services.reporting.api.deps import PRINTABLE, upstream_error
from services.reporting.api.schemas import EditorCameraOut, EquipmentOut, error_responses
from shared.access.http import ANY, NOT_FOUND, Require, audit_change, lookup, query
from shared.access.roles import Principal, Role
from shared.contracts import ZoneLayout
from shared.equipment import Catalogue, UnknownEquipment
from shared.logging import get_logger
from shared.s3 import StorageError

log = get_logger(__name__)

router = APIRouter(
    prefix="/api/v1",
    responses=error_responses(
        forbidden="The caller lacks the role this needs on the camera's site.",
        not_found="Unknown camera, no snapshot yet, or the zone editor is off.",
        unavailable="Ingest or S3 did not answer: retry later.",
    ),
)
CameraId = Annotated[
    str, Path(max_length=128, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$", description="Camera id at ingest.")
]


def _ingest(request: Request) -> IngestAdmin:
    ingest: IngestAdmin | None = request.app.state.ingest
    if ingest is None:
        raise HTTPException(
            404, "the zone editor is off: set REPORTING_INGEST_URL and REPORTING_INGEST_ADMIN_TOKEN and restart"
        )
    return ingest


async def camera_site(request: Request) -> Any:
    """The site of the camera the path names, as ingest registered it (NOT_FOUND: the route answers 404)."""
    camera_id = request.path_params.get("camera_id")
    try:
        return (await _ingest(request).camera(str(camera_id))).get("site_id") or NOT_FOUND
    except IngestRefused:
        return NOT_FOUND
    except IngestUnavailable as exc:
        raise _ingest_error(exc) from exc


AnyViewer = Annotated[Principal, Depends(Require(Role.VIEWER, ANY))]
SiteViewer = Annotated[Principal, Depends(Require(Role.VIEWER, query()))]
CameraViewer = Annotated[Principal, Depends(Require(Role.VIEWER, lookup(camera_site)))]
CameraAdmin = Annotated[Principal, Depends(Require(Role.ADMIN, lookup(camera_site)))]


def _camera(raw: dict[str, object]) -> EditorCameraOut:
    return EditorCameraOut.model_validate({name: raw.get(name) for name in EditorCameraOut.model_fields})


def _ingest_error(exc: IngestRefused | IngestUnavailable) -> HTTPException:
    return upstream_error(exc, service="ingest's admin API")


@router.get("/equipment", response_model=EquipmentOut, summary="Equipment names a zone may require")
async def equipment(request: Request, _: AnyViewer) -> EquipmentOut:
    catalogue: Catalogue = request.app.state.catalogue
    return EquipmentOut(names=list(catalogue.names), custom=sorted(catalogue.custom))


@router.get("/cameras", response_model=list[EditorCameraOut], summary="Cameras and their zones (from ingest)")
async def cameras(
    request: Request,
    principal: SiteViewer,
    site_id: Annotated[
        str | None, Query(max_length=128, pattern=PRINTABLE, description="Only this site's cameras.")
    ] = None,
) -> list[EditorCameraOut]:
    """The cameras of the caller's sites (or of `site_id`)."""
    try:
        found = [_camera(raw) for raw in await _ingest(request).cameras()]
    except (IngestRefused, IngestUnavailable) as exc:
        raise _ingest_error(exc) from exc
    sites = principal.sites(Role.VIEWER)
    return [c for c in found if (site_id is None or c.site_id == site_id) and (sites is None or c.site_id in sites)]


@router.get(
    "/cameras/{camera_id}/snapshot",
    response_class=Response,
    responses={200: {"content": {"image/jpeg": {}}, "description": "The camera's latest face-blurred frame."}},
    summary="The camera's latest frame, faces blurred (never the raw frame)",
)
async def snapshot(camera_id: CameraId, request: Request, principal: CameraViewer) -> Response:
    snapshots: Snapshots | None = request.app.state.snapshots
    try:
        found = None if snapshots is None else await snapshots.latest(camera_id)
    except StorageError as exc:
        log.warning("snapshot not readable", camera_id=camera_id, error=str(exc)[:300])
        raise HTTPException(503, "the snapshot store (S3) did not answer; try again in a moment") from exc
    if found is None:
        raise HTTPException(
            404, f"no analysed frame of camera {camera_id} yet: post a frame; the snapshot follows its analysis"
        )
    await audit_change(
        request.app.state.access, principal, "frame.view", site_id=await camera_site(request),
        target=f"camera:{camera_id}", details={"frame_id": found.frame_id, "blurred": True},
    )
    headers = {"Cache-Control": "no-store", "X-Frame-Id": found.frame_id, "X-Captured-At": found.captured_at}
    return Response(found.image, media_type="image/jpeg", headers=headers)


@router.put(
    "/cameras/{camera_id}/zones",
    response_model=EditorCameraOut,
    summary="Replace a camera's polygon zones (admin); frames posted from now on carry them",
)
async def put_zones(
    camera_id: CameraId, body: ZoneLayout, request: Request, principal: CameraAdmin
) -> EditorCameraOut:
    catalogue: Catalogue = request.app.state.catalogue
    try:
        for zone in body.zones:
            catalogue.check(zone.required_equipment, where=f"zone {zone.zone_id} required_equipment")
    except UnknownEquipment as exc:
        raise HTTPException(422, str(exc)) from exc
    try:
        camera = _camera(await _ingest(request).put_zones(camera_id, body))
    except (IngestRefused, IngestUnavailable) as exc:
        raise _ingest_error(exc) from exc
    await audit_change(
        request.app.state.access, principal, "zone.update", site_id=camera.site_id, target=f"camera:{camera_id}",
        details={"zones": [zone.zone_id for zone in body.zones]},
    )
    log.info("camera zones saved", camera_id=camera_id, zones=[zone.zone_id for zone in body.zones])
    return camera
