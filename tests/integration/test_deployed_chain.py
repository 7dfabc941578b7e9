"""The pipeline's global roots reach the deployed program and are claimable, end to end.

Every `aop run` service (listener, fold, combiner, projector, settlement, API) runs against a
simulated chain in the `deployed` profile (`aop simulate-chain --program deployed`, its
GlobalRootConfig at root_seq 1,800 as the live one is past it), on the real broker and
PostgreSQL, with `AOP_SETTLEMENT_TARGET=global-v5`, `AOP_AUTO_PUBLISH=true` and
`AOP_GLOBAL_FIRST_ROOT_SEQ=1801`. The scenario (module fixture) runs once:

1. wallets A and B (the simulator's deterministic keys) stake; B keeps its positions open,
   so a global root follows every epoch;
2. once A is in a published global root, A unstakes: from the next epoch on its total no
   longer changes;
3. with A's total final, A fetches `GET /v1/claims/{A}`, builds `claim_global_v2` from the
   answer's root_seq, base_yield, attention_bonus and proof, signs and sends it;
4. the listener logs its GlobalRewardsClaimed, the projector raises the claimed total, and
   the API answers claimed_total = the total, claimable 0;
5. `aop parity --chain` and `aop replay --global --all --chain` rebuild the roots from the
   log and compare them with Postgres and the chain.

The tests then check what each step left. Expected bytes are assembled from the reference
(§G2, §G4), not read back from the code under test.
"""

from __future__ import annotations

import asyncio
import base64
import re
import struct
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from solana.rpc.async_api import AsyncClient
from solana.rpc.models import TxOpts
from solders.instruction import Instruction
from solders.keypair import Keypair
from solders.message import Message
from solders.pubkey import Pubkey
from solders.signature import Signature
from solders.transaction import Transaction, VersionedTransaction

from aop.cli.services import SERVICES
from aop.core.claims.global_roots import claim_global_v2_instruction
from aop.core.pda import associated_token_address
from aop.simchain.instructions import stake_channel_instruction, unstake_channel_instruction
from aop.simchain.keys import Keys
from tests.live_pipeline import LivePipeline, fresh_schema, http_get, live_pipeline
from tests.unit.core import global_vectors as g

CHANNELS = ("dep:alpha", "dep:beta")
SEED = 5
LATEST_ON_CHAIN = 1_800
GENESIS_SLOT = 1_000
EPOCH_SLOTS = 50
#: the deployed program, no workload (the test's wallets are the only stakers), 40 ms slots
#: (a 50-slot epoch is 2 s), finality after 4 slots.
SIM_ARGS = ["--program", "deployed", "--rate", "0", "--wallets", "4", "--slot-ms", "40"]
SIM_ARGS += ["--finality-depth", "4", "--seed", str(SEED)]
SETTINGS = {
    "AOP_SIM_GLOBAL_LATEST_ROOT_SEQ": str(LATEST_ON_CHAIN),
    "AOP_GLOBAL_FIRST_ROOT_SEQ": str(LATEST_ON_CHAIN + 1),
    "AOP_SETTLEMENT_TARGET": "global-v5",
    "AOP_AUTO_PUBLISH": "true",
    "AOP_SETTLEMENT_POLL_INTERVAL_S": "0.2",
    "AOP_SETTLEMENT_CONFIRM_POLL_S": "0.05",
    "AOP_SETTLEMENT_BACKOFF_INITIAL_MS": "50",
    "AOP_SETTLEMENT_BACKOFF_MAX_MS": "500",
}
STEP_TIMEOUT_S = 60.0
#: the pipeline's defaults (reference §1): program id and the CCM mint; the GlobalRootConfig
#: of that pair is §G7.1's `4q2vqer…`.
PROGRAM_ID = Pubkey.from_string("GnGzNdsQMxMpJfMeqnkGPsvHm8kwaDidiKjNU2dCVZop")
MINT = Pubkey.from_string("Dxk8mAb3C7AM8JN6tAJfVuSja5yidhZM5sEKW3SRX2BM")
#: §G4 GlobalRewardsClaimed discriminator; §G2.1/§G2.2 account discriminators.
REWARDS_CLAIMED = bytes.fromhex("955e89d5189b603d")
GLOBAL_ROOT_CONFIG = bytes.fromhex("a760c2e81968eb3e")
CLAIM_STATE_GLOBAL = bytes.fromhex("1c8288cbe7da9da7")


@dataclass
class Evidence:
    """What the scenario saw, step by step."""

    wallet: Pubkey
    answer: dict[str, Any]  # GET /v1/claims/{A} that the claim used
    config: bytes  # the GlobalRootConfig account right before the claim
    tokens_before: int
    tokens_after: int
    claim_state: bytes
    claim_logs: list[str]
    after: dict[str, Any]  # GET /v1/claims/{A} once the claim was projected
    parity: tuple[int, str]
    replay: tuple[int, str]


@pytest.fixture(scope="module")
def evidence(
    kafka_bootstrap: str, database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Evidence]:
    workdir = tmp_path_factory.mktemp("deployed")
    with fresh_schema(database_url) as schema:
        yield _run(kafka_bootstrap, database_url, schema, workdir)


def _run(kafka_bootstrap: str, database_url: str, schema: str, workdir: Path) -> Evidence:
    with live_pipeline(
        kafka_bootstrap=kafka_bootstrap,
        database_url=database_url,
        schema=schema,
        workdir=workdir,
        channels=CHANNELS,
        sim_args=SIM_ARGS,
        settings=SETTINGS,
    ) as live:
        seen = asyncio.run(_claim_scenario(live))
        parity = live.aop("parity", "--chain", "--quiet")
        replay = live.aop("replay", "--global", "--all", "--chain", "--quiet")
    return Evidence(
        **seen,
        parity=(parity.returncode, parity.stdout + parity.stderr),
        replay=(replay.returncode, replay.stdout + replay.stderr),
    )


async def _claim_scenario(live: LivePipeline) -> dict[str, Any]:
    """Steps 1-4 of the module docstring."""
    keys = Keys(SEED)
    a, b = keys.wallet(0), keys.wallet(1)
    async with AsyncClient(live.sim.http_url, timeout=10) as client:
        await _send(client, [_stake(a, CHANNELS[0], 40), _stake(b, CHANNELS[0], 120)], [a, b])
        await _send(client, [_stake(b, CHANNELS[1], 70)], [b])
        _wait_claim(live, a.pubkey(), lambda c: c["settlement_status"] == "published")
        unstaked_slot = await _send(client, [_unstake(a, CHANNELS[0])], [a])
        unstaked_epoch = (unstaked_slot - GENESIS_SLOT) // EPOCH_SLOTS

        def final(claim: dict[str, Any]) -> bool:
            return (
                claim["settlement_status"] == "published"
                and _root_epoch(live, int(claim["root_seq"])) > unstaked_epoch
            )

        for _attempt in range(3):  # a root 4 seqs old leaves the ring: fetch again, once more
            answer = _wait_claim(live, a.pubkey(), final)
            config = await _account(client, Pubkey.from_string(g.GLOBAL_ROOT_CONFIG))
            before = await _tokens(client, a.pubkey())
            ix = claim_global_v2_instruction(
                program_id=PROGRAM_ID,
                mint=MINT,
                claimer=a.pubkey(),
                root_seq=int(answer["root_seq"]),
                base_yield=int(answer["base_yield"]),
                attention_bonus=int(answer["attention_bonus"]),
                proof=[bytes.fromhex(node) for node in answer["proof"]],
            )
            signature, landed = await _try_send(client, [ix], [a])
            if landed:
                break
        else:
            pytest.fail("the claim never landed against one of the last 4 global roots")
        logs = await _logs(client, signature)
        after_tokens = await _tokens(client, a.pubkey())
        state = await _account(client, Pubkey.from_string(answer["claim_state"]))
    total = int(answer["cumulative_total"])
    after = _wait_claim(live, a.pubkey(), lambda c: int(c["claimed_total"]) == total)
    return {
        "wallet": a.pubkey(),
        "answer": answer,
        "config": config,
        "tokens_before": before,
        "tokens_after": after_tokens,
        "claim_state": state,
        "claim_logs": logs,
        "after": after,
    }


# -- the chain --------------------------------------------------------------------------------


def _stake(wallet: Keypair, channel: str, tokens: int) -> Instruction:
    return stake_channel_instruction(
        program_id=PROGRAM_ID,
        mint=MINT,
        user=wallet.pubkey(),
        channel=channel,
        amount=tokens * 10**9,
        lock_duration=0,
    )


def _unstake(wallet: Keypair, channel: str) -> Instruction:
    return unstake_channel_instruction(
        program_id=PROGRAM_ID,
        mint=MINT,
        user=wallet.pubkey(),
        channel=channel,
    )


async def _try_send(
    client: AsyncClient, ixs: list[Instruction], signers: list[Keypair]
) -> tuple[Signature, bool]:
    """Sign, send without preflight and wait until finalized: (signature, succeeded)."""
    blockhash = (await client.get_latest_blockhash()).value.blockhash
    message = Message.new_with_blockhash(ixs, signers[0].pubkey(), blockhash)
    tx = VersionedTransaction.from_legacy(Transaction(signers, message, blockhash))
    signature = (await client.send_transaction(tx, opts=TxOpts(skip_preflight=True))).value
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        status = (await client.get_signature_statuses([signature])).value[0]
        if status is not None and str(status.confirmation_status).endswith("Finalized"):
            return signature, status.err is None
        await asyncio.sleep(0.05)
    raise AssertionError(f"{signature} not finalized in 20 s")


async def _send(client: AsyncClient, ixs: list[Instruction], signers: list[Keypair]) -> int:
    """Sign, send, wait until finalized; the slot it landed in. Fails on an error."""
    signature, landed = await _try_send(client, ixs, signers)
    status = (await client.get_signature_statuses([signature])).value[0]
    assert landed and status is not None, f"{signature} failed: {status}"
    return int(status.slot)


async def _account(client: AsyncClient, address: Pubkey) -> bytes:
    value = (await client.get_account_info(address, "finalized")).value
    assert value is not None, f"no account {address}"
    return bytes(value.data)


async def _tokens(client: AsyncClient, owner: Pubkey) -> int:
    ata = associated_token_address(owner=owner, mint=MINT)
    return int((await client.get_token_account_balance(ata, "finalized")).value.amount)


async def _logs(client: AsyncClient, signature: Signature) -> list[str]:
    tx = await client.get_transaction(
        signature, "json", "finalized", max_supported_transaction_version=0
    )
    assert tx.value is not None and tx.value.transaction.meta is not None
    return list(tx.value.transaction.meta.log_messages or [])


# -- the API ----------------------------------------------------------------------------------


def _restarts(live: LivePipeline) -> str:
    return f"restarts { ({name: live.supervisor.restarts(name) for name in SERVICES}) }"


def _wait_claim(
    live: LivePipeline, wallet: Pubkey, done: Callable[[dict[str, Any]], bool]
) -> dict[str, Any]:
    """The first `GET /v1/claims/{wallet}` answer for which `done` holds."""
    deadline = time.monotonic() + STEP_TIMEOUT_S
    last: Any = None
    while time.monotonic() < deadline:
        reply = http_get(f"{live.api}/v1/claims/{wallet}")
        if reply is not None and reply.status_code == 200:
            last = reply.json()
            if done(last):
                return dict(last)
        time.sleep(0.2)
    pytest.fail(f"GET /v1/claims/{wallet} never got there (last {last}; {_restarts(live)})")


def _root_epoch(live: LivePipeline, root_seq: int) -> int:
    reply = http_get(f"{live.api}/v1/global/roots/{root_seq}")
    assert reply is not None and reply.status_code == 200, reply
    return int(reply.json()["epoch"])


# -- the checks -------------------------------------------------------------------------------


def test_settle_published_the_global_root_the_api_serves(evidence: Evidence) -> None:
    """(b) The GlobalRootConfig continues the on-chain sequence past 1,800 and its ring entry
    `root_seq % 4` holds the API's root_seq and root (§G2.1 offsets)."""
    config, answer = evidence.config, evidence.answer
    seq = int(answer["root_seq"])
    assert config[:8] == GLOBAL_ROOT_CONFIG
    latest = struct.unpack_from("<Q", config, 42)[0]
    assert LATEST_ON_CHAIN < seq <= latest < seq + 4
    entry = 50 + 80 * (seq % 4)
    assert struct.unpack_from("<Q", config, entry)[0] == seq
    assert config[entry + 8 : entry + 40].hex() == answer["root"]
    assert answer["settlement_status"] == "published"


def test_the_wallet_claims_its_global_v5_amount_with_the_api_proof(evidence: Evidence) -> None:
    """(c) The claim paid the claimable amount (base_yield + attention_bonus, nothing claimed
    before) into the wallet's ATA; its ClaimStateGlobal holds that total and the root_seq;
    the transaction logged §G4's GlobalRewardsClaimed."""
    answer = evidence.answer
    total = int(answer["base_yield"]) + int(answer["attention_bonus"])
    assert total == int(answer["cumulative_total"]) == int(answer["claimable"]) > 0
    assert int(answer["claimed_total"]) == 0
    assert evidence.tokens_after - evidence.tokens_before == total
    state, wallet, seq = evidence.claim_state, bytes(evidence.wallet), int(answer["root_seq"])
    assert (len(state), state[:8], state[8]) == (90, CLAIM_STATE_GLOBAL, 1)
    assert state[42:74] == wallet
    assert struct.unpack_from("<QQ", state, 74) == (total, seq)
    event = REWARDS_CLAIMED + wallet + struct.pack("<QQQ", total, total, seq)
    data_lines = [line for line in evidence.claim_logs if line.startswith("Program data: ")]
    assert [base64.b64decode(line.split(": ", 1)[1]) for line in data_lines] == [event]


def test_the_api_shows_the_claimed_total_after_the_claim(evidence: Evidence) -> None:
    """(d) The listener logged the claim and the projector applied it: the API answers
    claimed_total = the total and claimable 0 (A's total no longer grows)."""
    after, total = evidence.after, int(evidence.answer["cumulative_total"])
    assert (int(after["cumulative_total"]), int(after["claimed_total"])) == (total, total)
    assert int(after["claimable"]) == 0


def test_parity_and_global_replay_match_the_log_postgres_and_the_chain(
    evidence: Evidence,
) -> None:
    """(e) `aop parity --chain` and `aop replay --global --all --chain` exit 0 (MATCH), compared
    with the chain: the claimed root matches on-chain while the GlobalRootConfig's ring of 4
    still holds it (settlement goes on publishing meanwhile: once 4 newer roots matched
    on-chain, it has left the ring and reads "not on chain")."""
    seq, root = int(evidence.answer["root_seq"]), evidence.answer["root"]
    claimed_root = f"root_seq {seq} (epoch "
    for code, output in (evidence.parity, evidence.replay):
        assert code == 0, output
        assert "chain comparison: compared" in output, output
        assert "channel global (global-v5, " + g.GLOBAL_ROOT_CONFIG in output, output
        (line,) = [x for x in output.splitlines() if x.strip().startswith(claimed_root)]
        assert f"MATCH (root {root[:16]}" in line, line
        on_chain = [
            int(m[1])
            for m in re.finditer(r"root_seq (\d+) \(epoch \d+\): MATCH .*on-chain: match\)", output)
        ]
        assert on_chain, output
        ring_moved_on = len([n for n in on_chain if n > seq]) >= 4
        assert line.endswith("on-chain: match)") or (
            ring_moved_on and line.endswith("on-chain: not on chain)")
        ), line
        assert any(x.startswith("MATCH: ") for x in output.splitlines()), output
