"""FastAPI dependencies: who may call (roles per site), the repository, common query parameters."""

from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import Depends, HTTPException, Query, Request
from sqlalchemy.ext.asyncio import AsyncEngine

from services.reporting.adapters.repository import Filters, ReportingRepository
from services.reporting.adapters.service_client import ServiceRefused, ServiceUnavailable
from services.reporting.domain import InvalidQuery, check_range, widen_to_rollup
from shared.access.http import GLOBAL, SIGNED_IN, Access, Require, path, principal_of, query, service_tokens
from shared.access.roles import Principal, Role
from shared.logging import get_logger

log = get_logger(__name__)


@dataclass(frozen=True)
class Tokens:
    """The service tokens (machine use): the analyst token reads every site, the admin token also writes."""

    analyst: str
    admin: str

    def principals(self) -> dict[str, Principal]:
        return service_tokens(
            {self.analyst: ("reporting-analyst", Role.ANALYST), self.admin: ("reporting-admin", Role.ADMIN)}
        )


# Who may call each route: the role, and where the site it acts on comes from (docs/access.md).
Reader = Annotated[Principal, Depends(Require(Role.VIEWER, query()))]
Exporter = Annotated[Principal, Depends(Require(Role.ANALYST, query()))]
SiteWriter = Annotated[Principal, Depends(Require(Role.ADMIN, path()))]
GlobalAdmin = Annotated[Principal, Depends(Require(Role.ADMIN, GLOBAL))]
SignedIn = Annotated[Principal, Depends(Require(Role.VIEWER, SIGNED_IN))]


def access_of(request: Request) -> Access:
    """The app's Access, with the database that user accounts and the audit trail live in (else 503)."""
    access: Access = request.app.state.access
    if access.engine is None:
        raise HTTPException(503, "user accounts and the audit trail need the database: this app was built without one")
    return access


def access_engine(request: Request) -> AsyncEngine:
    engine = access_of(request).engine
    assert engine is not None  # access_of refused an app without one
    return engine


def repository(request: Request) -> ReportingRepository:
    repo: ReportingRepository = request.app.state.repository
    return repo


# PostgreSQL text cannot hold NUL, and no id has control characters: refuse them as 422, not a 500.
PRINTABLE = r"^[^\x00-\x1f\x7f]+$"


def filters(
    request: Request,
    site_id: Annotated[
        str | None,
        Query(max_length=128, pattern=PRINTABLE, description="Only this site (a user with roles on several sites "
              "names one; a global role may leave it out for every site)."),
    ] = None,
    zone_id: Annotated[str | None, Query(max_length=128, pattern=PRINTABLE, description="Only this zone.")] = None,
    camera_id: Annotated[str | None, Query(max_length=128, pattern=PRINTABLE, description="Only this camera.")] = None,
) -> Filters:
    if site_id is None:  # the route's Require checked a named site; an unnamed one is the caller's only site
        sites = principal_of(request).sites(Role.VIEWER)
        if sites is not None:
            if len(sites) != 1:
                raise HTTPException(422, f"name the site: add site_id=<one of {sorted(sites)}>")
            (site_id,) = sites
    return Filters(site_id=site_id, zone_id=zone_id, camera_id=camera_id)


@dataclass(frozen=True)
class TimeRange:
    start: datetime
    end: datetime


def time_range(
    start: Annotated[
        datetime | None, Query(description="Start (inclusive, with UTC offset); default: end minus 30 days.")
    ] = None,
    end: Annotated[datetime | None, Query(description="End (exclusive, with UTC offset); default: now.")] = None,
) -> TimeRange:
    try:
        end = end or datetime.now(UTC)
        start = start or end - timedelta(days=30)
        check_range(start, end)
        return TimeRange(*widen_to_rollup(start.astimezone(UTC), end.astimezone(UTC)))
    except InvalidQuery as exc:
        raise HTTPException(422, str(exc)) from exc
    except OverflowError as exc:
        raise HTTPException(422, "start / end out of the supported range (years 1..9999)") from exc


Repo = Annotated[ReportingRepository, Depends(repository)]
FiltersDep = Annotated[Filters, Depends(filters)]
RangeDep = Annotated[TimeRange, Depends(time_range)]


def upstream_error(
    exc: ServiceRefused | ServiceUnavailable, *, service: str, passed: Collection[int] = (404, 409, 422)
) -> HTTPException:
    """What the caller gets when a service reporting calls for them (ingest, the notifier) failed: 503 to retry
    when it did not answer, else its refusal (statuses in `passed` kept, others as 422) with its message."""
    if isinstance(exc, ServiceUnavailable):
        log.warning("service unavailable", service=service, error=str(exc)[:300])
        return HTTPException(503, f"{service} is not reachable; try again in a moment", {"Retry-After": "5"})
    return HTTPException(exc.status if exc.status in passed else 422, f"{service} refused: {exc.message}")
