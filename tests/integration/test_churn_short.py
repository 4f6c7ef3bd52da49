"""The churn harness itself (scripts/churn.py --short): a private ejabberd (visitors = "all"
and "waiting") and a private Prosody ("all"), each with frontdesk keeping staff rosters through
its real rung (the admin API, XEP-0356); a couple of hundred visitors arrive, stay and leave
while two staff clients count what they receive. Every join must be answered, the counts must add up, and afterwards every roster item
frontdesk added must be gone from the server's stored rosters. The full run and its report are
docs/benchmark-churn.md (scripts/bench --churn)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_the_churn_harness_and_roster_cleanup(tmp_path):
    bins = Path(__import__("xmpp_env").frontdesk_bin()).parent
    assert (bins / "frontdesk-load").exists(), f"{bins}/frontdesk-load is missing (cargo build builds it)"
    r = subprocess.run([sys.executable, "-u", str(REPO / "scripts" / "churn.py"), "--short", "--bin-dir", str(bins),
                        "--out", str(tmp_path / "churn")], capture_output=True, text=True, timeout=240)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    doc = json.loads(r.stdout.strip().splitlines()[-1])
    points = doc["points"]
    assert {(p["server"], p["policy"]) for p in points} == {
        ("ejabberd", "all"), ("ejabberd", "waiting"), ("prosody", "all")}, points
    for p in points:
        what = f"{p['server']}/{p['policy']}"
        fill, drained = p["fill"], p["drained"]
        # Every visitor that arrived joined, and left again.
        assert fill["joined"] == fill["present"] == p["present"] and fill["join_failures"] == 0, (what, fill)
        assert drained["join_failures"] == 0 and drained["errors"] == [], (what, drained)
        assert drained["joined"] == drained["arrivals"] == drained["departures"] > p["present"], (what, drained)
        for w in p["windows"]:
            assert w["arrivals"] > 0 and w["join_count"] > 0 and w["join_p99_ms"] is not None, (what, w)
            assert w["cpu_s"]["frontdesk"] > 0 and w["cpu_s"]["server"] > 0, (what, w)
            kinds = w["kinds"]
            total = sum(k["stanzas"] for k in kinds.values())
            assert abs(total - w["stanzas_per_arrival_per_staff"]) < 0.01, (what, w)
            # Staff see visitors' presences in both policies (the writers' at least).
            assert kinds["presence"]["stanzas"] > 0 and w["bytes_per_arrival_per_staff"] > 0, (what, w)
        # Writers leave on their own after their stay, and churn keeps N present without them.
        assert sum(w["writers_left"] for w in p["windows"]) > 0, (what, p["windows"])
        assert p["warmed"]["present"] >= p["present"] - 3, (what, p["warmed"])
        # What staff clients were pushed adds up: every item added was removed again...
        assert drained["roster_adds"] == drained["roster_removes"] > 0, (what, drained)
        assert drained["staff_roster_items_max"] == 0, (what, drained)
        if p["policy"] == "all":
            # ...every visitor was one item per staff member...
            assert drained["roster_adds"] == drained["arrivals"] * p["staff"], (what, drained)
        else:
            # ...or only those who wrote (one in ten).
            assert 0 < drained["roster_adds"] <= drained["arrivals"] * p["staff"] // 5, (what, drained)
        # ...and the server's stored rosters say the same.
        assert set(p["left_on_server"].values()) == {0}, (what, p["left_on_server"])
        assert p["fresh_login"].get("roster_ms") is not None, (what, p["fresh_login"])
        assert p["frontdesk_running"], what
