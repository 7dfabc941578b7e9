"""The legacy aggregator's ring-v0 epochs (reference §11): each claim's index and id.

A channel whose attention format is `ring-v0-legacy` gets, per closed attention epoch, the
tree the legacy aggregator sealed for it (`core.claims.ring_v0_legacy`):

* one claim per paid user (not per wallet), its amount that epoch's (not cumulative);
* `user_hash = keccak256(lowercase(username))` (the legacy's `db-types.ts`);
* indexes in the order `first_seen ASC, user_hash ASC` (the legacy's sealing order); a
  user's first_seen is the earliest `observed_at_ms` of its counted signals in that
  (channel, epoch): the collector's clock on the log, where the legacy used the time its
  database first saw the user (for signals `aop ingest` took through the legacy
  `POST /ingest`, the time it received them);
* each claim's id is the template `AOP_ATTENTION_CLAIM_ID_TEMPLATE` with `{channel}` (the
  channel's name as configured), `{user}` (lower-cased) and `{epoch}` (the epoch's unix
  start) filled in; the legacy used `twitch:<channel>:<username>`;
* at most 1024 claims (the program's claimed bitmap): an epoch with more is refused, with a
  dead letter, and pays nothing. Unpaid users (unbound, or of weight 0) get no index.
"""

from __future__ import annotations

import string
from collections.abc import Iterable

from aop.core.attention.signals import user_key
from aop.core.claims import ClaimInput
from aop.core.errors import CoreError
from aop.core.keccak import keccak256

__all__ = [
    "DEFAULT_CLAIM_ID_TEMPLATE",
    "TEMPLATE_FIELDS",
    "InvalidTemplateError",
    "LegacyClaim",
    "check_claim_id_template",
    "claim_id",
    "legacy_inputs",
    "user_hash",
]

#: the legacy's claim id convention (`test-tree-hardened.ts`).
DEFAULT_CLAIM_ID_TEMPLATE = "twitch:{channel}:{user}"
TEMPLATE_FIELDS = ("channel", "user", "epoch")

#: one paid user of an epoch: (user, first_seen_ms, wallet, amount).
LegacyClaim = tuple[str, int, bytes, int]


class InvalidTemplateError(CoreError, ValueError):
    """Raised when a claim id template uses a field other than {channel}, {user}, {epoch}."""


def check_claim_id_template(template: str) -> str:
    """Return `template` if it only uses the fields {channel}, {user} and {epoch} (plainly).

    Raises:
        InvalidTemplateError: another field, a format spec or conversion, or a stray brace.
    """
    try:
        parts = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise InvalidTemplateError(f"claim id template {template!r}: {exc}") from exc
    for _, name, spec, conversion in parts:
        if name is None:
            continue
        if name not in TEMPLATE_FIELDS or spec or conversion:
            raise InvalidTemplateError(
                f"claim id template fields must be {{channel}}, {{user}} or {{epoch}} "
                f"(got {{{name}{'!' + conversion if conversion else ''}"
                f"{':' + spec if spec else ''}}} in {template!r})"
            )
    return template


def claim_id(template: str, *, channel: str, user: str, epoch: int) -> str:
    """The claim id of `user` in (channel, epoch) (module docstring)."""
    return template.format(channel=channel, user=user_key(user), epoch=epoch)


def user_hash(user: str) -> bytes:
    """keccak256(lowercase(user) as UTF-8): the legacy's user_hash."""
    return keccak256(user_key(user).encode("utf-8"))


def legacy_inputs(
    template: str, channel: str, epoch: int, claims: Iterable[LegacyClaim]
) -> list[ClaimInput]:
    """The tree input of an epoch's paid users: each `ClaimInput.first_seen` is the user's
    rank in the legacy order (first_seen, user_hash), so the format indexes them in it.

    Zero amounts are left out before ranking (they get no index).
    """
    ordered = sorted(
        (first_seen, user_hash(user), user, wallet, amount)
        for user, first_seen, wallet, amount in claims
        if amount
    )
    return [
        ClaimInput(
            wallet, amount, rank, 0, claim_id(template, channel=channel, user=user, epoch=epoch)
        )
        for rank, (_, _, user, wallet, amount) in enumerate(ordered)
    ]
