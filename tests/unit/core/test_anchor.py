"""core.anchor: the §12 discriminators."""

from __future__ import annotations

import pytest

from aop.core.anchor import account_discriminator, event_discriminator, instruction_discriminator
from tests.unit.core.vectors import (
    ACCOUNT_DISCRIMINATORS,
    EVENT_DISCRIMINATORS,
    INSTRUCTION_DISCRIMINATORS,
)


@pytest.mark.parametrize(("name", "expected"), INSTRUCTION_DISCRIMINATORS.items())
def test_instruction_discriminator_matches_reference(name: str, expected: str) -> None:
    assert instruction_discriminator(name).hex() == expected


@pytest.mark.parametrize(("name", "expected"), ACCOUNT_DISCRIMINATORS.items())
def test_account_discriminator_matches_reference(name: str, expected: str) -> None:
    assert account_discriminator(name).hex() == expected


@pytest.mark.parametrize(("name", "expected"), EVENT_DISCRIMINATORS.items())
def test_event_discriminator_matches_reference(name: str, expected: str) -> None:
    assert event_discriminator(name).hex() == expected
