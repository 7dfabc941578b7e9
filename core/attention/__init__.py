"""The attention policy: off-chain signals of a channel's audience -> rewards (pure, no I/O).

Collectors observe a channel's users (presence, chat, subs, gifts, bits, raids, listening or
viewing time) and `aop ingest` appends those signals, and the users' wallet bindings, to
`aop.attention.signals`. The fold turns each closed attention epoch of a channel into a root
(`core.attention.fold`); the combiner adds those roots to the global root as `attention_bonus`.

Modules: `signals` (the shared validation rules: kinds, the epoch of a time, users),
`weights` (integer weights per kind), `policy` (per-weight and pro-rata payouts),
`bindings` (which wallet a user's rewards go to), `legacy` (the legacy aggregator's ring-v0
order and claim ids), `config`, `state` and `fold` (the fold of the signals topic).
"""
