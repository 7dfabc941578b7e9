"""One typed, frozen settings object for every service.

Precedence (lowest first): defaults < `.env` file < process environment < explicit `env` mapping.
Every variable carries the `AOP_` prefix. A bad value stops the service at start with a
`SettingsError` naming the variable, the expected form and the value it got.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from contextvars import ContextVar
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)
from pydantic_settings import SettingsError as PydanticSettingsError
from solders.pubkey import Pubkey

from aop.core.attention.legacy import DEFAULT_CLAIM_ID_TEMPLATE, check_claim_id_template
from aop.core.attention.policy import LEGACY_REWARD_PER_WEIGHT, AttentionMode, AttentionPolicy
from aop.core.attention.signals import SIGNAL_KINDS
from aop.core.pda import global_root_config_address
from aop.runtime.errors import SettingsError

ENV_PREFIX = "AOP_"
CCM_MINT = "Dxk8mAb3C7AM8JN6tAJfVuSja5yidhZM5sEKW3SRX2BM"
PROGRAM_ID = "GnGzNdsQMxMpJfMeqnkGPsvHm8kwaDidiKjNU2dCVZop"

ClaimFormatName = Literal["cumulative-v2", "ring-v0"]
#: the claim formats of attention roots (`aop.core.attention.config.ATTENTION_FORMATS`).
AttentionFormatName = Literal["cumulative-v2", "ring-v0-legacy"]
SettlementTarget = Literal["channel", "global-v4", "global-v5"]
#: the program version `aop simulate-chain` runs (`aop.simchain.config.SimProgram`).
SimProgram = Literal["v0.2.2", "deployed"]
GlobalProtocolSeeds = Literal["singleton", "mint"]
Commitment = Literal["processed", "confirmed", "finalized"]
LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR"]
KafkaSecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
KafkaSaslMechanism = Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]
U64 = Annotated[int, Field(ge=0, le=2**64 - 1)]
Port = Annotated[int, Field(ge=1, le=65535)]

#: AOP_PROOF_ROOTS_KEPT's default: the largest on-chain ring (ring-v0 keeps 10 epochs; the
#: deployed program's global ring 4 roots, cumulative-v2 4).
DEFAULT_PROOF_ROOTS_KEPT = 10

#: the only driver the projections and the API are built and tested with (psycopg 3).
DATABASE_URL_SCHEME = "postgresql+psycopg://"
#: fields whose value may carry a secret: masked in repr() and in SettingsError messages.
_SECRET_URL_FIELDS = frozenset({"database_url", "schema_registry_url", "rpc_url", "ws_url"})


class AttentionPolicyOverride(BaseModel):
    """One channel's entry of AOP_ATTENTION_POLICIES: what differs from the defaults."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    mode: AttentionMode | None = None
    emission: U64 | None = None
    reward_per_weight: U64 | None = None
    #: signal kind -> hundredths of a weight unit (over the default table).
    weights: dict[str, Annotated[int, Field(ge=0)]] | None = None

    @field_validator("weights")
    @classmethod
    def _kinds(cls, value: dict[str, int] | None) -> dict[str, int] | None:
        unknown = sorted(set(value or {}) - set(SIGNAL_KINDS))
        if unknown:
            raise ValueError(f"weights must name signal kinds {', '.join(SIGNAL_KINDS)}")
        return value


_explicit_env: ContextVar[Mapping[str, str] | None] = ContextVar("_explicit_env", default=None)


class _MappingEnvSource(EnvSettingsSource):
    """Reads `AOP_*` variables from an explicit mapping instead of the process environment."""

    def __init__(self, settings_cls: type[BaseSettings], mapping: Mapping[str, str]) -> None:
        self._mapping = mapping
        super().__init__(settings_cls)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        return {k.lower(): v for k, v in self._mapping.items()}


class Settings(BaseSettings):
    """Every knob of the pipeline. Field `x` is read from `AOP_X`."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        frozen=True,
    )

    # -- the log ---------------------------------------------------------------------------
    kafka_bootstrap: str = "127.0.0.1:19092"
    schema_registry_url: str | None = None
    topic_prefix: str = ""
    chain_partitions: Annotated[int, Field(ge=1, le=1024)] = 12
    #: how every Kafka client (confluent-kafka and Faust's aiokafka) reaches the brokers; the
    #: combination is checked when a client is built (`aop.log.security`).
    kafka_security_protocol: KafkaSecurityProtocol = "PLAINTEXT"
    #: SASL_PLAINTEXT / SASL_SSL: the mechanism, the user, and a file holding the password
    #: (its first line; mode 600, as the publisher keypair; never logged).
    kafka_sasl_mechanism: KafkaSaslMechanism | None = None
    kafka_sasl_username: str = ""
    kafka_sasl_password_file: Path | None = None
    #: SSL / SASL_SSL: the CA bundle (PEM) the brokers' certificates are verified against
    #: (unset: the system's CAs, as managed clouds need), and for mutual TLS a client
    #: certificate and its unencrypted private key (PEM, key mode 600): both or neither.
    kafka_ssl_ca_file: Path | None = None
    kafka_ssl_cert_file: Path | None = None
    kafka_ssl_key_file: Path | None = None
    #: extra librdkafka options of the confluent-kafka clients (JSON object), for the rare one
    #: no setting covers. Options with a setting of their own, secrets and those the
    #: pipeline's guarantees rest on are refused (`_client_options`).
    kafka_client_options: Annotated[dict[str, str], NoDecode] = Field(default_factory=dict)
    #: replication factor of the topics the pipeline creates, Faust's included; -1: the
    #: broker's default (Kafka >= 2.4 `default.replication.factor`, Redpanda
    #: `default_topic_replications`). Existing topics replicated less stop the services.
    kafka_replication_factor: Annotated[int, Field(ge=-1, le=32767)] = -1
    #: `min.insync.replicas` of those topics; unset: the broker's default (Redpanda ignores the
    #: property: a write there is acknowledged by a majority of the replicas).
    kafka_min_insync_replicas: Annotated[int, Field(ge=1, le=32767)] | None = None

    # -- storage ---------------------------------------------------------------------------
    database_url: str = "postgresql+psycopg://aop:aop@127.0.0.1:15432/aop"
    database_schema: str = "public"

    # -- the chain -------------------------------------------------------------------------
    program_id: str = PROGRAM_ID
    mint: str = CCM_MINT
    rpc_url: str = "http://127.0.0.1:18899"
    ws_url: str = "ws://127.0.0.1:18900"
    commitment: Commitment = "finalized"
    publisher_keypair: Path | None = None
    auto_publish: bool = False

    # -- epochs and the attention policy ---------------------------------------------------
    #: the channels this deployment serves (names; JSON list or comma-separated). Events of
    #: other channels are kept on the log but earn no roots here.
    channels: Annotated[list[str], NoDecode] = Field(default_factory=list)
    genesis_slot: U64 = 0
    epoch_slots: Annotated[int, Field(ge=1)] = 9000
    emission_default: U64 = 1_000_000_000_000
    #: per-channel maps (JSON objects), parsed by `_channel_map` (NoDecode: a JSON error is
    #: then a SettingsError naming the variable, not pydantic-settings' own exception).
    emissions: Annotated[dict[str, U64], NoDecode] = Field(default_factory=dict)
    claim_format_default: ClaimFormatName = "cumulative-v2"
    claim_formats: Annotated[dict[str, ClaimFormatName], NoDecode] = Field(default_factory=dict)
    first_root_seq: Annotated[dict[str, U64], NoDecode] = Field(default_factory=dict)

    # -- attention signals (the fold's attention side and the combiner's bonus) ------------
    #: fold aop.attention.signals into attention roots, and make each global root wait for the
    #: attention epochs that ended within its chain epoch. Off: no attention roots, bonus 0.
    attention_enabled: bool = False
    #: attention epochs are [s, s + L) of unix seconds, s a multiple of L, each named by the
    #: unix second it starts at (the legacy aggregator's hourly epochs: 3600).
    attention_epoch_seconds: Annotated[int, Field(ge=1, le=86_400 * 31)] = 3600
    #: the payout: "per-weight" (the legacy: amount = weight x reward per weight) or
    #: "pro-rata" (a fixed emission per channel and epoch, split by weight).
    attention_mode: AttentionMode = "per-weight"
    #: per-weight: base units per weight unit (the legacy's 80 CCM of 9 decimals).
    attention_reward_per_weight: U64 = LEGACY_REWARD_PER_WEIGHT
    #: pro-rata: base units per channel and attention epoch.
    attention_emission: U64 = 0
    #: signal kind -> weight in hundredths (JSON), over the legacy table (presence 100, sub
    #: 1000, resub 1000, gift 500, bits 1, raid 10; chat, listen_seconds, view_seconds 0).
    attention_weights: Annotated[dict[str, Annotated[int, Field(ge=0)]], NoDecode] = Field(
        default_factory=dict
    )
    #: per-channel overrides (JSON): {"channel": {"mode", "emission", "reward_per_weight",
    #: "weights"}}, each key optional.
    attention_policies: Annotated[dict[str, AttentionPolicyOverride], NoDecode] = Field(
        default_factory=dict
    )
    #: the claim format of attention roots: cumulative totals per wallet (what the combiner
    #: adds as attention_bonus) or the legacy aggregator's ring-v0 epochs; per channel (JSON).
    attention_format_default: AttentionFormatName = "cumulative-v2"
    attention_formats: Annotated[dict[str, AttentionFormatName], NoDecode] = Field(
        default_factory=dict
    )
    #: ring-v0-legacy claim ids: {channel}, {user} (lower-cased) and {epoch} filled in.
    attention_claim_id_template: str = DEFAULT_CLAIM_ID_TEMPLATE

    # -- listener (streams/listener) -------------------------------------------------------
    #: Kafka `transactional.id` of the listener's producer; empty means
    #: "<topic_prefix>aop.listener". A second listener with the same id fences the first.
    listener_transactional_id: str = ""
    #: first slot covered when the log holds no SlotBatch yet (0: the program's whole history).
    listener_start_slot: U64 = 0
    #: at most one slot range per this many ms (bounds the record rate: partitions per range)...
    listener_min_interval_ms: Annotated[int, Field(ge=10, le=600_000)] = 250
    #: ...and at least one per this many ms while the chain advances (idle watermarks).
    listener_max_interval_ms: Annotated[int, Field(ge=10, le=600_000)] = 1000
    #: a partition's range is split (at slot boundaries) so a SlotBatch holds at most this many
    #: events; a single slot is never split.
    listener_max_batch_events: Annotated[int, Field(ge=1)] = 5000
    #: a step writes the slots of at most this many transactions (whole slots); a longer
    #: backlog (first start, long outage) goes on the log over several steps.
    listener_max_range_txs: Annotated[int, Field(ge=1)] = 20_000
    #: getSignaturesForAddress page size (the RPC allows 1..1000).
    listener_signatures_page: Annotated[int, Field(ge=1, le=1000)] = 1000
    #: concurrent getTransaction (and getBlock) calls while backfilling.
    listener_rpc_concurrency: Annotated[int, Field(ge=1, le=256)] = 8
    #: a slot with at least this many program transactions whose logs the websocket did not
    #: deliver is read with one getBlock instead of that many getTransaction calls. 4: below
    #: that, the slot's getTransaction calls run side by side (rpc_concurrency) and cost about
    #: one round trip, while a getBlock answer carries every transaction of the slot, the
    #: program's or not (on mainnet over a thousand, megabytes of JSON, and providers often
    #: rate-limit it harder): raise it where getBlock is costly.
    listener_block_fetch_min_txs: Annotated[int, Field(ge=1)] = 4
    #: timeout of one JSON-RPC call (HTTP or websocket), in seconds.
    listener_rpc_timeout_s: Annotated[float, Field(gt=0)] = 10.0
    #: reconnect backoff: full jitter over min(max, initial * 2**attempt).
    listener_backoff_initial_ms: Annotated[int, Field(ge=1)] = 100
    listener_backoff_max_ms: Annotated[int, Field(ge=1)] = 10_000
    #: notifications whose logs are kept (saving a getTransaction) until their slot is written.
    listener_ws_cache_size: Annotated[int, Field(ge=0)] = 100_000
    #: rotated audit files kept next to the current one (`listener.ndjson.1` ...).
    listener_audit_keep: Annotated[int, Field(ge=1, le=100)] = 5

    # -- fold (streams/fold) ---------------------------------------------------------------
    #: Faust app id (= consumer group and changelog topic prefix), under the topic prefix.
    fold_app_id: str = "aop-fold"
    #: wallets (or open positions) per state bucket before a channel's buckets split in two
    #: (~80 bytes each: ~80 KB values). Lowering it later needs a fresh app id.
    fold_bucket_entries: Annotated[int, Field(ge=1, le=8192)] = 1024
    #: SlotBatch records per `take_events` chunk, and how long to wait to fill one (<= 0.2 s;
    #: a backlog fills chunks at once, so `within` only adds latency to live traffic).
    fold_take_max: Annotated[int, Field(ge=1)] = 1000
    fold_take_within: Annotated[float, Field(gt=0, le=0.2)] = 0.2
    #: how often Faust commits source offsets (seconds): the replay window after a crash.
    fold_commit_interval: Annotated[float, Field(gt=0)] = 2.8
    fold_standby_replicas: Annotated[int, Field(ge=0)] = 1
    #: static group membership (KIP-345): a restarted worker with the same id takes its
    #: partitions back at once instead of after the session timeout. Empty: dynamic.
    fold_instance_id: str = ""
    fold_session_timeout: Annotated[float, Field(gt=0)] = 30.0
    fold_datadir: Path = Path(".local/fold")
    #: testing only: SIGKILL the worker the n-th time it reaches a point ("after_root:2,...").
    fold_crash_at: str = ""

    # -- global roots (streams/combiner; the program as deployed) ---------------------------
    #: what `aop settle` publishes: per-channel roots ("channel": programs v0.2.2 and
    #: v0.2.1-clean) or the global root in the form the deployed program takes (its default,
    #: "global-v5"; "global-v4" for claim_global). The combiner builds global roots in the
    #: global target's format ("channel": global-v5, served by the API but not published).
    settlement_target: SettlementTarget = "global-v5"
    #: root_seq of the first global root: the on-chain GlobalRootConfig's latest_root_seq + 1
    #: (`aop chain status` reads it), so the pipeline continues the live sequence.
    global_first_root_seq: Annotated[int, Field(ge=1, le=2**64 - 1)] = 1
    #: which ProtocolState the global instructions name: the singleton ["protocol_state"]
    #: (the deployed source, its Pinocchio twin and the SDKs) or ["protocol", mint] (385f929).
    global_protocol_state: GlobalProtocolSeeds = "singleton"
    #: Kafka `transactional.id` of the combiner; empty means "<topic_prefix>aop.combiner".
    combiner_transactional_id: str = ""
    #: the combiner's lease group (one active instance); empty: "<topic_prefix>aop.combiner".
    combiner_group_id: str = ""
    #: how long a silent active combiner keeps its lease before another instance takes over.
    combiner_session_timeout_ms: Annotated[int, Field(ge=6000, le=300_000)] = 10_000
    #: testing only: SIGKILL the combiner the n-th time it reaches a point ("mid_global:1").
    combiner_crash_at: str = ""

    # -- simulated chain (simchain) --------------------------------------------------------
    #: `aop simulate-chain`: it serves HTTP on the port of `rpc_url` and websockets on the
    #: port of `ws_url`, running the program's rules for `program_id` and `mint`.
    #: Which program: "v0.2.2" (per-channel roots and claims) or "deployed" (the program on
    #: mainnet: global roots and claims only, other instructions fail with 101; the simulated
    #: staking instructions stay, as the base-yield source).
    sim_program: SimProgram = "v0.2.2"
    #: "deployed": the GlobalRootConfig's latest_root_seq at genesis (the live one is past
    #: 1,800; the pipeline's AOP_GLOBAL_FIRST_ROOT_SEQ is this + 1).
    sim_global_latest_root_seq: Annotated[int, Field(ge=0, le=2**64 - 2)] = 0
    sim_seed: int = 0
    #: wall-clock ms per slot (block times always advance 400 ms per slot).
    sim_slot_ms: Annotated[float, Field(ge=0)] = 400.0
    #: finalized = tip - depth; confirmed = tip - 1.
    sim_finality_depth: Annotated[int, Field(ge=1, le=1000)] = 31
    #: workload events per second (0: only transactions sent to it).
    sim_rate: Annotated[float, Field(ge=0)] = 20.0
    #: staking channels when `channels` is empty (names sim-generated), and funded wallets.
    sim_channel_count: Annotated[int, Field(ge=0, le=10_000)] = 8
    sim_wallets: Annotated[int, Field(ge=1, le=1_000_000)] = 200
    #: comma-separated channels where the simulator publishes its own roots and wallets claim
    #: (keep them out of `channels`: their root_seq belongs to the simulator). Unset: this
    #: default with "v0.2.2", none with "deployed" (which cannot have any).
    sim_claim_channels: str = "sim:claims"
    #: sealed slots the simulator keeps (blocks, transactions, signatures); older ones answer
    #: as a pruned Agave node does. Unset: 150 s of slots at `sim_slot_ms` (at least 151).
    sim_retain_slots: Annotated[int, Field(ge=1)] | None = None
    #: most workload wallets at once; past it, an idle wallet leaves for each one joining.
    #: Unset: the larger of `sim_wallets` and 4,096.
    sim_max_wallets: Annotated[int, Field(ge=1)] | None = None

    # -- projections / settlement ----------------------------------------------------------
    #: Kafka group of `aop project`; empty means "<topic_prefix>aop.projector". The group only
    #: spreads partitions: the offsets that count are stored in Postgres with the rows.
    projection_group_id: str = ""
    #: Kafka static membership (`group.instance.id`): a projector restarted with the same id
    #: (e.g. after kill -9) gets its partitions back at once instead of after the session
    #: timeout. Empty: dynamic membership.
    projection_instance_id: str = ""
    #: how long the group waits for a silent projector before reassigning its partitions.
    projection_session_timeout_ms: Annotated[int, Field(ge=6000, le=300_000)] = 10_000
    #: records per consume() call of the projector.
    projection_batch_size: Annotated[int, Field(ge=1, le=100_000)] = 2000
    projection_poll_timeout_s: Annotated[float, Field(gt=0, le=60)] = 0.5
    #: also project CumulativeRewardsClaimed events of aop.chain.events into claimed_totals.
    projection_claims: bool = True
    #: proof retention: the projector keeps the leaves and tree levels of the newest this many
    #: roots (by root_seq) of each root account; older roots keep their `roots` row and lose
    #: their proofs (`projections.retention`; the API answers 410 for them). Raising it does
    #: not bring pruned proofs back (`aop rebuild` does).
    proof_roots_kept: Annotated[int, Field(ge=1, le=1_000_000)] = DEFAULT_PROOF_ROOTS_KEPT
    #: roots-topic purge: the projector deletes the records of aop.epoch.roots and
    #: aop.global.roots below the offset every reader has durably passed and no recovery
    #: needs (`log.purge_point`; AdminClient delete_records). false: the topics keep growing.
    roots_purge: bool = True
    #: the projector purges at most this often (seconds), after a commit.
    roots_purge_every_s: Annotated[float, Field(gt=0, le=86_400)] = 60.0
    #: fault injection (tests): the projector kills itself (SIGKILL) at this point of a root's
    #: write transaction: after the leaves' COPY, or just before COMMIT. Empty: never.
    projection_crash_at: Literal["", "after_copy", "before_commit"] = ""
    #: how often `aop settle` looks for new outbox entries when idle, in seconds.
    settlement_poll_interval_s: Annotated[float, Field(gt=0, le=3600)] = 1.0
    #: timeout of one RPC call of settlement, in seconds.
    settlement_rpc_timeout_s: Annotated[float, Field(gt=0)] = 10.0
    #: interval between signature status polls while confirming, in seconds.
    settlement_confirm_poll_s: Annotated[float, Field(gt=0, le=60)] = 0.5
    #: retry backoff after RPC errors: min(max, initial * 2**attempt), full jitter.
    settlement_backoff_initial_ms: Annotated[int, Field(ge=1)] = 200
    settlement_backoff_max_ms: Annotated[int, Field(ge=1)] = 10_000
    #: fault injection (tests): settlement kills itself (SIGKILL) right after recording a
    #: transaction's intent (before sending it), or right after sending it (before recording
    #: the outcome). Empty: never.
    settlement_crash_at: Literal["", "before_send", "after_send"] = ""
    #: the publisher's SOL balance (lamports) is read this often (aop_settlement_publisher_
    #: lamports); below the minimum, settlement logs a warning and AopPublisherBalanceLow fires.
    #: 0.05 SOL pays ~10,000 publishes at the base fee of 5,000 lamports.
    settlement_balance_interval_s: Annotated[float, Field(gt=0, le=86_400)] = 60.0
    settlement_min_balance_lamports: U64 = 50_000_000

    # -- replay / parity -------------------------------------------------------------------
    #: records per consume() call of `aop replay`, `aop parity` and `aop rebuild` (their
    #: readers assign + seek and never commit: no consumer group state). A SlotBatch record
    #: holds up to AOP_LISTENER_MAX_BATCH_EVENTS events (~600 bytes each).
    replay_batch_size: Annotated[int, Field(ge=1, le=100_000)] = 100
    replay_poll_timeout_s: Annotated[float, Field(gt=0, le=60)] = 0.2
    #: partitions replayed at once, one process each (`--workers`); the fold is CPU-bound.
    replay_workers: Annotated[int, Field(ge=1, le=64)] = 1
    #: a read that makes no progress towards its stop offset this long fails (exit 2).
    replay_stall_timeout_s: Annotated[float, Field(gt=0)] = 60.0
    #: timeout of the on-chain comparison's RPC calls (getAccountInfo at AOP_RPC_URL).
    replay_rpc_timeout_s: Annotated[float, Field(gt=0, le=120)] = 5.0
    #: differing wallets listed per root (all are counted), and how many of them get their
    #: events traced (a second pass over the log, only when leaves differ).
    replay_max_wallets: Annotated[int, Field(ge=0, le=1_000_000)] = 20
    replay_explain_wallets: Annotated[int, Field(ge=0, le=100)] = 3
    #: `aop parity`: newest roots checked per channel.
    parity_roots: Annotated[int, Field(ge=1, le=100_000)] = 4
    #: `aop rebuild`: how long the final catch-up may take before the switch gives up, and how
    #: long the switch transaction waits for the live writers' locks (each attempt).
    rebuild_catchup_timeout_s: Annotated[float, Field(gt=0)] = 300.0
    rebuild_lock_timeout_s: Annotated[float, Field(gt=0, le=600)] = 10.0

    # -- api (aop api) ---------------------------------------------------------------------
    #: origins allowed by CORS (JSON list or comma-separated; "*" allows any). Empty: no CORS.
    api_cors_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)
    #: database connections of the API process, and how long a request waits for one (503).
    api_pool_size: Annotated[int, Field(ge=1, le=256)] = 8
    api_pool_timeout_s: Annotated[float, Field(gt=0, le=60)] = 2.0
    #: Postgres statement_timeout of the API's connections, in ms (a slower query answers 503).
    api_statement_timeout_ms: Annotated[int, Field(ge=1, le=600_000)] = 5000
    #: hot roots kept in memory (metadata and upper tree levels), least recently used out.
    api_cache_roots: Annotated[int, Field(ge=0, le=100_000)] = 32
    #: tree levels of at most this many nodes are kept in the root cache (x 32 bytes, about
    #: 2x per root in all); proofs slice only the larger levels in SQL. 0: every level in SQL.
    api_cache_level_nodes: Annotated[int, Field(ge=0, le=1 << 24)] = 16384
    #: memory for channels' hot latest roots held whole (leaves, every level and, for
    #: cumulative-v2, claim-state addresses: ~140 MB per 1M wallets): a claim against one needs
    #: no tree or leaf query and derives no PDA. 0: none held.
    api_hot_roots_bytes: Annotated[int, Field(ge=0)] = 256 * 1024 * 1024
    #: claims a channel's latest root answers from SQL before it is loaded into memory.
    api_hot_root_claims: Annotated[int, Field(ge=1)] = 200
    #: how old (ms) the facts a hot root's claims use may be (latest root, claimed totals,
    #: settlement status; re-read per channel, `api.hot_facts`). 0: read for every claim.
    api_facts_max_age_ms: Annotated[int, Field(ge=0, le=5000)] = 250
    #: max-age (s) of mutable answers (latest roots, claims with claimable); immutable ones
    #: (a given root, its dataset, its proofs) are cached for a year.
    api_mutable_max_age_s: Annotated[int, Field(ge=0, le=86_400)] = 5
    #: largest request body accepted (POST /v1/verify); larger ones get 413.
    api_max_body_bytes: Annotated[int, Field(ge=1024, le=16 * 1024 * 1024)] = 64 * 1024
    #: leaves per server-side cursor fetch while streaming a dataset, and how many dataset
    #: streams run at once (each holds a connection; more get 503).
    api_dataset_chunk_rows: Annotated[int, Field(ge=1, le=100_000)] = 5000
    api_dataset_streams: Annotated[int, Field(ge=1, le=64)] = 2
    #: uvicorn access log lines (JSON, one per request); off by default (costly at load).
    api_access_log: bool = False
    #: seconds uvicorn waits for open requests on SIGTERM before closing them.
    api_shutdown_timeout_s: Annotated[float, Field(gt=0, le=600)] = 10.0

    @field_validator("api_cors_origins", mode="before")
    @classmethod
    def _origin_list(cls, value: Any) -> Any:
        if isinstance(value, str):
            text = value.strip()
            value = json.loads(text) if text.startswith("[") else text.split(",")
        if isinstance(value, list):
            return [str(v).strip() for v in value if str(v).strip()]
        return value

    # -- attention signals at the ingest (AOP_ATTENTION_EPOCH_SECONDS is above) ---------------
    #: how late a signal may reach the ingest: its watermark is its clock minus this, and a
    #: signal whose window ends before the watermark is refused (`late`). An attention epoch
    #: closes this long after its end.
    attention_allowed_lateness_s: Annotated[int, Field(ge=0, le=7 * 86_400)] = 300

    # -- ingest (aop ingest) ---------------------------------------------------------------
    ingest_host: str = "127.0.0.1"
    ingest_port: Port = 8090
    #: the sources' bearer tokens, hashed: one `<source> sha256:<hex>` line per token (mode
    #: 600; `aop ingest token new` prints a line). Unset: every request is refused (401).
    ingest_tokens_file: Path | None = None
    #: largest request body (413 above it) and most items (signals, bindings or legacy
    #: events) in one request (413 above it).
    ingest_max_body_bytes: Annotated[int, Field(ge=1024, le=64 * 1024 * 1024)] = 1024 * 1024
    ingest_max_items: Annotated[int, Field(ge=1, le=100_000)] = 1000
    #: per-source token bucket: items per second, and the bucket's size (a burst); a request
    #: the bucket cannot pay for is refused whole with 429 and Retry-After.
    ingest_rate_limit: Annotated[float, Field(gt=0, le=10_000_000)] = 10_000.0
    ingest_rate_burst: Annotated[int, Field(ge=1, le=100_000_000)] = 20_000
    #: a signal whose window starts more than this after the ingest's clock is refused
    #: (`future`): the collectors' clocks may run this far ahead.
    ingest_clock_skew_s: Annotated[int, Field(ge=0, le=3600)] = 30
    #: how often every partition gets a pure watermark batch (idle partitions close epochs).
    ingest_watermark_interval_s: Annotated[float, Field(gt=0, le=60)] = 1.0
    #: Kafka `transactional.id` of the ingest's producer; empty means "<topic_prefix>aop.ingest"
    #: (`aop ingest --file` uses this + ".backfill"). A second ingest with the same id fences
    #: the first: run one per deployment.
    ingest_transactional_id: str = ""
    #: how long a request waits for its transaction before answering 503 (a retry is safe:
    #: duplicates count once).
    ingest_request_timeout_s: Annotated[float, Field(gt=0, le=600)] = 30.0
    #: testing only: SIGKILL the ingest the n-th time it reaches a point ("after_commit:3").
    ingest_crash_at: str = ""

    @field_validator("ingest_rate_burst")
    @classmethod
    def _burst_holds_a_request(cls, value: int, info: ValidationInfo) -> int:
        most = info.data.get("ingest_max_items")
        if most is not None and value < most:
            raise ValueError(
                f"must be at least AOP_INGEST_MAX_ITEMS ({most}): a request of that many "
                "items could never pass the rate limit"
            )
        return value

    # -- services --------------------------------------------------------------------------
    api_host: str = "127.0.0.1"
    api_port: Port = 8080
    metrics_host: str = "127.0.0.1"
    metrics_port: Annotated[int, Field(ge=0, le=65535)] = 0
    audit_dir: Path = Path(".local/audit")
    audit_max_bytes: Annotated[int, Field(ge=1024)] = 64 * 1024 * 1024
    log_level: LogLevel = "INFO"
    #: after SIGTERM/SIGINT a service (listener, fold, combiner, projector, settlement) exits
    #: within this many seconds even when its broker or database does not answer
    #: (runtime.shutdown); the API drains requests for AOP_API_SHUTDOWN_TIMEOUT_S instead.
    shutdown_timeout_s: Annotated[float, Field(gt=0, le=600)] = 10.0

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        explicit = _MappingEnvSource(settings_cls, _explicit_env.get() or {})
        return init_settings, explicit, env_settings, dotenv_settings

    @field_validator(
        "kafka_sasl_mechanism",
        "kafka_sasl_password_file",
        "kafka_ssl_ca_file",
        "kafka_ssl_cert_file",
        "kafka_ssl_key_file",
        "kafka_min_insync_replicas",
        "ingest_tokens_file",
        mode="before",
    )
    @classmethod
    def _empty_is_unset(cls, value: Any) -> Any:
        """`AOP_KAFKA_SSL_CA_FILE=` (empty) means unset, not the current directory."""
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("kafka_replication_factor")
    @classmethod
    def _replication_factor(cls, value: int) -> int:
        if value == 0:
            raise ValueError("must be -1 (the broker's default) or at least 1")
        return value

    @field_validator("kafka_min_insync_replicas")
    @classmethod
    def _min_insync(cls, value: int | None, info: ValidationInfo) -> int | None:
        factor = info.data.get("kafka_replication_factor", -1)
        if value is not None and factor > 0 and value > factor:
            raise ValueError(
                f"must not exceed AOP_KAFKA_REPLICATION_FACTOR ({factor}): no write could "
                "ever be acknowledged"
            )
        return value

    @field_validator("kafka_client_options", mode="before")
    @classmethod
    def _client_options(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = json.loads(value) if value.strip() else {}
        if not isinstance(value, dict):
            return value
        refused = sorted(k for k in value if _refused_client_option(str(k)))
        if refused:
            raise ValueError(
                f"must not set {', '.join(refused)} (a setting of its own, a secret, or an "
                "option the pipeline's guarantees rest on)"
            )
        return {str(k): str(v).lower() if isinstance(v, bool) else str(v) for k, v in value.items()}

    @field_validator("database_url")
    @classmethod
    def _psycopg_url(cls, value: str) -> str:
        if not value.startswith(DATABASE_URL_SCHEME):
            raise ValueError(f"must be a URL starting with {DATABASE_URL_SCHEME}")
        return value

    def __repr_args__(self) -> Iterator[tuple[str | None, Any]]:
        """The fields for repr() and str(), with the database password masked."""
        for name, value in super().__repr_args__():
            yield name, redact_url(value) if name in _SECRET_URL_FIELDS else value

    @field_validator("program_id", "mint")
    @classmethod
    def _base58_pubkey(cls, value: str) -> str:
        try:
            Pubkey.from_string(value)
        except ValueError as exc:
            raise ValueError("must be a base58 public key") from exc
        return value

    @field_validator("channels", mode="before")
    @classmethod
    def _channel_list(cls, value: Any) -> Any:
        if isinstance(value, str):
            text = value.strip()
            value = json.loads(text) if text.startswith("[") else text.split(",")
        if isinstance(value, list):
            names = [str(v).strip() for v in value if str(v).strip()]
            for name in names:
                if not (1 <= len(name) <= 64 and name.isascii()):
                    raise ValueError(f"channel names must be 1-64 ASCII characters (got {name!r})")
            return names
        return value

    @field_validator("attention_weights")
    @classmethod
    def _attention_kinds(cls, value: dict[str, int]) -> dict[str, int]:
        if set(value) - set(SIGNAL_KINDS):
            raise ValueError(f"must name signal kinds {', '.join(SIGNAL_KINDS)}")
        return value

    @field_validator("attention_weights", mode="before")
    @classmethod
    def _json_object(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = json.loads(value) if value.strip() else {}
        return value

    @field_validator("attention_claim_id_template")
    @classmethod
    def _claim_id_template(cls, value: str, info: ValidationInfo) -> str:
        try:
            check_claim_id_template(value)
        except ValueError as exc:
            raise ValueError(str(exc)) from None
        formats = {info.data.get("attention_format_default")}
        formats.update((info.data.get("attention_formats") or {}).values())
        if "ring-v0-legacy" in formats and "{user}" not in value:
            raise ValueError(
                "must hold {user} while a channel's attention format is ring-v0-legacy (its "
                "claims would all get one id)"
            )
        return value

    @field_validator(
        "emissions",
        "claim_formats",
        "first_root_seq",
        "attention_policies",
        "attention_formats",
        mode="before",
    )
    @classmethod
    def _channel_map(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = json.loads(value) if value.strip() else {}
        if isinstance(value, dict):
            return {str(k).lower(): v for k, v in value.items()}
        return value

    def emission_for(self, channel: str) -> int:
        """The per-epoch emission of `channel`: its override, else the default."""
        return self.emissions.get(channel.lower(), self.emission_default)

    def claim_format_for(self, channel: str) -> ClaimFormatName:
        """The claim format of `channel`: its override, else the default."""
        return self.claim_formats.get(channel.lower(), self.claim_format_default)

    def attention_policy_for(self, channel: str) -> AttentionPolicy:
        """The attention policy of `channel`: the defaults with its AOP_ATTENTION_POLICIES entry."""
        override = self.attention_policies.get(channel.lower()) or AttentionPolicyOverride()
        weights = {**self.attention_weights, **(override.weights or {})}
        return AttentionPolicy(
            mode=override.mode or self.attention_mode,
            weights=weights,
            reward_per_weight=(
                self.attention_reward_per_weight
                if override.reward_per_weight is None
                else override.reward_per_weight
            ),
            emission=self.attention_emission if override.emission is None else override.emission,
        )

    def attention_format_for(self, channel: str) -> AttentionFormatName:
        """The claim format of `channel`'s attention roots: its override, else the default."""
        return self.attention_formats.get(channel.lower(), self.attention_format_default)

    def first_root_seq_for(self, channel: str) -> int:
        """The root_seq the first root of `channel` gets (continues an on-chain sequence)."""
        return self.first_root_seq.get(channel.lower(), 1)

    @property
    def global_root_account(self) -> str:
        """The base58 GlobalRootConfig PDA of the mint: the global roots' root account."""
        return str(
            global_root_config_address(
                program_id=Pubkey.from_string(self.program_id), mint=Pubkey.from_string(self.mint)
            ).address
        )

    @property
    def global_format(self) -> Literal["global-v4", "global-v5"]:
        """The format of the global roots: the settlement target's, global-v5 for "channel"."""
        return "global-v4" if self.settlement_target == "global-v4" else "global-v5"

    def topic(self, name: str) -> str:
        """The full name of log topic `name` (e.g. `aop.chain.events`) under the topic prefix."""
        return f"{self.topic_prefix}{name}"


#: librdkafka options AOP_KAFKA_CLIENT_OPTIONS may not set: connection and security ones (they
#: have settings), secrets (they belong in files), and those the guarantees rest on.
_OWNED_CLIENT_OPTIONS = frozenset(
    {
        "bootstrap.servers",
        "security.protocol",
        "ssl.ca.location",
        "ssl.certificate.location",
        "enable.idempotence",
        "acks",
        "isolation.level",
        "enable.auto.commit",
        "enable.auto.offset.store",
        "transactional.id",
        "group.id",
    }
)


def _refused_client_option(name: str) -> bool:
    return (
        name in _OWNED_CLIENT_OPTIONS
        or name.startswith(("sasl.", "ssl.key", "ssl_key", "ssl.certificate.pem", "ssl.ca.pem"))
        or "password" in name
        or "secret" in name
    )


def load_settings(env: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
    """Build the settings from the environment (and `env`, which wins), or raise SettingsError.

    Args:
        env: extra variables, as if exported (keys with the `AOP_` prefix); they override
            the process environment. Tests pass their variables here.
        overrides: field values that win over everything (for programmatic use).
    Raises:
        SettingsError: one line per bad variable: its name, what it must be and what it got.
    """
    token = _explicit_env.set(dict(env or {}))
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise SettingsError(_describe(exc)) from None
    except PydanticSettingsError as exc:  # a source could not parse a value at all
        raise SettingsError(f"bad settings: {exc}") from None
    finally:
        _explicit_env.reset(token)


def redact_url(url: object) -> object:
    """`url` with the password of its user info and the value of every query parameter
    replaced by `***` (RPC providers put API keys in the query: `?api-key=...`); other values
    unchanged.

    Args:
        url: a URL such as AOP_DATABASE_URL or AOP_RPC_URL; anything else is returned as it is.
    """
    if not isinstance(url, str):
        return url
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:  # not parseable: nothing of it is shown
        return "<unparseable URL, hidden>"
    if password:
        url = url.replace(f":{password}@", ":***@", 1)
    if parts.query:
        masked = "&".join(
            f"{name}=***" if sep else name
            for name, sep, _ in (field.partition("=") for field in parts.query.split("&"))
        )
        url = url.replace(f"?{parts.query}", f"?{masked}", 1)
    return url


def _describe(exc: ValidationError) -> str:
    lines = []
    for err in exc.errors():
        field = str(err["loc"][0]) if err["loc"] else "?"
        got = err.get("input")
        if field in _SECRET_URL_FIELDS:
            got = redact_url(got)
        elif field == "kafka_client_options":  # it may be refused for holding a secret
            got = "<not shown>"
        message = str(err["msg"]).removeprefix("Value error, ")
        lines.append(f"{ENV_PREFIX}{field.upper()}: {message} (got {got!r})")
    return "bad settings: " + "; ".join(lines)
