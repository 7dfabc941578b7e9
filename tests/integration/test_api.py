"""The read API against the real PostgreSQL, with roots written by the projections writer.

Proofs and datasets are checked with an INDEPENDENT verifier written here from the program's
rules (reference §2): our own keccak calls, leaf preimage, sorted-pair fold and tree shape;
nothing of `core` or `api` is used to decide whether an answer is right.
"""

from __future__ import annotations

import asyncio
import html
import json
import random
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import jsonschema_rs
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sha3 import keccak_256
from solders.pubkey import Pubkey
from sqlalchemy import Engine, text

from aop.api.app import create_app
from aop.api.openapi import openapi_document
from aop.api.routes import OPERATIONS
from aop.projections.db import engine_for, upgrade
from aop.runtime.settings import Settings, load_settings
from tests.support.api_answers import CLAIM_KEYS, ROOT_CLAIM_KEYS
from tests.support.api_sample import random_amounts, write_claimed_total, write_sample_root

IMMUTABLE = "public, max-age=31536000, immutable"
MUTABLE = "public, max-age=5"

# -- the independent verifier (reference §2, written from the rules, not from core/) --------


def keccak(data: bytes) -> bytes:
    return bytes(keccak_256(data).digest())


def cumulative_leaf(config: str, mint: str, root_seq: int, wallet: bytes, total: int) -> bytes:
    return keccak(
        b"TWZRD:CUMULATIVE_V2"
        + bytes(Pubkey.from_string(config))
        + bytes(Pubkey.from_string(mint))
        + root_seq.to_bytes(8, "little")
        + wallet
        + total.to_bytes(8, "little")
    )


def ring_leaf(wallet: bytes, index: int, amount: int, claim_id: str) -> bytes:
    return keccak(
        wallet + index.to_bytes(4, "little") + amount.to_bytes(8, "little") + claim_id.encode()
    )


def fold(leaf: bytes, proof: list[bytes]) -> bytes:
    node = leaf
    for sibling in proof:
        node = keccak(min(node, sibling) + max(node, sibling))
    return node


def tree_root(leaves: list[bytes]) -> bytes:
    """Pairs (0,1), (2,3), ...; an odd last node hashed with itself; one leaf is the root."""
    level = list(leaves)
    while len(level) > 1:
        if len(level) % 2:
            level.append(level[-1])
        level = [
            keccak(min(a, b) + max(a, b)) for a, b in zip(level[::2], level[1::2], strict=True)
        ]
    return level[0]


def proof_holds(claim: dict[str, Any], wallet: bytes, mint: str) -> bool:
    """Recompute the claim's leaf from its parameters and fold its proof into its root."""
    proof = [bytes.fromhex(node) for node in claim["proof"]]
    if len(proof) > 32:
        return False
    if claim["format"] == "ring-v0":
        leaf = ring_leaf(wallet, claim["leaf_index"], int(claim["amount"]), claim["claim_id"])
    else:
        leaf = cumulative_leaf(
            claim["channel_config"], mint, claim["root_seq"], wallet, int(claim["cumulative_total"])
        )
    return leaf.hex() == claim["leaf"] and fold(leaf, proof).hex() == claim["root"]


# -- data --------------------------------------------------------------------------------------


@dataclass
class Seed:
    """What was written: per channel, per root_seq, wallet -> amount."""

    settings: Settings
    mint: str
    program_id: str
    configs: dict[str, str] = field(default_factory=dict)
    roots: dict[str, dict[int, dict[bytes, int]]] = field(default_factory=dict)
    samples: dict[tuple[str, int], Any] = field(default_factory=dict)
    only_in_first: bytes = b""
    claimed: dict[bytes, int] = field(default_factory=dict)


ALPHA_WALLETS = 1001  # odd: every level of the tree has an odd tail somewhere


def _write(seed: Seed, engine: Engine, channel: str, root_seq: int, amounts: dict, **kw: Any):
    program_id = Pubkey.from_string(seed.program_id)
    mint = Pubkey.from_string(seed.mint)
    sample = write_sample_root(
        engine,
        channel=channel,
        root_seq=root_seq,
        amounts=amounts,
        program_id=program_id,
        mint=mint,
        **kw,
    )
    seed.configs[channel] = sample.root["channel_config"]
    seed.roots.setdefault(channel, {})[root_seq] = dict(amounts)
    seed.samples[(channel, root_seq)] = sample
    return sample


def seed_database(settings: Settings) -> Seed:
    """Channels Alpha (5 roots, 1001 wallets), beta (300, half shared), solo (1), ringy."""
    upgrade(settings)
    seed = Seed(settings, settings.mint, settings.program_id)
    rng = random.Random(20251127)
    engine = engine_for(settings)
    try:
        base = random_amounts(ALPHA_WALLETS, rng, low=1, high=10**12)
        seed.only_in_first = rng.randbytes(32)
        for root_seq in range(1, 6):
            amounts = {w: a * root_seq for w, a in base.items()}
            if root_seq == 1:
                amounts[seed.only_in_first] = 777
            _write(
                seed,
                engine,
                "Alpha",
                root_seq,
                amounts,
                epoch=100 + root_seq,
                input_ranges=[{"partition": 3, "first_offset": 10 * root_seq, "last_offset": 99}],
            )
        shared = list(base)[:150]
        beta = {w: rng.randint(1, 10**9) for w in shared}
        beta.update(random_amounts(150, rng))
        _write(seed, engine, "beta", 7, beta, epoch=3)
        _write(seed, engine, "solo", 1, {rng.randbytes(32): 42}, epoch=1)
        ring = list(random_amounts(33, rng, high=10**6).items())
        _write(seed, engine, "ringy", 12, ring, epoch=12, format_name="ring-v0")
        alpha = seed.configs["Alpha"]
        wallets = sorted(base)
        seed.claimed = {wallets[0]: 1000, wallets[1]: 10**13 * 9}
        for wallet, claimed in seed.claimed.items():
            write_claimed_total(
                engine, channel_config=alpha, wallet=wallet, claimed_total=claimed, root_seq=4
            )
        with engine.begin() as conn:
            conn.execute(
                text(
                    "UPDATE settlement_outbox SET status = 'published', signature = 'sig4', "
                    "slot = 4444, attempts = 1 WHERE channel_config = :c AND root_seq = 4"
                ),
                {"c": alpha},
            )
    finally:
        engine.dispose()
    return seed


ClientFactory = Callable[..., Any]


@pytest.fixture
async def client_factory() -> AsyncIterator[ClientFactory]:
    """Builds in-process clients of `create_app(settings)`; closes their pools afterwards."""
    apps = []

    def make(settings: Settings) -> httpx.AsyncClient:
        app = create_app(settings)
        apps.append(app)
        return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api")

    yield make
    for app in apps:
        await app.state.db.close()


@pytest.fixture
async def client(seeded: Seed, client_factory: ClientFactory) -> httpx.AsyncClient:
    return client_factory(seeded.settings)


def b58(wallet: bytes) -> str:
    return str(Pubkey(wallet))


def assert_error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message"}
    assert body["error"]["code"] == code, body
    return body["error"]


_DOCUMENT = openapi_document(OPERATIONS)


def assert_schema(value: Any, name: str) -> None:
    """`value` conforms to components/schemas/`name` of the served OpenAPI document."""
    schema = {**_DOCUMENT, "$ref": f"#/components/schemas/{name}"}
    jsonschema_rs.validator_for(schema).validate(value)


# -- claims: every proof verifies ---------------------------------------------------------


async def test_claim_of_every_wallet_verifies_under_independent_verifier(
    seeded: Seed, client: httpx.AsyncClient
) -> None:
    """All 1001 wallets of the latest Alpha root: leaf, proof and root check out on their own."""
    latest = seeded.roots["Alpha"][5]
    wallets = sorted(latest)

    async def fetch(wallet: bytes) -> dict[str, Any]:
        response = await client.get(f"/v1/channels/alpha/claims/{b58(wallet)}")
        assert response.status_code == 200, response.text
        return response.json()

    claims = []
    for start in range(0, len(wallets), 64):  # concurrent requests share batched queries
        claims += await asyncio.gather(*(fetch(w) for w in wallets[start : start + 64]))
    for index, (wallet, claim) in enumerate(zip(wallets, claims, strict=True)):
        assert claim["wallet"] == b58(wallet)
        assert claim["root_seq"] == 5
        assert claim["leaf_index"] == index
        assert int(claim["cumulative_total"]) == latest[wallet]
        assert claim["amount"] == claim["cumulative_total"]
        assert len(claim["proof"]) == 10  # ceil(log2(1001))
        assert proof_holds(claim, wallet, seeded.mint), index
    assert {c["root"] for c in claims} == {seeded.samples[("Alpha", 5)].root["root"].hex()}
    assert_schema(claims[0], "Claim")


async def test_claim_fields_for_a_cumulative_channel(
    seeded: Seed, client: httpx.AsyncClient
) -> None:
    """Name lookup is case-insensitive; the answer has every field a claim transaction needs."""
    wallet = sorted(seeded.roots["Alpha"][5])[500]
    response = await client.get(f"/v1/channels/ALPHA/claims/{b58(wallet)}")
    assert response.status_code == 200
    claim = response.json()
    total = seeded.roots["Alpha"][5][wallet]
    assert list(claim) == CLAIM_KEYS  # the order clients have always seen
    assert claim == {
        **claim,
        "channel": "Alpha",
        "channel_config": seeded.configs["Alpha"],
        "format": "cumulative-v2",
        "program_id": seeded.program_id,
        "mint": seeded.mint,
        "epoch": 105,
        "cumulative_total": str(total),
        "claimed_total": "0",
        "claimable": str(total),
        "claim_id": None,
        "latest_root_seq": 5,
        "stale": False,
        "settlement_status": "pending",
    }
    expected_claim_state, _ = Pubkey.find_program_address(
        [
            b"claim_state_v2",
            bytes(Pubkey.from_string(seeded.configs["Alpha"])),
            wallet,
        ],
        Pubkey.from_string(seeded.program_id),
    )
    assert claim["claim_state"] == str(expected_claim_state)
    assert response.headers["cache-control"] == MUTABLE
    assert response.headers["etag"].startswith('"')


async def test_channel_addressed_by_config_pda_gives_same_claim(
    seeded: Seed, client: httpx.AsyncClient
) -> None:
    wallet = sorted(seeded.roots["Alpha"][5])[3]
    by_name = await client.get(f"/v1/channels/alpha/claims/{b58(wallet)}")
    by_pda = await client.get(f"/v1/channels/{seeded.configs['Alpha']}/claims/{b58(wallet)}")
    assert by_pda.status_code == 200
    assert by_pda.json() == by_name.json()


async def test_claimable_subtracts_claimed_total_and_never_goes_negative(
    seeded: Seed, client: httpx.AsyncClient
) -> None:
    """claimable = max(0, cumulative_total - claimed_total)."""
    for wallet, claimed in seeded.claimed.items():
        claim = (await client.get(f"/v1/channels/alpha/claims/{b58(wallet)}")).json()
        total = seeded.roots["Alpha"][5][wallet]
        assert claim["claimed_total"] == str(claimed)
        assert claim["claimable"] == str(max(0, total - claimed))
    big_claimer = list(seeded.claimed)[1]
    claim = (await client.get(f"/v1/channels/alpha/claims/{b58(big_claimer)}")).json()
    assert claim["claimable"] == "0"


async def test_wallet_only_in_old_root_gets_that_root_marked_stale(
    seeded: Seed, client: httpx.AsyncClient
) -> None:
    """The newest root holding the wallet is root 1; 1 <= 5 - 4, so the program dropped it."""
    wallet = seeded.only_in_first
    claim = (await client.get(f"/v1/channels/alpha/claims/{b58(wallet)}")).json()
    assert claim["root_seq"] == 1
    assert claim["cumulative_total"] == "777"
    assert claim["stale"] is True
    assert claim["latest_root_seq"] == 5
    assert proof_holds(claim, wallet, seeded.mint)


async def test_single_leaf_root_has_empty_proof_and_leaf_is_root(
    seeded: Seed, client: httpx.AsyncClient
) -> None:
    (wallet,) = seeded.roots["solo"][1]
    claim = (await client.get(f"/v1/channels/solo/claims/{b58(wallet)}")).json()
    assert claim["proof"] == []
    assert claim["leaf"] == claim["root"]
    assert proof_holds(claim, wallet, seeded.mint)


async def test_ring_v0_claims_verify_with_the_ring_leaf(
    seeded: Seed, client: httpx.AsyncClient
) -> None:
    """ring-v0: leaf keccak(wallet || u32 index || u64 amount || '<channel>:<epoch>')."""
    amounts = seeded.roots["ringy"][12]
    for wallet, amount in amounts.items():
        claim = (await client.get(f"/v1/channels/ringy/claims/{b58(wallet)}")).json()
        assert claim["format"] == "ring-v0"
        assert claim["claim_id"] == "ringy:12"
        assert claim["amount"] == str(amount)
        assert claim["cumulative_total"] is None
        assert claim["claimed_total"] is None and claim["claimable"] is None
        assert claim["claim_state"] is None
        assert proof_holds(claim, wallet, seeded.mint)
    assert_schema(claim, "Claim")


async def test_proof_for_a_given_root_verifies_and_is_immutable(
    seeded: Seed, client: httpx.AsyncClient
) -> None:
    """Every wallet of root 2, asked for by root_seq: the proof of that root, cached a year."""
    amounts = seeded.roots["Alpha"][2]
    expected_root = seeded.samples[("Alpha", 2)].root["root"].hex()
    for wallet in [*sorted(amounts)[::7], seeded.only_in_first]:
        response = await client.get(f"/v1/channels/alpha/roots/2/claims/{b58(wallet)}")
        if wallet == seeded.only_in_first:
            assert_error(response, 404, "wallet_not_found")
            continue
        assert response.status_code == 200
        assert response.headers["cache-control"] == IMMUTABLE
        claim = response.json()
        assert claim["root_seq"] == 2 and claim["root"] == expected_root
        assert int(claim["cumulative_total"]) == amounts[wallet]
        assert list(claim) == ROOT_CLAIM_KEYS
        assert proof_holds(claim, wallet, seeded.mint)
    assert_schema(claim, "RootClaim")


async def test_wallet_claims_across_channels_and_pages(
    seeded: Seed, client: httpx.AsyncClient
) -> None:
    """A wallet in Alpha and beta gets both claims; limit=1 pages through them."""
    beta = seeded.roots["beta"][7]
    wallet = next(w for w in sorted(beta) if w in seeded.roots["Alpha"][5])
    response = await client.get(f"/v1/wallets/{b58(wallet)}/claims")
    assert response.status_code == 200
    page = response.json()
    assert_schema(page, "WalletClaims")
    assert {c["channel"] for c in page["claims"]} == {"Alpha", "beta"}
    assert page["next_after"] is None
    for claim in page["claims"]:
        assert proof_holds(claim, wallet, seeded.mint)
    first = (await client.get(f"/v1/wallets/{b58(wallet)}/claims?limit=1")).json()
    assert len(first["claims"]) == 1 and first["next_after"] == first["claims"][0]["channel_config"]
    second = (
        await client.get(f"/v1/wallets/{b58(wallet)}/claims?limit=1&after={first['next_after']}")
    ).json()
    assert len(second["claims"]) == 1 and second["next_after"] is None
    assert {first["claims"][0]["channel"], second["claims"][0]["channel"]} == {"Alpha", "beta"}


# -- datasets ---------------------------------------------------------------------------------


async def test_dataset_stream_recomputes_root_and_dataset_hash_in_every_format(
    seeded: Seed, client_factory: ClientFactory
) -> None:
    """The streamed leaves (small fetches: many cursor chunks) rebuild root and dataset_hash."""
    settings = seeded.settings.model_copy(update={"api_dataset_chunk_rows": 97})
    client = client_factory(settings)
    sample = seeded.samples[("Alpha", 3)]
    config = seeded.configs["Alpha"]
    expected = sorted(seeded.roots["Alpha"][3].items())
    for fmt in ("json", "ndjson", "binary"):
        response = await client.get(f"/v1/roots/alpha/3/dataset?format={fmt}")
        assert response.status_code == 200, response.text
        assert response.headers["cache-control"] == IMMUTABLE
        assert response.headers["x-aop-root"] == sample.root["root"].hex()
        assert response.headers["x-aop-dataset-hash"] == sample.root["dataset_hash"].hex()
        assert response.headers["x-aop-leaf-count"] == str(len(expected))
        if fmt == "binary":
            body = response.content
            assert keccak(body).hex() == sample.root["dataset_hash"].hex()
            entries = [
                (body[i : i + 32], int.from_bytes(body[i + 32 : i + 40], "little"))
                for i in range(0, len(body), 40)
            ]
        else:
            if fmt == "json":
                assert response.headers["content-type"] == "application/json"
                items = response.json()
            else:
                assert response.headers["content-type"] == "application/x-ndjson"
                items = [json.loads(line) for line in response.text.splitlines()]
            assert [item["index"] for item in items] == list(range(len(items)))
            entries = [
                (bytes(Pubkey.from_string(item["wallet"])), int(item["amount"])) for item in items
            ]
            for item in items[:3]:
                assert_schema(item, "DatasetEntry")
        assert entries == expected
        dataset_hash = keccak(b"".join(w + a.to_bytes(8, "little") for w, a in entries))
        assert dataset_hash.hex() == sample.root["dataset_hash"].hex()
        leaves = [cumulative_leaf(config, seeded.mint, 3, w, a) for w, a in entries]
        assert tree_root(leaves).hex() == sample.root["root"].hex()


async def test_ring_dataset_binary_is_the_canonical_dataset(
    seeded: Seed, client: httpx.AsyncClient
) -> None:
    sample = seeded.samples[("ringy", 12)]
    response = await client.get("/v1/roots/ringy/12/dataset?format=binary")
    assert response.status_code == 200
    assert keccak(response.content).hex() == sample.root["dataset_hash"].hex()
    body = response.content
    leaves = [
        ring_leaf(
            body[i : i + 32],
            int.from_bytes(body[i + 32 : i + 36], "little"),
            int.from_bytes(body[i + 36 : i + 44], "little"),
            "ringy:12",
        )
        for i in range(0, len(body), 44)
    ]
    assert tree_root(leaves).hex() == sample.root["root"].hex()


async def test_dataset_etag_answers_304_and_head_has_no_body(
    seeded: Seed, client: httpx.AsyncClient
) -> None:
    first = await client.get("/v1/roots/alpha/5/dataset?format=ndjson")
    etag = first.headers["etag"]
    assert etag == f'"{seeded.samples[("Alpha", 5)].root["dataset_hash"].hex()}.ndjson"'
    again = await client.get(
        "/v1/roots/alpha/5/dataset?format=ndjson", headers={"If-None-Match": etag}
    )
    assert again.status_code == 304
    assert again.content == b""
    assert again.headers["etag"] == etag
    assert again.headers["cache-control"] == IMMUTABLE
    other = await client.get("/v1/roots/alpha/5/dataset", headers={"If-None-Match": etag})
    assert other.status_code == 200  # the JSON representation has another tag
    head = await client.head("/v1/roots/alpha/5/dataset?format=binary")
    assert head.status_code == 200 and head.content == b""
    assert head.headers["content-length"] == str(40 * (ALPHA_WALLETS))


# -- channels and roots ----------------------------------------------------------------------


async def test_channels_list_pages_in_config_order(seeded: Seed, client: httpx.AsyncClient) -> None:
    everything = (await client.get("/v1/channels")).json()
    assert_schema(everything, "ChannelList")
    configs = sorted(seeded.configs.values())
    assert [c["channel_config"] for c in everything["channels"]] == configs
    assert everything["next_after"] is None
    alpha = next(c for c in everything["channels"] if c["name"] == "Alpha")
    assert alpha == {
        "name": "Alpha",
        "channel_config": seeded.configs["Alpha"],
        "format": "cumulative-v2",
        "latest_root_seq": 5,
        "latest_epoch": 105,
    }
    seen, after = [], None
    while True:
        url = "/v1/channels?limit=3" + (f"&after={after}" if after else "")
        page = (await client.get(url)).json()
        seen += [c["channel_config"] for c in page["channels"]]
        after = page["next_after"]
        if after is None:
            break
    assert seen == configs


async def test_channel_detail_has_subject_id_pda_and_latest_root(
    seeded: Seed, client: httpx.AsyncClient
) -> None:
    response = await client.get("/v1/channels/alpha")
    assert response.status_code == 200
    detail = response.json()
    assert_schema(detail, "ChannelDetail")
    assert detail["name"] == "Alpha"
    assert detail["subject_id"] == keccak(b"channel:alpha").hex()
    assert detail["channel_config"] == seeded.configs["Alpha"]
    assert detail["latest_root_seq"] == 5
    sample = seeded.samples[("Alpha", 5)]
    assert detail["latest_root"] == {
        "root_seq": 5,
        "epoch": 105,
        "root": sample.root["root"].hex(),
        "dataset_hash": sample.root["dataset_hash"].hex(),
        "leaf_count": ALPHA_WALLETS,
        "total": sample.root["total"],
        "settlement_status": "pending",
    }
    assert response.headers["cache-control"] == MUTABLE


async def test_roots_list_pages_newest_first_with_before(
    seeded: Seed, client: httpx.AsyncClient
) -> None:
    page = (await client.get("/v1/channels/alpha/roots?limit=2")).json()
    assert_schema(page, "RootList")
    assert [r["root_seq"] for r in page["roots"]] == [5, 4]
    assert page["next_before"] == 4
    page = (await client.get("/v1/channels/alpha/roots?limit=2&before=4")).json()
    assert [r["root_seq"] for r in page["roots"]] == [3, 2]
    page = (await client.get("/v1/channels/alpha/roots?limit=2&before=2")).json()
    assert [r["root_seq"] for r in page["roots"]] == [1]
    assert page["next_before"] is None
    assert page["roots"][0]["leaf_count"] == ALPHA_WALLETS + 1
    everything = (await client.get("/v1/channels/alpha/roots")).json()
    assert [r["root_seq"] for r in everything["roots"]] == [5, 4, 3, 2, 1]
    assert everything["roots"][1]["settlement_status"] == "published"


async def test_root_detail_is_immutable_once_published(
    seeded: Seed, client: httpx.AsyncClient
) -> None:
    """Root 4 is published (cached a year); root 5 is pending (short max-age)."""
    published = await client.get("/v1/channels/alpha/roots/4")
    assert published.status_code == 200
    detail = published.json()
    assert_schema(detail, "RootDetail")
    sample = seeded.samples[("Alpha", 4)]
    assert detail["root"] == sample.root["root"].hex()
    assert detail["dataset_hash"] == sample.root["dataset_hash"].hex()
    assert detail["leaf_count"] == ALPHA_WALLETS
    assert detail["total"] == sample.root["total"]
    assert detail["epoch"] == 104
    assert detail["tree_depth"] == 10
    assert detail["input_offsets"] == [{"partition": 3, "first_offset": 40, "last_offset": 99}]
    assert detail["settlement"]["status"] == "published"
    assert detail["settlement"]["signature"] == "sig4"
    assert detail["settlement"]["slot"] == 4444
    assert detail["dataset_url"] == f"/v1/roots/{seeded.configs['Alpha']}/4/dataset"
    assert published.headers["cache-control"] == IMMUTABLE
    pending = await client.get("/v1/channels/alpha/roots/5")
    assert pending.json()["settlement"]["status"] == "pending"
    assert pending.json()["settlement"]["signature"] is None
    assert pending.headers["cache-control"] == MUTABLE


async def test_if_none_match_answers_304_with_validators(client: httpx.AsyncClient) -> None:
    """Strong ETags; If-None-Match with the tag (also weak, listed, or *) gives 304."""
    for url in ("/v1/channels/alpha/roots/4", "/v1/channels/alpha", "/v1/channels"):
        first = await client.get(url)
        etag = first.headers["etag"]
        assert not etag.startswith("W/")
        for header in (etag, f"W/{etag}", f'"nope", {etag}', "*"):
            again = await client.get(url, headers={"If-None-Match": header})
            assert again.status_code == 304, (url, header)
            assert again.content == b""
            assert again.headers["etag"] == etag
            assert again.headers["cache-control"] == first.headers["cache-control"]
        changed = await client.get(url, headers={"If-None-Match": '"other"'})
        assert changed.status_code == 200


# -- errors: exact statuses and codes ---------------------------------------------------------

GOOD_WALLET = "11111111111111111111111111111111"


@pytest.mark.parametrize(
    ("method", "url", "status", "code"),
    [
        ("GET", "/v1/channels/alpha/claims/notbase58!", 400, "bad_wallet"),
        ("GET", "/v1/channels/alpha/claims/abc", 400, "bad_wallet"),
        ("GET", "/v1/channels/alpha/claims/" + "1" * 45, 400, "bad_wallet"),
        ("GET", "/v1/channels/alpha/claims/" + "z" * 44, 400, "bad_wallet"),  # 33 bytes
        ("GET", "/v1/channels/" + "x" * 65 + f"/claims/{GOOD_WALLET}", 400, "bad_channel"),
        ("GET", f"/v1/channels/%C3%A9t%C3%A9/claims/{GOOD_WALLET}", 400, "bad_channel"),
        ("GET", "/v1/channels/%C3%A9t%C3%A9", 400, "bad_channel"),
        ("GET", "/v1/channels/alpha/roots/abc", 400, "bad_root_seq"),
        ("GET", "/v1/channels/alpha/roots/-1", 400, "bad_root_seq"),
        ("GET", "/v1/channels/alpha/roots/1.5", 400, "bad_root_seq"),
        ("GET", "/v1/channels/alpha/roots/9223372036854775808", 400, "bad_root_seq"),
        ("GET", "/v1/channels/alpha/roots/%EF%BC%91", 400, "bad_root_seq"),  # fullwidth 1
        ("GET", f"/v1/channels/alpha/roots/x/claims/{GOOD_WALLET}", 400, "bad_root_seq"),
        ("GET", "/v1/channels/alpha/roots/2/claims/zz", 400, "bad_wallet"),
        ("GET", "/v1/roots/alpha/abc/dataset", 400, "bad_root_seq"),
        ("GET", "/v1/roots/alpha/1/dataset?format=xml", 400, "bad_format"),
        ("GET", "/v1/channels?limit=0", 400, "bad_limit"),
        ("GET", "/v1/channels?limit=1001", 400, "bad_limit"),
        ("GET", "/v1/channels?limit=ten", 400, "bad_limit"),
        ("GET", "/v1/channels?limit=", 400, "bad_limit"),
        ("GET", "/v1/channels?after=nope", 400, "bad_after"),
        ("GET", "/v1/channels/alpha/roots?limit=-5", 400, "bad_limit"),
        ("GET", "/v1/channels/alpha/roots?before=x", 400, "bad_before"),
        ("GET", f"/v1/wallets/{GOOD_WALLET}/claims?limit=5000", 400, "bad_limit"),
        ("GET", f"/v1/wallets/{GOOD_WALLET}/claims?after=1", 400, "bad_after"),
        ("GET", "/v1/wallets/0OIl/claims", 400, "bad_wallet"),
        ("GET", "/v1/channels/nosuch", 404, "channel_not_found"),
        ("GET", "/v1/channels/nosuch/roots", 404, "channel_not_found"),
        ("GET", "/v1/channels/nosuch/roots/1", 404, "channel_not_found"),
        ("GET", f"/v1/channels/nosuch/claims/{GOOD_WALLET}", 404, "channel_not_found"),
        ("GET", f"/v1/channels/{GOOD_WALLET}", 404, "channel_not_found"),
        ("GET", "/v1/channels/a%00b", 404, "channel_not_found"),
        ("GET", "/v1/roots/nosuch/1/dataset", 404, "channel_not_found"),
        ("GET", "/v1/channels/alpha/roots/6", 404, "root_not_found"),
        ("GET", "/v1/roots/alpha/0/dataset", 404, "root_not_found"),
        ("GET", f"/v1/channels/alpha/roots/9/claims/{GOOD_WALLET}", 404, "root_not_found"),
        ("GET", f"/v1/channels/alpha/claims/{GOOD_WALLET}", 404, "wallet_not_found"),
        ("GET", f"/v1/channels/alpha/roots/5/claims/{GOOD_WALLET}", 404, "wallet_not_found"),
        ("GET", f"/v1/wallets/{GOOD_WALLET}/claims", 404, "wallet_not_found"),
        ("GET", "/v2/anything", 404, "not_found"),
        ("POST", "/v1/channels", 405, "method_not_allowed"),
        ("DELETE", "/v1/channels/alpha/roots/1", 405, "method_not_allowed"),
        ("GET", "/v1/verify", 405, "method_not_allowed"),
    ],
)
async def test_error_answers_have_exact_status_and_code(
    client: httpx.AsyncClient, method: str, url: str, status: int, code: str
) -> None:
    error = assert_error(await client.request(method, url), status, code)
    assert error["message"]


async def test_method_not_allowed_lists_allowed_methods(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/channels/alpha")
    assert_error(response, 405, "method_not_allowed")
    assert set(response.headers["allow"].split(", ")) == {"GET", "HEAD"}


async def test_wallet_claims_past_the_last_page_is_an_empty_page(
    seeded: Seed, client: httpx.AsyncClient
) -> None:
    wallet = sorted(seeded.roots["Alpha"][5])[0]
    last = max(seeded.configs.values())
    page = (await client.get(f"/v1/wallets/{b58(wallet)}/claims?after={last}")).json()
    assert page == {"wallet": b58(wallet), "claims": [], "next_after": None}


async def test_error_messages_name_expected_and_actual(client: httpx.AsyncClient) -> None:
    error = assert_error(await client.get("/v1/channels?limit=0"), 400, "bad_limit")
    assert error["message"] == "limit must be an integer in 1..1000 (got '0')"
    error = assert_error(await client.get("/v1/channels/alpha/claims/abc"), 400, "bad_wallet")
    assert error["message"] == "wallet must be a base58 public key of 32 bytes (got 'abc')"


# -- POST /v1/verify ---------------------------------------------------------------------------


async def _a_claim(seeded: Seed, client: httpx.AsyncClient) -> tuple[bytes, dict[str, Any]]:
    wallet = sorted(seeded.roots["Alpha"][5])[17]
    return wallet, (await client.get(f"/v1/channels/alpha/claims/{b58(wallet)}")).json()


async def test_verify_accepts_served_proof_and_rejects_tampered_one(
    seeded: Seed, client: httpx.AsyncClient
) -> None:
    wallet, claim = await _a_claim(seeded, client)
    body = {
        "channel": "ALPHA",
        "root_seq": claim["root_seq"],
        "wallet": b58(wallet),
        "cumulative_total": claim["cumulative_total"],
        "proof": claim["proof"],
        "root": claim["root"],
    }
    response = await client.post("/v1/verify", json=body)
    assert response.status_code == 200, response.text
    result = response.json()
    assert_schema(result, "VerifyResult")
    assert result == {
        "valid": True,
        "leaf": claim["leaf"],
        "computed_root": claim["root"],
        "channel_config": seeded.configs["Alpha"],
    }
    by_pda = {**body, "channel_config": seeded.configs["Alpha"], "mint": seeded.mint}
    del by_pda["channel"]
    by_pda["cumulative_total"] = int(claim["cumulative_total"])
    assert (await client.post("/v1/verify", json=by_pda)).json()["valid"] is True
    tampered = {**body, "cumulative_total": int(claim["cumulative_total"]) + 1}
    result = (await client.post("/v1/verify", json=tampered)).json()
    assert result["valid"] is False
    assert result["leaf"] != claim["leaf"]
    expected_leaf = cumulative_leaf(
        seeded.configs["Alpha"], seeded.mint, 5, wallet, int(claim["cumulative_total"]) + 1
    )
    assert result["leaf"] == expected_leaf.hex()
    proof = [bytes.fromhex(p) for p in claim["proof"]]
    assert result["computed_root"] == fold(expected_leaf, proof).hex()


def _verify_body(**changes: Any) -> dict[str, Any]:
    body = {
        "channel": "alpha",
        "root_seq": 5,
        "wallet": GOOD_WALLET,
        "cumulative_total": 5,
        "proof": ["00" * 32],
        "root": "11" * 32,
    }
    for key, value in changes.items():
        if value is ...:
            body.pop(key)
        else:
            body[key] = value
    return body


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (_verify_body(extra=1), "unknown_field"),
        (_verify_body(root=...), "missing_field"),
        (_verify_body(channel=...), "bad_channel"),
        (_verify_body(channel_config=GOOD_WALLET), "bad_channel"),
        (_verify_body(channel=""), "bad_channel"),
        (_verify_body(channel="é"), "bad_channel"),
        (_verify_body(channel=7), "bad_channel"),
        (_verify_body(channel=..., channel_config="xyz"), "bad_channel_config"),
        (_verify_body(wallet="xyz"), "bad_wallet"),
        (_verify_body(wallet=12), "bad_wallet"),
        (_verify_body(mint="0"), "bad_mint"),
        (_verify_body(program_id="0"), "bad_program_id"),
        (_verify_body(format="ring-v0"), "bad_format"),
        (_verify_body(root_seq=-1), "bad_root_seq"),
        (_verify_body(root_seq=2**63), "bad_root_seq"),
        (_verify_body(root_seq=True), "bad_root_seq"),
        (_verify_body(root_seq="5x"), "bad_root_seq"),
        (_verify_body(cumulative_total=2**64), "bad_cumulative_total"),
        (_verify_body(cumulative_total=1.5), "bad_cumulative_total"),
        (_verify_body(cumulative_total="-3"), "bad_cumulative_total"),
        (_verify_body(proof="00"), "bad_proof"),
        (_verify_body(proof=["00" * 32] * 33), "proof_too_long"),
        (_verify_body(proof=["zz" * 32]), "bad_hex"),
        (_verify_body(proof=["00" * 31]), "bad_hex"),
        (_verify_body(proof=[5]), "bad_hex"),
        (_verify_body(root="0x" + "11" * 31), "bad_hex"),
    ],
)
async def test_verify_rejects_malformed_fields(
    client: httpx.AsyncClient, body: dict[str, Any], code: str
) -> None:
    assert_error(await client.post("/v1/verify", json=body), 400, code)


async def test_verify_rejects_bad_bodies(client: httpx.AsyncClient) -> None:
    headers = {"content-type": "application/json"}
    assert_error(await client.post("/v1/verify", content=b"{", headers=headers), 400, "bad_json")
    assert_error(await client.post("/v1/verify", content=b"\xff", headers=headers), 400, "bad_json")
    assert_error(await client.post("/v1/verify", content=b"[1]", headers=headers), 400, "bad_body")
    nested = b"[" * 100_00 + b"]" * 100_00
    assert_error(await client.post("/v1/verify", content=nested, headers=headers), 400, "bad_json")
    assert_error(
        await client.post("/v1/verify", content=b"{}", headers={"content-type": "text/plain"}),
        415,
        "unsupported_media_type",
    )
    assert_error(await client.post("/v1/verify", content=b"{}"), 415, "unsupported_media_type")
    big = b'{"x": "' + b"a" * (64 * 1024) + b'"}'
    assert_error(
        await client.post("/v1/verify", content=big, headers=headers), 413, "body_too_large"
    )

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: counted while read
        for _ in range(80):
            yield b" " * 1024

    assert_error(
        await client.post("/v1/verify", content=chunks(), headers=headers), 413, "body_too_large"
    )


# -- service endpoints ------------------------------------------------------------------------


async def test_health_ready_openapi_and_docs(client: httpx.AsyncClient) -> None:
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    assert (await client.get("/readyz")).json() == {"status": "ready"}
    document = (await client.get("/openapi.json")).json()
    assert document["openapi"] == "3.1.0"
    assert document == json.loads(json.dumps(openapi_document(OPERATIONS)))
    docs = await client.get("/docs")
    assert docs.status_code == 200
    assert docs.headers["content-type"].startswith("text/html")
    for path in document["paths"]:
        assert html.escape(path) in docs.text
    assert "http://" not in docs.text and "https://" not in docs.text  # self-contained


async def test_readyz_answers_503_when_database_is_unreachable(
    seeded: Seed, client_factory: ClientFactory
) -> None:
    settings = seeded.settings.model_copy(
        update={
            "database_url": "postgresql+psycopg://aop:aop@127.0.0.1:1/aop",
            "api_pool_timeout_s": 1.0,
        }
    )
    client = client_factory(settings)
    response = await client.get("/readyz")
    assert_error(response, 503, "database_unavailable")
    assert response.headers["retry-after"] == "1"
    assert (await client.get("/healthz")).status_code == 200
    wallet_url = f"/v1/channels/alpha/claims/{GOOD_WALLET}"
    assert_error(await client.get(wallet_url), 503, "database_unavailable")


async def test_metrics_count_requests_by_route_template(client: httpx.AsyncClient) -> None:
    await client.get(f"/v1/channels/alpha/claims/{GOOD_WALLET}")
    await client.get("/v1/channels/zzz-unknown")
    await client.get("/not/a/route")
    text_body = (await client.get("/metrics")).text
    assert (
        'aop_api_requests_total{method="GET",route="/v1/channels/{channel}/claims/{wallet}",'
        'status="404"}' in text_body
    )
    assert 'route="/v1/channels/{channel}",status="404"' in text_body
    assert 'aop_api_requests_total{method="GET",route="unmatched",status="404"}' in text_body
    assert (
        'aop_api_request_seconds_bucket{le="0.005",route="/v1/channels/{channel}/claims/{wallet}"}'
        in text_body
    )
    assert "zzz-unknown" not in text_body and GOOD_WALLET not in text_body
    assert "aop_api_claim_batch_size_count" in text_body


async def test_metrics_skip_scrapes_and_hold_every_routes_5xx_series_from_the_start(
    client: httpx.AsyncClient,
) -> None:
    """Prometheus's scrapes of /metrics are not counted (they would weigh in the 5xx ratio and
    the latency the alerts read), and each route's 500 and 503 series exist at start, so the
    first 5xx is an increase."""
    await client.get("/metrics")
    text_body = (await client.get("/metrics")).text
    assert 'route="/metrics"' not in text_body
    samples = {
        (s.labels["route"], s.labels["method"], s.labels["status"]): s.value
        for family in text_string_to_metric_families(text_body)
        for s in family.samples
        if s.name == "aop_api_requests_total"
    }
    for route, method in (
        ("/v1/channels/{channel}/claims/{wallet}", "GET"),
        ("/v1/roots/{channel}/{root_seq}/dataset", "GET"),
        ("/v1/verify", "POST"),
        ("/readyz", "GET"),
    ):
        for status in ("500", "503"):
            assert (route, method, status) in samples, (route, method, status)
    assert samples[("/v1/verify", "POST", "500")] == 0.0


async def test_cors_headers_follow_configured_origins(
    seeded: Seed, client_factory: ClientFactory
) -> None:
    settings = seeded.settings.model_copy(update={"api_cors_origins": ["https://wallet.example"]})
    client = client_factory(settings)
    response = await client.get("/v1/channels", headers={"Origin": "https://wallet.example"})
    assert response.headers["access-control-allow-origin"] == "https://wallet.example"
    assert "etag" in response.headers["access-control-expose-headers"].lower()
    preflight = await client.options(
        "/v1/verify",
        headers={
            "Origin": "https://wallet.example",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type",
        },
    )
    assert preflight.status_code == 200
    other = await client.get("/v1/channels", headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in other.headers
    plain = await client_factory(seeded.settings).get(
        "/v1/channels", headers={"Origin": "https://wallet.example"}
    )
    assert "access-control-allow-origin" not in plain.headers


# -- mutations seen through the API (a fresh schema per test) -------------------------------


@pytest.fixture
def fresh_settings(database_url: str, db_schema: str) -> Settings:
    settings = load_settings({"AOP_DATABASE_URL": database_url, "AOP_DATABASE_SCHEMA": db_schema})
    upgrade(settings)
    return settings


async def test_stale_turns_true_after_four_newer_roots(
    fresh_settings: Settings, client_factory: ClientFactory
) -> None:
    """A wallet held only by root 1: fine while the program keeps root 1, stale after 1+4."""
    engine = engine_for(fresh_settings)
    program_id = Pubkey.from_string(fresh_settings.program_id)
    mint = Pubkey.from_string(fresh_settings.mint)
    leaver, stayer = b"\x01" * 32, b"\x02" * 32
    client = client_factory(fresh_settings)
    try:
        for root_seq in range(1, 6):
            amounts = {stayer: 10 * root_seq}
            if root_seq == 1:
                amounts[leaver] = 5
            write_sample_root(
                engine, channel="fresh", root_seq=root_seq, amounts=amounts,
                program_id=program_id, mint=mint,
            )  # fmt: skip
            claim = (await client.get(f"/v1/channels/fresh/claims/{b58(leaver)}")).json()
            assert claim["root_seq"] == 1
            assert claim["latest_root_seq"] == root_seq
            assert claim["stale"] is (root_seq >= 5), root_seq
            current = (await client.get(f"/v1/channels/fresh/claims/{b58(stayer)}")).json()
            assert current["root_seq"] == root_seq and current["stale"] is False
            assert proof_holds(current, stayer, fresh_settings.mint)
    finally:
        engine.dispose()


async def test_claimed_total_update_changes_claimable_and_etag(
    fresh_settings: Settings, client_factory: ClientFactory
) -> None:
    engine = engine_for(fresh_settings)
    wallet = b"\x09" * 32
    client = client_factory(fresh_settings)
    try:
        sample = write_sample_root(
            engine, channel="paid", root_seq=3, amounts={wallet: 1000, b"\x08" * 32: 1},
            program_id=Pubkey.from_string(fresh_settings.program_id),
            mint=Pubkey.from_string(fresh_settings.mint),
        )  # fmt: skip
        url = f"/v1/channels/paid/claims/{b58(wallet)}"
        before = await client.get(url)
        assert before.json()["claimable"] == "1000"
        write_claimed_total(
            engine,
            channel_config=sample.root["channel_config"],
            wallet=wallet,
            claimed_total=400,
            root_seq=3,
        )
        after = await client.get(url, headers={"If-None-Match": before.headers["etag"]})
        assert after.status_code == 200
        assert after.json()["claimed_total"] == "400"
        assert after.json()["claimable"] == "600"
        assert after.headers["etag"] != before.headers["etag"]
    finally:
        engine.dispose()


async def test_concurrent_claims_share_batched_queries(seeded: Seed) -> None:
    """64 claims asked at once take a few queries, and each gets its own wallet's leaf."""
    app = create_app(seeded.settings)
    batcher = app.state.reader._batcher
    wallets = sorted(seeded.roots["Alpha"][5])[:64]
    transport = httpx.ASGITransport(app=app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
            claims = await asyncio.gather(
                *(client.get(f"/v1/channels/alpha/claims/{b58(w)}") for w in wallets)
            )
        assert [c.json()["wallet"] for c in claims] == [b58(w) for w in wallets]
        assert batcher.lookups == 64
        assert batcher.batches < 64 / 4, batcher.batches
    finally:
        await app.state.db.close()
