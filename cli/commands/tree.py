"""`aop tree build` and `aop tree verify`: byte-exact claim trees from a JSON dataset.

`build` prints one JSON object (keys below); `verify` reads it back, recomputes every leaf,
checks every proof and rebuilds the tree. Bad input exits 2 with one line naming the
offending entry (entries are numbered from 0, as in the JSON array); a failed verification
exits 1 and names each failing wallet.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import Any, NoReturn, TypeVar

from solders.pubkey import Pubkey

from aop.cli.help import help_options
from aop.core.claims import (
    CLAIM_FORMATS,
    DEFAULT_CLAIM_FORMAT,
    ClaimFormat,
    ClaimInput,
    ClaimTree,
    TreeScope,
    get_claim_format,
)
from aop.core.claims.ring_v0 import ring_claim_id
from aop.core.errors import CoreError, WalletNotInTreeError
from aop.core.merkle import verify_proof
from aop.runtime.errors import AopError
from aop.runtime.settings import load_settings

__all__ = ["register"]

T = TypeVar("T")

_BUILD_HELP = """\
Build the claim tree of a dataset and print ONE JSON object:
  {"format", "program_id", "mint", "channel", "root_seq" | "epoch",
   "root": hex, "dataset_hash": hex, "leaf_count": n, "total": n,
   "channel_config": base58,
   "claims": {"<wallet>": {"leaf": hex, "index": i, "<amount key>": n, "proof": [hex, ...]}}}
Claims appear in leaf order. Wallets with a zero amount get no leaf.

--format cumulative-v2 (default; program v0.2.2): needs --root-seq; input
  [{"wallet": "<base58>", "cumulative_total": <int>}, ...] in any order; leaves are ordered
  by wallet bytes; claims carry "cumulative_total".
--format ring-v0 (program v0.2.1-clean): needs --epoch; input
  [{"wallet": "<base58>", "amount": <int>, "first_seen": <int>}, ...]; leaf index =
  order of (first_seen, wallet bytes); at most 1024 claims; claims carry "amount"; the
  output adds "claim_id" (<channel>:<epoch>) and "channel_state" (the ring account).
--format global-v4 / global-v5 (the program as deployed: one root per mint): need
  --root-seq and no --channel; input [{"wallet", "cumulative_total"}, ...] (v4) or
  [{"wallet", "base_yield", "attention_bonus"}, ...] (v5); leaves ordered by wallet bytes;
  claims carry the same keys; "channel" is null and "channel_config" is replaced by
  "global_root_config" (the mint's GlobalRootConfig).

--program-id and --mint default to AOP_PROGRAM_ID and AOP_MINT.
Bad input exits 2 naming the entry (entries are numbered from 0, as in the JSON array).
"""

_VERIFY_HELP = """\
Check the output of `aop tree build`: recompute every leaf from its wallet and amount,
verify every proof against the root, and rebuild the tree to compare root, dataset_hash,
leaf_count and indexes. Exits 0 if all hold, 1 naming each failing wallet, 2 on malformed
input.
"""


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "tree",
        help="build or verify a claim tree (roots, proofs) from a JSON dataset",
        **help_options(
            "Offline tools for auditors: build a claim tree from a dataset, or check one.",
            settings=(),
            exits={0: "done", 1: "verify found a failure", 2: "malformed input"},
        ),
    )
    actions = parser.add_subparsers(dest="tree_action", metavar="ACTION", required=True)

    build = actions.add_parser(
        "build",
        help="build a tree and print root, dataset_hash and every proof as JSON",
        **help_options(
            _BUILD_HELP,
            settings=("AOP_PROGRAM_ID", "AOP_MINT (defaults of --program-id and --mint)"),
            exits={0: "built", 2: "malformed input or arguments (one line names the item)"},
        ),
    )
    build.add_argument("--format", choices=sorted(CLAIM_FORMATS), default=DEFAULT_CLAIM_FORMAT)
    build.add_argument("--program-id", help="base58 program id (default: AOP_PROGRAM_ID)")
    build.add_argument("--mint", help="base58 mint (default: AOP_MINT)")
    build.add_argument(
        "--channel", help="channel name, 1-64 ASCII characters (not for the global formats)"
    )
    build.add_argument("--root-seq", type=int, help="root sequence (cumulative-v2, global-*)")
    build.add_argument("--epoch", type=int, help="epoch (ring-v0)")
    build.add_argument("--input", required=True, help="dataset JSON file, or - for stdin")
    build.set_defaults(handler=run_build)

    verify = actions.add_parser(
        "verify",
        help="check every leaf and proof of an `aop tree build` output",
        **help_options(
            _VERIFY_HELP,
            settings=(),
            exits={
                0: "every leaf and proof holds",
                1: "a failure (each failing wallet is named)",
                2: "malformed input",
            },
        ),
    )
    verify.add_argument("file", nargs="?", default="-", help="build output, or - for stdin")
    verify.set_defaults(handler=run_verify)


# -- build ---------------------------------------------------------------------------------


def run_build(args: argparse.Namespace) -> int:
    fmt = get_claim_format(args.format)
    program_id, mint = _program_and_mint(args.program_id, args.mint)
    for key in ("root_seq", "epoch"):
        if key != fmt.sequence_key and getattr(args, key) is not None:
            raise AopError(f"{_flag(key)} does not apply to --format {fmt.name}")
    if fmt.is_global and args.channel is not None:
        raise AopError(f"--channel does not apply to --format {fmt.name} (one root per mint)")
    if not fmt.is_global and args.channel is None:
        raise AopError(f"--channel is required with --format {fmt.name}")
    scope = _scope(fmt, program_id, mint, args.channel, getattr(args, fmt.sequence_key))
    document = _load_json(args.input)
    inputs = _dataset_inputs(fmt, document)
    tree = _core(lambda: fmt.build(scope, inputs))
    json.dump(_build_output(fmt, tree), sys.stdout)
    sys.stdout.write("\n")
    return 0


def _program_and_mint(program_id: str | None, mint: str | None) -> tuple[Pubkey, Pubkey]:
    if program_id is None or mint is None:
        settings = load_settings()
        program_id = program_id or settings.program_id
        mint = mint or settings.mint
    return _pubkey("--program-id", program_id), _pubkey("--mint", mint)


def _flag(key: str) -> str:
    return "--" + key.replace("_", "-")


def _scope(
    fmt: ClaimFormat, program_id: Pubkey, mint: Pubkey, channel: str | None, sequence: int | None
) -> TreeScope:
    """The scope of a tree; `sequence` is the root_seq or epoch, as the format needs."""
    if sequence is None:
        raise AopError(f"{_flag(fmt.sequence_key)} is required with --format {fmt.name}")
    numbers = {"root_seq": 0, "epoch": 0, fmt.sequence_key: sequence}
    return _core(
        lambda: TreeScope(program_id, mint, channel, numbers["root_seq"], numbers["epoch"])
    )


def _dataset_inputs(fmt: ClaimFormat, document: object) -> list[ClaimInput]:
    """The dataset's entries as `ClaimInput`s, in input order (positions = entry numbers)."""
    keys = ("wallet", *fmt.parts) + (("first_seen",) if fmt.sequence_key == "epoch" else ())
    if not isinstance(document, list):
        raise AopError(
            f"input must be a JSON array of objects with keys {', '.join(keys)} "
            f"(got {type(document).__name__})"
        )
    inputs = []
    for position, entry in enumerate(document):
        if not isinstance(entry, dict) or set(entry) != set(keys):
            got = sorted(entry) if isinstance(entry, dict) else type(entry).__name__
            raise AopError(
                f"entry {position}: must be an object with keys {', '.join(keys)} (got {got})"
            )
        wallet = _wallet_bytes(entry["wallet"], f"entry {position}: wallet")
        amount, bonus = entry[fmt.parts[0]], entry[fmt.parts[1]] if len(fmt.parts) > 1 else 0
        inputs.append(ClaimInput(wallet, amount, entry.get("first_seen", 0), bonus))
    return inputs


def _parts_of(fmt: ClaimFormat, amount: int, bonus: int) -> dict[str, int]:
    """A claim's amount keys: the format's parts (global-v5: base_yield, attention_bonus)."""
    return dict(zip(fmt.parts, (amount, bonus)[: len(fmt.parts)], strict=True))


def _root_account_key(fmt: ClaimFormat) -> str:
    """The output key naming the root account the format publishes to."""
    return "global_root_config" if fmt.is_global else "channel_config"


def _build_output(fmt: ClaimFormat, tree: ClaimTree) -> dict[str, Any]:
    scope = tree.scope
    output: dict[str, Any] = {
        "format": fmt.name,
        "program_id": str(scope.program_id),
        "mint": str(scope.mint),
        "channel": scope.channel,
        fmt.sequence_key: getattr(scope, fmt.sequence_key),
    }
    if fmt.sequence_key == "epoch":
        output["claim_id"] = ring_claim_id(scope.channel_name, scope.epoch)
        output["channel_state"] = str(fmt.root_account(scope))
    leaves = tree.leaves
    output.update(
        {
            "root": tree.root.hex(),
            "dataset_hash": tree.dataset_hash.hex(),
            "leaf_count": tree.leaf_count,
            "total": tree.total,
            _root_account_key(fmt): str(fmt.root_account(scope)),
            "claims": {
                str(Pubkey(wallet)): {
                    "leaf": leaves[index].hex(),
                    "index": index,
                    **_parts_of(fmt, amount, bonus),
                    "proof": [node.hex() for node in tree.proof(index)],
                }
                for index, (wallet, amount, bonus) in enumerate(
                    zip(tree.wallets, tree.base_amounts, tree.bonus_amounts, strict=True)
                )
            },
        }
    )
    return output


# -- verify --------------------------------------------------------------------------------


def run_verify(args: argparse.Namespace) -> int:
    document = _load_json(args.file)
    if not isinstance(document, dict):
        raise AopError(
            f"input must be the JSON object `aop tree build` prints (got {type(document).__name__})"
        )
    fmt = _core(lambda: get_claim_format(_field(document, "format", str)))
    program_id = _pubkey("program_id", _field(document, "program_id", str))
    mint = _pubkey("mint", _field(document, "mint", str))
    channel = None if fmt.is_global else _field(document, "channel", str)
    scope = _scope(fmt, program_id, mint, channel, _field(document, fmt.sequence_key, int))
    root = _hex32("root", _field(document, "root", str))
    claims = _field(document, "claims", dict)
    failures, stated = _check_claims(fmt, scope, root, claims)
    failures += _check_rebuilt_tree(fmt, scope, document, stated)
    for failure in failures:
        print(f"aop tree verify: {failure}", file=sys.stderr)
    if failures:
        return 1
    print(f"ok: {len(claims)} claims verify against root {root.hex()}")
    return 0


def _check_claims(
    fmt: ClaimFormat, scope: TreeScope, root: bytes, claims: dict[str, Any]
) -> tuple[list[str], list[tuple[str, ClaimInput]]]:
    """Recompute each claim's leaf and fold its proof; returns failures and the claims read.

    Each claim comes back as (wallet text, ClaimInput with first_seen = its stated index), so
    that rebuilding keeps ring-v0's stated order.
    """
    failures, stated = [], []
    for wallet_text, claim in claims.items():
        wallet = _wallet_bytes(wallet_text, "claims key")
        where = f"wallet {wallet_text}"
        if not isinstance(claim, dict):
            raise AopError(f"{where}: claim must be an object (got {type(claim).__name__})")
        index = _field(claim, "index", int, where)
        amount = _field(claim, fmt.parts[0], int, where)
        bonus = _field(claim, fmt.parts[1], int, where) if len(fmt.parts) > 1 else 0
        leaf = _hex32(f"{where}: leaf", _field(claim, "leaf", str, where))
        proof_texts = _field(claim, "proof", list, where)
        proof = [_hex32(f"{where}: proof node {i}", node) for i, node in enumerate(proof_texts)]
        expected_leaf = _core(lambda: fmt.leaf(scope, wallet, amount, index, bonus=bonus))  # noqa: B023
        if leaf != expected_leaf:
            failures.append(
                f"{where}: leaf {leaf.hex()} is not the leaf of its claim ({expected_leaf.hex()})"
            )
        elif not verify_proof(leaf, proof, root):
            failures.append(f"{where}: proof does not verify against root {root.hex()}")
        stated.append((wallet_text, ClaimInput(wallet, amount, index, bonus)))
    return failures, stated


def _check_rebuilt_tree(
    fmt: ClaimFormat,
    scope: TreeScope,
    document: dict[str, Any],
    stated: list[tuple[str, ClaimInput]],
) -> list[str]:
    """Rebuild the tree from the claims; compare indexes and the document's summary keys."""
    tree = _core(lambda: fmt.build(scope, [claim for _, claim in stated]))
    failures = []
    for wallet_text, claim in stated:
        try:
            place = tree.index_of(claim.wallet)
        except WalletNotInTreeError:
            failures.append(f"wallet {wallet_text}: a zero amount has no leaf")
            continue
        if place != claim.first_seen:
            failures.append(
                f"wallet {wallet_text}: index {claim.first_seen} is not its place in the tree "
                f"({place})"
            )
    expectations = {
        "root": (_field(document, "root", str), tree.root.hex()),
        "dataset_hash": (_field(document, "dataset_hash", str), tree.dataset_hash.hex()),
        "leaf_count": (_field(document, "leaf_count", int), tree.leaf_count),
    }
    account = _root_account_key(fmt)
    expectations[account] = (_field(document, account, str), str(fmt.root_account(scope)))
    for key, (in_document, rebuilt) in expectations.items():
        if in_document != rebuilt:
            failures.append(f"{key} {in_document} does not match the claims (rebuilt: {rebuilt})")
    return failures


# -- shared helpers ------------------------------------------------------------------------


def _core(call: Callable[[], T]) -> T:
    """Run a `core` call; its typed errors become one-line operator errors (exit 2)."""
    try:
        return call()
    except CoreError as exc:
        raise AopError(str(exc)) from exc


def _reject_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not a JSON number")


def _load_json(path: str) -> object:
    try:
        if path == "-":
            text = sys.stdin.read()
        else:
            with open(path, encoding="utf-8") as handle:
                text = handle.read()
    except (OSError, UnicodeDecodeError) as exc:
        raise AopError(f"cannot read input {path!r}: {exc}") from exc
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except ValueError as exc:
        raise AopError(f"input {path!r} is not valid JSON: {exc}") from exc


def _pubkey(what: str, text: str) -> Pubkey:
    try:
        return Pubkey.from_string(text)
    except ValueError:
        raise AopError(f"{what} {text!r} is not a valid base58 public key") from None


def _wallet_bytes(value: object, what: str) -> bytes:
    if not isinstance(value, str):
        raise AopError(f"{what} must be a base58 string (got {value!r})")
    try:
        return bytes(Pubkey.from_string(value))
    except ValueError:
        raise AopError(f"{what} {value!r} is not valid base58 (a 32-byte public key)") from None


def _hex32(what: str, value: object) -> bytes:
    try:
        if not isinstance(value, str):
            raise ValueError
        raw = bytes.fromhex(value)
    except ValueError:
        raise AopError(f"{what} must be 64 hex digits (got {value!r})") from None
    if len(raw) != 32:
        raise AopError(f"{what} must be 64 hex digits (got {value!r})")
    return raw


def _field(document: dict[str, Any], key: str, kind: type[T], where: str = "input") -> T:
    if key not in document:
        raise AopError(f"{where}: missing key {key!r}")
    value = document[key]
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise AopError(f"{where}: {key} must be a {kind.__name__} (got {value!r})")
    return value
