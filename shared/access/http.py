"""HTTP side of access: who is calling (for the Guard middleware), and `Require`, the per-route check.

Authentication runs in the Guard, before any body is read: a service token, a personal API token
(`Authorization: Bearer ppe_pat_...`) or a session (cookie `ppe_session`, or its JWT as a bearer token).
The principal found is put in the request's state. Authorisation is a dependency on every route,
`Require(role, site source...)`: the tests walk the apps' routes and fail on a route without one.
"""

import hmac
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from fastapi import HTTPException, Request
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.datastructures import Headers
from starlette.types import Scope

from shared.access import audit, credentials, store
from shared.access.config import AccessSettings
from shared.access.roles import Principal, Role, service_principal
from shared.http_guard import bearer_token
from shared.logging import get_logger

log = get_logger(__name__)

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
NOT_FOUND = object()  # a lookup's answer when the object does not exist (the route then answers 404)


class Forbidden(HTTPException):
    def __init__(self, detail: str) -> None:
        super().__init__(403, detail)


@dataclass
class Access:
    """What one service accepts: its own service tokens, and the users of the shared access tables."""

    engine: AsyncEngine | None
    service_tokens: Mapping[str, Principal] = field(default_factory=dict)
    settings: AccessSettings = field(default_factory=lambda: AccessSettings(session_key=None))

    async def authenticate(self, method: str, headers: Headers) -> Principal | None:
        token = bearer_token(headers)
        if token:
            return await self._bearer(token)
        cookie = _cookie(headers, credentials.SESSION_COOKIE)
        if cookie:
            if method not in SAFE_METHODS and not headers.get(credentials.CSRF_HEADER):
                return None  # a cross-site form cannot add this header; a same-site script always does
            return await self._session(cookie)
        return None

    async def _bearer(self, token: str) -> Principal | None:
        found = None
        for known, principal in self.service_tokens.items():  # compare with every one: no timing hint
            if hmac.compare_digest(token.encode(), known.encode()):
                found = principal
        if found is not None or self.engine is None:
            return found
        if credentials.is_api_token(token):
            return await store.principal_for_token(self.engine, token)
        if token.count(".") == 2:
            return await self._session(token)
        return None

    async def _session(self, token: str) -> Principal | None:
        if self.settings.session_key is None or self.engine is None:
            return None
        try:
            claims = credentials.read_session(self.settings.session_key, token)
        except credentials.InvalidSession:
            return None
        return await store.principal_for_session(self.engine, claims)

    async def accepts(self, scope: Scope, headers: Headers) -> bool:
        """For `Guard(accepts=...)`: authenticate and keep the principal for the route's `Require`."""
        principal = await self.authenticate(scope["method"], headers)
        if principal is None:
            return False
        scope.setdefault("state", {})["principal"] = principal
        return True


def _cookie(headers: Headers, name: str) -> str:
    for part in headers.get("cookie", "").split(";"):
        key, _, value = part.strip().partition("=")
        if key == name:
            return value
    return ""


def principal_of(request: Request) -> Principal:
    principal = getattr(request.state, "principal", None)
    if principal is None:  # the Guard lets no unauthenticated request reach a route; this is a wiring error
        raise HTTPException(401, "not signed in: sign in, or send Authorization: Bearer <token>")
    return principal  # type: ignore[no-any-return]  # request.state is untyped


SiteLookup = Callable[[Request], Awaitable[Any]]


@dataclass(frozen=True)
class Site:
    """Where a route finds the site it acts on. `kind`: query, path, body, lookup, global, any, signed-in."""

    kind: str
    name: str = "site_id"
    lookup: SiteLookup | None = None
    optional: bool = False

    async def site(self, request: Request) -> Any:
        if self.kind == "query":
            return request.query_params.get(self.name)
        if self.kind == "path":
            return request.path_params.get(self.name)
        if self.kind == "body":
            try:
                body = await request.json()
            except ValueError:
                return None
            site = body.get(self.name) if isinstance(body, dict) else None
            return site if isinstance(site, str) else None  # not a site name: only a global role; 422 follows
        assert self.lookup is not None
        return await self.lookup(request)


def query(name: str = "site_id") -> Site:
    """Optional `?site_id=`: named, it must be one of the caller's; absent, the route filters to the caller's sites."""
    return Site("query", name, optional=True)


def path(name: str = "site_id") -> Site:
    return Site("path", name)


def body(name: str = "site_id") -> Site:
    """The site named in the JSON body; a body naming no site (null) means every site: a global role."""
    return Site("body", name)


def lookup(fn: SiteLookup) -> Site:
    """The site of the object the path names (a camera, a rule...); an unknown object is left to the route (404)."""
    return Site("lookup", lookup=fn)


GLOBAL = Site("global")  # settings of every site: a global role
ANY = Site("any")  # data the route filters to the caller's sites: the role on at least one site
SIGNED_IN = Site("signed-in")  # the caller's own account (sign out, personal tokens): any authenticated caller


class Require:
    """Dependency: the caller holds `role` on every site the sources name; returns the Principal."""

    def __init__(self, role: Role, *sources: Site) -> None:
        self.role = role
        self.sources = sources or (ANY,)

    async def __call__(self, request: Request) -> Principal:
        principal = principal_of(request)
        for source in self.sources:
            if source.kind == "signed-in":
                continue
            if source.kind == "any":
                allowed = principal.may_somewhere(self.role)
                where = "any site"
            elif source.kind == "global":
                allowed = principal.may(self.role, None)
                where = "every site (a global role)"
            else:
                site = await source.site(request)
                if site is NOT_FOUND or (site is None and source.optional):
                    allowed, where = principal.may_somewhere(self.role), "any site"
                else:
                    allowed = principal.may(self.role, site)
                    where = f"site {site}" if site is not None else "every site (a global role)"
            if not allowed:
                log.info("access refused", principal=principal.audit_name(), role=self.role.value, where=where,
                         path=request.url.path, method=request.method)
                raise Forbidden(f"{principal.name} lacks the {self.role.value} role on {where}")
        return principal


def service_tokens(pairs: Mapping[str, tuple[str, Role]]) -> dict[str, Principal]:
    """`{token: (name, role)}` -> the principals the tokens stand for (global: machine use)."""
    return {token: service_principal(name, role) for token, (name, role) in pairs.items() if token}


async def audit_change(
    access: Access, principal: Principal, action: str, *, site_id: str | None, target: str | None,
    details: Mapping[str, Any] | None = None,
) -> None:
    """Record a change made through an API (after it committed: its own transaction)."""
    if access.engine is None:
        return
    await audit.record(
        access.engine, actor=principal.audit_name(), action=action, site_id=site_id, target=target,
        details={"via": principal.via, **(details or {})},
    )
