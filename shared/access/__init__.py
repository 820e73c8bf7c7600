"""Operators and access: users with a role per site, sessions, personal API tokens, the audit trail.

One module every HTTP service (ingest-admin, notifier, reporting) uses, over tables of its own Alembic branch
(migrations/versions/access/), in the one PostgreSQL the services share. No service imports another's code:
each builds an `Access` from its engine, its own service tokens and `PPE_SESSION_KEY` (docs/access.md says why).

- `roles`    : roles, principals, what a principal may do where (no I/O)
- `credentials`: argon2 password hashes, personal-token and session-id hashing, session JWTs (PyJWT)
- `tables`   : the SQLAlchemy tables
- `store`    : users, roles, sessions, tokens in PostgreSQL
- `audit`    : the hash-chained, append-only audit trail and its `verify`
- `http`     : authentication for the Guard middleware, `Require` (the per-route authorisation dependency)
- `__main__` : `python -m shared.access create-admin | verify-audit`
"""
