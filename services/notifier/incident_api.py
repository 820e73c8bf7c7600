"""Incident routes: one incident with its history, and the operators' actions on it (docs/notifier.md).

Reading needs viewer on the incident's site, acting operator (docs/access.md's ladder). An action is one
transaction (services/notifier/review.py); the IncidentChanged it writes to the outbox is published right
after commit when the app has a publisher (the worker's), else by the outbox sweep.
"""

import re
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.datastructures import Headers
from starlette.types import Scope

from services.notifier import review
from services.notifier.adapters.incidents import IncidentRepository
from services.notifier.publishing import Outgoing, enqueue, publish_written
from shared.access import store
from shared.access.http import NOT_FOUND, Access, Require, lookup
from shared.access.roles import Principal, Role
from shared.logging import get_logger
from shared.sqs import Publisher

log = get_logger(__name__)

# Who acts, when reporting's incident console calls with the notifier's admin token (docs/access.md): the
# signed-in user reporting checked. Taken from that token only; anyone else sending it is refused.
ACTING_USER = "X-PPE-Acting-User"
ADMIN_TOKEN_NAME = "notifier-admin"  # the principal of NOTIFIER_ADMIN_TOKEN (api.notifier_tokens)
_USERNAME = re.compile(store.USERNAME_PATTERN)


def acting_accepts(access: Access) -> Callable[[Scope, Headers], Awaitable[bool]]:
    """The Guard's `accepts`: the admin token naming a user in X-PPE-Acting-User acts as that user on every route
    (rules and channels too): the checks see the token's role (reporting checked the user's), history and audit
    name the person. A malformed name leaves the token as it is (the incident routes then answer 400)."""

    async def accepts(scope: Scope, headers: Headers) -> bool:
        if not await access.accepts(scope, headers):
            return False
        principal: Principal = scope["state"]["principal"]
        name = headers.get(ACTING_USER)
        if name is not None and principal.kind == "service" and principal.name == ADMIN_TOKEN_NAME \
                and _USERNAME.match(name):
            scope["state"]["principal"] = Principal(name=name, kind="user", global_role=principal.global_role,
                                                    via="console")
        return True

    return accepts


def _acting(request: Request, principal: Principal) -> Principal:
    name = request.headers.get(ACTING_USER)
    if name is None or principal.via == "console":  # none, or the Guard resolved it (acting_accepts)
        return principal
    if principal.kind != "service" or principal.name != ADMIN_TOKEN_NAME:
        raise HTTPException(403, f"{ACTING_USER} is taken from the notifier's admin token only; leave it out")
    if not _USERNAME.match(name):
        raise HTTPException(400, f"{ACTING_USER} must be a user name (letters, digits, . _ @ -)")
    return Principal(name=name, kind="user", via="console")


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Note(_Body):
    note: str | None = Field(default=None, max_length=2000, description="Optional words kept in the history.")


class Assign(_Body):
    user: str | None = Field(max_length=128, description="User name to assign to (operator on the site); null: nobody.")


class Comment(_Body):
    text: str = Field(min_length=1, max_length=4000)


class FalsePositive(_Body):
    reason: str = Field(min_length=3, max_length=2000, description="Why it is not a violation (kept per camera).")


def add_incident_routes(app: FastAPI, *, engine: AsyncEngine, publisher: Publisher | None) -> None:
    async def incident_site(request: Request) -> object:
        async with engine.connect() as conn:
            row = await IncidentRepository(conn).site_of(request.path_params["incident_id"])
        return NOT_FOUND if row is None else row.site_id

    IncidentViewer = Annotated[Principal, Depends(Require(Role.VIEWER, lookup(incident_site)))]
    operator = Require(Role.OPERATOR, lookup(incident_site))

    async def acting_operator(request: Request, principal: Annotated[Principal, Depends(operator)]) -> Principal:
        return _acting(request, principal)

    IncidentOperator = Annotated[Principal, Depends(acting_operator)]

    async def run(incident_id: str, action: review.Action, principal: Principal, details: dict[str, Any]) -> Any:
        written: list[Outgoing] = []
        try:
            async with engine.begin() as conn:
                if action == "assign" and details["user"] is not None:
                    await _check_assignee(conn, incident_id, details["user"])
                done = await review.act(conn, incident_id, action, principal, details)
                if done.message is not None:
                    frame_id = done.message.frame_id
                    written.append(await enqueue(conn, done.message.camera_id, frame_id, done.message))
        except review.IncidentMissing as exc:
            raise HTTPException(404, f"no incident {incident_id}") from exc
        if written and publisher is not None:
            try:
                await publish_written(engine, publisher, written)
            except Exception as exc:  # noqa: BLE001 - committed; the outbox sweep publishes it
                log.warning("incident change not published now; the outbox sweep will", error=repr(exc))
        log.info("incident " + action, incident_id=incident_id, actor=principal.audit_name(), changed=done.changed)
        return {**done.incident, "changed": done.changed}

    @app.get("/v1/incidents/{incident_id}")
    async def get_incident(incident_id: str, _: IncidentViewer) -> dict[str, Any]:
        """The incident, its review state and its history (every action, escalation steps included)."""
        async with engine.connect() as conn:
            incidents = IncidentRepository(conn)
            row = await incidents.get(incident_id)
            if row is None:
                raise HTTPException(404, f"no incident {incident_id}")
            return {**review.view(row), "history": await incidents.history(incident_id)}

    def note_action(action: review.Action) -> Callable[..., Awaitable[Any]]:
        async def route(incident_id: str, principal: IncidentOperator, note: Note | None = None) -> Any:
            return await run(incident_id, action, principal, _note(note))

        return route

    for action, doc in NOTE_ACTIONS.items():  # the actions whose body is an optional note
        app.post(f"/v1/incidents/{{incident_id}}/{action}", name=action, description=doc)(note_action(action))

    @app.post("/v1/incidents/{incident_id}/assign")
    async def assign(incident_id: str, body: Assign, principal: IncidentOperator) -> Any:
        return await run(incident_id, "assign", principal, {"user": body.user})

    @app.post("/v1/incidents/{incident_id}/comment")
    async def comment(incident_id: str, body: Comment, principal: IncidentOperator) -> Any:
        return await run(incident_id, "comment", principal, {"text": body.text})

    @app.post("/v1/incidents/{incident_id}/false-positive")
    async def false_positive(incident_id: str, body: FalsePositive, principal: IncidentOperator) -> Any:
        """The reviewer's verdict: not a violation (counted per camera in reporting's precision)."""
        return await run(incident_id, "false_positive", principal, {"reason": body.reason})


NOTE_ACTIONS: dict[review.Action, str] = {
    "acknowledge": "Seen and being handled: stops the escalation. Acknowledging twice changes nothing.",
    "resolve": "Closed by hand (and acknowledged, if nobody had): it stays resolved whatever the camera sees next.",
    "confirm": "The reviewer's verdict: a real violation (counted per camera in reporting's precision).",
}


def _note(note: Note | None) -> dict[str, Any]:
    return {} if note is None or note.note is None else {"note": note.note}


def _invalid_user(message: str) -> RequestValidationError:
    """A 422 in FastAPI's own shape, as the schema documents every 422."""
    return RequestValidationError([{"type": "value_error", "loc": ("body", "user"), "msg": message, "input": None}])


async def _check_assignee(conn: Any, incident_id: str, username: str) -> None:
    """The assignee must be an enabled user holding operator (or more) on the incident's site."""
    site, roles = await IncidentRepository(conn).roles_on_site(incident_id, username)
    if roles is None:
        raise _invalid_user(f"no enabled user named {username!r}; GET /api/v1/users (reporting) lists them")
    if not any(r.covers(Role.OPERATOR) for r in roles):
        raise _invalid_user(f"{username} is not an operator on site {site}: give them the role first")
