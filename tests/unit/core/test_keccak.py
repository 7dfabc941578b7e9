"""core.keccak: Keccak-256 with the original padding."""

from __future__ import annotations

import hashlib

from hypothesis import given
from hypothesis import strategies as st

from aop.core.keccak import keccak256
from tests.unit.core import independent
from tests.unit.core.vectors import KECCAK_ABC, KECCAK_EMPTY


def test_keccak256_of_empty_input_is_the_published_digest() -> None:
    assert keccak256(b"").hex() == KECCAK_EMPTY
    assert keccak256().hex() == KECCAK_EMPTY


def test_keccak256_of_abc_is_the_published_digest() -> None:
    assert keccak256(b"abc").hex() == KECCAK_ABC


def test_keccak256_differs_from_fips_sha3_256() -> None:
    """The program uses Keccak's original padding, which hashlib.sha3_256 does not."""
    assert keccak256(b"abc") != hashlib.sha3_256(b"abc").digest()


@given(st.lists(st.binary(max_size=300), max_size=5))
def test_keccak256_of_parts_equals_pycryptodome_over_their_concatenation(
    parts: list[bytes],
) -> None:
    assert keccak256(*parts) == independent.keccak(b"".join(parts))
