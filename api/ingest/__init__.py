"""The attention-signal ingest (`aop ingest`): trusted collectors' signals and bindings onto
`aop.attention.signals`, acknowledged only once the log holds them.

`api.ingest.app.create_ingest_app` builds the service; `api.ingest.backfill` writes a file
with the same validation and the same writer; docs/runbook.md ("Attention signals") is the
operator's view.
"""
