"""The API's SQL (psycopg placeholders), over the tables of `projections.models`.

A wallet's proof for a given root reuses `projections.queries.CLAIM_SQL` and `PROOF_SQL`
(compiled for psycopg). The statements here add what the API needs on top: the newest root
that holds a wallet, its proof, claimed total and the channel's latest root_seq in ONE round
trip for a whole batch of requests (`CLAIMS_BATCH_SQL`, the hot path), lists with keyset
pages, and the dataset cursor.

How the hot path cuts a proof: for every tree level larger than the cache threshold `k`, it
fetches the 64-byte PAIR holding the path's node and its sibling (an odd level's last node is
its own sibling), with `substring` on the uncompressed level, so only one TOAST chunk per
level is read; levels of at most `k` nodes come from the in-memory root cache. Level 0's
pair also yields the leaf itself.
"""

from __future__ import annotations

from sqlalchemy import TextClause
from sqlalchemy.dialects.postgresql import psycopg as psycopg_dialect

from aop.projections.queries import CLAIM_SQL, PROOF_SQL

__all__ = [
    "CHANNELS_SQL",
    "CHANNEL_DETAIL_SQL",
    "CHANNEL_LOOKUP_SQL",
    "CLAIMS_BATCH_SQL",
    "CLAIM_AT_SQL",
    "CLAIM_FACTS_BATCH_SQL",
    "DATASET_SQL",
    "HOT_FACTS_CHANNEL_SQL",
    "HOT_FACTS_CLAIMED_SQL",
    "HOT_ROOT_LEAVES_SQL",
    "HOT_ROOT_META_SQL",
    "LEAF_BONUS_SQL",
    "PROOF_AT_SQL",
    "READY_SQL",
    "ROOTS_SQL",
    "ROOT_ALL_LEVELS_SQL",
    "ROOT_DETAIL_SQL",
    "ROOT_LEVELS_SQL",
    "ROOT_META_SQL",
    "ROOT_PROOFS_SQL",
    "WALLET_CLAIMS_SQL",
]


def _for_psycopg(clause: TextClause) -> str:
    """A SQLAlchemy text() statement with :name parameters as psycopg's %(name)s form."""
    return str(clause.compile(dialect=psycopg_dialect.dialect()))  # type: ignore[no-untyped-call]


#: projections.queries, unchanged: the leaf of :wallet in (:channel_config, :root_seq)...
CLAIM_AT_SQL = _for_psycopg(CLAIM_SQL)
#: ...and its siblings, one per level (:root_id, :leaf_index, :tree_depth).
PROOF_AT_SQL = _for_psycopg(PROOF_SQL)

READY_SQL = "SELECT count(*) FROM (SELECT 1 FROM channels LIMIT 1) AS any_channel"

#: a channel by config PDA (preferred) or by ASCII-lower-cased name.
CHANNEL_LOOKUP_SQL = """
SELECT c.channel_config, c.name, c.subject_id, c.format, c.program_id, c.mint
  FROM channels c
 WHERE (c.channel_config = %(config)s OR lower(c.name) = %(name_key)s)
   AND c.scope <> 'attention'
 ORDER BY (c.channel_config = %(config)s) IS TRUE DESC, c.channel_config
 LIMIT 1
"""

_CHANNEL_COLUMNS = "c.channel_config, c.name, c.format, c.latest_root_seq, c.latest_epoch"

#: a page of channels in channel_config order, after %(after)s (NULL: from the start).
CHANNELS_SQL = f"""
SELECT {_CHANNEL_COLUMNS}
  FROM channels c
 WHERE c.scope = 'channel'
   AND (CAST(%(after)s AS text) IS NULL OR c.channel_config > %(after)s)
 ORDER BY c.channel_config
 LIMIT %(limit)s
"""

_ROOT_SUMMARY = "r.root_seq, r.epoch, r.root, r.dataset_hash, r.leaf_count, r.total, o.status"
_OUTBOX_JOIN = (
    "LEFT JOIN settlement_outbox o "
    "ON o.channel_config = r.channel_config AND o.root_seq = r.root_seq"
)

#: one channel with its latest root (if any).
CHANNEL_DETAIL_SQL = f"""
SELECT c.latest_root_seq, c.latest_epoch, c.updated_at, {_ROOT_SUMMARY}
  FROM channels c
  LEFT JOIN roots r ON r.channel_config = c.channel_config AND r.root_seq = c.latest_root_seq
  {_OUTBOX_JOIN}
 WHERE c.channel_config = %(config)s
"""

#: a page of a channel's roots, newest first, below %(before)s (NULL: from the newest).
ROOTS_SQL = f"""
SELECT {_ROOT_SUMMARY}
  FROM roots r
  {_OUTBOX_JOIN}
 WHERE r.channel_config = %(config)s
   AND (CAST(%(before)s AS bigint) IS NULL OR r.root_seq < %(before)s)
 ORDER BY r.root_seq DESC
 LIMIT %(limit)s
"""

#: one root with its settlement state.
ROOT_DETAIL_SQL = f"""
SELECT r.root_seq, r.epoch, r.root, r.dataset_hash, r.leaf_count, r.tree_depth, r.total,
       r.emission, r.closed_at_slot, r.input_offsets, r.created_at,
       o.status, o.signature, o.slot, o.attempts, o.updated_at
  FROM roots r
  {_OUTBOX_JOIN}
 WHERE r.channel_config = %(config)s AND r.root_seq = %(root_seq)s
"""

#: the immutable facts of one root (cached).
ROOT_META_SQL = """
SELECT root_id, root_seq, epoch, format, root, dataset_hash, leaf_count, tree_depth
  FROM roots
 WHERE channel_config = %(config)s AND root_seq = %(root_seq)s
"""

#: whether a root's proofs were pruned (`projections.retention`; not cached: a root's proofs
#: are pruned after it was written), and its account's newest root_seq.
ROOT_PROOFS_SQL = """
SELECT r.proofs_pruned, c.latest_root_seq
  FROM roots r JOIN channels c ON c.channel_config = r.channel_config
 WHERE r.root_id = %(root_id)s
"""

#: the small (upper) levels of a root, kept in the root cache.
ROOT_LEVELS_SQL = """
SELECT level, nodes FROM tree_levels WHERE root_id = %(root_id)s AND node_count <= %(k)s
"""

# The newest root of channel c that holds the wallet {wallet} (a probe of (root_id, wallet) per
# root, newest first: the latest root holds every wallet with a non-zero cumulative total).
# Only roots that still hold proofs (at most AOP_PROOF_ROOTS_KEPT + 1, the partial index
# ix_roots_channel_config_root_seq_kept): a wallet in no such root probes those, not the
# channel's whole history.
_NEWEST_ROOT_WITH_WALLET = """
  SELECT r.root_id, r.root_seq, r.epoch, r.root, r.tree_depth, l.leaf_index, l.amount
    FROM roots r
    JOIN leaves l ON l.root_id = r.root_id AND l.wallet = {wallet}
   WHERE r.channel_config = c.channel_config AND NOT r.proofs_pruned
   ORDER BY r.root_seq DESC
   LIMIT 1
"""

# The (node, sibling) pairs of the levels larger than %(k)s nodes, level 0 first, as ONE
# bytea of 64 bytes per level (one value to decode, not an array), for
# `core.merkle.cut_proof`. An odd level's last node is its own sibling: its 32-byte slice is
# doubled, to keep the 64-byte stride (core's rule, applied here: test_api_proof_sql.py
# holds this statement and PROOF_SQL to core's proofs).
_PAIRS = """
(SELECT string_agg(CASE WHEN octet_length(p.pair) = 64 THEN p.pair ELSE p.pair || p.pair END,
                   ''::bytea ORDER BY p.level)
   FROM (SELECT t.level,
                substring(t.nodes
                          FROM CAST(64 * ((x.leaf_index >> t.level) >> 1) + 1 AS integer)
                          FOR 64) AS pair
           FROM tree_levels t
          WHERE t.root_id = x.root_id AND t.level < greatest(x.tree_depth, 1)
            AND t.node_count > %(k)s) AS p) AS pairs
"""

#: the columns of one claim row (`api.reader.Reader._claim_from_row` reads them in order);
#: the channel's immutable facts come from the reader's channel cache.
_CLAIM_COLUMNS = f"""
       c.latest_root_seq, c.latest_epoch,
       x.root_id, x.root_seq, x.epoch, x.root, x.tree_depth, x.leaf_index, x.amount,
       {_PAIRS}, ct.claimed_total, o.status
"""
#: the immutable facts of a channel, as `Reader.channel` caches them.
_CHANNEL_FACTS = "c.channel_config, c.name, c.subject_id, c.format, c.program_id, c.mint"


def _claim_joins(wallet: str) -> str:
    return f"""
  JOIN LATERAL ({_NEWEST_ROOT_WITH_WALLET.format(wallet=wallet)}) x ON true
  LEFT JOIN claimed_totals ct
         ON ct.channel_config = c.channel_config AND ct.wallet = {wallet}
  LEFT JOIN settlement_outbox o
         ON o.channel_config = c.channel_config AND o.root_seq = x.root_seq
"""


# The (config, wallet) pairs of a batch (`api.batch`), numbered from 1. The arrays go in
# binary (%(name)b): psycopg's text form escapes every element with a regex, ~15% of the
# client's CPU per batched query (measured).
_BATCH_PAIRS = """unnest(CAST(%(configs)b AS text[]), CAST(%(wallets)b AS bytea[]))
       WITH ORDINALITY AS q(config, wallet, i)"""

#: the hot path, for many requests at once (`api.batch`): claims of (%(configs)s[i],
#: %(wallets)s[i]) against the newest root holding each wallet; the first column is i (1-based);
#: a pair without a leaf has no row. One round trip and one executor start for the batch.
CLAIMS_BATCH_SQL = f"""
SELECT q.i, {_CLAIM_COLUMNS}
  FROM {_BATCH_PAIRS}
  JOIN channels c ON c.channel_config = q.config
  {_claim_joins("q.wallet")}
"""

#: what may change once a root is written, for claims answered from a hot root
#: (`api.hot_roots`): the root_id of the channel's latest root, latest root_seq and epoch, the
#: wallet's claimed total and the latest root's settlement status; first column i as above.
#: channel c's latest root r and its settlement outbox row o (none yet: NULLs).
_LATEST_ROOT_JOINS = """
  JOIN roots r ON r.channel_config = c.channel_config AND r.root_seq = c.latest_root_seq
  LEFT JOIN settlement_outbox o
         ON o.channel_config = c.channel_config AND o.root_seq = c.latest_root_seq"""
CLAIM_FACTS_BATCH_SQL = f"""
SELECT q.i, r.root_id, c.latest_root_seq, c.latest_epoch, ct.claimed_total, o.status
  FROM {_BATCH_PAIRS}
  JOIN channels c ON c.channel_config = q.config{_LATEST_ROOT_JOINS}
  LEFT JOIN claimed_totals ct ON ct.channel_config = c.channel_config AND ct.wallet = q.wallet
"""

#: what can change under a hot root (`api.hot_facts`): the channel's latest root and its
#: settlement status...
HOT_FACTS_CHANNEL_SQL = f"""
SELECT r.root_id, c.latest_root_seq, c.latest_epoch, o.status
  FROM channels c{_LATEST_ROOT_JOINS}
 WHERE c.channel_config = %(config)s
"""
#: ...and the claimed totals changed at or after a slot (all of them from slot 0).
HOT_FACTS_CLAIMED_SQL = """
SELECT wallet, claimed_total, slot FROM claimed_totals
 WHERE channel_config = %(config)s AND slot >= %(since)s
"""

#: a root to hold in memory (`api.hot_roots`): its facts (no row: its proofs were pruned)...
HOT_ROOT_META_SQL = """
SELECT root_seq, epoch, root, tree_depth, leaf_count FROM roots
 WHERE root_id = %(root_id)s AND NOT proofs_pruned
"""
#: ...its leaves as ONE bytea of 48-byte records in wallet order: wallet, leaf_index (int8),
#: amount - 2^63 (int8: Postgres has no unsigned 64-bit type; the reader adds 2^63 back)...
HOT_ROOT_LEAVES_SQL = """
SELECT string_agg(wallet || int8send(leaf_index)
                  || int8send(CAST(amount - 9223372036854775808 AS bigint)),
                  ''::bytea ORDER BY wallet)
  FROM leaves WHERE root_id = %(root_id)s
"""
#: ...and every level of its tree.
ROOT_ALL_LEVELS_SQL = """
SELECT level, nodes FROM tree_levels WHERE root_id = %(root_id)s
"""

#: a wallet's claims in every channel (a page, channel_config order, after %(after)s): the
#: channel's facts, then the claim columns.
WALLET_CLAIMS_SQL = f"""
SELECT {_CHANNEL_FACTS}, {_CLAIM_COLUMNS}
  FROM channels c
  {_claim_joins("%(wallet)s")}
 WHERE c.scope = 'channel'
   AND (CAST(%(after)s AS text) IS NULL OR c.channel_config > %(after)s)
 ORDER BY c.channel_config
 LIMIT %(limit)s
"""

#: the dataset of a root in leaf order (read through a server-side cursor).
DATASET_SQL = """
SELECT leaf_index, wallet, CAST(amount AS text), CAST(attention_bonus AS text) FROM leaves
 WHERE root_id = %(root_id)s ORDER BY leaf_index
"""

#: a global-v5 leaf's attention_bonus (its base_yield is amount - attention_bonus).
LEAF_BONUS_SQL = """
SELECT l.attention_bonus
  FROM roots r JOIN leaves l ON l.root_id = r.root_id AND l.wallet = %(wallet)s
 WHERE r.channel_config = %(config)s AND r.root_seq = %(root_seq)s
"""
