"""Start and stop a private ejabberd 23.01 and a frontdesk process, for the integration tests
and for scripts/demo. Synchronous; the XMPP clients are in helpers.py.

ejabberd runs as a private instance: its own config dir, spool and log dirs under one base
directory, its own Erlang node name and distribution port (no epmd), every listener on
127.0.0.1 on ports picked free. As root, ejabberdctl switches to the user `ejabberd`, so the
spool and log dirs are owned by that user and every parent directory is traversable.
"""

from __future__ import annotations

import json
import os
import pwd
import re
import secrets
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
TEMPLATE = HERE / "ejabberd.yml.in"
EXAMPLE = REPO / "ejabberd.yml.example"

# Environment variables that ejabberdctl would take over our command-line options.
_EJABBERDCTL_ENV = (
    "EJABBERD_CONFIG_PATH", "EJABBERDCTL_CONFIG_PATH", "CONFIG_DIR", "LOGS_DIR", "SPOOL_DIR",
    "ERLANG_NODE", "ERL_DIST_PORT", "EJABBERD_OPTS", "VMARGS", "ERL_OPTIONS", "INET_DIST_INTERFACE",
)


class StartError(RuntimeError):
    """ejabberd or frontdesk could not be started (the message has the log tail)."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (bind to port 0, read, close)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def tail(path: Path, lines: int = 40) -> str:
    try:
        text = Path(path).read_text(errors="replace")
    except OSError as e:
        return f"({path}: {e})"
    return "\n".join(text.splitlines()[-lines:])


def ejabberdctl_path() -> str | None:
    return shutil.which("ejabberdctl") or next(
        (p for p in ("/usr/sbin/ejabberdctl", "/usr/bin/ejabberdctl") if os.path.exists(p)), None)


def _proc_pids_with_args(*needles: str) -> list[int]:
    """PIDs whose argument list contains every needle as a whole argument (reads /proc)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                args = [a.decode(errors="replace") for a in f.read().split(b"\0")]
        except OSError:
            continue
        if all(n in args for n in needles):
            found.append(int(entry))
    return found


def _pid_alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
        return state != "Z"
    except OSError:
        return False


@dataclass
class Ejabberd:
    """A private ejabberd instance under `base`. Make one with Ejabberd.create(...)."""

    base: Path
    node: str
    c2s_port: int
    http_port: int
    component_port: int
    dist_port: int
    staff_host: str = "localhost"
    anon_host: str = "anon.localhost"
    component_jid: str = "chat.localhost"
    component_secret: str = ""
    config_text: str = ""
    proc: subprocess.Popen | None = field(default=None, repr=False)
    timings: dict = field(default_factory=dict)
    passwords: dict = field(default_factory=dict)

    # ---- layout -------------------------------------------------------------------------
    @property
    def etc(self) -> Path:
        return self.base / "etc"

    @property
    def spool(self) -> Path:
        return self.base / "spool"

    @property
    def logs(self) -> Path:
        return self.base / "logs"

    @property
    def console_log(self) -> Path:
        return self.base / "console.log"

    @classmethod
    def create(cls, base: Path, *, template: str | None = None, staff_host="localhost",
               anon_host="anon.localhost", component_jid="chat.localhost",
               component_secret: str | None = None, ports: dict | None = None) -> "Ejabberd":
        """Pick free ports and a unique node name; write the config files under `base`.

        template: an ejabberd.yml with @C2S_PORT@-style placeholders (see render()); by
        default tests/integration/ejabberd.yml.in.
        """
        ports = dict(ports or {})
        for name in ("c2s", "http", "component", "dist"):
            ports.setdefault(name, free_port())
        ej = cls(
            base=Path(base).resolve(),
            node=f"fdtest_{os.getpid()}_{secrets.token_hex(3)}@localhost",
            c2s_port=ports["c2s"], http_port=ports["http"],
            component_port=ports["component"], dist_port=ports["dist"],
            staff_host=staff_host, anon_host=anon_host, component_jid=component_jid,
            component_secret=component_secret or secrets.token_hex(12),
        )
        ej.config_text = ej.render(template if template is not None else TEMPLATE.read_text())
        ej._write_files()
        return ej

    def render(self, template: str) -> str:
        values = {
            "C2S_PORT": self.c2s_port, "HTTP_PORT": self.http_port,
            "COMPONENT_PORT": self.component_port, "COMPONENT_JID": self.component_jid,
            "COMPONENT_SECRET": self.component_secret, "STAFF_HOST": self.staff_host,
            "ANON_HOST": self.anon_host,
        }
        for k, v in values.items():
            template = template.replace(f"@{k}@", str(v))
        leftovers = re.findall(r"@[A-Z_]+@", template)
        if leftovers:
            raise ValueError(f"unfilled placeholders in ejabberd config: {sorted(set(leftovers))}")
        return template

    def _write_files(self) -> None:
        for d in (self.base, self.etc, self.spool, self.logs):
            d.mkdir(parents=True, exist_ok=True)
        # Every parent must be traversable by the ejabberd user (mkdtemp's and pytest's
        # directories are 0700).
        for p in self.base.parents:
            try:
                mode = p.stat().st_mode
                if not mode & 0o001:
                    os.chmod(p, mode | 0o001)
            except PermissionError:
                pass
        os.chmod(self.base, 0o755)
        os.chmod(self.etc, 0o755)
        (self.etc / "ejabberd.yml").write_text(self.config_text)
        # ERL_DIST_PORT: the node listens on this port and ejabberdctl's client nodes connect
        # to it directly, so no epmd is started. The interface is given in ERL_OPTIONS
        # (INET_DIST_INTERFACE would cost an extra `erl` start on every ejabberdctl call).
        (self.etc / "ejabberdctl.cfg").write_text(
            "# written by tests/integration/xmpp_env.py\n"
            f"ERLANG_NODE={self.node}\n"
            f"ERL_DIST_PORT={self.dist_port}\n"
            'ERL_OPTIONS="-kernel inet_dist_use_interface {127,0,0,1} -env ERL_CRASH_DUMP_BYTES 0"\n'
            "EJABBERD_BYPASS_WARNINGS=true\n"
        )
        (self.etc / "inetrc").write_text(
            '{lookup,["file","native"]}.\n'
            '{host,{127,0,0,1}, ["localhost"]}.\n'
            '{file, resolv, "/etc/resolv.conf"}.\n'
        )
        for f in self.etc.iterdir():
            os.chmod(f, 0o644)
        if os.geteuid() == 0:
            try:
                user = pwd.getpwnam("ejabberd")
            except KeyError:
                raise StartError("user 'ejabberd' does not exist: is the ejabberd package installed?")
            for d in (self.spool, self.logs):
                os.chown(d, user.pw_uid, user.pw_gid)

    # ---- ejabberdctl ----------------------------------------------------------------------
    def ctl_argv(self, *args: str) -> list[str]:
        ctl = ejabberdctl_path()
        if ctl is None:
            raise StartError("ejabberdctl not found: install the Debian package `ejabberd` "
                             "(scripts/test does)")
        return [ctl, "--config-dir", str(self.etc), "--spool", str(self.spool),
                "--logs", str(self.logs), *args]

    def _env(self) -> dict:
        return {k: v for k, v in os.environ.items() if k not in _EJABBERDCTL_ENV}

    def ctl(self, *args: str, timeout: float = 60, check: bool = True) -> subprocess.CompletedProcess:
        """Run `ejabberdctl <args>` against this node."""
        r = subprocess.run(self.ctl_argv(*args), cwd=self.base, env=self._env(), timeout=timeout,
                           stdin=subprocess.DEVNULL, capture_output=True, text=True)
        if check and r.returncode != 0:
            raise RuntimeError(f"ejabberdctl {' '.join(args)} exited {r.returncode}:\n"
                               f"{r.stdout}{r.stderr}\n{self.log_tail()}")
        return r

    def register(self, user: str, host: str, password: str) -> None:
        self.ctl("register", user, host, password)
        if host == self.staff_host:
            self.passwords[user] = password

    def ensure_staff_account(self, user: str) -> None:
        """An account on the staff host, registered once for the whole run (the server is
        shared by the tests of a run)."""
        if user not in self.passwords:
            self.register(user, self.staff_host, secrets.token_urlsafe(9))

    # ---- lifecycle ------------------------------------------------------------------------
    def beam_pids(self) -> list[int]:
        """The Erlang VM process of this node (not the ejabberdctl/su/erl wrappers)."""
        pids = []
        for flag in ("-sname", "-name"):
            for pid in _proc_pids_with_args(flag, self.node):
                try:
                    comm = Path(f"/proc/{pid}/comm").read_text().strip()
                except OSError:
                    continue
                if comm.startswith("beam") and _pid_alive(pid):
                    pids.append(pid)
        return pids

    def running(self) -> bool:
        return bool(self.beam_pids())

    def log_tail(self, lines: int = 40) -> str:
        parts = []
        for path in (self.logs / "ejabberd.log", self.logs / "error.log", self.console_log):
            if path.exists() and path.stat().st_size:
                parts.append(f"--- {path} (last {lines} lines) ---\n{tail(path, lines)}")
        return "\n".join(parts) or f"(no ejabberd logs under {self.base})"

    def start(self, timeout: float = 30) -> float:
        """Start in the foreground as our child process; wait (at most `timeout` s) until the
        c2s, HTTP and component ports accept connections. Returns the seconds it took."""
        if self.running():
            raise StartError(f"ejabberd node {self.node} is already running")
        t0 = time.monotonic()
        with open(self.console_log, "ab") as console:
            self.proc = subprocess.Popen(self.ctl_argv("foreground"), cwd=self.base, env=self._env(),
                                         stdin=subprocess.DEVNULL, stdout=console,
                                         stderr=subprocess.STDOUT, start_new_session=True)
        ports = [self.c2s_port, self.http_port, self.component_port]
        deadline = t0 + timeout
        while not all(port_open(p) for p in ports):
            if self.proc.poll() is not None:
                raise StartError(f"ejabberd exited with code {self.proc.returncode} before its ports "
                                 f"opened (config {self.etc / 'ejabberd.yml'})\n{self.log_tail()}")
            if time.monotonic() > deadline:
                closed = [p for p in ports if not port_open(p)]
                self.kill()
                raise StartError(f"ejabberd did not open ports {closed} within {timeout:.0f} s "
                                 f"(config {self.etc / 'ejabberd.yml'})\n{self.log_tail()}")
            time.sleep(0.05)
        took = time.monotonic() - t0
        self.timings.setdefault("start", []).append(took)
        return took

    def stop(self, timeout: float = 20) -> float:
        """Stop the node, wait for the beam process to exit, kill it if it does not within
        `timeout` s. Returns the seconds it took."""
        t0 = time.monotonic()
        pids = self.beam_pids()
        # SIGTERM makes the Erlang VM run init:stop(): the same orderly shutdown as
        # `ejabberdctl stop`, without starting a second Erlang node to ask for it.
        for pid in pids:
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        deadline = t0 + timeout
        while any(_pid_alive(p) for p in pids) and time.monotonic() < deadline:
            time.sleep(0.05)
        if any(_pid_alive(p) for p in pids):
            self.kill()
        if self.proc is not None:
            try:
                self.proc.wait(timeout=max(1.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self.kill()
            self.proc = None
        while any(port_open(p) for p in (self.c2s_port, self.component_port)) and time.monotonic() < deadline:
            time.sleep(0.05)
        took = time.monotonic() - t0
        self.timings.setdefault("stop", []).append(took)
        return took

    def kill(self) -> None:
        for pid in self.beam_pids():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if self.proc is not None and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass

    def restart(self, timeout: float = 30) -> tuple[float, float]:
        """Stop and start again on the same spool (accounts survive) and ports."""
        return self.stop(), self.start(timeout)


def enable_optional_api(example_text: str) -> str:
    """ejabberd.yml.example with its OPTIONAL admin-API parts uncommented: the api_permissions
    block, the /api request handler and mod_http_api."""
    lines = example_text.splitlines()
    out, in_block = [], False
    for line in lines:
        if line.startswith("# api_permissions:"):
            in_block = True
        elif in_block and not line.startswith("#   "):
            in_block = False
        if in_block:
            line = line[2:]
        elif re.match(r"^\s+# (/api: mod_http_api|mod_http_api: \{\})", line):
            line = re.sub(r"# ", "", line, count=1)
        out.append(line)
    text = "\n".join(out) + "\n"
    for needle in ("\napi_permissions:", "/api: mod_http_api", "\n  mod_http_api: {}"):
        if needle not in text:
            raise ValueError(f"ejabberd.yml.example: optional part {needle.strip()!r} not found")
    return text


def derive_from_example(example_text: str) -> str:
    """Turn ejabberd.yml.example into a template for a private loopback instance: the same
    options, with example.com, anon.example.com and chat.example.com turned into placeholders,
    the c2s/HTTP/component listeners on placeholder ports on 127.0.0.1, other listeners
    dropped, no TLS (no certificate on a test machine). Needs PyYAML."""
    import yaml

    def mapname(s: str) -> str:
        return (s.replace("anon.example.com", "@ANON_HOST@")
                 .replace("chat.example.com", "@COMPONENT_JID@")
                 .replace("example.com", "@STAFF_HOST@"))

    def walk(node):
        if isinstance(node, dict):
            return {mapname(k) if isinstance(k, str) else k: walk(v) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v) for v in node]
        if isinstance(node, str):
            return mapname(node)
        return node

    cfg = walk(yaml.safe_load(example_text))
    cfg.pop("certfiles", None)
    cfg["log_rotate_count"] = 0
    port_names = {"ejabberd_c2s": "@C2S_PORT@", "ejabberd_http": "@HTTP_PORT@",
                  "ejabberd_service": "@COMPONENT_PORT@"}
    listeners = []
    for lst in cfg.get("listen", []):
        mod = lst.get("module")
        if mod not in port_names:
            continue
        lst = dict(lst)
        lst["port"] = port_names.pop(mod)
        lst["ip"] = "127.0.0.1"
        for tls_key in ("starttls", "starttls_required", "tls", "tls_compression", "protocol_options"):
            lst.pop(tls_key, None)
        if mod == "ejabberd_service":
            lst["hosts"] = {"@COMPONENT_JID@": {"password": "@COMPONENT_SECRET@"}}
        listeners.append(lst)
    if port_names:
        raise ValueError(f"ejabberd.yml.example has no listener for {sorted(port_names)}")
    cfg["listen"] = listeners
    out = yaml.safe_dump(cfg, sort_keys=False, default_flow_style=False)
    for ph in ("@C2S_PORT@", "@HTTP_PORT@", "@COMPONENT_PORT@"):
        out = out.replace(f"'{ph}'", ph)  # ports are integers once filled in
    return "# derived from ejabberd.yml.example by tests/integration/xmpp_env.py\n" + out


# ---- frontdesk ----------------------------------------------------------------------------

def frontdesk_bin() -> Path:
    return Path(os.environ.get("FRONTDESK_BIN") or REPO / "target" / "debug" / "frontdesk")


DEFAULT_SITES = [
    {"id": "acme", "name": "ACME Inc.", "staff": ["alice_acme@localhost", "bob_acme@localhost"]},
    {"id": "globex", "name": "Globex", "staff": ["carol_globex@localhost"]},
]


def toml_str(s: str) -> str:
    return json.dumps(s)  # a JSON string is a valid TOML basic string


def frontdesk_toml(*, jid: str, server: str, secret: str, db_path: str, sites=DEFAULT_SITES,
                   roster: dict | None = None, limits: dict | None = None,
                   metrics_listen: str | None = None) -> str:
    lines = ["[component]", f"jid = {toml_str(jid)}", f"server = {toml_str(server)}",
             f"secret = {toml_str(secret)}", "", "[store]", f"path = {toml_str(db_path)}", ""]
    if metrics_listen:
        lines += ["[metrics]", f"listen = {toml_str(metrics_listen)}", ""]
    # The suite's staff watch browsing visitors too (the default is "waiting" since issue 21);
    # tests of "waiting" say so.
    roster = {"visitors": "all", **(roster or {})}
    if roster:
        lines.append("[roster]")
        for k, v in roster.items():
            lines.append(f"{k} = {toml_str(v) if isinstance(v, str) else v}")
        lines.append("")
    if limits:
        lines.append("[limits]")
        lines += [f"{k} = {v}" for k, v in limits.items()]
        lines.append("")
    for site in sites:
        lines += ["[[sites]]", f"id = {toml_str(site['id'])}", f"name = {toml_str(site['name'])}",
                  "staff = [" + ", ".join(toml_value(s) for s in site["staff"]) + "]"]
        if site.get("token_secret"):
            lines.append(f"token_secret = {toml_str(site['token_secret'])}")
        # Desk settings: max_chats_per_staff, routing, offer_timeout_secs...
        lines += [f"{k} = {toml_value(v)}" for k, v in site.get("desk", {}).items()]
        for c in site.get("canned", []):
            lines += ["[[sites.canned]]", f"key = {toml_str(c['key'])}", f"text = {toml_str(c['text'])}"]
        lines.append("")
    return "\n".join(lines)


def toml_value(v) -> str:
    """A string, a number, a list, or a dict as an inline table (a staff entry with a name)."""
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{k} = {toml_value(x)}" for k, x in v.items()) + " }"
    if isinstance(v, list):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    return toml_str(v) if isinstance(v, str) else str(v)


class Frontdesk:
    """One `frontdesk run` process with its own config file, database and log file."""

    def __init__(self, workdir: Path, *, ejabberd: Ejabberd, sites=DEFAULT_SITES,
                 binary: Path | None = None, rust_log: str = "frontdesk=debug",
                 roster: dict | None = None, limits: dict | None = None, db: Path | None = None,
                 metrics_listen: str | None = None, server: str | None = None):
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.binary = Path(binary or frontdesk_bin())
        self.jid = ejabberd.component_jid
        self.config = self.workdir / "frontdesk.toml"
        self.db = Path(db) if db is not None else self.workdir / "frontdesk.db"
        self.log = self.workdir / "frontdesk.log"
        self.rust_log = rust_log
        # What the config file is written from; `rewrite_config` changes some of it.
        self.toml_args = dict(
            jid=ejabberd.component_jid, server=server or f"127.0.0.1:{ejabberd.component_port}",
            secret=ejabberd.component_secret, db_path=str(self.db), sites=sites,
            roster=roster if roster is not None else {
                # The real path on ejabberd 23.01: privilege is advertised, fails, and
                # frontdesk falls back to the admin API.
                "ejabberd_api": f"http://127.0.0.1:{ejabberd.http_port}/api",
                "remove_after_secs": 3,
            }, limits=limits, metrics_listen=metrics_listen)
        self.config.write_text(frontdesk_toml(**self.toml_args))
        self.proc: subprocess.Popen | None = None

    def rewrite_config(self, **changes) -> None:
        """Writes the config file again with some arguments of `frontdesk_toml` changed."""
        self.toml_args.update(changes)
        self.config.write_text(frontdesk_toml(**self.toml_args))

    def reload(self) -> None:
        """SIGHUP, as systemd's ExecReload= sends it."""
        if self.proc is None or self.proc.poll() is not None:
            raise AssertionError("frontdesk is not running")
        self.proc.send_signal(signal.SIGHUP)

    def _env(self) -> dict:
        env = {k: v for k, v in os.environ.items() if k not in ("FRONTDESK_SECRET", "FRONTDESK_CONFIG")}
        env["RUST_LOG"] = self.rust_log
        return env

    def start(self, own_session: bool = False) -> None:
        """own_session: put it in its own session, so that a Ctrl-C in the terminal reaches
        only the caller, which then stops it in order (scripts/demo)."""
        if not self.binary.exists():
            raise StartError(f"frontdesk binary {self.binary} does not exist "
                             "(run cargo build, or set FRONTDESK_BIN)")
        with open(self.log, "ab") as logf:
            self.proc = subprocess.Popen([str(self.binary), "run", "--config", str(self.config)],
                                         cwd=self.workdir, env=self._env(), stdin=subprocess.DEVNULL,
                                         stdout=logf, stderr=subprocess.STDOUT,
                                         start_new_session=own_session)

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log_tail(self, lines: int = 60) -> str:
        return f"--- {self.log} (last {lines} lines) ---\n{tail(self.log, lines)}"

    def log_text(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except OSError:
            return ""

    def stop(self, timeout: float = 10) -> int | None:
        """SIGTERM and wait; SIGKILL after `timeout` s. Returns the exit code (None if killed)."""
        if self.proc is None:
            return None
        if self.proc.poll() is not None:
            return self.proc.returncode
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=5)
            return None

    def kill(self) -> None:
        """SIGKILL: a crash, with no chance to flush or say goodbye."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def _proc_file(self, name: str) -> str:
        if self.proc is None:
            raise AssertionError("frontdesk was never started")
        return Path(f"/proc/{self.proc.pid}/{name}").read_text()

    def cpu_seconds(self) -> float:
        """User + system CPU time of the process so far."""
        fields = self._proc_file("stat").rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def rss_kib(self) -> int:
        for line in self._proc_file("status").splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise AssertionError("no VmRSS in /proc/<pid>/status")

    def open_fds(self) -> int:
        if self.proc is None:
            raise AssertionError("frontdesk was never started")
        return len(os.listdir(f"/proc/{self.proc.pid}/fd"))

    # ---- the read-only commands ----------------------------------------------------------
    def cli(self, *args: str, timeout: float = 15) -> subprocess.CompletedProcess:
        return subprocess.run([str(self.binary), *args, "--config", str(self.config)],
                              cwd=self.workdir, env=self._env(), stdin=subprocess.DEVNULL,
                              capture_output=True, text=True, timeout=timeout)

    def _json(self, *args: str):
        r = self.cli(*args, "--json")
        if r.returncode != 0:
            raise AssertionError(f"frontdesk {' '.join(args)} --json exited {r.returncode}\n"
                                 f"stdout: {r.stdout}\nstderr: {r.stderr}")
        try:
            return json.loads(r.stdout)
        except json.JSONDecodeError as e:
            raise AssertionError(f"frontdesk {' '.join(args)} --json printed no JSON ({e}):\n{r.stdout}")

    def sessions(self, *, state: str | None = None, site: str | None = None) -> list[dict]:
        args = ["sessions"]
        if state:
            args += ["--state", state]
        if site:
            args += ["--site", site]
        return self._json(*args)

    def session_of(self, room: str) -> dict | None:
        """The newest session of `room` (highest id), or None."""
        rows = [s for s in self.sessions() if s.get("room") == room]
        return max(rows, key=lambda s: s["id"]) if rows else None

    def transcript(self, session_id: int) -> list[dict]:
        return self._json("transcript", str(session_id))
