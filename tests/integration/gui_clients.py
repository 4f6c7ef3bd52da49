"""Real staff clients, headless, for test_gajim.py and test_psi.py: Debian bookworm's Gajim
1.7.3 and Psi+ 1.4.554.

Both refuse to run as root (Gajim) or should not (Psi+), so they run as an unprivileged user
(GUI_USER, created by scripts/lib.sh ensure_gajim). Each client is independent of any other:
its own X display (Xvfb picks a free one itself, -displayfd), its own D-Bus session bus (a
private dbus-daemon with no service activation) and its own HOME and profile under the test's
directory. Nothing is shared with the machine's desktop, if it has one.

What the tests read is the client's own state, not the wire:
  * Gajim: `gajim-remote list_contacts ACCOUNT` (its D-Bus remote control) gives the roster
    contacts as Gajim holds them, each with its `show` and per-resource status texts; the
    profile's archive `logs.db` has the messages it stored (KIND_* below);
  * Psi+: its history database `history.db` has the messages it logged. It has no interface
    for its roster or presence: those show only on screen;
  * screenshots of the display (ImageMagick `import`).
Staff actions go through the client as the UI's do: Gajim opens the chat (its open-chat
action) and `gajim-remote send_chat_message` sends the same OutgoingMessage as the chat
input; Psi+ opens the chat with the text typed in (an xmpp: URI, passed to the running Psi+
over D-Bus) and gets the Return key (xdotool, through the XTEST extension).

Gajim's log (`-v -l gajim=DEBUG,nbxmpp=DEBUG`: every stanza in and out, every handler
decision) is in `<workdir>/gajim.log`; Psi+'s (warnings only) in `<workdir>/psi.log`.
"""

from __future__ import annotations

import ast
import asyncio
import contextlib
import hashlib
import html
import os
import pwd
import re
import select
import shutil
import signal
import sqlite3
import subprocess
import tempfile
import time
import uuid
from datetime import datetime
from pathlib import Path
from typing import Callable
from urllib.parse import quote
from xml.sax.saxutils import escape as xml_escape

GUI_USER = os.environ.get("FRONTDESK_GUI_USER", "frontdesk-gui")
SYSTEM_PYTHON = "/usr/bin/python3"   # the one with Debian's gajim and nbxmpp modules
SCREEN = "1280x800x24"
DESKTOP_PROGRAMS = ("Xvfb", "dbus-daemon", "import")
GAJIM_PROGRAMS = ("gajim", "gajim-remote", "gdbus", "xdotool")
PSI_PROGRAMS = ("psi-plus", "xdotool", "gdbus")

# gajim.common.const.KindConstant: the `kind` column of logs.db's table `logs`.
KIND_CHAT_RECEIVED = 4
KIND_CHAT_SENT = 6

# Writes the profile with Gajim's own Settings class (so the SQLite schema and the JSON
# encoding are Gajim's). argv: CONFIG_DIR ACCOUNT JID PASSWORD HOST PORT
_MAKE_PROFILE = r"""
import sys
from gajim.common import configpaths
config_dir, account, jid, password, host, port = sys.argv[1:7]
configpaths.set_config_root(config_dir)
configpaths.init()
configpaths.create_paths()
from gajim.common import app
from gajim.common.settings import Settings
s = Settings()
app.settings = s
s.init()
s.set_app_setting('use_keyring', False)         # no secret service: the password stays here
s.set_app_setting('check_for_update', False)
s.set_app_setting('remote_control', True)       # D-Bus org.gajim.Gajim, for gajim-remote
s.set_app_setting('show_help_start_chat', False)
s.add_account(account)
user, domain = jid.split('@', 1)
for k, v in {
    'name': user, 'hostname': domain, 'password': password, 'savepass': True,
    'resource': 'gajim',
    'use_custom_host': True, 'custom_host': host, 'custom_port': int(port),
    'custom_type': 'PLAIN',                     # plain TCP on loopback: no TLS on the test server
    'use_plain_connection': True, 'confirm_unencrypted_connection': False,
    'active': True, 'autoconnect': True, 'sync_with_global_status': True,
}.items():
    s.set_account_setting(account, k, v)
s._commit(schedule=False)
print('profile written', config_dir, account, s.get_account_setting(account, 'custom_port'))
"""

# A session bus that only the test's client uses: no <servicedir>, so nothing is activated
# (notification daemons, portals...) and nothing outlives the test.
_BUS_CONFIG = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path={socket}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
"""


# A line of Gajim's log: "12/04/26 11:30:40 (I) nbxmpp.connection | ..."
_LOG_LINE = re.compile(r"^\d\d/\d\d/\d\d (\d\d:\d\d:\d\d) \(([A-Z])\) ")

# Stream management's acks and requests (XEP-0198): noise in a stanza trace.
_SM = re.compile(r"""<[ar] (?:[^>]*\s)?xmlns=["']urn:xmpp:sm:3["'][^>]*/>|<[ar] h=["']\d+["'] xmlns=["']urn:xmpp:sm:3["']\s*/>""")

_STANZA_START = re.compile(r"(?=<(?:message|presence|iq)[ >])")


class ClientError(AssertionError):
    """A client or what it needs could not be started or asked (the message says why)."""


def missing_requirements(*programs: str) -> list[str]:
    """What is not there for a GUI client test (empty if all is): `programs`, the desktop's,
    the user, root."""
    missing = [p for p in (*DESKTOP_PROGRAMS, *programs) if shutil.which(p) is None]
    if not os.path.exists(SYSTEM_PYTHON):
        missing.append(SYSTEM_PYTHON)
    try:
        pwd.getpwnam(GUI_USER)
    except KeyError:
        missing.append(f"the user {GUI_USER!r}")
    if os.geteuid() != 0:
        missing.append("root (to run the client as another user)")
    return missing


def _read_line(fd: int, timeout: float, what: str, proc: subprocess.Popen, log: Path | None = None) -> str:
    """One line from a pipe that a child writes, waiting at most `timeout` s."""
    deadline = time.monotonic() + timeout
    data = b""
    while not data.endswith(b"\n"):
        remaining = deadline - time.monotonic()
        if remaining <= 0 or proc.poll() is not None:
            why = f"exited with {proc.returncode}" if proc.poll() is not None else f"said nothing in {timeout} s"
            extra = f"\n{_tail(log)}" if log else ""
            raise ClientError(f"{what}: {why}{extra}")
        ready, _, _ = select.select([fd], [], [], min(remaining, 0.2))
        if ready:
            chunk = os.read(fd, 256)
            if not chunk:
                raise ClientError(f"{what}: closed the pipe without a line (got {data!r})")
            data += chunk
    return data.decode().strip()


def _tail(path: Path | None, lines: int = 30) -> str:
    if path is None:
        return ""
    try:
        text = path.read_text(errors="replace")
    except OSError as e:
        return f"({path}: {e})"
    return f"--- {path} (last {lines} lines) ---\n" + "\n".join(text.splitlines()[-lines:])


def _make_traversable(path: Path) -> None:
    """The GUI user must reach its directories under the test's (root-owned, 0700) tmp dirs."""
    for p in [path, *path.parents]:
        try:
            mode = p.stat().st_mode
            if not mode & 0o001:
                os.chmod(p, mode | 0o001)
        except PermissionError:
            pass


class Desktop:
    """A private X display (Xvfb), a private D-Bus session bus and a HOME of its own for GUI
    programs run as GUI_USER. Subclasses start their client in `start_client()`."""

    name = "desktop"

    def __init__(self, workdir: Path):
        self.workdir = Path(workdir)
        self.home = self.workdir / "home"
        self.bus_log = self.workdir / "dbus.log"
        self.xvfb_log = self.workdir / "xvfb.log"
        self.display: str | None = None
        self.bus: str | None = None
        self._rt: Path | None = None
        self._procs: list[tuple[str, subprocess.Popen]] = []

    # ---- lifecycle --------------------------------------------------------------------
    async def __aenter__(self):
        try:
            await asyncio.get_running_loop().run_in_executor(None, self.start)
        except BaseException:
            self.stop()
            raise
        return self

    async def __aexit__(self, *exc) -> None:
        self.stop()

    def _user(self) -> pwd.struct_passwd:
        try:
            return pwd.getpwnam(GUI_USER)
        except KeyError:
            raise ClientError(f"user {GUI_USER!r} does not exist: run scripts/test (ensure_gajim in "
                             f"scripts/lib.sh creates it)") from None

    def _as_user(self) -> dict:
        pw = self._user()
        return {"user": pw.pw_uid, "group": pw.pw_gid, "extra_groups": []}

    def env(self) -> dict:
        env = {
            "HOME": str(self.home), "USER": GUI_USER, "LOGNAME": GUI_USER,
            "PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8",
            "NO_AT_BRIDGE": "1", "GDK_BACKEND": "x11", "GSETTINGS_BACKEND": "memory",
        }
        if self.display:
            env["DISPLAY"] = self.display
        if self.bus:
            env["DBUS_SESSION_BUS_ADDRESS"] = self.bus
        if self._rt:
            env["XDG_RUNTIME_DIR"] = str(self._rt)
        return env

    def start(self, timeout: float = 20) -> None:
        """The display, the bus, then the client (`start_client`)."""
        pw = self._user()
        for d in (self.workdir, self.home):
            d.mkdir(parents=True, exist_ok=True)
            os.chown(d, pw.pw_uid, pw.pw_gid)
            os.chmod(d, 0o700)
        _make_traversable(self.workdir.parent)
        # A short private runtime dir: the bus socket's path must fit in sun_path (108 bytes),
        # and a pytest tmp_path may not.
        self._rt = Path(tempfile.mkdtemp(prefix="fdgui-", dir="/tmp"))
        os.chown(self._rt, pw.pw_uid, pw.pw_gid)

        # Xvfb as root (it needs /tmp/.X11-unix); it picks a free display and tells us which.
        rfd, wfd = os.pipe()
        try:
            with open(self.xvfb_log, "ab") as logf:
                xvfb = subprocess.Popen(["Xvfb", "-displayfd", str(wfd), "-screen", "0", SCREEN,
                                         "-nolisten", "tcp", "-ac"],
                                        pass_fds=(wfd,), stdin=subprocess.DEVNULL, stdout=logf,
                                        stderr=subprocess.STDOUT, start_new_session=True)
            self._procs.append(("Xvfb", xvfb))
            os.close(wfd)
            wfd = -1
            self.display = ":" + _read_line(rfd, timeout, "Xvfb -displayfd", xvfb, self.xvfb_log)
        finally:
            if wfd >= 0:
                os.close(wfd)
            os.close(rfd)

        socket = self._rt / "bus"
        conf = self.workdir / "bus.conf"
        conf.write_text(_BUS_CONFIG.format(socket=socket))
        os.chmod(conf, 0o644)
        rfd, wfd = os.pipe()
        try:
            with open(self.bus_log, "ab") as logf:
                bus = subprocess.Popen(["dbus-daemon", f"--config-file={conf}", "--nofork", "--nopidfile",
                                        f"--print-address={wfd}"],
                                       pass_fds=(wfd,), env=self.env(), cwd=self.home, stdin=subprocess.DEVNULL,
                                       stdout=logf, stderr=subprocess.STDOUT, start_new_session=True,
                                       **self._as_user())
            self._procs.append(("dbus-daemon", bus))
            os.close(wfd)
            wfd = -1
            self.bus = _read_line(rfd, timeout, "dbus-daemon --print-address", bus, self.bus_log)
        finally:
            if wfd >= 0:
                os.close(wfd)
            os.close(rfd)
        self.start_client()

    def start_client(self) -> None:
        raise NotImplementedError

    def spawn(self, name: str, argv: list[str], log: Path) -> subprocess.Popen:
        """Start a long-running program as GUI_USER on this display and bus, in its own session
        (so that stop() ends it and its children), output to `log`."""
        with open(log, "ab") as logf:
            p = subprocess.Popen(argv, env=self.env(), cwd=self.home, stdin=subprocess.DEVNULL, stdout=logf,
                                 stderr=subprocess.STDOUT, start_new_session=True, **self._as_user())
        self._procs.append((name, p))
        return p

    async def run(self, *argv: str, timeout: float = 10) -> subprocess.CompletedProcess:
        """Run a short command as GUI_USER on this display and bus."""
        proc = await asyncio.create_subprocess_exec(
            *argv, env=self.env(), cwd=self.home, stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, **self._as_user())
        try:
            out, err = await asyncio.wait_for(proc.communicate(), timeout)
        except asyncio.TimeoutError:
            proc.kill()
            await proc.wait()
            raise ClientError(f"{' '.join(argv)} did not finish within {timeout} s") from None
        return subprocess.CompletedProcess(argv, proc.returncode, out.decode(errors="replace"),
                                           err.decode(errors="replace"))

    def running(self, name: str | None = None) -> bool:
        name = name or self.name
        return any(n == name and p.poll() is None for n, p in self._procs)

    def exit_code(self, name: str | None = None):
        name = name or self.name
        return next((p.returncode for n, p in self._procs if n == name), None)

    def stop(self) -> None:
        """The client, then the bus, then the display: SIGTERM to each one's process group,
        SIGKILL after 5 s."""
        for name, p in reversed(self._procs):
            if p.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(p.pid, signal.SIGTERM)
                try:
                    p.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(p.pid, signal.SIGKILL)
                    p.wait(timeout=5)
        self._procs.clear()
        if self._rt is not None:
            shutil.rmtree(self._rt, ignore_errors=True)
            self._rt = None

    # ---- the screen ---------------------------------------------------------------------
    async def screenshot(self, path: Path) -> Path:
        proc = await asyncio.create_subprocess_exec(
            "import", "-display", self.display or ":0", "-window", "root", str(path),
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        out, _ = await asyncio.wait_for(proc.communicate(), 20)
        if proc.returncode != 0:
            raise ClientError(f"import (screenshot of {self.display}) failed: {out.decode(errors='replace')}")
        return path

    async def _pixels(self) -> str:
        proc = await asyncio.create_subprocess_exec(
            "import", "-display", self.display or ":0", "-window", "root", "rgb:-",
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        out, _ = await asyncio.wait_for(proc.communicate(), 20)
        return hashlib.sha256(out).hexdigest()

    async def _settle(self, before: str | None, timeout: float, what: str) -> None:
        """Return once the screen differs from `before` (if given) and two frames in a row are
        the same."""
        deadline = time.monotonic() + timeout
        last = before
        while True:
            now = await self._pixels()
            if now == last and (before is None or now != before):
                return
            if time.monotonic() > deadline:
                raise ClientError(f"the screen did not {'change and ' if before else ''}settle within "
                                 f"{timeout} s after {what}")
            last = now

    async def screenshot_settled(self, path: Path, timeout: float = 10) -> Path:
        await self._settle(None, timeout, "the last change")
        return await self.screenshot(path)

    async def log_out(self) -> None:
        """Ask the client to go offline, as staff do before they quit: it closes its XMPP
        stream. (Killed instead, it would leave a session on the server that waits to be
        resumed (XEP-0198) and counts as online for minutes.)"""
        raise NotImplementedError

    # ---- failures -----------------------------------------------------------------------
    def describe(self) -> str:
        """What the client holds now, for a failure message."""
        return f"{self.name} ({'running' if self.running() else f'exited {self.exit_code()}'}, display {self.display})"

    def trace(self) -> str:
        """The end of what the client logged, for a failure message."""
        return ""


class Gajim(Desktop):
    """One headless Gajim logged in to `jid`. Use `async with Gajim(...) as g:`."""

    name = "gajim"

    def __init__(self, workdir: Path, *, jid: str, password: str, port: int, host: str = "127.0.0.1",
                 account: str = "staff"):
        super().__init__(workdir)
        self.jid = jid
        self.password = password
        self.port = port
        self.host = host
        self.account = account
        self.profile = self.workdir / "profile"
        self.log = self.workdir / "gajim.log"
        self.remote_log = self.workdir / "gajim-remote.log"   # every call and its answer
        self.last_contacts: list[dict] | None = None
        self.remote_calls = 0
        self.remote_seconds = 0.0

    def start_client(self) -> None:
        """The profile (written by Gajim's own Settings code), then Gajim. Returns once Gajim's
        process runs, not logged in yet: wait for that with `contact()`."""
        r = subprocess.run([SYSTEM_PYTHON, "-c", _MAKE_PROFILE, str(self.profile), self.account, self.jid,
                            self.password, self.host, str(self.port)],
                           env=self.env(), cwd=self.home, capture_output=True, text=True, timeout=60,
                           **self._as_user())
        (self.workdir / "make_profile.log").write_text(r.stdout + r.stderr)
        if r.returncode != 0:
            raise ClientError(f"writing the Gajim profile failed ({r.returncode}):\n{r.stdout}{r.stderr}")
        self.spawn("gajim", ["gajim", "-c", str(self.profile), "-v", "-l", "gajim=DEBUG,nbxmpp=DEBUG"], self.log)
    # ---- Gajim's state ------------------------------------------------------------------
    async def remote(self, *args: str, timeout: float = 10) -> subprocess.CompletedProcess:
        """`gajim-remote ARGS` on this Gajim's bus, as the GUI user (logged in gajim-remote.log)."""
        if not self.running():
            raise ClientError(f"Gajim is not running (exit code {self.exit_code()})\n{_tail(self.log)}")
        t0 = time.monotonic()
        r = await self.run("gajim-remote", *args, timeout=timeout)
        took = time.monotonic() - t0
        self.remote_calls += 1
        self.remote_seconds += took
        with open(self.remote_log, "a") as f:
            f.write(f"{datetime.now().strftime('%H:%M:%S.%f')[:-3]} ({took:.2f} s) gajim-remote {' '.join(args)} "
                    f"-> {r.returncode} {r.stdout.strip()[-300:]} {r.stderr.strip()[-300:]}\n")
        return r

    async def log_out(self) -> None:
        """Offline through the remote control (Gajim's Quit would first ask about unread
        messages), then wait until Gajim says it is."""
        if not self.running():
            return
        await self.remote("change_status", "offline", "", self.account)
        await poll(lambda: self.remote("get_status", self.account), lambda r: r.stdout.strip() == "offline", 10,
                   "Gajim offline")

    async def contacts(self) -> list[dict] | None:
        """Gajim's roster contacts: [{'name', 'show', 'jid', 'resources': [(resource, status)],
        'groups'}], or None while Gajim's remote control does not answer (starting up)."""
        r = await self.remote("list_contacts", self.account)
        lines = r.stdout.strip().splitlines()
        if r.returncode != 0 or not lines:
            return None
        try:
            value = ast.literal_eval(lines[-1])
        except (ValueError, SyntaxError):
            return None
        self.last_contacts = value
        return value

    async def contact(self, jid: str) -> dict | None:
        return next((c for c in await self.contacts() or [] if c.get("jid") == jid), None)

    async def send_chat_message(self, to: str, text: str) -> None:
        r = await self.remote("send_chat_message", to, text, self.account)
        if r.returncode != 0 or r.stdout.strip() != "True":
            raise ClientError(f"gajim-remote send_chat_message {to} {text!r} failed ({r.returncode}): "
                             f"{r.stdout}{r.stderr}")

    def archive(self) -> list[tuple[int, str, int, str]]:
        """(log_line_id, jid, kind, message) of every row in Gajim's archive, in order; empty
        until Gajim has opened it."""
        db = self.profile / "logs.db"
        # WAL mode: read only once Gajim made its -wal/-shm files, so that they stay its own.
        if not (db.exists() and Path(f"{db}-shm").exists()):
            return []
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
        try:
            return con.execute(
                "SELECT l.log_line_id, j.jid, l.kind, l.message FROM logs l "
                "JOIN jids j ON j.jid_id = l.jid_id ORDER BY l.log_line_id").fetchall()
        finally:
            con.close()

    async def app_action(self, name: str, parameter: str | None = None) -> None:
        """Activate one of Gajim's application actions (GApplication exports them on the bus,
        org.gtk.Actions), as a menu item or a notification would. `parameter`: GVariant text."""
        params = f"[{parameter}]" if parameter is not None else "[]"
        r = await self.run("gdbus", "call", "--session", "--dest", "org.gajim.Gajim", "--object-path",
                           "/org/gajim/Gajim", "--method", "org.gtk.Actions.Activate", name, params, "{}")
        if r.returncode != 0:
            raise ClientError(f"activating Gajim's action {name} failed: {r.stdout}{r.stderr}")

    async def show_contact_list(self, timeout: float = 10) -> None:
        """Switch the main window to the account page (its contact list with presence dots),
        as the account's "open event" action does for a subscription request; return once the
        screen has changed and is still."""
        before = await self._pixels()
        await self.app_action(f"{self.account}-open-event",
                              "<{'type': <'subscription-request'>, 'sub_type': <''>, "
                              f"'account': <'{self.account}'>, 'jid': <''>}}>")
        await self._settle(before, timeout, "opening the account page")

    async def open_chat(self, jid: str) -> None:
        """Open the one-to-one chat with `jid` in the main window, as a click on the contact
        does (Gajim's app action open-chat). Gajim 1.7.3's message input assumes a chat is open
        when a message is sent: without one, a send through gajim-remote logs an
        AssertionError in MessageInputTextView._on_message_sent."""
        await self.app_action("open-chat", f"<['{self.account}', '{jid}']>")

    async def run_command(self, jid: str, name: str, timeout: float = 20) -> tuple[str, str]:
        """What staff do from the contact's menu, "Execute Command…": Gajim asks `jid` for its
        ad-hoc commands and shows them in a window ("Command List"); a click in the list, the
        command's name typed (the list's type-ahead search selects it) and Return run it.
        Returns the window's id and the note of the completed command, from Gajim's own
        stanza log."""
        before = self.log.read_text(errors="replace") if self.log.exists() else ""
        await self.app_action(f"{self.account}-execute-command", f"<'{jid}'>")

        async def windows():
            return (await self.run("xdotool", "search", "--name", "^Command List$")).stdout.split()
        found = await poll(windows, lambda w: len(w) == 1, timeout, "Gajim's Command List window")
        win = found[0]
        # Keyboard focus to that window (there is no window manager to give it), then a click
        # on the list's first row (the window is 600x500: it is at 100,84) for the list's own.
        for argv in (("windowfocus", "--sync", win), ("mousemove", "--window", win, "100", "84", "click", "1"),
                     ("type", "--delay", "40", name), ("key", "Return")):
            r = await self.run("xdotool", *argv)
            if r.returncode != 0:
                raise ClientError(f"xdotool {' '.join(argv)} failed: {r.stdout}{r.stderr}")

        async def title():
            return (await self.run("xdotool", "getwindowname", win)).stdout.strip()
        await poll(title, lambda t: t == "Completed", timeout, f"Gajim's command window showing {name!r} completed")

        def note():
            new = self.log.read_text(errors="replace")[len(before):]
            m = re.search(r"<command[^>]*status=.completed.[^>]*>\s*<note[^>]*>([^<]*)</note>", new)
            return html.unescape(m.group(1)) if m else None
        return win, await poll(note, lambda n: n is not None, 5, "the completed command's note in Gajim's log")

    async def say(self, jid: str, text: str) -> None:
        """What staff do in the UI: open the chat with `jid`, type `text`, send it."""
        await self.open_chat(jid)
        await self.send_chat_message(jid, text)

    # ---- failures -----------------------------------------------------------------------
    def trace(self) -> str:
        return self.stanza_log_tail()

    def stanza_log_tail(self, n: int = 30) -> str:
        """The last `n` stanzas Gajim sent or received, and its warnings and errors, from its log
        (keepalives left out)."""
        try:
            lines = self.log.read_text(errors="replace").splitlines()
        except OSError as e:
            return f"({self.log}: {e})"
        entries: list[str] = []
        direction, when, block = None, "", []

        def flush():
            text = _SM.sub("", " ".join(x.strip() for x in block if x.strip())).strip()
            if direction and text:
                for stanza in _STANZA_START.split(text):
                    if stanza.strip():
                        entries.append(f"{when} {direction}: {stanza.strip()[:400]}")

        for line in lines:
            m = _LOG_LINE.match(line)
            if m:
                flush()
                direction, block = None, []
                when = m.group(1)
                if "::::: DATA SENT" in line:
                    direction = "SENT"
                elif "::::: DATA RECEIVED" in line:
                    direction = "RECEIVED"
                elif m.group(2) in ("W", "E"):
                    entries.append(line)
            elif direction:
                block.append(line)
        flush()
        return f"--- the last {n} stanzas and warnings in {self.log} ---\n" + "\n".join(entries[-n:])

    def exceptions(self) -> list[str]:
        """The Python tracebacks in Gajim's log (each with the log line before it)."""
        try:
            lines = self.log.read_text(errors="replace").splitlines()
        except OSError:
            return []
        found = []
        for i, line in enumerate(lines):
            if line.startswith("Traceback (most recent call last):"):
                end = i + 1
                while end < len(lines) and (lines[end].startswith(" ") or not lines[end].strip()):
                    end += 1
                found.append("\n".join(lines[max(0, i - 1):end + 1]))
        return found

    def describe(self) -> str:
        """What Gajim holds now, for a failure message."""
        try:
            rows = self.archive()
        except sqlite3.Error as e:
            rows = [f"(archive unreadable: {e})"]
        contacts = "\n".join(f"  {c!r}" for c in self.last_contacts or []) or "  (never read)"
        archive = "\n".join(f"  {r!r}" for r in rows[-15:]) or "  (empty)"
        return (f"Gajim ({'running' if self.running() else f'exited {self.exit_code()}'}, display "
                f"{self.display}, profile {self.profile}):\n"
                f"contacts (last read):\n{contacts}\narchive (last rows):\n{archive}\n"
                f"full log: {self.log}")


def _psi_password(password: str, jid: str) -> str:
    """Psi's encodePassword(): each UTF-16 unit XORed with the JID's (cyclically), 4 hex digits."""
    return "".join("%04x" % (ord(c) ^ ord(jid[i % len(jid)])) for i, c in enumerate(password))


class PsiPlus(Desktop):
    """One headless Psi+ logged in to `jid` (account "staff", resource "psi"). Use
    `async with PsiPlus(...) as p:`. Psi+ has no D-Bus interface for its roster, presence or
    messages: what it received and sent is read from its history database, what it shows
    from screenshots."""

    name = "psi"
    resource = "psi"

    def __init__(self, workdir: Path, *, jid: str, password: str, port: int, host: str = "127.0.0.1"):
        super().__init__(workdir)
        self.jid = jid
        self.password = password
        self.port = port
        self.host = host
        self.log = self.workdir / "psi.log"
        self.config = self.home / ".config/psi+/profiles/default"
        self.history_db = self.home / ".local/share/psi+/profiles/default/history/history.db"

    def start_client(self) -> None:
        """The profile (accounts.xml and the few options.xml settings a headless run needs),
        then Psi+. It connects by itself (auto): wait for that on the server's side."""
        self.config.mkdir(parents=True)
        account_id = str(uuid.uuid4())
        e = xml_escape
        (self.config / "accounts.xml").write_text(f"""<!DOCTYPE accounts>
<accounts version="1.4.554" xmlns="http://psi-im.org/options">
 <accounts>
  <a0>
   <enabled type="bool">true</enabled>
   <auto type="bool">true</auto>
   <id type="QString">{account_id}</id>
   <name type="QString">staff</name>
   <jid type="QString">{e(self.jid)}</jid>
   <password type="QString">{_psi_password(self.password, self.jid)}</password>
   <use-host type="bool">true</use-host>
   <host type="QString">{e(self.host)}</host>
   <port type="int">{self.port}</port>
   <ssl type="QString">no</ssl>
   <allow-plain type="QString">always</allow-plain>
   <ignore-SSL-warnings type="bool">true</ignore-SSL-warnings>
   <automatic-resource type="bool">false</automatic-resource>
   <resource type="QString">{self.resource}</resource>
   <priority type="int">0</priority>
   <log type="bool">true</log>
  </a0>
 </accounts>
 <order type="QStringList"><item>{account_id}</item></order>
</accounts>
""")
        # Psi+ fills in its defaults for everything else. No keychain (no secret service here:
        # the password stays in accounts.xml), no tip of the day, no vCard editor on the first
        # login (it opens when the account has no vCard), no sounds (no sound card), and no
        # file transfer listener: on its fixed port 8010 a second Psi+ (a test running in
        # parallel) gets a modal "Unable to bind" box that stops it from logging in.
        (self.config / "options.xml").write_text("""<!DOCTYPE options>
<options version="1.4.554" xmlns="http://psi-im.org/options">
 <options>
  <keychain><enabled type="bool">false</enabled></keychain>
  <p2p><bytestreams><listen-port type="int">0</listen-port></bytestreams></p2p>
  <vcard><query-own-vcard-on-login type="bool">false</query-own-vcard-on-login></vcard>
  <ui>
   <tip><show type="bool">false</show></tip>
   <notifications><sounds><enable type="bool">false</enable></sounds></notifications>
  </ui>
 </options>
</options>
""")
        pw = self._user()
        for root, dirs, files in os.walk(self.home):
            for n in dirs + files:
                os.chown(os.path.join(root, n), pw.pw_uid, pw.pw_gid)
        # Not --status=online: with it, Psi+ 1.4.554 stays "Connecting" and never connects.
        self.spawn("psi", ["psi-plus"], self.log)

    def history(self) -> list[tuple[int, str, str, int, str]]:
        """(id, contact's bare JID, resource, direction, text) of every event Psi+ logged, in
        order; direction 1 = sent, 2 = received. Empty until Psi+ has created the database."""
        if not self.history_db.exists():
            return []
        con = sqlite3.connect(f"file:{self.history_db}?mode=ro", uri=True, timeout=5)
        try:
            return con.execute(
                "SELECT e.id, c.jid, e.resource, e.direction, e.m_text FROM events e "
                "JOIN contacts c ON c.id = e.contact_id ORDER BY e.id").fetchall()
        except sqlite3.OperationalError:   # the tables are not there yet
            return []
        finally:
            con.close()

    async def call(self, method: str, *args: str) -> None:
        """A method of Psi+'s D-Bus interface (org.psi_im.Psi.Main: openURI, setStatus,
        raise, sleep, wake)."""
        r = await self.run("gdbus", "call", "--session", "--dest", "org.psi-im.Psi", "--object-path", "/Main",
                           "--method", f"org.psi_im.Psi.Main.{method}", *args)
        if r.returncode != 0:
            raise ClientError(f"Psi+'s D-Bus {method}{args} failed: {r.stdout}{r.stderr}")

    async def log_out(self) -> None:
        """Offline through Psi+'s D-Bus interface. Psi+ does not say when it is: wait for the
        server (`end_session`)."""
        if self.running():
            await self.call("setStatus", "offline", "")

    async def focused_window(self) -> str:
        r = await self.run("xdotool", "getwindowfocus", "getwindowname")
        return r.stdout.strip()

    async def reply(self, jid: str, text: str, window: str, timeout: float = 10) -> None:
        """What staff do: open the chat with `jid`, type `text`, press Return. The chat opens
        through an xmpp: URI (what `psi-plus --uri` hands to the running Psi+ over D-Bus) with
        the text already in its input, and takes the keyboard focus (there is no window
        manager); once the focused window is the chat, titled `window`, and the screen is
        still, Return goes to it through XTEST."""
        uri = f"xmpp:{jid}?message;type=chat;body={quote(text, safe='')}"
        await self.call("openURI", uri)
        await poll(self.focused_window, lambda name: name == window, timeout,
                   f"the chat window {window!r} open and focused")
        # Larger than its default 300x200, for readable screenshots.
        await self.run("xdotool", "getwindowfocus", "windowsize", "640", "400")
        await self._settle(None, timeout, "opening the chat")
        # Under load the first Return can reach the window before its input holds the text;
        # Return on an empty input sends nothing, so pressing again until Psi+ has logged the
        # message as sent is safe. Bounded: three presses, `timeout` each.
        for _ in range(3):
            r = await self.run("xdotool", "key", "Return")
            if r.returncode != 0:
                raise ClientError(f"xdotool key Return failed: {r.stdout}{r.stderr}")
            try:
                await poll(self.history, lambda rows: any(d == 1 and t == text for *_, d, t in rows),
                           timeout, "the reply in Psi+'s history as sent")
                return
            except AssertionError:
                continue
        raise ClientError(f"Psi+ did not send {text!r} after three presses of Return")

    def describe(self) -> str:
        try:
            rows = self.history()
        except sqlite3.Error as e:
            rows = [f"(history unreadable: {e})"]
        history = "\n".join(f"  {r!r}" for r in rows[-15:]) or "  (empty)"
        return (f"Psi+ ({'running' if self.running() else f'exited {self.exit_code()}'}, display "
                f"{self.display}, home {self.home}):\nhistory (last rows):\n{history}\nlog: {self.log}")

    def trace(self) -> str:
        """The end of Psi+'s log, without its startup noise."""
        try:
            lines = self.log.read_text(errors="replace").splitlines()
        except OSError as e:
            return f"({self.log}: {e})"
        noise = ("Accessing missing option", "libpng warning", "ALSA lib", "no default audio device")
        kept = [line for line in lines if not any(n in line for n in noise)]
        return f"--- {self.log} (last 20 lines, noise left out) ---\n" + "\n".join(kept[-20:])


class Steps:
    """Times a test's steps and keeps what the client showed in each (`saw`) in
    `evidence_file`. A failing step is named, with what the client held then, a screenshot
    (next to the evidence file) and the end of its trace."""

    def __init__(self, client: Desktop, evidence_file: Path):
        self.client = client
        self.evidence_file = evidence_file
        self.tmp_path = evidence_file.parent
        self.t0 = time.monotonic()
        self.took: list[tuple[int, float]] = []
        self.lines: list[str] = []

    def saw(self, what: str, value) -> None:
        self.lines.append(f"    {what}: {value!r}")

    def _write(self) -> None:
        self.evidence_file.write_text("\n".join(self.lines) + "\n")

    @contextlib.asynccontextmanager
    async def step(self, n: int, what: str):
        t0 = time.monotonic()
        self.lines.append(f"step {n}: {what}")
        try:
            yield
        except AssertionError as e:
            self.lines.append(f"    FAILED: {e}")
            self._write()
            shot = self.tmp_path / f"failed-step-{n}.png"
            try:
                await self.client.screenshot(shot)
            except Exception as se:  # the failure itself matters more
                shot = f"(no screenshot: {se})"
            raise AssertionError(
                f"step {n} ({what}) failed after {time.monotonic() - t0:.1f} s: {e}\n\n"
                f"{self.client.describe()}\nscreenshot: {shot}\nevidence so far: {self.evidence_file}\n\n"
                f"{self.client.trace()}") from e
        took = time.monotonic() - t0
        self.took.append((n, took))
        self.lines.append(f"    ({took:.1f} s)")
        self._write()

    def summary(self) -> str:
        return (", ".join(f"{n}: {t:.1f} s" for n, t in self.took) +
                f"; total {time.monotonic() - self.t0:.1f} s")


async def server_sessions(server, user: str) -> list[str]:
    """The full JIDs of `user`'s sessions on the server (`ejabberdctl connected_users`, or
    Prosody's `prosodyctl shell c2s show`)."""
    def ask():
        if hasattr(server, "ctl"):
            return server.ctl("connected_users").stdout.split()
        return server.sessions()
    jids = await asyncio.get_running_loop().run_in_executor(None, ask)
    return [j for j in jids if j.split("/")[0] == f"{user}@{server.staff_host}"]


async def server_roster(server, user: str) -> str:
    """A staff account's roster on the server, as text naming each contact (`ejabberdctl
    get_roster`, or Prosody's stored roster)."""
    def ask():
        if hasattr(server, "ctl"):
            return server.ctl("get_roster", user, server.staff_host).stdout
        return server.roster_text(user)
    return await asyncio.get_running_loop().run_in_executor(None, ask)


def kick(server, user: str, resource: str) -> None:
    if hasattr(server, "ctl"):
        server.ctl("kick_session", user, server.staff_host, resource, "test over", check=False)
    else:
        server.kick(user, server.staff_host, resource)


async def no_sessions_before(server, user: str, timeout: float = 15) -> None:
    """Fail unless `user` has no session on the server (within `timeout`): a session left by
    an earlier test would take the client's messages and count as the staff member online."""
    await poll(lambda: server_sessions(server, user), lambda s: not s, timeout,
               f"no session of {user} on the server before the client logs in", interval=0.5)


async def end_session(client: Desktop, server, user: str, resource: str, timeout: float = 15) -> None:
    """Log the client out and wait for the server to close its session. If it does not, kick
    the session (so that later tests do not meet it) and fail."""
    full = f"{user}@{server.staff_host}/{resource}"
    if full not in await server_sessions(server, user):
        return   # never logged in (the test says why), or gone already
    try:
        await client.log_out()
        await poll(lambda: server_sessions(server, user), lambda s: full not in s, timeout,
                   f"the server closing {full} after {client.name} went offline", interval=0.3)
    except AssertionError as e:
        await asyncio.get_running_loop().run_in_executor(None, lambda: kick(server, user, resource))
        raise AssertionError(f"{client.name} did not log out cleanly (its session was kicked): {e}") from e


async def poll(fn: Callable, pred: Callable, timeout: float, what: str, interval: float = 0.05):
    """Await fn() until pred(value) holds; fail with the last value after `timeout` s."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        value = fn()
        if asyncio.iscoroutine(value):
            value = await value
        if pred(value):
            return value
        if loop.time() > deadline:
            raise AssertionError(f"waited {timeout} s for {what}; last value: {value!r}")
        await asyncio.sleep(interval)
