"""scripts/bench --churn: the load a live-chat desk really carries, on this machine.

Visitors arrive at a steady rate, each an anonymous login in a room of its own, stay
(INACTIVE) and leave, one in ten writing one message; N are present at once and S staff are
online as real c2s sessions that fetch their roster, answer pings and count what they receive
(`frontdesk-load --churn`). frontdesk keeps staff rosters through the rung each server really
uses: ejabberd 23.01 through its HTTP admin API, Prosody 0.12 through XEP-0356. The servers and
frontdesk are pinned to CPU 0, the generator to CPU 1. After each run every roster item added
must be gone again (asked of the server). Writes docs/benchmark-churn.{md,json,png}.

    scripts/bench --churn            the full run (about 30 minutes: the points where a server
                                     falls behind take the longest)
    scripts/churn.py --short         the harness check the test suite runs (seconds)
"""

from __future__ import annotations

import argparse
import json
import os
import pwd
import resource
import secrets
import shutil
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "integration"))
sys.path.insert(0, str(REPO / "scripts"))
import prosody_env  # noqa: E402
import xmpp_env  # noqa: E402

CLK = os.sysconf("SC_CLK_TCK")
PAGE_KIB = os.sysconf("SC_PAGE_SIZE") // 1024


def staff_names(n: int) -> list[str]:
    return [f"s{k}_acme" for k in range(n)]


def ejabberd_template() -> str:
    """The test suite's ejabberd config opened up for load: no c2s shaper, a listener backlog
    for many simultaneous logins, and get_roster allowed on the admin API (the check)."""
    t = (REPO / "tests" / "integration" / "ejabberd.yml.in").read_text()
    t = t.replace("    shaper: c2s_shaper\n", "    backlog: 4096\n")
    t = t.replace("c2s_shaper: normal", "c2s_shaper: none")
    t = t.replace("max_user_sessions: 10", "max_user_sessions: 100000")
    t = t.replace("loglevel: info", "loglevel: warning")
    t = t.replace("      - delete_rosteritem\n", "      - delete_rosteritem\n      - get_roster\n")
    # Without store_current_id, every roster write hashes the user's whole roster for its
    # version (docs/benchmark-churn.md). The suite's config has it; make sure.
    if "store_current_id: true" not in t:
        t = t.replace("    versioning: true\n", "    versioning: true\n    store_current_id: true\n")
    return t


def raise_fd_limit_as(argv: list[str]) -> list[str]:
    """`su`/`runuser` start the servers with a soft limit of 1,024 descriptors whatever ours is:
    raise it to the hard limit in the server's own shell (10,000 visitors need it)."""
    return ["sh", "-c", 'ulimit -n "$(ulimit -Hn)"; exec "$0" "$@"', *argv]


_prosody_as = prosody_env._as_prosody
prosody_env._as_prosody = lambda argv: _prosody_as(raise_fd_limit_as(argv))


class EjabberdManyFds(xmpp_env.Ejabberd):
    """ejabberdctl run as the ejabberd user directly (setpriv, not su): su's pam_limits would
    put the soft descriptor limit back to 1,024."""

    def ctl_argv(self, *args: str) -> list[str]:
        argv = super().ctl_argv(*args)
        if os.geteuid() != 0:
            return argv
        home = pwd.getpwnam("ejabberd").pw_dir
        return ["setpriv", "--reuid=ejabberd", "--regid=ejabberd", "--init-groups", "env", f"HOME={home}", *argv]


def prosody_quiet(p: prosody_env.Prosody) -> None:
    """Warnings only in the log: Prosody logs every login at info, which costs it CPU."""
    p.config.write_text(p.config.read_text().replace('min = "info"', 'min = "warn"'))


def proc_stat(pid: int) -> tuple[float, int]:
    """(CPU seconds, RSS KiB) of one process from /proc; (0, 0) if it is gone."""
    try:
        f = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(f[11]) + int(f[12])) / CLK, int(f[21]) * PAGE_KIB
    except (OSError, IndexError, ValueError):
        return 0.0, 0


def pin(pids: list[int], cpus: str) -> None:
    for pid in pids:
        subprocess.run(["taskset", "-a", "-p", "-c", cpus, str(pid)], capture_output=True, check=False)


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


class Server:
    """A private ejabberd or Prosody with S staff accounts, and how to read a staff roster."""

    def __init__(self, kind: str, out: Path, staff: int):
        self.kind = kind
        base = out / f"{kind}-{secrets.token_hex(2)}"
        if kind == "ejabberd":
            self.s = EjabberdManyFds.create(base, template=ejabberd_template())
            self.s.start(timeout=60)
        else:
            self.s = prosody_env.Prosody.create(base)
            prosody_quiet(self.s)
            self.s.start(timeout=30)
        for u in staff_names(staff):
            self.s.register(u, self.s.staff_host, f"pw-{u}")
        pin(self.pids(), "0")

    def pids(self) -> list[int]:
        if self.kind == "ejabberd":
            return self.s.beam_pids()
        # runuser's child is prosody itself.
        pid = self.s.proc.pid
        try:
            kids = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        except OSError:
            kids = []
        return [int(k) for k in kids] or [pid]

    def roster_items(self, user: str, prefix: str) -> int:
        """How many items of `user`'s stored roster start with `prefix`."""
        if self.kind == "prosody":
            return self.s.roster_text(user).count(prefix)
        req = urllib.request.Request(f"http://127.0.0.1:{self.s.http_port}/api/get_roster",
                                     data=json.dumps({"user": user, "server": self.s.staff_host}).encode(),
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=30) as r:
            items = json.loads(r.read())
        return sum(1 for i in items if str(i.get("jid", "")).startswith(prefix))

    def stop(self) -> None:
        self.s.stop()


def cpu_rss(pids: list[int]) -> tuple[float, int]:
    stats = [proc_stat(p) for p in pids]
    return sum(s[0] for s in stats), sum(s[1] for s in stats)


class Churn:
    def __init__(self, args, out: Path):
        self.args = args
        self.out = out
        self.bins = Path(args.bin_dir).resolve()
        self.run_no = 0

    def frontdesk(self, srv: Server, staff: int, policy: str) -> xmpp_env.Frontdesk:
        roster = {"mode": "ejabberd-api" if srv.kind == "ejabberd" else "privilege",
                  "remove_after_secs": self.args.remove_after, "check_staff_secs": 10, "visitors": policy}
        if srv.kind == "ejabberd":
            roster["ejabberd_api"] = f"http://127.0.0.1:{srv.s.http_port}/api"
        site = {"id": "acme", "name": "ACME Inc.", "staff": [f"{u}@localhost" for u in staff_names(staff)]}
        fd = xmpp_env.Frontdesk(self.out / f"frontdesk-{secrets.token_hex(2)}", ejabberd=srv.s, sites=[site],
                                binary=self.bins / "frontdesk", rust_log="frontdesk=warn", roster=roster)
        fd.start()
        self.wait_up(fd, srv)
        pin([fd.proc.pid], "0")
        return fd

    def load_base(self, srv: Server) -> list[str]:
        s = srv.s
        return [str(self.bins / "frontdesk-load"), "--c2s", f"127.0.0.1:{s.c2s_port}", "--host", s.staff_host,
                "--anon-host", s.anon_host]

    def wait_up(self, fd: xmpp_env.Frontdesk, srv: Server, timeout: float = 30) -> None:
        """One visitor joining one room says the component is up."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not fd.running():
                raise RuntimeError(f"frontdesk exited\n{fd.log_tail()}")
            r = subprocess.run([*self.load_base(srv), "--rooms", "probe{i}_acme@chat.localhost", "--count", "1",
                                "--idle"], input=b"", capture_output=True, timeout=30, check=False)
            if r.returncode == 0:
                return
            time.sleep(0.3)
        raise RuntimeError(f"frontdesk did not answer within {timeout} s\n{fd.log_tail()}")

    def point(self, srv: Server, policy: str, present: int, staff: int) -> dict:
        """One fill to N, then a window at each rate, a fresh staff login, the drain, the check."""
        self.run_no += 1
        prefix = f"c{self.run_no}v"
        fd = self.frontdesk(srv, staff, policy)
        try:
            return self.drive(srv, fd, prefix, policy, present, staff)
        finally:
            fd.stop()

    def drive(self, srv, fd, prefix, policy, present, staff) -> dict:
        a = self.args
        users = staff_names(staff)
        cmd = ["taskset", "-c", "1", *self.load_base(srv), "--churn", "--rooms", f"{prefix}{{i}}_acme@chat.localhost",
               "--staff", ",".join(f"{u}:pw-{u}" for u in users), "--present", str(present),
               "--fill-rate", str(a.fill_rate), "--rates", ",".join(str(r) for r in a.rates_list),
               "--settle", str(a.settle), "--window", str(a.window), "--drain-rate", str(a.fill_rate),
               "--drain-wait", str(a.remove_after + a.drain_wait), "--roster-settle", str(a.roster_settle)]
        if a.writer_stay >= 0:
            cmd += ["--writer-stay", str(a.writer_stay), "--warmup", str(a.writer_stay + a.remove_after)]
        pids = {"frontdesk": [fd.proc.pid], "server": srv.pids()}
        rss0 = {k: cpu_rss(v)[1] for k, v in pids.items()}
        res = {"server": srv.kind, "policy": policy, "present": present, "staff": staff, "prefix": prefix,
               "writer_stay": a.writer_stay,
               "rss_before_kib": rss0, "windows": [], "loadavg_start": loadavg()}
        p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        cpu0 = None
        for line in p.stdout:
            ev = json.loads(line)
            e = ev.pop("event")
            if e == "filled":
                res["fill"] = ev
                res["rss_at_n_kib"] = {k: cpu_rss(v)[1] for k, v in pids.items()}
            elif e == "window_start":
                cpu0, t0 = {k: cpu_rss(v)[0] for k, v in pids.items()}, time.monotonic()
            elif e == "window_stop":
                cpu = {k: cpu_rss(v)[0] - cpu0[k] for k, v in pids.items()}
                wall = time.monotonic() - t0
            elif e == "window_end":
                n = max(ev["arrivals"], 1)
                ev.update(cpu_s=cpu, loadavg=loadavg(),
                          cpu_ms_per_arrival={k: v / n * 1000 for k, v in cpu.items()},
                          core_share={k: v / wall for k, v in cpu.items()})
                ev["cpu_ms_per_arrival"]["total"] = sum(cpu.values()) / n * 1000
                ev["core_share"]["total"] = sum(cpu.values()) / wall
                res["windows"].append(ev)
                self.say(res, ev)
            else:
                res[e] = ev
        err = p.stderr.read()
        if p.wait() != 0 or "drained" not in res:
            raise RuntimeError(f"frontdesk-load --churn failed ({p.returncode}): {err[-2000:]}")
        res["left_on_server"] = self.wait_rosters_empty(srv, users, prefix)
        res["frontdesk_running"] = fd.running()
        return res

    def wait_rosters_empty(self, srv: Server, users: list[str], prefix: str) -> dict:
        """Every visitor item gone from every staff roster, as the server stores it (bounded)."""
        deadline = time.monotonic() + self.args.remove_after + 10
        while True:
            left = {u: srv.roster_items(u, prefix) for u in users}
            if not any(left.values()) or time.monotonic() > deadline:
                return left
            time.sleep(0.5)

    @staticmethod
    def say(res: dict, w: dict) -> None:
        print(f"{res['server']:8} {res['policy']:7} N={res['present']:<5} S={res['staff']:<2} R={w['rate']:<4} "
              f"join p50/p99 {w['join_p50_ms']}/{w['join_p99_ms']} ms, {w['stanzas_per_arrival_per_staff']:.2f} "
              f"stanzas/arrival/staff, cpu {w['cpu_ms_per_arrival']['total']:.1f} ms/arrival "
              f"({w['core_share']['total'] * 100:.0f}% of a core), push p99 {w['push_p99_ms']} ms, "
              f"load {w['loadavg']}", flush=True)


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--short", action="store_true", help="seconds: the harness check of the test suite")
    ap.add_argument("--servers", default="ejabberd,prosody")
    ap.add_argument("--policies", default="all,waiting")
    ap.add_argument("--points", default="1000x5,1000x20,10000x20",
                    help="N x S pairs: visitors present x staff online")
    ap.add_argument("--rates", default="5,20,50")
    ap.add_argument("--window", type=float, default=8)
    ap.add_argument("--settle", type=float, default=3)
    ap.add_argument("--fill-rate", type=float, default=400)
    ap.add_argument("--writer-stay", type=float, default=60,
                    help="a visitor who wrote leaves this many seconds later (its chat is over); "
                         "-1: writers stay until churn sends them away, as the first runs did")
    ap.add_argument("--remove-after", type=int, default=3)
    ap.add_argument("--drain-wait", type=float, default=20)
    ap.add_argument("--roster-settle", type=float, default=60,
                    help="after the fill, wait at most this long for staff roster pushes to stop")
    ap.add_argument("--bin-dir", default=str(REPO / "target" / "release"))
    ap.add_argument("--out", default=str(REPO / "target" / "churn"))
    ap.add_argument("--json", help="write the results here (default docs/benchmark-churn.json unless --short)")
    ap.add_argument("--no-report", action="store_true", help="only the results file (--json)")
    ap.add_argument("--report-from", help="re-render the report from a results file")
    a = ap.parse_args()
    if a.short:
        a.rates, a.window, a.settle, a.drain_wait, a.roster_settle = "20", 3, 1, 15, 10
        a.writer_stay = min(a.writer_stay, 2)
    a.rates_list = [float(r) for r in a.rates.split(",")]
    return a


def main() -> int:
    a = parse_args()
    if a.report_from:
        import churn_report
        churn_report.write(json.loads(Path(a.report_from).read_text()), REPO / "docs")
        return 0
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    out = Path(a.out).resolve()
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    points = [tuple(int(x) for x in p.split("x")) for p in a.points.split(",")]
    t0 = time.monotonic()
    meta = {"loadavg_start": loadavg(), "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "args": {k: v for k, v in vars(a).items() if k != "rates_list"}}
    ch = Churn(a, out)
    results = []
    plan = [(kind, policy, n, s) for kind in a.servers.split(",") for policy in a.policies.split(",")
            for n, s in points]
    if a.short:
        # Both policies on ejabberd, the roster-heavy one on Prosody: under a minute in all.
        plan = [("ejabberd", "all", 150, 2), ("ejabberd", "waiting", 150, 2), ("prosody", "all", 100, 2)]
    for kind, policy, n, s in plan:
        # A fresh server for each run: no roster items or sessions left from the last.
        srv = Server(kind, out, s)
        try:
            results.append(ch.point(srv, policy, n, s))
        finally:
            srv.stop()
        if a.json:
            Path(a.json).write_text(json.dumps({"meta": meta, "points": results}, indent=1))
    meta["seconds"] = time.monotonic() - t0
    meta["loadavg_end"] = loadavg()
    doc = {"meta": meta, "points": results}
    if a.short:
        print(json.dumps(doc))
        return 0
    if a.no_report:
        Path(a.json or out / "results.json").write_text(json.dumps(doc, indent=1))
        return 0
    Path(a.json or REPO / "docs" / "benchmark-churn.json").write_text(json.dumps(doc, indent=1))
    import churn_report
    churn_report.write(doc, REPO / "docs")
    print(f"wrote docs/benchmark-churn.md ({meta['seconds']:.0f} s)")
    results = REPO / "docs" / "benchmark-results.json"
    if results.exists():
        # docs/benchmark.md carries the churn section too.
        subprocess.run([sys.executable, str(REPO / "scripts" / "bench.py"), "--report-from", str(results)],
                       check=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
