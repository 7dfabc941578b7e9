"""Settings: precedence, parsing, and errors that name the variable."""

from __future__ import annotations

from pathlib import Path

import pytest

from aop.runtime.errors import SettingsError
from aop.runtime.settings import load_settings


def test_defaults_apply_when_nothing_is_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AOP_EPOCH_SLOTS", raising=False)
    settings = load_settings()
    assert settings.epoch_slots == 9000
    assert settings.program_id == "GnGzNdsQMxMpJfMeqnkGPsvHm8kwaDidiKjNU2dCVZop"
    assert settings.auto_publish is False
    assert settings.commitment == "finalized"


def test_precedence_is_default_then_dotenv_then_environ_then_explicit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("AOP_EPOCH_SLOTS=11\nAOP_GENESIS_SLOT=5\nAOP_API_PORT=9001\n")
    monkeypatch.setenv("AOP_GENESIS_SLOT", "6")
    monkeypatch.setenv("AOP_API_PORT", "9002")
    settings = load_settings({"AOP_API_PORT": "9003"})
    assert (settings.epoch_slots, settings.genesis_slot, settings.api_port) == (11, 6, 9003)


def test_explicit_env_does_not_leak_into_later_loads(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AOP_EPOCH_SLOTS", raising=False)
    assert load_settings({"AOP_EPOCH_SLOTS": "42"}).epoch_slots == 42
    assert load_settings().epoch_slots == 9000


def test_channel_maps_parse_json_and_lowercase_names() -> None:
    settings = load_settings(
        {
            "AOP_EMISSIONS": '{"Twitch:Lofi": 500}',
            "AOP_CLAIM_FORMATS": '{"legacy": "ring-v0"}',
            "AOP_FIRST_ROOT_SEQ": '{"youtube_lofi": 1708}',
            "AOP_EMISSION_DEFAULT": "7",
        }
    )
    assert settings.emission_for("twitch:lofi") == 500
    assert settings.emission_for("other") == 7
    assert settings.claim_format_for("LEGACY") == "ring-v0"
    assert settings.claim_format_for("other") == "cumulative-v2"
    assert settings.first_root_seq_for("youtube_lofi") == 1708
    assert settings.first_root_seq_for("other") == 1


def test_channels_accept_a_comma_list_or_json() -> None:
    assert load_settings({"AOP_CHANNELS": "a, b:c ,"}).channels == ["a", "b:c"]
    assert load_settings({"AOP_CHANNELS": '["x", "y"]'}).channels == ["x", "y"]


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        (
            "AOP_EPOCH_SLOTS",
            "0",
            r"AOP_EPOCH_SLOTS: Input should be greater than or equal to 1 \(got '0'\)",
        ),
        ("AOP_MINT", "not-a-key", r"AOP_MINT: must be a base58 public key \(got 'not-a-key'\)"),
        (
            "AOP_COMMITMENT",
            "fast",
            r"AOP_COMMITMENT: Input should be 'processed', 'confirmed' or 'finalized'",
        ),
        ("AOP_AUTO_PUBLISH", "maybe", r"AOP_AUTO_PUBLISH: Input should be a valid boolean"),
        (
            "AOP_EMISSION_DEFAULT",
            str(2**64),
            r"AOP_EMISSION_DEFAULT: Input should be less than or equal to",
        ),
        (
            "AOP_CHANNELS",
            "a," + "b" * 65,
            r"AOP_CHANNELS: channel names must be 1-64 ASCII characters",
        ),
        ("AOP_API_PORT", "70000", r"AOP_API_PORT: Input should be less than or equal to 65535"),
    ],
)
def test_bad_value_is_refused_with_the_variable_named(
    variable: str, value: str, message: str
) -> None:
    with pytest.raises(SettingsError, match=message):
        load_settings({variable: value})


def test_settings_are_frozen() -> None:
    settings = load_settings()
    with pytest.raises(ValueError, match="frozen"):
        settings.epoch_slots = 1  # type: ignore[misc]
