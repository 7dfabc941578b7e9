"""`aop simulate-chain`'s SimConfig: the program version and its claim channels."""

from __future__ import annotations

from typing import get_args

import pytest

from aop.cli.commands.simulate_chain import build_config
from aop.cli.entry import build_parser
from aop.runtime.errors import AopError
from aop.runtime.settings import SimProgram, load_settings
from aop.simchain.config import SIM_PROGRAMS, SimConfig


def config_for(argv: list[str], env: dict[str, str]) -> SimConfig:
    args = build_parser().parse_args(["simulate-chain", *argv])
    return build_config(args, load_settings(env))


def test_v022_is_the_default_with_its_claim_channel() -> None:
    """No setting: program v0.2.2, the self-published claim channel sim:claims."""
    config = config_for([], {})
    assert (config.program, config.claim_channels, config.global_latest_root_seq) == (
        "v0.2.2",
        ("sim:claims",),
        0,
    )


def test_deployed_from_the_setting_or_the_flag_has_no_claim_channels() -> None:
    """AOP_SIM_PROGRAM=deployed (or --program deployed) drops the default claim channel and
    takes the GlobalRootConfig's latest root_seq from AOP_SIM_GLOBAL_LATEST_ROOT_SEQ; the flag
    wins over the setting."""
    env = {"AOP_SIM_PROGRAM": "deployed", "AOP_SIM_GLOBAL_LATEST_ROOT_SEQ": "1800"}
    config = config_for([], env)
    assert (config.program, config.claim_channels, config.global_latest_root_seq) == (
        "deployed",
        (),
        1800,
    )
    assert config_for(["--program", "deployed"], {}).claim_channels == ()
    assert config_for(["--program", "v0.2.2"], env).program == "v0.2.2"


def test_deployed_with_claim_channels_set_is_refused() -> None:
    """Claim channels asked for explicitly, with the deployed program, stop the command."""
    env = {"AOP_SIM_PROGRAM": "deployed", "AOP_SIM_CLAIM_CHANNELS": "sim:claims"}
    with pytest.raises(AopError, match=r"claim_channels need program v0\.2\.2"):
        config_for([], env)
    with pytest.raises(AopError, match=r"claim_channels need program v0\.2\.2"):
        config_for(["--program", "deployed", "--claim-channels", "a:b"], {})


def test_the_setting_offers_exactly_the_simulators_programs() -> None:
    """AOP_SIM_PROGRAM's choices (runtime cannot import simchain) are SimConfig's."""
    assert get_args(SimProgram) == SIM_PROGRAMS


def test_block_times_start_in_2026_at_400_ms_a_slot_unless_on_the_wall_clock() -> None:
    """By default block times are 2026-01-01T00:00:00Z (1,767,225,600) + 0.4 s a slot, whatever
    --slot-ms is; --wall-clock starts them now and advances them --slot-ms a slot."""
    import time

    default = config_for(["--slot-ms", "100"], {})
    assert (default.genesis_time, default.block_ms) == (1_767_225_600, 400)
    before = int(time.time())
    wall = config_for(["--slot-ms", "100", "--wall-clock"], {})
    assert before <= wall.genesis_time <= int(time.time())
    assert wall.block_ms == 100
