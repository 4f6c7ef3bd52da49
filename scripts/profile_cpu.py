"""scripts/profile-cpu: frontdesk's CPU per message as counts that machine noise does not move.

One private ejabberd (as scripts/bench.py starts it, servers pinned to CPU 0, the load
generator to CPU 1) and the release frontdesk, in two phases:

1. callgrind: frontdesk under `valgrind --tool=callgrind`; a fixed chat workload
   (frontdesk-load, `--rooms` rooms, `--cg-rate` messages/s per sender for `--cg-seconds` s) and
   the same clients, rooms and duration at a trickle. Counters are zeroed before and dumped after
   each (callgrind_control), so the difference over the difference in messages is what one
   message costs: instructions (user space, all threads) and calls to malloc/calloc/realloc.
2. without valgrind, at `--rate` per sender (default: 3,500 msg/s offered with 50 rooms) and at
   a trickle, same rooms and duration: system calls per message (perf's syscalls:sys_enter_*
   tracepoints, per thread) and voluntary/involuntary context switches per message
   (/proc/<pid>/task/*/status).

Prints a summary and writes the raw figures and `callgrind_annotate` output under --out.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts"))
sys.path.insert(0, str(REPO / "tests" / "integration"))
import bench  # noqa: E402
import xmpp_env  # noqa: E402

ALLOC_FNS = ("malloc", "calloc", "realloc")


def wrapper(out: Path, frontdesk: Path, cg_file: Path) -> Path:
    """An executable that runs frontdesk under callgrind (xmpp_env.Frontdesk runs `BIN run ...`)."""
    w = out / "frontdesk-callgrind"
    w.write_text("#!/bin/sh\nexec valgrind --tool=callgrind --vgdb=yes --dump-instr=no --separate-threads=yes "
                 f"--callgrind-out-file={cg_file} {frontdesk} \"$@\"\n")
    w.chmod(0o755)
    return w


def start_frontdesk(b: bench.Bench, binary: Path, timeout: float) -> None:
    fd = xmpp_env.Frontdesk(b.out / f"frontdesk-{binary.name}", ejabberd=b.ej, sites=[bench.SITE],
                            binary=binary, rust_log="frontdesk=warn", roster={"mode": "off"},
                            limits=bench.BENCH_LIMITS)
    fd.start()
    b.fd = fd
    b.wait_frontdesk(timeout)
    bench.pin([fd.proc.pid], b.server_cpus)


def load(b: bench.Bench, rooms: int, rate: float, seconds: float) -> dict:
    """One chat run against frontdesk; fails unless every message sent was delivered."""
    r = b.chat_run("frontdesk", rooms, rate, seconds)
    if r["lost"] or r["errors"] or r["client_failures"] or r["received"] != r["sent"]:
        raise RuntimeError(f"run at {rate}/s per sender: sent {r['sent']}, received {r['received']}, "
                           f"lost {r['lost']}, errors {r['errors']}, client failures {r['client_failures']}")
    return r


def callgrind_ctl(pid: int, flag: str) -> None:
    subprocess.run(["callgrind_control", flag, str(pid)], check=True, capture_output=True, timeout=120)


def parse_callgrind(path: Path) -> dict:
    """One thread's dump: its instructions, calls into the allocator, commits (calls to
    Store::apply), and which thread it is (by the functions it ran)."""
    names: dict[str, str] = {}
    total, allocs, commits, pending, role = 0, 0, 0, None, "other"
    for line in path.read_text(errors="replace").splitlines():
        if line.startswith("summary:") or line.startswith("totals:"):
            total = int(line.split()[1])
        elif line.startswith(("fn=", "cfn=")):
            # Names are compressed: "(id) name" the first time an id appears (as a function
            # or as a callee), "(id)" after that.
            m = re.match(r"c?fn=\((\d+)\)(?: (.*))?", line)
            if m:
                if m.group(2):
                    names[m.group(1)] = m.group(2)
                    if m.group(2).startswith("frontdesk::store::writer::run"):
                        role = "store"
                    elif m.group(2).startswith("frontdesk::shell::run") and role == "other":
                        role = "reader"
                if line.startswith("cfn="):
                    pending = names.get(m.group(1), "")
        elif line.startswith("calls=") and pending is not None:
            n = int(line[6:].split()[0])
            if pending in ALLOC_FNS or pending.split("'")[0] in ALLOC_FNS:
                allocs += n
            elif pending.startswith("frontdesk::store::Store::apply"):
                commits += n
            pending = None
    return {"instructions": total, "allocations": allocs, "commits": commits, "role": role}


def sum_dumps(paths: list[Path]) -> dict:
    """The dumps of one `callgrind_control -d` (one per thread), added up, and by thread."""
    parts = [parse_callgrind(p) for p in paths]
    out = {k: sum(p[k] for p in parts) for k in ("instructions", "allocations", "commits")}
    for role in ("reader", "store"):
        out[f"{role}_instructions"] = sum(p["instructions"] for p in parts if p["role"] == role)
    return out


def dumps(cg_file: Path) -> set[Path]:
    return set(cg_file.parent.glob(cg_file.name + ".*"))


def callgrind_phase(b: bench.Bench, args) -> dict:
    cg_file = b.out / "callgrind.out"
    start_frontdesk(b, wrapper(b.out, b.fd_bin, cg_file), timeout=180)
    pid = b.fd.proc.pid
    res = {}
    for name, rate in (("trickle", args.trickle), ("load", args.cg_rate)):
        callgrind_ctl(pid, "-z")
        r = load(b, args.cg_rooms, rate, args.cg_seconds)
        before = dumps(cg_file)
        callgrind_ctl(pid, "-d")
        new = sorted(dumps(cg_file) - before)
        if not new:
            raise RuntimeError("callgrind_control -d wrote no dump")
        res[name] = {**sum_dumps(new), "messages": r["received"], "dumps": [str(p) for p in new]}
    b.fd.stop(timeout=60)
    b.fd = None
    lo, hi = res["trickle"], res["load"]
    n = hi["messages"] - lo["messages"]
    res["per_message"] = {k: (hi[k] - lo[k]) / n for k in
                          ("instructions", "allocations", "commits", "reader_instructions", "store_instructions")}
    ann = subprocess.run(["callgrind_annotate", "--inclusive=yes", "--threshold=100", *hi["dumps"]],
                         capture_output=True, text=True)
    (b.out / "callgrind-inclusive.txt").write_text(ann.stdout)
    ann = subprocess.run(["callgrind_annotate", "--threshold=100", *hi["dumps"]], capture_output=True, text=True)
    (b.out / "callgrind-self.txt").write_text(ann.stdout)
    return res


def threads(pid: int) -> dict:
    """Per thread (by name): voluntary and involuntary context switches, user and system ticks."""
    out: dict[str, dict] = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            name = (task / "comm").read_text().strip()
            status = (task / "status").read_text()
            stat = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        t = out.setdefault(name, {"voluntary": 0, "involuntary": 0, "utime": 0, "stime": 0})
        t["voluntary"] += int(re.search(r"^voluntary_ctxt_switches:\s+(\d+)", status, re.M).group(1))
        t["involuntary"] += int(re.search(r"^nonvoluntary_ctxt_switches:\s+(\d+)", status, re.M).group(1))
        t["utime"] += int(stat[11])
        t["stime"] += int(stat[12])
    return out


def parse_perf(path: Path, pid_names: dict[int, str]) -> dict:
    """perf stat -x, --per-thread output: {thread name: {syscall: count}}."""
    out: dict[str, dict] = {}
    for line in path.read_text().splitlines():
        f = line.split(",")
        ev = next((x for x in f if x.startswith("syscalls:sys_enter_")), None)
        if ev is None or not f[1].strip().isdigit() or not int(f[1]):
            continue
        comm, _, tid = f[0].strip().rpartition("-")
        name = pid_names.get(int(tid), comm) if tid.isdigit() else f[0]
        d = out.setdefault(name, {})
        sc = ev[len("syscalls:sys_enter_"):]
        d[sc] = d.get(sc, 0) + int(f[1])
    return out


def perf_ctl(ctl, ack, cmd: str) -> None:
    """Tells perf to enable or disable its counters and waits for its acknowledgement."""
    ctl.write(cmd + "\n")
    ctl.flush()
    # perf writes "ack\n" with its terminating NUL, which starts the next reply.
    if ack.readline().strip("\x00\n") != "ack":
        raise RuntimeError(f"perf did not acknowledge {cmd}")


def measured_run(b: bench.Bench, args, rate: float, tag: str) -> dict:
    pid = b.fd.proc.pid
    names = {int(t.name): (t / "comm").read_text().strip() for t in Path(f"/proc/{pid}/task").iterdir()}
    perf_out, ctl_path, ack_path = (b.out / f"perf-{tag}.{x}" for x in ("txt", "ctl", "ack"))
    for f in (ctl_path, ack_path):
        os.mkfifo(f)
    perf = subprocess.Popen(["perf", "stat", "-x,", "--per-thread", "-p", str(pid), "-o", str(perf_out),
                             "-D", "-1", "--control", f"fifo:{ctl_path},{ack_path}",
                             "-e", "syscalls:sys_enter_*"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    with open(ctl_path, "w") as ctl, open(ack_path) as ack:
        perf_ctl(ctl, ack, "enable")
        t0 = threads(pid)
        r = load(b, args.rooms, rate, args.seconds)
        t1 = threads(pid)
        perf_ctl(ctl, ack, "disable")
    perf.send_signal(signal.SIGINT)
    perf.wait(timeout=60)
    return {"messages": r["received"], "offered_per_s": r["offered_per_s"],
            "threads": {k: {f: t1[k][f] - t0.get(k, {}).get(f, 0) for f in t1[k]} for k in t1},
            "syscalls": parse_perf(perf_out, names)}


def syscall_phase(b: bench.Bench, args) -> list[dict]:
    """One trickle run, then `--repeat` runs at the load: figures per message for each."""
    start_frontdesk(b, b.fd_bin, timeout=30)
    lo = measured_run(b, args, args.trickle, "trickle")
    his = [measured_run(b, args, args.rate, f"load{i}") for i in range(args.repeat)]
    b.fd.stop()
    b.fd = None
    return [per_message(lo, hi) for hi in his]


def per_message(lo: dict, hi: dict) -> dict:
    n = hi["messages"] - lo["messages"]
    per = {"syscalls": {}, "switches": {}, "cpu_ticks": {}}
    for th in sorted(set(hi["syscalls"]) | set(lo["syscalls"])):
        h, l = hi["syscalls"].get(th, {}), lo["syscalls"].get(th, {})
        per["syscalls"][th] = {s: (h.get(s, 0) - l.get(s, 0)) / n for s in sorted(set(h) | set(l))}
    for th in sorted(hi["threads"]):
        h, l = hi["threads"][th], lo["threads"].get(th, {})
        per["switches"][th] = {k: (h[k] - l.get(k, 0)) / n for k in ("voluntary", "involuntary")}
        per["cpu_ticks"][th] = {k: h[k] - l.get(k, 0) for k in ("utime", "stime")}
    return {"trickle": lo, "load": hi, "per_message": per, "messages": n}


def summary(cg: dict | None, scs: list[dict] | None) -> str:
    L = []
    if cg:
        p = cg["per_message"]
        L.append(f"callgrind: {p['instructions']:,.0f} instructions and {p['allocations']:.1f} allocations per "
                 f"message ({cg['load']['messages']} - {cg['trickle']['messages']} messages); reader thread "
                 f"{p['reader_instructions']:,.0f}, store thread {p['store_instructions']:,.0f}, "
                 f"{p['commits']:.3f} commits per message")
    for sc in scs or []:
        p = sc["per_message"]
        L.append(f"at {sc['load']['offered_per_s']:.0f} msg/s offered ({sc['messages']} messages over the trickle):")
        tot_sc = tot_v = tot_i = 0.0
        for th, d in p["syscalls"].items():
            s = sum(d.values())
            tot_sc += s
            top = ", ".join(f"{k} {v:.2f}" for k, v in sorted(d.items(), key=lambda kv: -kv[1])[:8] if v >= 0.005)
            L.append(f"  {th}: {s:.2f} syscalls/msg ({top})")
        for th, d in p["switches"].items():
            tot_v += d["voluntary"]
            tot_i += d["involuntary"]
            if d["voluntary"] + d["involuntary"] >= 0.005:
                L.append(f"  {th}: {d['voluntary']:.3f} voluntary, {d['involuntary']:.3f} involuntary switches/msg")
        commits = p["syscalls"].get("frontdesk-store", {}).get("sendto", 0)
        L.append(f"  total: {tot_sc:.2f} syscalls/msg, {tot_v:.3f} voluntary + {tot_i:.3f} involuntary switches/msg; "
                 f"{1 / commits if commits else 0:.2f} messages per store-thread sendto")
    return "\n".join(L)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin-dir", default=str(REPO / "target" / "release"))
    ap.add_argument("--out", default=str(REPO / "target" / "profile-cpu"))
    ap.add_argument("--cg-rooms", type=int, default=10)
    ap.add_argument("--cg-rate", type=float, default=5.0, help="per sender, under callgrind")
    ap.add_argument("--cg-seconds", type=float, default=10.0)
    ap.add_argument("--rooms", type=int, default=50)
    ap.add_argument("--rate", type=float, default=35.0, help="per sender, without valgrind")
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--repeat", type=int, default=3, help="runs at --rate (one trickle run for all)")
    ap.add_argument("--trickle", type=float, default=0.2, help="per sender, the baseline run")
    ap.add_argument("--only", choices=("callgrind", "syscalls"))
    args = ap.parse_args()
    out = Path(args.out).resolve()
    if out.exists():
        import shutil
        shutil.rmtree(out)
    out.mkdir(parents=True)
    b = bench.Bench(out, os.cpu_count() or 1, Path(args.bin_dir).resolve())
    cg = sc = None
    try:
        b.start_ejabberd()
        if args.only != "syscalls":
            cg = callgrind_phase(b, args)
        if args.only != "callgrind":
            sc = syscall_phase(b, args)
    finally:
        b.stop_all()
    (out / "profile.json").write_text(json.dumps({"callgrind": cg, "syscalls": sc}, indent=1))
    print(summary(cg, sc))
    print(f"raw figures and callgrind_annotate output in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
