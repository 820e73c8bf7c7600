"""Operators act on an incident the notifier opened (real PostgreSQL, the emulator, users with personal tokens).

Checks each action's effect, the history, the audit trail (and that its chain still verifies), who may act,
and what reporting receives: IncidentChanged numbered in order, carrying the review, and an incident an
operator resolved staying resolved when the camera later sees it end.
"""

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from services.notifier.api import build_app, notifier_tokens
from services.notifier.config import NotifierSettings
from services.notifier.main import run
from shared.access import audit, store, tables
from shared.access.config import AccessSettings
from shared.access.http import Access
from shared.access.roles import Role
from shared.contracts import Envelope, IncidentChanged
from shared.sqs import Publisher, QueueResolver
from tests.integration.notifier.conftest import ADMIN_TOKEN, drain, publish_frames
from tests.unit.notifier.builders import T0, hat_scenario


@pytest.fixture
async def people(engine: AsyncEngine) -> dict[str, str]:
    """Personal API tokens: an operator and a viewer of site-1, an operator of site-2."""
    tokens = {}
    for name, roles in (("olga", {"site-1": Role.OPERATOR}), ("vic", {"site-1": Role.VIEWER}),
                        ("otto", {"site-2": Role.OPERATOR})):
        async with engine.begin() as conn:
            user = await store.create_user(conn, username=name, password="a long password here", global_role=None,
                                           roles=roles)
        tokens[name] = (await store.create_token(engine, user_id=user.id, name="t", expires_at=None))[1]
    return tokens


@pytest.fixture
async def api(
    engine: AsyncEngine, notifier_settings: NotifierSettings, sqs_client: Any, resolver: QueueResolver
) -> AsyncIterator[httpx.AsyncClient]:
    app = build_app(
        engine=engine, admin_token=ADMIN_TOKEN, default_policy=notifier_settings.default_policy(),
        access=Access(engine=engine, service_tokens=notifier_tokens(ADMIN_TOKEN), settings=AccessSettings()),
        publisher=Publisher(sqs_client, resolver, producer="notifier"),
    )
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://notifier") as client:
        yield client


async def changes(sqs: Any, resolver: QueueResolver) -> list[IncidentChanged]:
    found = [Envelope[IncidentChanged].model_validate_json(m["Body"]).payload
             for m in await drain(sqs, await resolver.url("incidents-reporting"))]
    return sorted(found, key=lambda c: c.version)


async def test_operators_act_and_reporting_hears_in_order(
    notifier_settings: NotifierSettings, engine: AsyncEngine, api: httpx.AsyncClient, people: dict[str, str],
    sqs_client: Any, resolver: QueueResolver,
) -> None:
    # GIVEN an open incident on site-1
    await publish_frames(sqs_client, resolver, hat_scenario(before_s=2, without_s=6, after_s=0))
    await run(notifier_settings, until_idle=True, engine=engine)
    [opened] = await changes(sqs_client, resolver)
    incident = f"/v1/incidents/{opened.incident_id}"

    def as_(name: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {people[name]}"}

    # WHEN a viewer of the site, and an operator of another site, try to act: refused, nothing changes
    assert (await api.post(f"{incident}/acknowledge", headers=as_("vic"))).status_code == 403
    assert (await api.post(f"{incident}/acknowledge", headers=as_("otto"))).status_code == 403
    assert (await api.get(incident, headers=as_("otto"))).status_code == 403
    assert (await api.get(incident, headers=as_("vic"))).json()["acknowledged_at"] is None

    # WHEN the site's operator acknowledges (twice), assigns, comments, marks it a false positive, resolves
    first = await api.post(f"{incident}/acknowledge", headers=as_("olga"))
    assert first.status_code == 200 and first.json()["acknowledged_by"] == "user:olga" and first.json()["changed"]
    assert (await api.post(f"{incident}/acknowledge", headers=as_("olga"))).json()["changed"] is False
    refused = await api.post(f"{incident}/assign", json={"user": "vic"}, headers=as_("olga"))
    assert refused.status_code == 422 and "not an operator on site site-1" in refused.text
    assert (await api.post(f"{incident}/assign", json={"user": "nobody"}, headers=as_("olga"))).status_code == 422
    assigned = await api.post(f"{incident}/assign", json={"user": "olga"}, headers=as_("olga"))
    assert assigned.json()["assigned_to"] == "olga"
    assert (await api.post(f"{incident}/comment", json={"text": "a shadow on the helmet"},
                           headers=as_("olga"))).status_code == 200
    assert (await api.post(f"{incident}/false-positive", json={"reason": ""}, headers=as_("olga"))).status_code == 422
    marked = await api.post(f"{incident}/false-positive", json={"reason": "helmet in shade"}, headers=as_("olga"))
    assert marked.json()["review"] == "false_positive" and marked.json()["review_reason"] == "helmet in shade"
    resolved = await api.post(f"{incident}/resolve", headers=as_("olga"))
    assert resolved.json()["status"] == "resolved" and resolved.json()["resolved_by"] == "user:olga"

    # THEN the incident lists its history, in order (the repeated acknowledgement is not in it)
    shown = (await api.get(incident, headers=as_("vic"))).json()
    assert [(h["action"], h["actor"]) for h in shown["history"]] == [
        ("acknowledge", "user:olga"), ("assign", "user:olga"), ("comment", "user:olga"),
        ("false_positive", "user:olga"), ("resolve", "user:olga")]
    assert shown["history"][2]["details"] == {"text": "a shadow on the helmet"}
    # ... each action is an audit record, and the chain still verifies
    async with engine.connect() as conn:
        actions = (await conn.execute(
            sa.select(tables.audit.c.action, tables.audit.c.target, tables.audit.c.site_id)
            .where(tables.audit.c.action.like("incident.%")).order_by(tables.audit.c.seq))).all()
    target = f"incident:{opened.incident_id}"
    assert [tuple(a) for a in actions] == [(f"incident.{a}", target, "site-1") for a in
                                           ("acknowledge", "assign", "comment", "false_positive", "resolve")]
    assert (await audit.verify(engine)).ok
    # ... reporting heard what it needs (acknowledged, the verdict, resolved), numbered after the opening
    heard = await changes(sqs_client, resolver)
    assert [(c.version, c.status) for c in heard] == [(2, "updated"), (3, "updated"), (4, "resolved")]
    assert heard[0].acknowledged_by == "user:olga" and heard[0].review is None
    assert heard[1].review == "false_positive" and heard[1].review_reason == "helmet in shade"
    assert heard[2].resolved_by == "user:olga" and heard[2].review == "false_positive"

    # WHEN the camera later sees the person put the hat on (the tracker ends the incident itself)
    later = hat_scenario(before_s=4, without_s=0, after_s=0, start=T0 + timedelta(seconds=8), prefix="g")
    await publish_frames(sqs_client, resolver, later)
    await run(notifier_settings, until_idle=True, engine=engine)
    # THEN its change comes next, still resolved at the operator's time, still carrying the review
    [ended] = await changes(sqs_client, resolver)
    assert (ended.version, ended.status, ended.resolved_by) == (5, "resolved", "user:olga")
    assert ended.resolved_at == heard[2].resolved_at and ended.review == "false_positive"


async def test_an_unknown_incident_is_404_to_an_operator(
    api: httpx.AsyncClient, people: dict[str, str]
) -> None:
    olga = {"Authorization": f"Bearer {people['olga']}"}
    response = await api.post("/v1/incidents/no-such/acknowledge", headers=olga)
    assert response.status_code == 404
