"""`aop claim --keypair FILE`: claim a wallet's global rewards with the API's proof."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from aop.cli.help import OPERATOR_ERROR, help_options
from aop.runtime.logs import configure_logging
from aop.runtime.settings import load_settings


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "claim",
        help="claim a wallet's global rewards: the API's proof, claim_global_v2 (or "
        "claim_global for global-v4), signed with the wallet's keypair",
        **help_options(
            "What a wallet's SDK does, for operators checking a deployment end to end (and "
            "the demo): reads GET /v1/global/claims/{wallet} from --api, builds the claim "
            "instruction of the root's format with the answer's root_seq, parts and proof, "
            "signs it with --keypair, sends it to AOP_RPC_URL and waits for AOP_COMMITMENT. "
            "Prints the amount received; nothing is sent when nothing is claimable.",
            settings=("AOP_RPC_URL", "AOP_COMMITMENT", "AOP_GLOBAL_PROTOCOL_STATE"),
            exits={
                0: "claimed, or nothing to claim",
                2: OPERATOR_ERROR + "; the wallet is in no global root; the program refused",
            },
        ),
    )
    parser.add_argument(
        "--keypair",
        type=Path,
        required=True,
        metavar="FILE",
        help="the wallet's keypair (Solana CLI JSON, mode 600)",
    )
    parser.add_argument(
        "--api",
        default=None,
        metavar="URL",
        help="the read API (default: http://127.0.0.1:AOP_API_PORT)",
    )
    parser.add_argument("--json", action="store_true", help="print a JSON report")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    settings = load_settings()
    configure_logging(settings.log_level)
    from aop.cli.claim import claim_global_rewards
    from aop.settlement.keypair import load_keypair

    wallet = load_keypair(args.keypair, "--keypair")
    outcome = claim_global_rewards(
        api=args.api or f"http://127.0.0.1:{settings.api_port}",
        rpc_url=settings.rpc_url,
        wallet=wallet,
        protocol_seeds=settings.global_protocol_state,
        commitment=settings.commitment,
    )
    answer = outcome.answer
    if args.json:
        print(
            json.dumps(
                {
                    "wallet": str(wallet.pubkey()),
                    "root_seq": int(answer["root_seq"]),
                    "format": answer["format"],
                    "base_yield": answer["base_yield"],
                    "attention_bonus": answer["attention_bonus"],
                    "cumulative_total": answer["cumulative_total"],
                    "claimed_before": answer["claimed_total"],
                    "claimable": answer["claimable"],
                    "signature": outcome.signature,
                    "received": outcome.received,
                    "balance_before": outcome.balance_before,
                    "balance_after": outcome.balance_after,
                }
            )
        )
    elif outcome.nothing:
        print(
            f"{wallet.pubkey()}: nothing to claim (claimed {answer['claimed_total']} of "
            f"{answer['cumulative_total']} at root_seq {answer['root_seq']})"
        )
    else:
        print(
            f"{wallet.pubkey()}: claimed {outcome.received} at root_seq {answer['root_seq']} "
            f"({answer['format']}: base_yield {answer['base_yield']} + attention_bonus "
            f"{answer['attention_bonus']} = {answer['cumulative_total']}, claimed before "
            f"{answer['claimed_total']}); signature {outcome.signature}; balance "
            f"{outcome.balance_before} -> {outcome.balance_after}"
        )
    return 0
