"""Log -> PostgreSQL projections: verified roots, leaves, tree levels, settlement outbox.

`aop db upgrade` creates the tables (`projections.models`); `aop project` fills them from
`aop.epoch.roots` (and claimed totals from `aop.chain.events`).
"""
