"""Digest downloads (PDF, HTML) and the caller's own digest subscriptions.

A digest is one site's daily or weekly report (docs/reporting.md, "Digests"): viewer of the site to download
or subscribe; every download is an audit record (`digest.download`), like a frame view.
"""

import asyncio
from datetime import UTC, date, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from services.reporting.adapters.digest_repository import DigestRepository
from services.reporting.api.deps import PRINTABLE, SignedIn
from services.reporting.api.headers import attachment
from services.reporting.api.schemas import ErrorOut, InvalidOut
from services.reporting.digest import render
from services.reporting.digest.figures import Digest, Period, latest_end_day
from services.reporting.digest.mail import filename
from shared.access.http import Require, audit_change, path
from shared.access.roles import Principal, Role

router = APIRouter(
    prefix="/api/v1/digests",
    responses={
        401: {"model": ErrorOut, "description": "Not signed in, and no or an unknown bearer token."},
        403: {"model": ErrorOut, "description": "The caller lacks the viewer role on the site."},
        422: {"model": InvalidOut, "description": "Invalid parameters or body."},
    },
)
SiteViewer = Annotated[Principal, Depends(Require(Role.VIEWER, path()))]
SiteId = Annotated[str, Path(min_length=1, max_length=128, pattern=PRINTABLE, description="Site id.")]
PeriodParam = Annotated[Period, Query(description="daily: one local day; weekly: seven local days.")]
EndParam = Annotated[
    date | None,
    Query(description="Local day after the period (exclusive), YYYY-MM-DD; default: the latest complete period "
          "(weekly: Monday to Sunday)."),
]
EMAIL = r"^[^@\s\x00-\x1f\x7f]+@[^@\s\x00-\x1f\x7f]+\.[^@\s\x00-\x1f\x7f]+$"


class SubscriptionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: str = Field(max_length=254, pattern=EMAIL, description="Where the digest is sent.")


class SubscriptionOut(BaseModel):
    site_id: str = Field(description="Site of the digest.")
    period: Period = Field(description="daily or weekly.")
    email: str = Field(description="Where the digest is sent.")
    created_at: datetime = Field(description="When the subscription was made.")


def _digests(request: Request) -> DigestRepository:
    return DigestRepository(request.app.state.repository)


async def _digest(request: Request, site_id: str, period: Period, end: date | None) -> Digest:
    digests = _digests(request)
    timezone = await request.app.state.repository.site_timezone(site_id)
    end_day = end or latest_end_day(period, now=datetime.now(UTC), timezone=timezone)
    if end_day.year < 2 or end_day.year > 9998:
        raise HTTPException(422, "end out of the supported range (years 2..9998)")
    return await digests.digest(await digests.window(period, site_id=site_id, end_day=end_day))


async def _download(request: Request, who: Principal, digest: Digest, fmt: str, body: bytes, media: str) -> Response:
    span = digest.window
    await audit_change(request.app.state.access, who, "digest.download", site_id=span.site_id,
                       target=f"digest:{span.site_id}:{span.period.value}:{span.first_day.isoformat()}",
                       details={"format": fmt})
    name = filename(digest, fmt)
    return Response(body, media_type=media, headers={**attachment(name), "Cache-Control": "no-store"})


@router.get("/{site_id}.pdf", response_class=Response, summary="A site's daily or weekly digest as PDF",
            responses={200: {"content": {"application/pdf": {}}, "description": "The digest, charts as pictures."}})
async def digest_pdf(
    site_id: SiteId, who: SiteViewer, request: Request, period: PeriodParam = Period.WEEKLY, end: EndParam = None
) -> Response:
    digest = await _digest(request, site_id, period, end)
    body = await asyncio.to_thread(render.pdf, digest)
    return await _download(request, who, digest, "pdf", body, "application/pdf")


@router.get("/{site_id}.html", response_class=Response, summary="A site's daily or weekly digest as HTML",
            responses={200: {"content": {"text/html": {}}, "description": "One page, charts inline (data: URIs)."}})
async def digest_html(
    site_id: SiteId, who: SiteViewer, request: Request, period: PeriodParam = Period.WEEKLY, end: EndParam = None
) -> Response:
    digest = await _digest(request, site_id, period, end)
    body = (await asyncio.to_thread(render.html, digest)).encode()
    return await _download(request, who, digest, "html", body, "text/html; charset=utf-8")


@router.get("/subscriptions", response_model=list[SubscriptionOut], summary="The caller's digest subscriptions")
async def my_subscriptions(who: SignedIn, request: Request) -> list[SubscriptionOut]:
    if who.user_id is None:
        return []
    return [SubscriptionOut(**row) for row in await _digests(request).subscriptions_of(who.user_id)]


def _user_id(who: Principal) -> int:
    if who.user_id is None:
        raise HTTPException(422, "only a user can subscribe: a service token has no mailbox")
    return who.user_id


@router.put("/subscriptions/{site_id}/{period}", response_model=SubscriptionOut,
            summary="Subscribe the caller to a site's digest (replaces the address of an existing one)")
async def subscribe(
    site_id: SiteId,
    period: Annotated[Period, Path(description="daily or weekly.")],
    body: SubscriptionIn,
    who: SiteViewer,
    request: Request,
) -> SubscriptionOut:
    user_id = _user_id(who)
    digests = _digests(request)
    await digests.subscribe(user_id=user_id, site_id=site_id, period=period, email=body.email)
    await audit_change(request.app.state.access, who, "digest.subscribe", site_id=site_id,
                       target=f"digest:{site_id}:{period.value}", details={"email": body.email})
    rows = await digests.subscriptions_of(user_id)
    return next(SubscriptionOut(**row) for row in rows if row["site_id"] == site_id and row["period"] == period)


@router.delete("/subscriptions/{site_id}/{period}", status_code=204, response_class=Response,
               summary="Unsubscribe the caller (no role needed: someone who lost the site can still unsubscribe)")
async def unsubscribe(
    site_id: SiteId, period: Annotated[Period, Path(description="daily or weekly.")], who: SignedIn, request: Request
) -> Response:
    if who.user_id is not None and await _digests(request).unsubscribe(
        user_id=who.user_id, site_id=site_id, period=period
    ):
        await audit_change(request.app.state.access, who, "digest.unsubscribe", site_id=site_id,
                           target=f"digest:{site_id}:{period.value}")
    return Response(status_code=204)
