"""`X-PPE-Acting-User`: the notifier takes it from its admin token only (reporting's incident console), and then
records the named user as the actor; any other caller sending it is refused and changes nothing."""

import sqlalchemy as sa

from services.notifier.adapters import db as notifier_db
from shared.access.roles import Role
from tests.integration.access.conftest import INCIDENT_B, NOTIFIER_TOKEN, SITE_B, Apps, make_user, token_for


async def history(apps: Apps) -> list[tuple[str, str]]:
    async with apps.engine.connect() as conn:
        rows = await conn.execute(
            sa.select(notifier_db.incident_actions.c.action, notifier_db.incident_actions.c.actor)
            .where(notifier_db.incident_actions.c.incident_id == INCIDENT_B)
            .order_by(notifier_db.incident_actions.c.id)
        )
        return [(r.action, r.actor) for r in rows]


async def test_only_the_admin_token_may_name_who_acts(apps: Apps) -> None:
    operator = await token_for(apps.engine, await make_user(apps.engine, "otto-b", roles={SITE_B: Role.OPERATOR}))
    before = await history(apps)
    # GIVEN an operator of the site WHEN they name someone else THEN 403, and nothing is recorded
    async with apps.client("notifier", Authorization=f"Bearer {operator}") as client:
        refused = await client.post(f"/v1/incidents/{INCIDENT_B}/comment", json={"text": "as someone else"},
                                    headers={"X-PPE-Acting-User": "someone-else"})
    assert refused.status_code == 403 and "admin token only" in refused.text
    assert await history(apps) == before
    # WHEN the admin token names a user THEN the history names that user; a malformed name is 400
    async with apps.client("notifier", Authorization=f"Bearer {NOTIFIER_TOKEN}") as client:
        bad = await client.post(f"/v1/incidents/{INCIDENT_B}/comment", json={"text": "x"},
                                headers={"X-PPE-Acting-User": "not a name\t"})
        named = await client.post(f"/v1/incidents/{INCIDENT_B}/comment", json={"text": "seen on the console"},
                                  headers={"X-PPE-Acting-User": "otto-b"})
        plain = await client.post(f"/v1/incidents/{INCIDENT_B}/comment", json={"text": "by the machine"})
    assert bad.status_code == 400
    assert named.status_code == 200 and plain.status_code == 200, (named.text, plain.text)
    assert (await history(apps))[len(before):] == [("comment", "user:otto-b"), ("comment", "service:notifier-admin")]
