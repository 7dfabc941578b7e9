"""The Grafana dashboard and the Prometheus alerts watch metrics the services really expose.

Static checks (no services): the dashboard JSON loads and every panel queries the provisioned
datasource; every alert carries summary/description annotations that point at a section of
docs/runbook.md, and that section exists; with promtool installed, every dashboard query
parses as PromQL.

The pipeline check runs the real services for a short while, as `aop demo` does: a fast
simulated chain, then listener, fold, projector, settlement (dry run) and API under the
supervisor, on free ports, in a fresh topic prefix and schema. Once a root is projected and
the API has answered a few requests, it scrapes every service's /metrics and requires each
metric name used by the dashboard or the alerts to be exposed by one of them (a family counts
when its `# HELP`/`# TYPE` lines are there, samples or not). The `aop_parity_*` names come
from `aop parity`, not from a service: they must be in the textfile `aop parity
--metrics-file` writes, the `aop_parity_legacy_*` ones in the textfile of its parallel run
(`--legacy-dsn-file`, here against an empty legacy table), the `aop_backup_*` ones in the
textfile of `aop log export --metrics-file`. The `aop_supervisor_*` names live in the process
that runs the supervisor: they are scraped from `aop run` itself (with only the API as its
child, on AOP_METRICS_PORT).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families
from psycopg import sql

from aop.cli.services import METRICS_PORTS, SERVICES
from aop.cli.supervisor import Supervisor
from aop.runtime.settings import Settings
from tests.conftest import ROOT, libpq_url
from tests.live_pipeline import AOP, free_ports, fresh_schema, http_get, live_pipeline

DASHBOARD = ROOT / "infra" / "grafana" / "dashboards" / "aop.json"
ALERTS = ROOT / "infra" / "prometheus" / "alerts.yml"
PROMETHEUS = ROOT / "infra" / "prometheus" / "prometheus.yml"
RUNBOOK = ROOT / "docs" / "runbook.md"
DATASOURCE_UID = "prometheus"  # infra/grafana/provisioning/datasources/prometheus.yml

#: series Prometheus itself adds to every target; no service exposes them.
PROMETHEUS_SYNTHETIC = frozenset({"up"})
PARITY_PREFIX = "aop_parity_"
#: the parallel run's (`aop parity --legacy-dsn-file`), a textfile of its own.
LEGACY_PREFIX = "aop_parity_legacy_"
#: prefixes whose series come from textfiles of jobs, not from a service: `aop parity`'s
#: (checked below, the legacy ones included) and `aop log export`'s (aop_backup_*, checked
#: where that command lives).
BACKUP_PREFIX = "aop_backup_"
JOB_PREFIXES = (PARITY_PREFIX, BACKUP_PREFIX)

CHANNELS = ("obs:alpha", "obs:beta")
#: a fast chain: 40 ms slots, 50-slot epochs (2 s), finality 4 slots.
SIM_ARGS = ["--rate", "60", "--wallets", "40", "--slot-ms", "40", "--finality-depth", "4"]
SIM_ARGS += ["--claim-channels", "", "--seed", "11"]
ROOT_TIMEOUT_S = 60.0


# -- PromQL: the metric names an expression reads -----------------------------------------

_STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_SELECTORS = re.compile(r"\{[^}]*\}")
_RANGES = re.compile(r"\[[^\]]*\]")
_LABEL_LISTS = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_IDENTIFIER = re.compile(r"(?<![\w.$])[A-Za-z_:][\w:]*(?![\w(])(?!\s*\()")
_KEYWORDS = frozenset(
    {"and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring"}
    | {"group_left", "group_right", "inf", "nan", "sum", "min", "max", "avg", "count"}
    | {"group", "stddev", "stdvar", "topk", "bottomk", "quantile", "count_values"}
)
_SUFFIXES = ("_bucket", "_sum", "_count", "_total", "_created")


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects (functions, labels, keywords left out)."""
    text = _STRINGS.sub('""', expr)
    text = _SELECTORS.sub(" ", text)
    text = _RANGES.sub(" ", text)
    text = _LABEL_LISTS.sub(" ", text)
    return {m for m in _IDENTIFIER.findall(text) if m not in _KEYWORDS}


def grafana_to_promql(expr: str) -> str:
    """A dashboard query with Grafana's interval variables replaced by durations."""
    return re.sub(r"\$__(rate_interval|interval|range)\b|\$\{__\w+\}", "5m", expr)


def iter_panels(panels: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Every panel, the ones inside collapsed rows included."""
    for panel in panels:
        yield panel
        yield from iter_panels(panel.get("panels", []))


def load_dashboard() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text())  # type: ignore[no-any-return]


def dashboard_queries() -> list[tuple[str, str]]:
    """(panel title, expr) of every dashboard target and templating query."""
    dashboard = load_dashboard()
    found = [
        (panel.get("title", "?"), target["expr"])
        for panel in iter_panels(dashboard["panels"])
        for target in panel.get("targets", [])
        if target.get("expr")
    ]
    for variable in dashboard.get("templating", {}).get("list", []):
        query = variable.get("query")
        if isinstance(query, dict):
            query = query.get("query")
        if variable.get("type") == "query" and query:
            found.append((f"${variable['name']}", str(query)))
    return found


def alert_rules() -> list[dict[str, Any]]:
    document = yaml.safe_load(ALERTS.read_text())
    return [rule for group in document["groups"] for rule in group["rules"]]


def used_metrics() -> dict[str, set[str]]:
    """metric name -> where it is used ('dashboard: <panel>' / 'alert: <name>')."""
    used: dict[str, set[str]] = {}
    for title, expr in dashboard_queries():
        for name in metric_names(grafana_to_promql(expr)):
            used.setdefault(name, set()).add(f"dashboard: {title}")
    for rule in alert_rules():
        for name in metric_names(rule["expr"]):
            used.setdefault(name, set()).add(f"alert: {rule.get('alert') or rule.get('record')}")
    return used


# -- exposition: the families a /metrics text declares ------------------------------------


def families_of(text: str) -> dict[str, str]:
    """family name -> type of a Prometheus text exposition (counters without `_total`)."""
    return {f.name: f.type for f in text_string_to_metric_families(text)}


def sample_names(text: str) -> set[str]:
    return {s.name for f in text_string_to_metric_families(text) for s in f.samples}


def missing_from(name: str, families: Mapping[str, str]) -> str | None:
    """Why `name` is not a series of `families` (None when it is)."""
    if families.get(name) in ("gauge", "untyped", "unknown"):
        return None
    for suffix in _SUFFIXES:
        if name.endswith(suffix):
            family = name.removesuffix(suffix)
            kind = families.get(family)
            allowed = {
                "_bucket": {"histogram"},
                "_sum": {"histogram", "summary"},
                "_count": {"histogram", "summary"},
                "_total": {"counter"},
                "_created": {"counter", "histogram", "summary"},
            }[suffix]
            if kind in allowed:
                return None
            if kind is not None:
                return f"{name}: {family} is a {kind}, it has no {suffix} series"
    kind = families.get(name)
    if kind is not None:
        return f"{name}: a {kind} has no series by its bare name (use its suffixes)"
    return f"{name}: exposed by no service"


# -- static checks ------------------------------------------------------------------------


def test_metric_names_are_read_from_promql_without_functions_labels_or_keywords() -> None:
    """The parser the checks below rely on: names only, whatever surrounds them."""
    expr = (
        'histogram_quantile(0.99, sum by (route, le) (rate(aop_api_request_seconds_bucket{route!~"'
        '/v1/{x}.*"}[5m]))) > 0.5 and on () sum without (job) (increase(aop_dlq_total[1h] '
        'offset 5m)) / ignoring (a) group_left (b) up{job="aop"} unless absent(x_y:z) > 1e3'
    )
    assert metric_names(expr) == {"aop_api_request_seconds_bucket", "aop_dlq_total", "up", "x_y:z"}
    assert metric_names(grafana_to_promql("deriv(aop_listener_last_slot[$__rate_interval])")) == {
        "aop_listener_last_slot"
    }


def test_missing_from_accepts_series_of_declared_families_and_names_the_others() -> None:
    """Suffixes must match the family's type; an undeclared name is reported."""
    families = families_of(
        "# HELP a_total d\n# TYPE a_total counter\n"
        "# HELP h_seconds d\n# TYPE h_seconds histogram\n"
        "# HELP g d\n# TYPE g gauge\ng 1.0\n"
    )
    for name in ("a_total", "h_seconds_bucket", "h_seconds_sum", "h_seconds_count", "g"):
        assert missing_from(name, families) is None, name
    assert missing_from("nope_total", families) == "nope_total: exposed by no service"
    assert missing_from("a_bucket", families) == (
        "a_bucket: a is a counter, it has no _bucket series"
    )
    assert missing_from("g_total", families) == "g_total: g is a gauge, it has no _total series"
    assert missing_from("h_seconds", families) == (
        "h_seconds: a histogram has no series by its bare name (use its suffixes)"
    )


def test_dashboard_loads_and_every_panel_queries_the_provisioned_datasource() -> None:
    """schemaVersion >= 39; every panel but row headers has the datasource and a target."""
    dashboard = load_dashboard()
    assert dashboard["schemaVersion"] >= 39
    provisioned = yaml.safe_load(
        (ROOT / "infra/grafana/provisioning/datasources/prometheus.yml").read_text()
    )
    assert [d["uid"] for d in provisioned["datasources"]] == [DATASOURCE_UID]
    problems = []
    panels = [p for p in iter_panels(dashboard["panels"]) if p.get("type") != "row"]
    assert len(panels) >= 20
    for panel in panels:
        title = panel.get("title", f"panel id {panel.get('id')}")
        if (panel.get("datasource") or {}).get("uid") != DATASOURCE_UID:
            problems.append(f"{title}: datasource is {panel.get('datasource')!r}")
        targets = [t for t in panel.get("targets", []) if t.get("expr")]
        if not targets:
            problems.append(f"{title}: no target with an expr")
        for target in targets:
            if (target.get("datasource") or {}).get("uid") not in (None, DATASOURCE_UID):
                problems.append(f"{title}: target {target.get('refId')} datasource")
    ids = [p["id"] for p in iter_panels(dashboard["panels"])]
    assert len(ids) == len(set(ids)), "panel ids repeat"
    assert not problems, "\n".join(problems)


def test_every_alert_has_annotations_that_point_at_its_runbook_section() -> None:
    """summary + description, severity, and a docs/runbook.md#<alert> section that exists."""
    headings = {
        re.sub(r"[^\w\- ]", "", line.lstrip("#").strip().lower()).replace(" ", "-")
        for line in RUNBOOK.read_text().splitlines()
        if line.startswith("#")
    }
    problems = []
    rules = alert_rules()
    assert len(rules) >= 10
    for rule in rules:
        name = rule["alert"]
        annotations = rule.get("annotations", {})
        anchor = f"docs/runbook.md#{name.lower()}"
        if not annotations.get("summary") or not annotations.get("description"):
            problems.append(f"{name}: summary and description annotations are required")
        if anchor not in annotations.get("description", ""):
            problems.append(f"{name}: the description must point at {anchor}")
        if rule.get("labels", {}).get("severity") not in ("critical", "warning"):
            problems.append(f"{name}: severity label must be critical or warning")
        if name.lower() not in headings:
            problems.append(f"{name}: docs/runbook.md has no '### {name}' section")
    assert not problems, "\n".join(problems)
    config = yaml.safe_load(PROMETHEUS.read_text())
    assert config["rule_files"] == ["alerts.yml"]


def test_prometheus_scrapes_each_service_on_the_port_aop_run_gives_it() -> None:
    """Job aop: one target per service, labelled, on cli/services.py's metrics ports (the
    API on its default AOP_API_PORT)."""
    config = yaml.safe_load(PROMETHEUS.read_text())
    job = next(j for j in config["scrape_configs"] if j["job_name"] == "aop")
    ports = {
        group["labels"]["service"]: int(target.rsplit(":", 1)[1])
        for group in job["static_configs"]
        for target in group["targets"]
    }
    assert ports == {**METRICS_PORTS, "api": Settings.model_fields["api_port"].default}
    assert set(ports) == set(SERVICES)


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool not installed")
def test_dashboard_queries_parse_as_promql(tmp_path: Path) -> None:
    """Each dashboard query, as a recording rule, passes `promtool check rules`."""
    rules = [
        {"record": f"aop:dashboard_query:{i}", "expr": grafana_to_promql(expr)}
        for i, (_title, expr) in enumerate(dashboard_queries())
    ]
    path = tmp_path / "dashboard-rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    result = subprocess.run(
        ["promtool", "check", "rules", str(path)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr


# -- the pipeline run ---------------------------------------------------------------------


@dataclass
class PipelineRun:
    """What the short run left: each service's /metrics text (`aop run`'s own as
    "supervisor"), the parity textfile and the export's."""

    scrapes: dict[str, str]
    parity_file: Path
    parity_code: int
    parity_output: str
    legacy_file: Path
    legacy_code: int
    legacy_output: str
    backup_file: Path
    backup_code: int
    backup_output: str


def _wait_for_root(api: str, supervisor: Supervisor) -> tuple[str, int]:
    """(channel, root_seq) of the first root the API serves; fails after ROOT_TIMEOUT_S."""
    deadline = time.monotonic() + ROOT_TIMEOUT_S
    while time.monotonic() < deadline:
        restarts = {name: supervisor.restarts(name) for name in SERVICES}
        if max(restarts.values()) >= 3:
            pytest.fail(f"services keep exiting (restarts {restarts}); read their stderr above")
        for channel in CHANNELS:
            reply = http_get(f"{api}/v1/channels/{channel}/roots", limit=10)
            if reply is not None and reply.status_code == 200 and reply.json().get("roots"):
                return channel, int(reply.json()["roots"][0]["root_seq"])
        time.sleep(0.5)
    restarts = {name: supervisor.restarts(name) for name in SERVICES}
    pytest.fail(
        f"no root projected within {ROOT_TIMEOUT_S:.0f} s (restarts {restarts}, "
        f"pids {supervisor.pids()}); run the services by hand with AOP_LOG_LEVEL=INFO"
    )


def _exercise_api(api: str, channel: str, root_seq: int) -> None:
    """Requests over several routes, 2xx, 400 and 404 included, so the API's labelled
    metrics have children."""
    wallet = None
    with httpx.stream("GET", f"{api}/v1/roots/{channel}/{root_seq}/dataset", timeout=10) as r:
        assert r.status_code == 200
        found = re.search(r'"wallet"\s*:\s*"([1-9A-HJ-NP-Za-km-z]+)"', r.read().decode())
        wallet = found.group(1) if found else None
    assert wallet, "the root's dataset lists no wallet"
    expect = {
        f"{api}/v1/channels": 200,
        f"{api}/v1/channels/{channel}": 200,
        f"{api}/v1/channels/{channel}/roots/{root_seq}": 200,
        f"{api}/v1/channels/{channel}/claims/{wallet}": 200,
        f"{api}/v1/wallets/{wallet}/claims": 200,
        f"{api}/v1/channels/obs:unknown/roots": 404,
        f"{api}/v1/channels/{channel}/claims/not-a-wallet": 400,
        f"{api}/healthz": 200,
    }
    got = {url: getattr(http_get(url), "status_code", None) for url in expect}
    assert got == expect


def _scrape(url: str, timeout: float = 20.0) -> str:
    deadline = time.monotonic() + timeout
    while True:
        reply = http_get(url)
        if reply is not None and reply.status_code == 200:
            return reply.text
        if time.monotonic() > deadline:
            pytest.fail(f"{url} did not answer within {timeout:.0f} s")
        time.sleep(0.5)


def _wait_for_sample(url: str, name: str, timeout: float = 20.0) -> str:
    """The /metrics text once it holds a sample of `name` (e.g. a settlement outcome)."""
    deadline = time.monotonic() + timeout
    text = _scrape(url)
    while name not in sample_names(text) and time.monotonic() < deadline:
        time.sleep(0.5)
        text = _scrape(url)
    return text


def _scrape_aop_run(env: Mapping[str, str]) -> str:
    """`aop run --services api` on free ports: its own /metrics (the supervisor's), read once
    its API child answers."""
    metrics_port, api_port = free_ports(2)
    ports = {"AOP_METRICS_PORT": str(metrics_port), "AOP_API_PORT": str(api_port)}
    process = subprocess.Popen(
        [*AOP, "run", "--services", "api"], env={**os.environ, **env, **ports}
    )
    try:
        _scrape(f"http://127.0.0.1:{api_port}/healthz", timeout=30)
        return _scrape(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5)
    finally:
        process.terminate()
        process.wait(30)


@pytest.fixture(scope="module")
def pipeline(
    kafka_bootstrap: str, database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[PipelineRun]:
    """Runs the services until a root is projected, scrapes them, stops them, runs parity."""
    workdir = tmp_path_factory.mktemp("observability")
    with fresh_schema(database_url) as schema, fresh_schema(database_url) as legacy:
        yield _run_pipeline(kafka_bootstrap, database_url, schema, legacy, workdir)


def _legacy_parity(
    env: Mapping[str, str], database_url: str, legacy_schema: str, workdir: Path
) -> subprocess.CompletedProcess[str]:
    """`aop parity --legacy-dsn-file --metrics-file` with obs:alpha as a ring-v0-legacy
    attention channel, against an empty legacy `roots` table: nothing to compare (exit 1),
    every series of the channel at 0."""
    with psycopg.connect(libpq_url(database_url), autocommit=True) as conn:
        conn.execute(
            sql.SQL("CREATE TABLE {}.roots (epoch bigint, channel text, root bytea)").format(
                sql.Identifier(legacy_schema)
            )
        )
    dsn = workdir / "legacy.dsn"
    dsn.write_text(f"{libpq_url(database_url)}?options=-csearch_path%3D{legacy_schema}\n")
    dsn.chmod(0o600)
    attention = {
        "AOP_ATTENTION_ENABLED": "true",
        "AOP_ATTENTION_FORMATS": json.dumps({CHANNELS[0]: "ring-v0-legacy"}),
    }
    metrics = ("--metrics-file", str(workdir / "aop_parity_legacy.prom"))
    return subprocess.run(
        [*AOP, "parity", "--legacy-dsn-file", str(dsn), *metrics],
        env={**os.environ, **env, **attention},
        capture_output=True,
        text=True,
        timeout=120,
    )


def _run_pipeline(
    kafka_bootstrap: str, database_url: str, schema: str, legacy_schema: str, workdir: Path
) -> PipelineRun:
    """The chain and the services until a root is projected; the scrapes; then `aop run`'s
    own metrics, `aop parity --metrics-file` and its parallel run's."""
    with live_pipeline(
        kafka_bootstrap=kafka_bootstrap,
        database_url=database_url,
        schema=schema,
        workdir=workdir,
        channels=CHANNELS,
        sim_args=SIM_ARGS,
    ) as live:
        channel, root_seq = _wait_for_root(live.api, live.supervisor)
        _exercise_api(live.api, channel, root_seq)
        urls = {name: live.metrics_url(name) for name in METRICS_PORTS}
        urls["api"] = f"{live.api}/metrics"
        scrapes = {name: _scrape(url) for name, url in urls.items()}
        # settlement records its first outcome, and the projector its lag (librdkafka
        # statistics every few seconds), shortly after the first root
        scrapes["settlement"] = _wait_for_sample(
            urls["settlement"], "aop_settlement_attempts_total"
        )
        scrapes["projector"] = _wait_for_sample(urls["projector"], "aop_projection_consumer_lag")
    scrapes["supervisor"] = _scrape_aop_run(live.env)
    parity_file = workdir / "aop_parity.prom"
    parity = live.aop("parity", "--no-chain", "--quiet", "--metrics-file", str(parity_file))
    legacy = _legacy_parity(live.env, database_url, legacy_schema, workdir)
    backup_file = workdir / "aop_backup.prom"
    export = live.aop(
        "log", "export", str(workdir / "export"), "--quiet", "--metrics-file", str(backup_file)
    )
    return PipelineRun(
        scrapes,
        parity_file,
        parity.returncode,
        parity.stdout + parity.stderr,
        workdir / "aop_parity_legacy.prom",
        legacy.returncode,
        legacy.stdout + legacy.stderr,
        backup_file,
        export.returncode,
        export.stdout + export.stderr,
    )


def test_every_metric_of_the_dashboard_and_alerts_is_exposed_by_a_running_service(
    pipeline: PipelineRun,
) -> None:
    """Each name is a series of some service's /metrics, `aop run`'s included (suffixes
    matching the family's type); parity names are checked against `aop parity`'s textfile
    (next test)."""
    used = used_metrics()
    exposed: dict[str, str] = {}
    for text in pipeline.scrapes.values():
        exposed.update(families_of(text))
    problems = []
    for name in sorted(used):
        if name in PROMETHEUS_SYNTHETIC or name.startswith(JOB_PREFIXES):
            continue
        problem = missing_from(name, exposed)
        if problem:
            problems.append(f"{problem} (used by {', '.join(sorted(used[name]))})")
    assert not problems, "missing metrics:\n" + "\n".join(problems)


def test_the_run_exercised_the_services_metrics(pipeline: PipelineRun) -> None:
    """Events, roots, projections, settlement outcomes and API requests have samples."""
    have = set()
    for text in pipeline.scrapes.values():
        have |= sample_names(text)
    wanted = {
        "aop_listener_events_total",
        "aop_listener_batches_total",
        "aop_fold_events_total",
        "aop_fold_roots_total",
        "aop_fold_batch_seconds_bucket",
        "aop_fold_epoch_close_seconds_bucket",
        "aop_tree_build_seconds_bucket",
        "aop_projection_roots_total",
        "aop_projection_write_seconds_bucket",
        "aop_projection_consumer_lag",
        "aop_settlement_attempts_total",
        "aop_api_requests_total",
        "aop_api_request_seconds_bucket",
    }
    assert not wanted - have, f"no samples of {sorted(wanted - have)}"


def test_parity_textfile_holds_every_aop_parity_metric_the_alerts_and_dashboard_use(
    pipeline: PipelineRun,
) -> None:
    """`aop parity --metrics-file` writes Prometheus text with every aop_parity_* name used."""
    assert pipeline.parity_code in (0, 1), pipeline.parity_output
    text = pipeline.parity_file.read_text()
    families = families_of(text)
    values = {s.name: s.value for f in text_string_to_metric_families(text) for s in f.samples}
    assert values["aop_parity_last_run_success"] == (1.0 if pipeline.parity_code == 0 else 0.0)
    assert values["aop_parity_roots_checked"] >= 1
    used = [
        name
        for name in used_metrics()
        if name.startswith(PARITY_PREFIX) and not name.startswith(LEGACY_PREFIX)
    ]
    assert {"aop_parity_mismatches", "aop_parity_last_run_timestamp_seconds"} <= set(used)
    problems = [p for name in sorted(used) if (p := missing_from(name, families))]
    assert not problems, "missing parity metrics:\n" + "\n".join(problems)


def test_parallel_run_textfile_holds_every_aop_parity_legacy_metric_used(
    pipeline: PipelineRun,
) -> None:
    """`aop parity --legacy-dsn-file --metrics-file` writes every aop_parity_legacy_* name the
    alerts and the dashboard use, the channel's counters at 0 (nothing compared: exit 1)."""
    assert pipeline.legacy_code == 1, pipeline.legacy_output
    assert pipeline.legacy_output.splitlines()[-1].endswith("exit 1 (nothing compared)")
    text = pipeline.legacy_file.read_text()
    families = families_of(text)
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for f in text_string_to_metric_families(text)
        for s in f.samples
    }
    channel = (("channel", CHANNELS[0]),)
    assert samples[("aop_parity_legacy_mismatched_total", channel)] == 0
    assert samples[("aop_parity_legacy_missing_total", (*channel, ("side", "ours")))] == 0
    assert samples[("aop_parity_legacy_running", ())] == 0
    used = [name for name in used_metrics() if name.startswith(LEGACY_PREFIX)]
    assert {
        "aop_parity_legacy_mismatched_total",
        "aop_parity_legacy_missing_total",
        "aop_parity_legacy_last_success_timestamp_seconds",
    } <= set(used)
    problems = [p for name in sorted(used) if (p := missing_from(name, families))]
    assert not problems, "missing parallel-run metrics:\n" + "\n".join(problems)


def test_export_textfile_holds_every_aop_backup_metric_the_alerts_use(
    pipeline: PipelineRun,
) -> None:
    """`aop log export --metrics-file` writes every aop_backup_* name the alerts read, with a
    success and an end offset for every partition of aop.chain.events (2 here)."""
    assert pipeline.backup_code == 0, pipeline.backup_output
    text = pipeline.backup_file.read_text()
    families = families_of(text)
    samples = [s for f in text_string_to_metric_families(text) for s in f.samples]
    values = {s.name: s.value for s in samples}
    assert values["aop_backup_last_run_success"] == 1.0
    assert (
        values["aop_backup_last_success_timestamp_seconds"]
        == (values["aop_backup_last_run_timestamp_seconds"])
    )
    assert values["aop_backup_records"] > 0 and values["aop_backup_manifest_seq"] == 1.0
    ends = {
        s.labels["partition"]: s.value
        for s in samples
        if s.name == "aop_backup_end_offset" and s.labels["topic"] == "aop.chain.events"
    }
    assert sorted(ends) == ["0", "1"] and min(ends.values()) > 0
    used = [name for name in used_metrics() if name.startswith(BACKUP_PREFIX)]
    assert {"aop_backup_last_success_timestamp_seconds", "aop_backup_last_run_success"} <= set(used)
    problems = [p for name in sorted(used) if (p := missing_from(name, families))]
    assert not problems, "missing backup metrics:\n" + "\n".join(problems)


def test_aop_run_serves_the_supervisor_metrics_on_its_metrics_port(
    pipeline: PipelineRun,
) -> None:
    """`aop run` (here with the API as its only child) answers /metrics on AOP_METRICS_PORT
    with the supervisor's families, its child marked up."""
    text = pipeline.scrapes["supervisor"]
    families = families_of(text)
    for name in ("aop_supervisor_restarts", "aop_supervisor_crash_loops"):
        assert families.get(name) == "counter", name
    up = {
        s.labels["service"]: s.value
        for f in text_string_to_metric_families(text)
        for s in f.samples
        if s.name == "aop_supervisor_service_up"
    }
    assert up == {"api": 1.0}


# -- labels: every label a query or alert reads is one the series carry ---------------------

#: labels Prometheus adds from the scrape config (prometheus.yml), not the services.
TARGET_LABELS = frozenset({"job", "instance", "service"})
_SELECTOR = re.compile(r"(?<![\w:])([A-Za-z_:][\w:]*)\s*\{([^}]*)\}")
_MATCHER = re.compile(r'([A-Za-z_]\w*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"')
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring)\s*\(([^)]*)\)")


def label_uses(expr: str) -> tuple[list[tuple[str, str, str, str]], set[str], set[str]]:
    """(metric, label, operator, value) of every selector matcher, the labels of every
    grouping clause, and the metric names of the expression."""
    matchers = [
        (metric, label, op, value)
        for metric, body in _SELECTOR.findall(expr)
        for label, op, value in _MATCHER.findall(body)
    ]
    grouped = {
        label.strip()
        for labels in _GROUPING.findall(expr)
        for label in labels.split(",")
        if label.strip()
    }
    return matchers, grouped, metric_names(expr)


def exposed_labels(text: str) -> dict[str, dict[str, set[str]]]:
    """sample name -> label -> the values its samples carry."""
    found: dict[str, dict[str, set[str]]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = found.setdefault(sample.name, {})
            for label, value in sample.labels.items():
                labels.setdefault(label, set()).add(value)
    return found


def label_problems(
    expr: str, where: str, exposed: Mapping[str, Mapping[str, set[str]]]
) -> list[str]:
    """Why `expr` reads a label (or an exact label value) no exposed series has."""
    problems = []
    matchers, grouped, names = label_uses(expr)
    for metric, label, op, value in matchers:
        if metric.startswith(JOB_PREFIXES) or label in TARGET_LABELS | {"__name__"}:
            continue
        labels = exposed.get(metric)
        if labels is None:
            continue  # the name check reports it
        if label not in labels:
            problems.append(f"{where}: {metric} has no label {label!r} (has {sorted(labels)})")
        elif op == "=" and value not in labels[label]:
            problems.append(
                f"{where}: {metric}{{{label}={value!r}}} matches no series "
                f"(values {sorted(labels[label])})"
            )
    service_names = [n for n in names if not n.startswith(JOB_PREFIXES) and n in exposed]
    for label in grouped - TARGET_LABELS - {"le"}:
        if service_names and not any(label in exposed[n] for n in service_names):
            problems.append(f"{where}: no metric of {sorted(service_names)} has label {label!r}")
    return problems


def test_label_uses_reads_matchers_and_groupings() -> None:
    """The parser the label check relies on."""
    expr = (
        'sum by (stage, reason) (increase(aop_dlq_total{reason!="failed_transaction"}[15m])) '
        '/ on () max(up{job="aop"})'
    )
    matchers, grouped, names = label_uses(expr)
    assert matchers == [
        ("aop_dlq_total", "reason", "!=", "failed_transaction"),
        ("up", "job", "=", "aop"),
    ]
    assert grouped == {"stage", "reason"}
    assert names == {"aop_dlq_total", "up"}
    exposed = {"aop_dlq_total": {"stage": {"listener"}}, "up": {}}
    assert label_problems(expr, "x", exposed) == [
        "x: aop_dlq_total has no label 'reason' (has ['stage'])",
        "x: no metric of ['aop_dlq_total', 'up'] has label 'reason'",
    ]


def test_every_label_the_dashboard_and_alerts_read_is_exposed_with_the_series(
    pipeline: PipelineRun,
) -> None:
    """Not only the names: each label a selector matches or a grouping keeps is a label of
    the service's series, and an exact value (outcome="written") is one a series carries (the
    services create their known label sets at 0 from the start)."""
    exposed: dict[str, dict[str, set[str]]] = {}
    for text in pipeline.scrapes.values():
        for name, labels in exposed_labels(text).items():
            merged = exposed.setdefault(name, {})
            for label, values in labels.items():
                merged.setdefault(label, set()).update(values)
    problems = []
    for title, expr in dashboard_queries():
        problems += label_problems(grafana_to_promql(expr), f"dashboard: {title}", exposed)
    for rule in alert_rules():
        problems += label_problems(rule["expr"], f"alert: {rule['alert']}", exposed)
    assert not problems, "labels not exposed:\n" + "\n".join(problems)
