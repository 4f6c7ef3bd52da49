"""Drive a terminal program (a console XMPP client) in tmux: start it with its own HOME, type into
it, wait for text on its screen, save the screen.

Each `Terminal` is its own tmux server on its own socket (in the test's directory), so tests can
run in parallel and a test's teardown kills only its own server. The pane stays after the program
exits (remain-on-exit), so a crash still leaves the screen to read.

Waiting is bounded polling of `capture-pane`; a wait that runs out raises TuiError (an
AssertionError) saying what it waited for; `screens_on_failure` around a test adds the final
screens to that message. All waits are async so that the test's slixmpp clients keep running
meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import pwd
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path


class TuiError(AssertionError):
    pass


def tmux_path() -> str:
    path = shutil.which("tmux")
    if path is None:
        raise TuiError("tmux not found: install the Debian package `tmux` (scripts/test does)")
    return path


def require(program: str, package: str | None = None) -> str:
    """The path of `program`, or a failure that says which package provides it."""
    path = shutil.which(program) or next(
        (p for p in (f"/usr/bin/{program}", f"/usr/games/{program}") if os.path.exists(p)), None)
    if path is None:
        raise TuiError(f"{program} not found: install the Debian package `{package or program}` "
                       "(scripts/test does)")
    return path


def unprivileged_user() -> pwd.struct_passwd | None:
    """The account to run a program as when it refuses root (poezio does): None if we are not
    root, else `nobody`."""
    if os.geteuid() != 0:
        return None
    return pwd.getpwnam("nobody")


def give_to(user: pwd.struct_passwd | None, path: Path) -> None:
    """Let `user` own `path` (recursively) and traverse every parent directory of it."""
    if user is None:
        return
    for p in Path(path).resolve().parents:
        try:
            mode = p.stat().st_mode
            if not mode & 0o001:
                os.chmod(p, mode | 0o001)
        except PermissionError:
            pass
    for root, dirs, files in os.walk(path):
        os.chown(root, user.pw_uid, user.pw_gid)
        for f in files:
            os.chown(os.path.join(root, f), user.pw_uid, user.pw_gid)


class Terminal:
    """A program running in a tmux pane of `width` x `height` cells."""

    def __init__(self, name: str, workdir: Path, argv: list[str], *, home: Path,
                 env: dict[str, str] | None = None, user: pwd.struct_passwd | None = None,
                 width: int = 200, height: int = 60):
        self.name = name
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.socket = self.workdir / "tmux.sock"
        self.argv = argv
        self.home = Path(home)
        self.user = user
        self.width, self.height = width, height
        self.env = {
            "HOME": str(self.home),
            "XDG_CONFIG_HOME": str(self.home / ".config"),
            "XDG_DATA_HOME": str(self.home / ".local" / "share"),
            "XDG_CACHE_HOME": str(self.home / ".cache"),
            "XDG_STATE_HOME": str(self.home / ".local" / "state"),
            "LANG": "C.UTF-8",
            "LC_ALL": "C.UTF-8",
            **(env or {}),
        }
        self.started = False
        self.last_screen = ""
        self.pane_pid: int | None = None
        # Set by a client's wrapper: a coroutine that makes the program quit by its own command
        # (a killed client may leave a server session behind, e.g. XEP-0198 resumption).
        self.quit = None

    # ---- tmux ---------------------------------------------------------------------------
    def tmux(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        r = subprocess.run([tmux_path(), "-S", str(self.socket), *args], capture_output=True,
                           text=True, timeout=10, stdin=subprocess.DEVNULL)
        if check and r.returncode != 0:
            raise TuiError(f"tmux {' '.join(args)} exited {r.returncode}: {r.stderr.strip()}")
        return r

    def start(self) -> "Terminal":
        conf = self.workdir / "tmux.conf"
        conf.write_text("set -g remain-on-exit on\nset -g history-limit 5000\n"
                        "set -g status off\nset -g default-terminal screen-256color\n")
        argv = list(self.argv)
        if self.user is not None:
            # runuser -u runs the program without a login shell, keeping our environment.
            argv = ["runuser", "-u", self.user.pw_name, "--", *argv]
        # The program's environment is what we give it, not the test runner's.
        wrapped = ["env", "-i", *(f"{k}={v}" for k, v in self.env.items()),
                   f"PATH={os.environ.get('PATH', '/usr/bin:/bin')}", "TERM=screen-256color", *argv]
        self.tmux("-f", str(conf), "new-session", "-d", "-s", "main", "-x", str(self.width),
                  "-y", str(self.height), "-c", str(self.home),
                  " ".join(_sh_quote(a) for a in wrapped))
        self.started = True
        r = self.tmux("display-message", "-p", "-t", "main", "#{pane_pid}", check=False)
        self.pane_pid = int(r.stdout.strip()) if r.stdout.strip().isdigit() else None
        return self

    async def stop(self, timeout: float = 5) -> None:
        """Quit the program by its own command (self.quit) if it is still running and wait
        for it to exit; then close()."""
        try:
            if self.started and self.quit is not None and not self.pane_dead():
                await self.quit()
                deadline = time.monotonic() + timeout
                while not self.pane_dead() and time.monotonic() < deadline:
                    await asyncio.sleep(0.1)
        finally:
            self.close()

    def close(self) -> None:
        """Kill the tmux server and, by process id, whatever the pane ran that is still alive
        (poezio survives the loss of its terminal, spinning)."""
        if not self.started:
            return
        pids = _tree(self.pane_pid) if self.pane_pid else []
        self.tmux("kill-server", check=False)
        self.started = False
        deadline = time.monotonic() + 3
        while any(process_alive(p) for p in pids) and time.monotonic() < deadline:
            time.sleep(0.05)
        for p in pids:
            if process_alive(p):
                try:
                    os.kill(p, signal.SIGKILL)
                except ProcessLookupError:
                    pass

    # ---- input --------------------------------------------------------------------------
    def type(self, text: str, enter: bool = True) -> None:
        """Type `text` literally (then Enter)."""
        self.tmux("send-keys", "-t", "main", "-l", text)
        if enter:
            self.tmux("send-keys", "-t", "main", "Enter")

    def key(self, *keys: str) -> None:
        """Press keys by tmux name: Enter, Down, C-y, M-2, ..."""
        self.tmux("send-keys", "-t", "main", *keys)

    # ---- output -------------------------------------------------------------------------
    def screen(self) -> str:
        """The pane's text as it is now (trailing blanks stripped)."""
        if not self.started:
            return self.last_screen
        r = self.tmux("capture-pane", "-p", "-t", "main", check=False)
        if r.returncode == 0:
            self.last_screen = "\n".join(line.rstrip() for line in r.stdout.splitlines()).rstrip()
        return self.last_screen

    def styled_screen(self) -> list[str]:
        """The pane's lines with their colours and attributes as SGR escape sequences
        (capture-pane -e): for what only shows as a highlight, like a selected row."""
        return self.tmux("capture-pane", "-p", "-e", "-t", "main").stdout.splitlines()

    def pane_dead(self) -> bool:
        r = self.tmux("display-message", "-p", "-t", "main", "#{pane_dead} #{pane_dead_status}",
                      check=False)
        return r.returncode == 0 and r.stdout.startswith("1")

    async def wait_for(self, pattern: str, timeout: float = 10, what: str | None = None,
                       count: int = 1, flags: int = re.MULTILINE) -> re.Match:
        """Poll the screen until `pattern` (a regex) matches `count` times; return the last match."""
        rx = re.compile(pattern, flags)
        deadline = time.monotonic() + timeout
        while True:
            text = self.screen()
            found = list(rx.finditer(text))
            if len(found) >= count:
                return found[count - 1]
            if time.monotonic() > deadline or self.pane_dead():
                dead = " (the program exited)" if self.pane_dead() else ""
                raise TuiError(f"{self.name}: waited {timeout} s for {what or pattern!r}{dead} "
                               f"(pattern {pattern!r}, {len(found)}/{count} matches)")
            await asyncio.sleep(0.1)

    async def wait_until(self, pred, timeout: float = 10, what: str = "a screen") -> str:
        """Poll the screen until pred(text) is true; return the text."""
        deadline = time.monotonic() + timeout
        while True:
            text = self.screen()
            if pred(text):
                return text
            if time.monotonic() > deadline or self.pane_dead():
                raise TuiError(f"{self.name}: waited {timeout} s for {what}")
            await asyncio.sleep(0.1)

    def save(self, path: Path) -> str:
        text = self.screen()
        Path(path).write_text(text + "\n")
        return text


def _tree(pid: int) -> list[int]:
    """`pid` and its descendants (from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def process_alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except OSError:
        return False


def _sh_quote(s: str) -> str:
    if re.fullmatch(r"[A-Za-z0-9_@%+=:,./-]+", s):
        return s
    return "'" + s.replace("'", "'\"'\"'") + "'"


def compact(text: str) -> str:
    """A screen for a message: runs of lines with nothing but blanks and box drawing become one
    "(...)" line."""
    out, blank = [], False
    for line in text.splitlines():
        if line.strip(" │┌┐└┘─|"):
            out.append(line)
            blank = False
        elif not blank:
            out.append("(...)")
            blank = True
    return "\n".join(out)


@contextlib.asynccontextmanager
async def screens_on_failure(out_dir: Path, terminals: list[Terminal], extra_files: dict | None = None):
    """Save each terminal's final screen to out_dir/<name>.screen.txt, always; if the block
    fails, add the screens (and the tail of each extra file: {label: path}) to the exception's
    message (the exception itself is re-raised, with its traceback). At the end each terminal's
    program is asked to quit (Terminal.stop) and the terminal closed."""
    try:
        yield
    except BaseException as e:
        parts = []
        for t in terminals:
            path = Path(out_dir) / f"{t.name}.screen.txt"
            parts.append(f"--- {t.name}: final screen (saved in {path}) ---\n{compact(t.save(path))}")
        for label, path in (extra_files or {}).items():
            try:
                lines = Path(path).read_text(errors="replace").splitlines()[-20:]
                parts.append(f"--- {label} ({path}, last 20 lines, cut at 400 columns) ---\n"
                             + "\n".join(line[:400] for line in lines))
            except OSError:
                pass
        if isinstance(e, Exception):
            e.args = ("\n\n".join([str(e), *parts]), *e.args[1:])
        raise
    else:
        for t in terminals:
            t.save(Path(out_dir) / f"{t.name}.screen.txt")
    finally:
        for t in terminals:
            try:
                await t.stop()
            except Exception:
                t.close()
