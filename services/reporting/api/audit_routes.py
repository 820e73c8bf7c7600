"""The audit trail, read by admins: records filtered by time, actor, action and site, newest first, paged by
`before_seq`; and the chain's `verify` (global admin). The records are written by every service
(shared.access.audit); a site admin reads the records of their sites, a global admin every record."""

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import AwareDatetime, Field

from services.reporting.api.deps import PRINTABLE, GlobalAdmin, access_engine
from services.reporting.api.schemas import Schema, error_responses
from shared.access import audit
from shared.access.http import Require, query
from shared.access.roles import Principal, Role

router = APIRouter(
    prefix="/api/v1",
    responses=error_responses(forbidden="The caller is not an admin of the site asked for (or, to verify, of every "
                              "site)."),
)


class AuditRecordOut(Schema):
    seq: int = Field(description="Position in the chain: 1, 2, 3... without gaps.")
    occurred_at: datetime = Field(description="When it happened (UTC).")
    actor: str = Field(description="user:<name> or service:<token name>.")
    action: str = Field(description="What was done, e.g. auth.login, rule.update, camera.disable.")
    site_id: str | None = Field(description="The site it concerns; null: no one site (sign-ins, users).")
    target: str | None = Field(description="What it was done to, e.g. rule:7, camera:cam-1.")
    details: dict[str, Any] = Field(description="What changed (never a password, secret or token).")
    prev_hash: str = Field(description="The previous record's hash (64 zeros for the first).")
    hash: str = Field(description="SHA-256 over prev_hash and this record's fields.")


class VerifyOut(Schema):
    ok: bool = Field(description="Whether the whole chain is intact.")
    records: int = Field(description="Records verified (up to the first broken one).")
    head_seq: int = Field(description="Last record of the valid chain: keep it elsewhere to detect tail deletion.")
    head_hash: str = Field(description="Its hash.")
    problem: str | None = Field(description="What is wrong, if anything.")
    bad_seq: int | None = Field(description="The first record that does not verify.")


SiteAuditor = Annotated[Principal, Depends(Require(Role.ADMIN, query()))]


@router.get("/audit", response_model=list[AuditRecordOut], summary="The audit trail, newest first")
async def read_audit(
    who: SiteAuditor,
    request: Request,
    site_id: Annotated[str | None, Query(max_length=128, pattern=PRINTABLE, description="Only this site.")] = None,
    action: Annotated[str | None, Query(max_length=64, pattern=PRINTABLE,
                                        description="e.g. rule.update; ending in '.', a prefix (incident.).")] = None,
    actor: Annotated[str | None, Query(max_length=200, pattern=PRINTABLE,
                                       description="user:<name> or service:<token name>.")] = None,
    start: Annotated[AwareDatetime | None, Query(description="From (inclusive, with UTC offset).")] = None,
    end: Annotated[AwareDatetime | None, Query(description="To (exclusive, with UTC offset).")] = None,
    before_seq: Annotated[int | None, Query(ge=1, le=2**63 - 1, description="Page: records before this seq.")] = None,
    limit: Annotated[int, Query(ge=1, le=1000, description="Most records returned.")] = 100,
) -> list[AuditRecordOut]:
    """A site admin reads the records of their sites; a global admin every record (sign-ins, users too).
    The next page: `before_seq` = the smallest `seq` of this one."""
    engine = access_engine(request)
    rows = await audit.read(engine, sites=who.sites(Role.ADMIN), site_id=site_id, action=action, actor=actor,
                            since=start, until=end, before_seq=before_seq, limit=limit)
    return [AuditRecordOut(**row) for row in rows]


@router.get("/audit/verify", response_model=VerifyOut, summary="Check the audit chain (global admin)")
async def verify_audit(_: GlobalAdmin, request: Request) -> VerifyOut:
    engine = access_engine(request)
    verdict = await audit.verify(engine)
    return VerifyOut(**verdict.__dict__)
