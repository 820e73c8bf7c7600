"""Ingest's admin API (`/v1/admin/cameras...`): register cameras, rotate keys, set zones; every change audited.

The deploy's public listener forwards none of these paths (deploy/cfn/services.py, PUBLIC_PATHS): they answer
404 there and are reached only inside the network.
"""

from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Query, Request

from services.ingest.adapters.db import DATABASE_ERRORS, CameraExists
from services.ingest.api_errors import check_equipment, errors
from services.ingest.deps import IngestDeps
from services.ingest.domain import Camera, IngestError, Reason, hash_api_key, new_api_key
from services.ingest.handlers import unavailable
from services.ingest.schemas import CameraCreate, CameraOut, CameraWithKey, LocationOverride
from shared.access.http import NOT_FOUND, Access, Require, audit_change, lookup, query
from shared.access.http import body as body_site
from shared.access.roles import Principal, Role
from shared.contracts import ZoneLayout
from shared.logging import get_logger

log = get_logger(__name__)


def check_zones(settings: Any, layout: ZoneLayout | None) -> None:
    for zone in layout.zones if layout is not None else []:
        check_equipment(settings, zone.required_equipment, where=f"zone {zone.zone_id} required_equipment")


def register_admin_routes(app: FastAPI, deps: IngestDeps, access: Access) -> None:
    """Each route names the role it needs and where the site comes from (docs/access.md); every change is
    audited."""
    repository = deps.camera_repository
    router = APIRouter(prefix="/v1/admin/cameras", tags=["admin"])

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

    @router.post("", status_code=201, response_model=CameraWithKey, responses=errors(401, 409, 422, 503))
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

    @router.get("", response_model=list[CameraOut], responses=errors(401, 503))
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

    @router.get("/{camera_id}", response_model=CameraOut, responses=errors(401, 404, 503))
    async def get_camera(camera_id: str, who: Reader) -> CameraOut:
        try:
            camera = await repository.get(camera_id)
        except DATABASE_ERRORS as exc:
            raise unavailable("the camera database", exc, deps.settings.retry_after_s) from exc
        if camera is None:
            raise IngestError(Reason.camera_not_found, f"no camera {camera_id}")
        return CameraOut.of(camera)

    @router.put("/{camera_id}/zones", response_model=CameraOut, responses=errors(401, 404, 422, 503))
    async def put_zones(camera_id: str, body: ZoneLayout, who: Changer) -> CameraOut:
        """Replace the camera's polygon zones (`{"zones": []}` removes them); frames posted from now on carry them."""
        check_zones(deps.settings, body)
        camera = await changed(camera_id, zones=body.model_dump(mode="json") if body.zones else None)
        log.info("camera zones set", camera_id=camera_id, zones=[zone.zone_id for zone in body.zones])
        await audited(who, "zones.set", camera, zones=[zone.zone_id for zone in body.zones])
        return CameraOut.of(camera)

    @router.post("/{camera_id}/rotate-key", response_model=CameraWithKey, responses=errors(401, 404, 503))
    async def rotate_key(camera_id: str, who: Changer) -> CameraWithKey:
        """Issue a new API key; the old one stops working (within INGEST_CAMERA_CACHE_TTL_S on other workers)."""
        api_key = new_api_key()
        camera = await changed(camera_id, key_hash=hash_api_key(api_key))
        log.info("camera key rotated", camera_id=camera_id)
        await audited(who, "camera.rotate_key", camera)
        return CameraWithKey(camera=CameraOut.of(camera), api_key=api_key)

    def switch(action: str, *, enabled: bool, description: str | None) -> None:
        """`POST .../disable` and `.../enable`: one route each, the same shape."""

        async def route(camera_id: str, who: Changer) -> CameraOut:
            log.info(f"camera {action}d", camera_id=camera_id)
            return CameraOut.of(await audited(who, f"camera.{action}", await changed(camera_id, enabled=enabled)))

        router.post(
            f"/{{camera_id}}/{action}",
            response_model=CameraOut,
            responses=errors(401, 404, 503),
            name=f"{action}_camera",
            description=description,
        )(route)

    switch("disable", enabled=False, description="Refuse the camera's frames with 403 from now on.")
    switch("enable", enabled=True, description=None)

    @router.put("/{camera_id}/location-override", response_model=CameraOut, responses=errors(401, 404, 422, 503))
    async def set_location_override(camera_id: str, body: LocationOverride, who: Changer) -> CameraOut:
        """Allow (or stop allowing) this camera's frames to name another site / zone than its registration."""
        log.info("camera location override changed", camera_id=camera_id, allowed=body.allowed)
        camera = await changed(camera_id, allow_location_override=body.allowed)
        return CameraOut.of(await audited(who, "camera.location_override", camera, allowed=body.allowed))

    app.include_router(router)
