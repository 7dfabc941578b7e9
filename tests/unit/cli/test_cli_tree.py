"""`aop tree build` / `aop tree verify`, run in-process through `aop.cli.entry`."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from solders.pubkey import Pubkey

import aop.cli.entry
from tests.unit.core import independent
from tests.unit.core.vectors import (
    CCM_MINT,
    CHANNEL,
    CHANNEL_CONFIG,
    CHANNEL_CONFIG_HEX,
    EXAMPLE_ENTRIES,
    LEAVES,
    MINT_HEX,
    PROGRAM_ID,
)

WALLETS = [str(Pubkey(wallet)) for wallet, _ in EXAMPLE_ENTRIES]
DATASET = [
    {"wallet": str(Pubkey(wallet)), "cumulative_total": total} for wallet, total in EXAMPLE_ENTRIES
]
U64_RANGE = f"0..{2**64 - 1}"
BUILD = ["tree", "build", "--program-id", PROGRAM_ID, "--mint", CCM_MINT, "--channel", CHANNEL]

Run = Callable[..., tuple[int, str, str]]


@pytest.fixture
def run_factory(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Run:
    """Runs `aop <argv>` in-process (only the tree command registered); returns code, out, err."""
    monkeypatch.setattr(aop.cli.entry, "COMMANDS", ("tree",))

    def run(*argv: str, stdin: str | None = None) -> tuple[int, str, str]:
        if stdin is not None:
            monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
        code = aop.cli.entry.main(list(argv))
        out, err = capsys.readouterr()
        return code, out, err

    return run


def write_json(tmp_path: Path, name: str, value: Any) -> str:
    path = tmp_path / name
    path.write_text(json.dumps(value))
    return str(path)


def built(run: Run, tmp_path: Path) -> dict[str, Any]:
    code, out, err = run(
        *BUILD, "--root-seq", "1", "--input", write_json(tmp_path, "d.json", DATASET)
    )
    assert (code, err) == (0, "")
    result: dict[str, Any] = json.loads(out)
    return result


def test_build_prints_root_leaves_and_proofs_of_the_reference_dataset(
    run_factory: Run, tmp_path: Path
) -> None:
    output = built(run_factory, tmp_path)
    leaves = {WALLETS[i]: LEAVES[i] for i in range(3)}
    ordered = sorted(range(3), key=lambda i: EXAMPLE_ENTRIES[i][0])
    expected_leaves = [bytes.fromhex(LEAVES[i]) for i in ordered]
    assert output["root"] == independent.root_of(expected_leaves).hex()
    assert (
        output["dataset_hash"]
        == independent.keccak(
            *(EXAMPLE_ENTRIES[i][0] + independent.u64(EXAMPLE_ENTRIES[i][1]) for i in ordered)
        ).hex()
    )
    assert (output["leaf_count"], output["channel_config"]) == (3, CHANNEL_CONFIG)
    assert list(output["claims"]) == [WALLETS[i] for i in ordered]
    for wallet, claim in output["claims"].items():
        assert claim["leaf"] == leaves[wallet]
        total = EXAMPLE_ENTRIES[WALLETS.index(wallet)][1]
        assert claim["cumulative_total"] == total
        proof = [bytes.fromhex(node) for node in claim["proof"]]
        assert independent.program_verifies(
            bytes.fromhex(claim["leaf"]), proof, bytes.fromhex(output["root"])
        )
    assert bytes(Pubkey.from_string(output["channel_config"])).hex() == CHANNEL_CONFIG_HEX
    assert bytes(Pubkey.from_string(output["mint"])).hex() == MINT_HEX


def test_build_reads_stdin_with_dash(run_factory: Run, tmp_path: Path) -> None:
    from_file = built(run_factory, tmp_path)
    code, out, _ = run_factory(*BUILD, "--root-seq", "1", "--input", "-", stdin=json.dumps(DATASET))
    assert code == 0 and json.loads(out) == from_file


def test_build_then_verify_exits_0(run_factory: Run, tmp_path: Path) -> None:
    output = built(run_factory, tmp_path)
    code, out, err = run_factory("tree", "verify", write_json(tmp_path, "o.json", output))
    assert (code, err) == (0, "")
    assert out == f"ok: 3 claims verify against root {output['root']}\n"


def test_verify_of_tampered_proof_exits_1_naming_the_wallet(
    run_factory: Run, tmp_path: Path
) -> None:
    output = built(run_factory, tmp_path)
    victim = WALLETS[1]
    output["claims"][victim]["proof"][0] = "00" * 32
    code, _, err = run_factory("tree", "verify", write_json(tmp_path, "o.json", output))
    assert code == 1
    assert (
        err == f"aop tree verify: wallet {victim}: proof does not verify against root "
        f"{output['root']}\n"
    )


def test_verify_of_tampered_total_exits_1_naming_the_wallet(
    run_factory: Run, tmp_path: Path
) -> None:
    output = built(run_factory, tmp_path)
    victim = WALLETS[0]
    output["claims"][victim]["cumulative_total"] += 1
    code, _, err = run_factory("tree", "verify", "-", stdin=json.dumps(output))
    assert code == 1
    assert f"aop tree verify: wallet {victim}: leaf " in err
    assert "is not the leaf of its claim" in err


def test_verify_of_total_tampered_to_zero_exits_1(run_factory: Run, tmp_path: Path) -> None:
    output = built(run_factory, tmp_path)
    victim = WALLETS[2]
    output["claims"][victim]["cumulative_total"] = 0
    code, _, err = run_factory("tree", "verify", write_json(tmp_path, "o.json", output))
    assert code == 1
    assert f"aop tree verify: wallet {victim}: a zero amount has no leaf\n" in err
    assert "aop tree verify: root " in err  # the rebuilt tree differs too


def test_ring_v0_build_then_verify_round_trips(run_factory: Run, tmp_path: Path) -> None:
    dataset = [
        {"wallet": WALLETS[0], "amount": 5, "first_seen": 9},
        {"wallet": WALLETS[1], "amount": 7, "first_seen": 3},
        {"wallet": WALLETS[2], "amount": 1, "first_seen": 3},
    ]
    argv = [*BUILD[:-2], "--channel", "twitch:unit", "--format", "ring-v0", "--epoch", "4"]
    code, out, err = run_factory(*argv, "--input", write_json(tmp_path, "r.json", dataset))
    assert (code, err) == (0, "")
    output = json.loads(out)
    assert output["claim_id"] == "twitch:unit:4"
    assert [(w, c["index"], c["amount"]) for w, c in output["claims"].items()] == [
        (WALLETS[1], 0, 7),
        (WALLETS[2], 1, 1),
        (WALLETS[0], 2, 5),
    ]  # fmt: skip  (first_seen 3, 3, 9; the tie broken by wallet bytes)
    assert (
        output["claims"][WALLETS[1]]["leaf"]
        == independent.ring_leaf(bytes(Pubkey.from_string(WALLETS[1])), 0, 7, "twitch:unit:4").hex()
    )
    code, _, err = run_factory("tree", "verify", write_json(tmp_path, "o.json", output))
    assert (code, err) == (0, "")


@pytest.mark.parametrize(
    ("dataset", "message"),
    [
        (
            [DATASET[0], {"wallet": "xyz0", "cumulative_total": 1}],
            "aop tree: entry 1: wallet 'xyz0' is not valid base58 (a 32-byte public key)",
        ),
        (
            [{"wallet": WALLETS[0], "cumulative_total": -5}],
            f"aop tree: entry 0: cumulative_total must be an integer in {U64_RANGE} (got -5)",
        ),
        (
            [DATASET[0], DATASET[1], {"wallet": WALLETS[2], "cumulative_total": 2**64}],
            "aop tree: entry 2: cumulative_total must be an integer in 0..18446744073709551615 "
            "(got 18446744073709551616)",
        ),
        (
            [{"wallet": WALLETS[0], "cumulative_total": 1.5}],
            f"aop tree: entry 0: cumulative_total must be an integer in {U64_RANGE} (got 1.5)",
        ),
        (
            [{"wallet": WALLETS[0], "cumulative_total": "7"}],
            f"aop tree: entry 0: cumulative_total must be an integer in {U64_RANGE} (got '7')",
        ),
        (
            [DATASET[0], DATASET[1], DATASET[2], {"wallet": WALLETS[1], "cumulative_total": 9}],
            f"aop tree: entry 3: wallet {WALLETS[1]} repeats entry 1",
        ),
        (
            [{"wallet": WALLETS[0], "total": 1}],
            "aop tree: entry 0: must be an object with keys wallet, cumulative_total "
            "(got ['total', 'wallet'])",
        ),
        (
            {"wallet": WALLETS[0]},
            "aop tree: input must be a JSON array of objects with keys wallet, "
            "cumulative_total (got dict)",
        ),
    ],
)
def test_build_bad_dataset_exits_2_with_one_line_naming_the_entry(
    run_factory: Run, tmp_path: Path, dataset: Any, message: str
) -> None:
    code, out, err = run_factory(
        *BUILD, "--root-seq", "1", "--input", write_json(tmp_path, "d.json", dataset)
    )
    assert (code, out, err) == (2, "", message + "\n")


@pytest.mark.parametrize(
    ("channel", "message"),
    [
        ("", "aop tree: channel name must be 1-64 ASCII characters (got '', 0 characters)"),
        (
            "x" * 65,
            "aop tree: channel name must be 1-64 ASCII characters "
            f"(got '{'x' * 65}', 65 characters)",
        ),
        (
            "caf\u00e9",
            "aop tree: channel name must be 1-64 ASCII characters (got 'caf\u00e9', 4 characters)",
        ),
    ],
)
def test_build_bad_channel_exits_2(
    run_factory: Run, tmp_path: Path, channel: str, message: str
) -> None:
    argv = [
        *BUILD[:-1],
        channel,
        "--root-seq",
        "1",
        "--input",
        write_json(tmp_path, "d.json", DATASET),
    ]
    code, _, err = run_factory(*argv)
    assert (code, err) == (2, message + "\n")


def test_build_malformed_json_exits_2(run_factory: Run, tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text('[{"wallet": ')
    code, _, err = run_factory(*BUILD, "--root-seq", "1", "--input", str(path))
    assert code == 2
    assert err.startswith(f"aop tree: input '{path}' is not valid JSON: Expecting value")
    assert err.count("\n") == 1


def test_build_nan_total_is_not_json(run_factory: Run) -> None:
    code, _, err = run_factory(
        *BUILD,
        "--root-seq",
        "1",
        "--input",
        "-",
        stdin=f'[{{"wallet": "{WALLETS[0]}", "cumulative_total": NaN}}]',
    )
    assert (code, err) == (2, "aop tree: input '-' is not valid JSON: NaN is not a JSON number\n")


def test_build_without_root_seq_exits_2(run_factory: Run, tmp_path: Path) -> None:
    code, _, err = run_factory(*BUILD, "--input", write_json(tmp_path, "d.json", DATASET))
    assert (code, err) == (2, "aop tree: --root-seq is required with --format cumulative-v2\n")


def test_build_negative_root_seq_exits_2(run_factory: Run, tmp_path: Path) -> None:
    code, _, err = run_factory(
        *BUILD, "--root-seq", "-1", "--input", write_json(tmp_path, "d.json", DATASET)
    )
    assert (code, err) == (
        2,
        "aop tree: root_seq must be an integer in 0..18446744073709551615 (got -1)\n",
    )


def test_build_bad_program_id_exits_2(run_factory: Run, tmp_path: Path) -> None:
    argv = ["tree", "build", "--program-id", "nope", "--mint", CCM_MINT, "--channel", CHANNEL]
    code, _, err = run_factory(
        *argv, "--root-seq", "1", "--input", write_json(tmp_path, "d.json", DATASET)
    )
    assert (code, err) == (2, "aop tree: --program-id 'nope' is not a valid base58 public key\n")


def test_ring_v0_more_than_1024_claims_exits_2_naming_the_count(
    run_factory: Run, tmp_path: Path
) -> None:
    dataset = [
        {"wallet": str(Pubkey(i.to_bytes(32, "big"))), "amount": 1, "first_seen": i}
        for i in range(1025)
    ]
    argv = [
        *BUILD,
        "--format",
        "ring-v0",
        "--epoch",
        "1",
        "--input",
        write_json(tmp_path, "r.json", dataset),
    ]
    code, _, err = run_factory(*argv)
    assert (code, err) == (
        2,
        f"aop tree: channel '{CHANNEL}' epoch 1 has 1025 claims; "
        "ring-v0 holds at most 1024 per (channel, epoch) on-chain\n",
    )


def test_verify_malformed_document_exits_2(run_factory: Run) -> None:
    code, _, err = run_factory("tree", "verify", "-", stdin='{"format": "cumulative-v2"}')
    assert (code, err) == (2, "aop tree: input: missing key 'program_id'\n")


# -- the global formats ------------------------------------------------------------------------

GLOBAL_BUILD = ["tree", "build", "--program-id", PROGRAM_ID, "--mint", CCM_MINT]


def test_global_v5_build_gives_the_reference_tree_and_verifies(
    run_factory: Run, tmp_path: Path
) -> None:
    """The §G7.3 dataset: root, leaves and proofs of the reference, the GlobalRootConfig as
    the root account, claims carrying both parts; `verify` accepts it."""
    from tests.unit.core import global_vectors as g

    rows = [
        {"wallet": str(Pubkey(w)), "base_yield": base, "attention_bonus": bonus}
        for w, base, bonus, _ in reversed(g.V5_TREE)
    ]
    code, out, err = run_factory(
        *GLOBAL_BUILD, "--format", "global-v5", "--root-seq", "7",
        "--input", write_json(tmp_path, "v5.json", rows),
    )  # fmt: skip
    assert (code, err) == (0, "")
    output = json.loads(out)
    assert output["root"] == g.V5_ROOT
    assert (output["channel"], output["global_root_config"]) == (None, g.GLOBAL_ROOT_CONFIG)
    assert "channel_config" not in output
    w0 = output["claims"][WALLETS[0]]
    assert (w0["leaf"], w0["base_yield"], w0["attention_bonus"]) == (
        g.V5_LEAF_W0,
        600_000_000,
        400_000_000,
    )
    assert w0["proof"] == list(g.V5_PROOFS[2])
    path = write_json(tmp_path, "out.json", output)
    assert run_factory("tree", "verify", path)[0] == 0
    forged = {**output, "claims": {**output["claims"], WALLETS[0]: {**w0, "attention_bonus": 1}}}
    code, _, err = run_factory("tree", "verify", write_json(tmp_path, "forged.json", forged))
    assert code == 1 and f"wallet {WALLETS[0]}: leaf" in err


def test_global_v4_build_takes_cumulative_totals_and_refuses_a_channel(
    run_factory: Run, tmp_path: Path
) -> None:
    from tests.unit.core import global_vectors as g

    rows = [{"wallet": WALLETS[0], "cumulative_total": 1_000_000_000}]
    path = write_json(tmp_path, "v4.json", rows)
    code, out, _ = run_factory(
        *GLOBAL_BUILD, "--format", "global-v4", "--root-seq", "7", "--input", path
    )
    assert code == 0
    assert json.loads(out)["root"] == g.V4_LEAF_W0_1E9  # one leaf: root = leaf
    code, _, err = run_factory(
        *GLOBAL_BUILD, "--format", "global-v4", "--root-seq", "7", "--channel", "x", "--input", path
    )
    assert code == 2 and "--channel does not apply to --format global-v4" in err
    bad = write_json(tmp_path, "bad.json", [{"wallet": WALLETS[0], "base_yield": 1}])
    code, _, err = run_factory(
        *GLOBAL_BUILD, "--format", "global-v5", "--root-seq", "7", "--input", bad
    )
    assert code == 2 and "entry 0: must be an object with keys wallet, base_yield" in err
