"""A private Prosody 0.12 (Debian's, with prosody-modules) for the integration tests: its own
data dir and log under one base directory, every listener on 127.0.0.1 on ports picked free,
run in the foreground as the `prosody` user. It offers the same attributes as xmpp_env.Ejabberd
that the clients and frontdesk use (hosts, ports, component secret, passwords).
"""

from __future__ import annotations

import os
import pwd
import secrets
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from xmpp_env import StartError, free_port, port_open, tail

HERE = Path(__file__).resolve().parent
TEMPLATE = HERE / "prosody.cfg.lua.in"


def _as_prosody(argv: list[str]) -> list[str]:
    """Prosody refuses to run as root; run it as its own user when we are root."""
    if os.geteuid() == 0:
        return ["runuser", "-u", "prosody", "--", *argv]
    return argv


@dataclass
class Prosody:
    base: Path
    c2s_port: int
    http_port: int
    component_port: int
    staff_host: str = "localhost"
    anon_host: str = "anon.localhost"
    component_jid: str = "chat.localhost"
    component_secret: str = ""
    proc: subprocess.Popen | None = field(default=None, repr=False)
    passwords: dict = field(default_factory=dict)
    timings: dict = field(default_factory=dict)

    @property
    def config(self) -> Path:
        return self.base / "prosody.cfg.lua"

    @property
    def log(self) -> Path:
        return self.base / "prosody.log"

    @classmethod
    def create(cls, base: Path) -> "Prosody":
        if not shutil.which("prosody"):
            raise StartError("prosody is not installed (scripts/test installs it: apt-get install prosody prosody-modules)")
        if not Path("/usr/lib/prosody/modules/mod_privilege").is_dir():
            raise StartError("prosody-modules is not installed (mod_privilege missing)")
        p = cls(base=Path(base).resolve(), c2s_port=free_port(), http_port=free_port(),
                component_port=free_port(), component_secret=secrets.token_hex(12))
        p.base.mkdir(parents=True, exist_ok=True)
        (p.base / "data").mkdir(exist_ok=True)
        text = TEMPLATE.read_text()
        for k, v in {"BASE": p.base, "C2S_PORT": p.c2s_port, "HTTP_PORT": p.http_port,
                     "COMPONENT_PORT": p.component_port, "COMPONENT_JID": p.component_jid,
                     "COMPONENT_SECRET": p.component_secret, "STAFF_HOST": p.staff_host,
                     "ANON_HOST": p.anon_host}.items():
            text = text.replace(f"@{k}@", str(v))
        p.config.write_text(text)
        if os.geteuid() == 0:
            pw = pwd.getpwnam("prosody")
            for d in (p.base, p.base / "data"):
                os.chown(d, pw.pw_uid, pw.pw_gid)
            # Every parent must be traversable by the prosody user.
            for parent in p.base.parents:
                try:
                    mode = parent.stat().st_mode
                    if not mode & 0o001:
                        os.chmod(parent, mode | 0o001)
                except OSError:
                    pass
        return p

    def register(self, user: str, host: str, password: str) -> None:
        r = subprocess.run(_as_prosody(["prosodyctl", "--config", str(self.config), "register", user, host, password]),
                           capture_output=True, text=True, timeout=60)
        if r.returncode != 0:
            raise RuntimeError(f"prosodyctl register {user}@{host} exited {r.returncode}:\n{r.stdout}{r.stderr}")
        if host == self.staff_host:
            self.passwords[user] = password

    def shell(self, *args: str, timeout: float = 30) -> str:
        """`prosodyctl shell <args>` (mod_admin_shell) against this instance."""
        r = subprocess.run(_as_prosody(["prosodyctl", "--config", str(self.config), "shell", *args]),
                           capture_output=True, text=True, timeout=timeout)
        if r.returncode != 0:
            raise RuntimeError(f"prosodyctl shell {' '.join(args)} exited {r.returncode}:\n{r.stdout}{r.stderr}")
        return r.stdout

    def sessions(self) -> list[str]:
        """The full JIDs of every c2s session (`prosodyctl shell c2s show`)."""
        return [f for line in self.shell("c2s", "show").splitlines()
                for f in [c.strip() for c in line.split("|")][1:2] if "@" in f and "/" in f]

    def kick(self, user: str, host: str, resource: str) -> None:
        self.shell(f"c2s:close('{user}@{host}/{resource}')")

    def roster_text(self, user: str) -> str:
        """The stored roster of `user` on the staff host, as Prosody's internal storage has it
        (a Lua table naming each contact's JID)."""
        path = self.base / "data" / self.staff_host.replace(".", "%2e") / "roster" / (user.replace("_", "%5f") + ".dat")
        try:
            return path.read_text()
        except FileNotFoundError:
            return ""

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log_tail(self, lines: int = 40) -> str:
        return f"--- {self.log} (last {lines} lines) ---\n{tail(self.log, lines)}"

    def start(self, timeout: float = 30) -> float:
        t0 = time.monotonic()
        with open(self.base / "console.log", "ab") as console:
            self.proc = subprocess.Popen(_as_prosody(["prosody", "-F", "--config", str(self.config)]),
                                         cwd=self.base, stdin=subprocess.DEVNULL, stdout=console,
                                         stderr=subprocess.STDOUT, start_new_session=True)
        ports = [self.c2s_port, self.http_port, self.component_port]
        while not all(port_open(p) for p in ports):
            if self.proc.poll() is not None:
                raise StartError(f"prosody exited with code {self.proc.returncode} before its ports opened "
                                 f"(config {self.config})\n{self.log_tail()}\n{tail(self.base / 'console.log')}")
            if time.monotonic() - t0 > timeout:
                self.stop()
                raise StartError(f"prosody did not open its ports within {timeout:.0f} s\n{self.log_tail()}")
            time.sleep(0.05)
        took = time.monotonic() - t0
        self.timings.setdefault("start", []).append(took)
        return took

    def stop(self, timeout: float = 10) -> float:
        t0 = time.monotonic()
        if self.proc is None:
            return 0.0
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        return time.monotonic() - t0
