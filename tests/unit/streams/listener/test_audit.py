"""AuditLog: NDJSON lines, size rotation, and failures that never stop the listener."""

from __future__ import annotations

import json
from pathlib import Path

from aop.streams.listener.audit import AuditLog


def _entry(n: int) -> dict[str, int]:
    return {"partition": n % 4, "first_slot": n, "last_slot": n, "events": 0, "offset": n}


def test_audit_writes_one_json_line_per_entry(tmp_path: Path) -> None:
    audit = AuditLog(tmp_path / "audit", max_bytes=1 << 20, keep=2)
    assert audit.write([_entry(1), _entry(2)]) is True
    audit.close()
    lines = [
        json.loads(x) for x in (tmp_path / "audit" / "listener.ndjson").read_text().splitlines()
    ]
    assert [{k: v for k, v in line.items() if k != "ts"} for line in lines] == [
        _entry(1),
        _entry(2),
    ]
    assert all(line["ts"].endswith("Z") for line in lines)


def test_audit_rotates_by_size_and_keeps_only_the_newest_files(tmp_path: Path) -> None:
    audit = AuditLog(tmp_path, max_bytes=300, keep=2)
    for n in range(40):
        assert audit.write([_entry(n)]) is True
    audit.close()
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["listener.ndjson", "listener.ndjson.1", "listener.ndjson.2"]
    sizes = [(tmp_path / name).stat().st_size for name in names]
    assert all(0 < size <= 300 for size in sizes)
    slots = [
        json.loads(line)["first_slot"]
        for name in reversed(names)
        for line in (tmp_path / name).read_text().splitlines()
    ]
    assert slots == list(range(40 - len(slots), 40))  # the newest lines, in order, no gap


def test_audit_on_a_full_disk_counts_the_failure_and_recovers(tmp_path: Path) -> None:
    """Writes to /dev/full fail with ENOSPC; the next write after the disk frees works."""
    failures: list[OSError] = []
    (tmp_path / "listener.ndjson").symlink_to("/dev/full")
    audit = AuditLog(tmp_path, max_bytes=1 << 20, keep=2, on_error=failures.append)
    assert audit.write([_entry(1)]) is False
    assert audit.write([_entry(2)]) is False
    assert [f.errno for f in failures] == [28, 28]
    (tmp_path / "listener.ndjson").unlink()
    assert audit.write([_entry(3)]) is True
    audit.close()
    lines = (tmp_path / "listener.ndjson").read_text().splitlines()
    assert [json.loads(line)["first_slot"] for line in lines] == [3]
