"""The web UI's pages: one Jinja2 shell (templates/page.html: head, navigation, status line, scripts) that
each page extends. The zone editor and the incident console hold no data and open for anyone (their API calls
are checked); the admin pages (audit trail, users, rules and channels) need the admin role on some site, so a
viewer gets 403 for the page itself, not only for its data."""

from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape

from shared.access.http import ANY, Require
from shared.access.roles import Principal, Role

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"
_env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html"]), auto_reload=False)

router = APIRouter(include_in_schema=False)
OPEN_PAGES = frozenset({"/zones", "/incidents"})
AnyAdmin = Annotated[Principal, Depends(Require(Role.ADMIN, ANY))]


def render(page: str, *, title: str, script: str, styles: tuple[str, ...] = ()) -> HTMLResponse:
    html = _env.get_template(f"{page}.html").render(title=title, script=script, styles=styles)
    return HTMLResponse(html, headers={"Cache-Control": "no-store"})


@router.get("/zones")
async def zone_editor() -> HTMLResponse:
    return render("zones", title="Camera zones", script="zones.js", styles=("zones.css",))


@router.get("/incidents")
async def incident_console() -> HTMLResponse:
    return render("incidents", title="Incidents", script="incidents.js", styles=("incidents.css",))


@router.get("/audit")
async def audit_page(_: AnyAdmin) -> HTMLResponse:
    return render("audit", title="Audit trail", script="audit.js", styles=("admin.css",))


@router.get("/users")
async def users_page(_: AnyAdmin) -> HTMLResponse:
    return render("users", title="Users", script="users.js", styles=("admin.css",))


@router.get("/notifications")
async def notifications_page(_: AnyAdmin) -> HTMLResponse:
    return render("notifications", title="Rules and channels", script="notifications.js", styles=("admin.css",))
