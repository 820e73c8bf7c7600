"""Roles, principals and the one question every route asks: may this caller do this on this site? (No I/O.)"""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType


class Role(StrEnum):
    """A ladder: each role may do what the ones below it may.

    viewer   reads the site's charts, incidents, cameras, zones and rules
    operator + acts on the site's incidents (acknowledge, resolve: the incident console, not built yet)
    analyst  + exports the site's events (CSV)
    admin    + changes the site's cameras, zones, rules, channels and time zone; a global admin also
               manages users, reads the audit trail and runs retention
    """

    VIEWER = "viewer"
    OPERATOR = "operator"
    ANALYST = "analyst"
    ADMIN = "admin"

    @property
    def rank(self) -> int:
        return _RANK[self]

    def covers(self, needed: "Role") -> bool:
        return self.rank >= needed.rank


_RANK = {role: rank for rank, role in enumerate(Role)}


@dataclass(frozen=True)
class Principal:
    """Who is calling: a user (session or personal token) or a service token (machine use).

    `global_role` holds on every site (service tokens and global admins); `site_roles` on one site each.
    """

    name: str
    kind: str  # "user" | "service"
    user_id: int | None = None
    global_role: Role | None = None
    site_roles: Mapping[str, Role] = field(default_factory=lambda: MappingProxyType({}))
    via: str = ""  # "session" | "token" | "service-token": how the caller authenticated
    session_id: str | None = None

    def role_on(self, site_id: str) -> Role | None:
        roles = [role for role in (self.global_role, self.site_roles.get(site_id)) if role is not None]
        return max(roles, key=lambda role: role.rank) if roles else None

    def may(self, needed: Role, site_id: str | None) -> bool:
        """`site_id=None` means "every site" (a global setting, or a resource of no one site)."""
        if site_id is None:
            return self.global_role is not None and self.global_role.covers(needed)
        role = self.role_on(site_id)
        return role is not None and role.covers(needed)

    def may_somewhere(self, needed: Role) -> bool:
        return self.may(needed, None) or any(role.covers(needed) for role in self.site_roles.values())

    def sites(self, needed: Role) -> frozenset[str] | None:
        """The sites where the caller holds `needed`; None = every site (a global role)."""
        if self.may(needed, None):
            return None
        return frozenset(site for site, role in self.site_roles.items() if role.covers(needed))

    def audit_name(self) -> str:
        return f"user:{self.name}" if self.kind == "user" else f"service:{self.name}"


def service_principal(name: str, role: Role) -> Principal:
    return Principal(name=name, kind="service", global_role=role, via="service-token")


def user_principal(
    *, user_id: int, name: str, global_role: Role | None, site_roles: Iterable[tuple[str, Role]], via: str,
    session_id: str | None = None,
) -> Principal:
    return Principal(
        name=name, kind="user", user_id=user_id, global_role=global_role,
        site_roles=MappingProxyType(dict(site_roles)), via=via, session_id=session_id,
    )
