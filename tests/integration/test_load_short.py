"""The benchmark harness itself (scripts/bench --short): its own ejabberd with mod_muc, mod_muc
with mod_mam archiving to SQLite (DELETE journal and WAL), the echo component and frontdesk, five
rooms at five messages a second per sender for three seconds against each, and nothing may be
lost or reordered; frontdesk's transcript rows and each archive's rows must equal the messages
delivered. The full benchmark and its report are docs/benchmark.md (scripts/bench)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_the_benchmark_harness_loses_nothing(tmp_path):
    bins = Path(__import__("xmpp_env").frontdesk_bin()).parent
    assert (bins / "frontdesk-load").exists(), f"{bins}/frontdesk-load is missing (cargo build builds it)"
    r = subprocess.run([sys.executable, "-u", str(REPO / "scripts" / "bench.py"), "--short", "--bin-dir", str(bins),
                        "--out", str(tmp_path / "bench")], capture_output=True, text=True, timeout=240)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    rows = json.loads(r.stdout.strip().splitlines()[-1])
    by = {row["target"]: row for row in rows}
    assert set(by) == {"muc", "mam", "mam-wal", "echo", "frontdesk"}, rows
    for row in rows:
        assert row["lost"] == 0 and row["reordered"] == 0 and row["errors"] == 0, row
        assert row["delivered_per_s"] > 0 and row["v2s_p99_ms"] is not None, row
    for target in ("frontdesk", "mam", "mam-wal"):
        assert by[target]["rows_match"], (target, by[target]["rows"])
    print(r.stdout.strip().splitlines()[:2])
