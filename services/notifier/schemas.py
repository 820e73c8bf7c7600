"""The notifier API's request and response bodies (rules, channels) and its 422 shape."""

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import Path as PathParam
from fastapi import Query
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field, model_validator

from services.notifier.policy import RulePolicy, Severity

ChannelKind = Literal["webhook", "email", "apprise", "sns"]
# PostgreSQL text cannot hold NUL and its ids are 32-bit: both are refused as 422 here, never met as a 500 there.
NO_NUL = r"^[^\x00]*$"
DB_ID_MAX = 2**31 - 1
RowId = Annotated[int, PathParam(ge=1, le=DB_ID_MAX, description="Row id (1 .. 2^31-1).")]
Filter = Annotated[str | None, Query(max_length=256, pattern=NO_NUL)]


def invalid(loc: tuple[str, ...], message: str) -> RequestValidationError:
    """A 422 in FastAPI's own shape (`detail`: a list of {loc, msg, type}), as the schema documents every 422."""
    return RequestValidationError([{"type": "value_error", "loc": loc, "msg": message, "input": None}])


class _Schema(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RuleIn(_Schema):
    site_id: str = Field(min_length=1, max_length=128, pattern=NO_NUL, description="Site the rule applies to.")
    zone_id: str | None = Field(
        default=None, min_length=1, max_length=128, pattern=NO_NUL, description="Zone; None = whole site."
    )
    camera_id: str | None = Field(
        default=None, min_length=1, max_length=128, pattern=NO_NUL, description="Camera; None = zone/site."
    )
    policy: RulePolicy = Field(default_factory=RulePolicy, description="What the rule requires and how it alerts.")


class RuleOut(RuleIn):
    id: int
    updated_at: datetime

    @classmethod
    def of(cls, row: Any) -> "RuleOut":
        return cls.model_validate(_fields(cls, row))


class ChannelIn(_Schema):
    name: str = Field(min_length=1, max_length=128, pattern=NO_NUL, description="Unique name, e.g. site-1-ops-slack.")
    kind: ChannelKind = Field(description="webhook, email, apprise (Slack, Teams, ...) or sns.")
    target: str = Field(
        min_length=1,
        max_length=2000,
        pattern=NO_NUL,
        description="webhook URL, comma-separated email addresses, Apprise URL, or SNS topic ARN.",
    )
    secret: str | None = Field(
        default=None, min_length=16, max_length=512, pattern=NO_NUL, description="Webhook signing secret."
    )
    site_id: str | None = Field(
        default=None, max_length=128, pattern=NO_NUL, description="Only this site's alerts; None = all."
    )
    min_severity: Severity = Field(default="info", description="Lowest severity this channel receives.")
    enabled: bool = True

    @model_validator(mode="after")
    def _webhook_target(self) -> "ChannelIn":
        if self.kind == "webhook" and not self.target.startswith(("http://", "https://")):
            raise ValueError("a webhook target must be an http(s) URL")
        return self

    def audit_details(self) -> dict[str, Any]:
        """What the audit keeps of a channel: never its secret (nor a target, which may hold a token in its URL)."""
        return {"name": self.name, "kind": self.kind, "min_severity": self.min_severity, "enabled": self.enabled,
                "has_secret": bool(self.secret)}


class ChannelOut(_Schema):
    id: int
    name: str
    kind: ChannelKind
    target: str
    has_secret: bool
    site_id: str | None
    min_severity: Severity
    enabled: bool

    @classmethod
    def of(cls, row: Any) -> "ChannelOut":
        return cls.model_validate(_fields(cls, row, has_secret=bool(row.secret)))


def _fields(schema: type[BaseModel], row: Any, **computed: Any) -> dict[str, Any]:
    """A stored row's columns that the schema shows (the secret, creation time... left out), plus `computed`."""
    return {name: row._mapping[name] for name in schema.model_fields if name not in computed} | computed
