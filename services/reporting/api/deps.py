"""FastAPI dependencies: bearer-token roles, the repository, common query parameters."""

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Annotated

from fastapi import Depends, HTTPException, Query, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from services.reporting.adapters.repository import Filters, ReportingRepository
from services.reporting.domain import InvalidQuery, check_range, widen_to_rollup


class Role(StrEnum):
    ANALYST = "analyst"
    ADMIN = "admin"


@dataclass(frozen=True)
class Tokens:
    analyst: str
    admin: str

    def role_of(self, token: str) -> Role | None:
        # Compare against both, always, so timing does not tell which role a guess was close to.
        is_admin = secrets.compare_digest(token.encode(), self.admin.encode())
        is_analyst = secrets.compare_digest(token.encode(), self.analyst.encode())
        if is_admin:
            return Role.ADMIN
        return Role.ANALYST if is_analyst else None


_bearer = HTTPBearer(auto_error=False, description="REPORTING_ANALYST_TOKEN (read) or REPORTING_ADMIN_TOKEN (write)")


def role(request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]) -> Role:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "send `Authorization: Bearer <token>` with the analyst or admin token",
            headers={"WWW-Authenticate": "Bearer"},
        )
    tokens: Tokens = request.app.state.tokens
    found = tokens.role_of(credentials.credentials)
    if found is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED, "token not recognised", headers={"WWW-Authenticate": "Bearer"}
        )
    return found


def reader(found: Annotated[Role, Depends(role)]) -> Role:
    return found


def writer(found: Annotated[Role, Depends(role)]) -> Role:
    if found is not Role.ADMIN:
        raise HTTPException(
            status.HTTP_403_FORBIDDEN, "this action needs the admin token; the analyst role is read-only"
        )
    return found


def repository(request: Request) -> ReportingRepository:
    repo: ReportingRepository = request.app.state.repository
    return repo


# PostgreSQL text cannot hold NUL, and no id has control characters: refuse them as 422, not a 500.
PRINTABLE = r"^[^\x00-\x1f\x7f]+$"


def filters(
    site_id: Annotated[str | None, Query(max_length=128, pattern=PRINTABLE, description="Only this site.")] = None,
    zone_id: Annotated[str | None, Query(max_length=128, pattern=PRINTABLE, description="Only this zone.")] = None,
    camera_id: Annotated[str | None, Query(max_length=128, pattern=PRINTABLE, description="Only this camera.")] = None,
) -> Filters:
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
Reader = Annotated[Role, Depends(reader)]
Writer = Annotated[Role, Depends(writer)]
FiltersDep = Annotated[Filters, Depends(filters)]
RangeDep = Annotated[TimeRange, Depends(time_range)]
