"""Writes docs/benchmark-churn.md, .json and .png from the results of scripts/churn.py."""

from __future__ import annotations

import json
from pathlib import Path

TARGET = {"rate": 20, "present": 10000, "staff": 20}
RUNG = {"ejabberd": "ejabberd 23.01, admin API", "prosody": "Prosody 0.12, XEP-0356"}


def fmt(x, nd=1):
    return "–" if x is None else f"{x:,.{nd}f}"


def per_visitor(p: dict, who: str):
    """Bytes of RSS per present visitor: the growth from before the fill to N present."""
    at, before = p.get("rss_at_n_kib"), p.get("rss_before_kib")
    if not at or not before:
        return None
    return (at[who] - before[who]) * 1024 / max(p["present"], 1)


def dagger(p: dict) -> str:
    """" †" for points from a run whose writers stayed until sent away."""
    return " †" if p.get("writer_stay", -1) < 0 else ""


def who(p: dict) -> str:
    """The table's first cell."""
    mark = dagger(p)
    warm = p.get("warmed", {}).get("rate")
    if warm is not None and [w["rate"] for w in p["windows"]] == [warm]:
        mark += f" (warm-up at {warm:g}/s)"
    return f"{RUNG[p['server']].split(',')[0]}, {p['policy']}{mark}"


def rows(doc: dict):
    for p in doc["points"]:
        for w in p["windows"]:
            yield p, w


def label(p: dict) -> str:
    return f"{p['server']} {p['policy']}{dagger(p)} N={p['present']} S={p['staff']}"


def plot(doc: dict, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 4.6), dpi=100)
    styles = {"ejabberd": "-", "prosody": "--"}
    marks = {"all": "o", "waiting": "s"}
    for p in doc["points"]:
        ws = sorted(p["windows"], key=lambda w: w["rate"])
        xs = [w["rate"] for w in ws]
        style = styles.get(p["server"], "-") + marks.get(p["policy"], "x")
        a1.plot(xs, [w["join_p99_ms"] or 0 for w in ws], style, label=label(p))
        a2.plot(xs, [w["cpu_ms_per_arrival"]["total"] for w in ws], style, label=label(p))
    a1.axhline(100, color="grey", lw=0.8, ls=":")
    a1.set_yscale("log")
    a1.set_xlabel("arrivals per second")
    a1.set_ylabel("join p99, ms (log)")
    a1.set_title("Join latency (target: p99 < 100 ms)")
    a2.set_yscale("log")
    a2.set_xlabel("arrivals per second")
    a2.set_ylabel("CPU ms per arrival, frontdesk + server (log)")
    a2.set_title("CPU per arrival")
    a2.legend(fontsize=6.5, loc="upper left", bbox_to_anchor=(1.02, 1.0))
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def window_table(doc: dict) -> list[str]:
    L = ["| server, policy | N | S | R/s | arrivals | join p50 / p99 ms | roster push p50 / p99 ms | roster ops/s per staff "
         "| stanzas (bytes) per arrival per staff | roster / presence / message stanzas | CPU ms per arrival: frontdesk / server / total "
         "| share of a core | load avg |",
         "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for p, w in rows(doc):
        k = w["kinds"]
        c = w["cpu_ms_per_arrival"]
        L.append(f"| {who(p)} | {p['present']:,} | {p['staff']} | {w['rate']:g} | "
                 f"{w['arrivals']:.0f} | {fmt(w['join_p50_ms'])} / {fmt(w['join_p99_ms'])} | "
                 f"{fmt(w['push_p50_ms'], 0)} / {fmt(w['push_p99_ms'], 0)} ({w['push_count']}) | "
                 f"{w['roster_ops_per_s_per_staff']:.1f} | {w['stanzas_per_arrival_per_staff']:.2f} "
                 f"({w['bytes_per_arrival_per_staff']:,.0f} B) | {k['roster_push']['stanzas']:.2f} / "
                 f"{k['presence']['stanzas']:.2f} / {k['message']['stanzas']:.2f} | "
                 f"{c['frontdesk']:.2f} / {c['server']:.2f} / {c['total']:.2f} | "
                 f"{w['core_share']['total'] * 100:.0f}% | {w['loadavg']} |")
    return L


def point_table(doc: dict) -> list[str]:
    L = ["| server, policy | N | S | fill: s, join p99 ms, roster writes settled after s | RSS per present visitor, frontdesk / server | "
         "fresh staff login: roster items, roster ms, all presences ms | after the run: items left in staff "
         "rosters (client / server), drain s |",
         "|---|---|---|---|---|---|---|"]
    for p in doc["points"]:
        f, fr, d = p.get("fill", {}), p.get("fresh_login", {}), p.get("drained", {})
        left = sum(p.get("left_on_server", {}).values())
        L.append(f"| {who(p)} | {p['present']:,} | {p['staff']} | "
                 f"{fmt(f.get('fill_s'))}, {fmt(f.get('join_p99_ms'), 0)}, {fmt(f.get('roster_settle_s'), 0)} | "
                 f"{fmt(per_visitor(p, 'frontdesk'), 0)} B / {fmt(per_visitor(p, 'server'), 0)} B | "
                 f"{fr.get('roster_items', '–')}, {fmt(fr.get('roster_ms'), 0)}, {fmt(fr.get('presences_ms'), 0)} | "
                 f"{d.get('staff_roster_items_max', '–')} / {left}, {fmt(d.get('seconds'), 0)} |")
    return L


def verdicts(doc: dict) -> list[str]:
    # The last window at the target point per server and policy: a rerun of the target point
    # (its warm-up at the target rate, so at its steady state) comes after the full run's.
    last = {}
    for p, w in rows(doc):
        if (w["rate"], p["present"], p["staff"]) == (TARGET["rate"], TARGET["present"], TARGET["staff"]):
            last[(p["server"], p["policy"])] = (p, w)
    out = []
    for p, w in last.values():
        rss = per_visitor(p, "frontdesk")
        # Few stanzas because the server is minutes behind is no pass.
        behind = (w["push_p99_ms"] or 0) > 1000
        stanzas = f"{w['stanzas_per_arrival_per_staff']:.2f}" + (
            f", but roster pushes were {w['push_p99_ms'] / 1000:.0f} s behind" if behind else "")
        checks = [
            ("join p99 < 100 ms", w["join_p99_ms"] is not None and w["join_p99_ms"] < 100,
             f"{fmt(w['join_p99_ms'])} ms" if w["join_p99_ms"] is not None else "no join answered"),
            ("≤ 3 stanzas per arrival per staff client", w["stanzas_per_arrival_per_staff"] <= 3 and not behind,
             stanzas),
            ("frontdesk + server < 50% of one core", w["core_share"]["total"] < 0.5,
             f"{w['core_share']['total'] * 100:.0f}%"),
            ("frontdesk ≤ 4 KiB per present visitor", rss is not None and rss <= 4096, f"{fmt(rss, 0)} B"),
        ]
        out.append(f"* **{RUNG[p['server']]}, visitors = \"{p['policy']}\"{dagger(p)}**: " + "; ".join(
            f"{name}: {val} ({'met' if ok else '**missed**'})" for name, ok, val in checks) + ".")
    return out


def writer_note(a: dict) -> str:
    stay = a.get("writer_stay", -1)
    if stay is None or stay < 0:
        return " and then stays, unanswered, until churn sends it away as the oldest"
    return (f" and leaves {stay:g} s later (its chat is over), unanswered: the desk's staff sessions do not take "
            "chats. The fill brings browsing visitors only, and churn runs at the first rate for the writers' stay "
            "plus `remove_after_secs` before the first window, so the windows see the steady number of waiting "
            "chats (about rate × 0.1 × stay) rather than a tenth of N")


def markdown(doc: dict) -> str:
    m = doc["meta"]
    a = m["args"]
    L = ["## Churn: visitors arriving and leaving, with staff rosters on", "",
         "What a desk really carries: visitors arrive at a steady rate, each an anonymous c2s login joining a room "
         "of its own, stay (INACTIVE) and leave; one in ten writes one message" + writer_note(a) + ". N visitors are present at once "
         "(filled quickly first; then each arrival sends the oldest visitors away until N are present, so "
         "departures match arrivals), "
         "and S staff are online as real c2s sessions that fetch their roster, send presence, answer "
         "frontdesk's pings and count every stanza and byte they receive. frontdesk keeps staff rosters through "
         "the rung each server really uses: ejabberd 23.01 through its HTTP admin API (`[roster] mode = "
         "\"ejabberd-api\"`), Prosody 0.12 through XEP-0356 (`mode = \"privilege\"`), with `remove_after_secs = "
         f"{a['remove_after']}` so that removals happen within the run. Each point is measured over a "
         f"{m.get('window_note') or str(a['window']) + ' s'} window after {a['settle']:g} s of churn at that rate; CPU is read from /proc at the "
         "window's start and end, when arrivals stop (frontdesk, and ejabberd's beam or the prosody process), both pinned to CPU 0 "
         "with the generator (`frontdesk-load --churn`) on CPU 1.", "",
         f"Run {m['date']}, {m['seconds'] / 60:.0f} minutes, "
         + (m.get("load_note") or f"load average {m['loadavg_start']} at the start and {m['loadavg_end']} at the end")
         + ": the machine is shared with other builds, so wall-clock latencies are noisy; counts and CPU seconds "
         "are exact.", "",
         *([m["earlier_points_note"], ""] if m.get("earlier_points_note") else []),
         "![join p99 and CPU per arrival against arrival rate](benchmark-churn.png)", "",
         "### Per rate", ""]
    L += window_table(doc)
    L += ["", "Join: the visitor's join presence sent until its self-presence. Roster push: the visitor's last "
          "action (join, or the message for `waiting`) until the roster push at a staff client, over pushes in "
          "the window (count in brackets). Stanzas per arrival per staff client: everything the staff sessions "
          "received in the window (roster pushes, presences, offers, pings), divided by arrivals and staff.", "",
          "### Per run", ""]
    L += point_table(doc)
    L += ["", "RSS per present visitor: growth from before the fill to N present, over N (frontdesk keeps the "
          "room, the session and the roster state; the server the c2s session and the roster items). Fresh staff "
          "login: a new session of a staff member at N present, from TCP connect until the roster result, and "
          "until every visitor contact's presence arrived. After the run: every visitor left, and frontdesk "
          "removed the items `remove_after_secs` later; the staff clients' own view and the server's stored "
          "rosters (ejabberd `get_roster`, Prosody's roster store) must both hold none.", "",
          "### Against the targets (20 arrivals/s, 10,000 present, 20 staff)", ""]
    L += verdicts(doc) or ["* The target point was not in this run."]
    notes = Path(__file__).resolve().parents[1] / "docs" / "benchmark-churn-notes.md"
    if notes.exists():
        L += ["", notes.read_text().rstrip()]
    L += ["", "Rerun: `scripts/bench --churn` (all points, about 30 minutes) or `scripts/churn.py --points 1000x5 "
          "--servers ejabberd`; `tests/integration/test_churn_short.py` runs `scripts/churn.py --short` in the "
          "suite.", ""]
    return "\n".join(L)


def write(doc: dict, docs: Path) -> None:
    (docs / "benchmark-churn.json").write_text(json.dumps(doc, indent=1))
    plot(doc, docs / "benchmark-churn.png")
    (docs / "benchmark-churn.md").write_text(markdown(doc))
