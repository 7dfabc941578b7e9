"""`make demo`'s promise, run: `aop demo` on the test services, with a smaller workload.

The demo runs the simulated chain with the deployed program, every service, waits for two
published global roots, then curls a wallet's proof, claims with it on the simulated chain,
waits for the API to show the claim, and replays the root from the log. Its exit code is 0
only when the claim paid exactly what the API said was claimable, the API then showed it
claimed, and the replay MATCHed; the checks below read its output for each step.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
from pathlib import Path

from tests.conftest import ROOT
from tests.live_pipeline import AOP, free_ports

ADDRESS = r"[1-9A-HJ-NP-Za-km-z]{32,44}"


def test_the_demo_publishes_global_roots_and_a_wallet_claims_with_the_api_proof(
    kafka_bootstrap: str, database_url: str, tmp_path: Path
) -> None:
    (api_port,) = free_ports(1)
    env = {
        **os.environ,
        "AOP_KAFKA_BOOTSTRAP": kafka_bootstrap,
        "AOP_DATABASE_URL": database_url,
        "COLUMNS": "200",
    }
    args = ["demo", "--free-ports", "--api-port", str(api_port), "--workdir", str(tmp_path)]
    args += ["--roots", "2", "--budget", "240", "--rate", "150", "--wallets", "400"]
    try:
        result = subprocess.run(
            [*AOP, *args], env=env, cwd=ROOT, capture_output=True, text=True, timeout=420
        )
    finally:
        pid = tmp_path / "api.pid"
        if pid.exists():  # the API the demo leaves running
            os.kill(int(pid.read_text()), signal.SIGTERM)
    out = result.stdout
    assert result.returncode == 0, out[-4000:] + result.stderr[-4000:]
    published = re.findall(r"│ (18\d\d) +│ \d+ +│ [0-9a-f]{16}… +│ \d+ +│ \d+ +│ published", out)
    assert len(published) >= 2 and "1801" in published, out[-4000:]
    assert re.search(rf"curl -s http://127\.0\.0\.1:{api_port}/v1/claims/{ADDRESS}", out)
    claimed = re.search(
        r"claimed ([\d,]+) at root_seq (18\d\d) \(base_yield ([\d,]+) \+ attention_bonus "
        r"([\d,]+)\); token balance ([\d,]+) -> ([\d,]+)",
        out,
    )
    assert claimed, out[-4000:]
    amount, _seq, base, bonus, before, after = (int(g.replace(",", "")) for g in claimed.groups())
    assert amount > 0 and amount == base + bonus == after - before
    after_claim = re.search(r"the API after the claim: claimed_total (\d+), claimable 0", out)
    assert after_claim and int(after_claim.group(1)) == amount
    assert re.search(r"root_seq 18\d\d \(epoch \d+\): MATCH", out)
