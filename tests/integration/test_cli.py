"""`frontdesk check-config` as an operator meets it (no XMPP server needed)."""

from __future__ import annotations

import subprocess
import threading
from pathlib import Path

import pytest

import xmpp_env


def write(tmp_path, text, name="frontdesk.toml"):
    p = tmp_path / name
    p.write_text(text)
    return p


def good_config() -> str:
    return xmpp_env.frontdesk_toml(jid="chat.localhost", server="127.0.0.1:5347", secret="s3cret",
                                   db_path="data/frontdesk.db")


def check(path):
    binary = xmpp_env.frontdesk_bin()
    assert binary.exists(), f"{binary} missing: cargo build first (or set FRONTDESK_BIN)"
    r = subprocess.run([str(binary), "check-config", "--config", str(path)], capture_output=True,
                       text=True, timeout=15, stdin=subprocess.DEVNULL)
    return r.returncode, r.stdout + r.stderr


def test_check_config_accepts_the_test_config(tmp_path):
    code, out = check(write(tmp_path, good_config()))
    assert code == 0, out
    assert not (tmp_path / "data").exists(), "check-config created the database directory"


def test_check_config_names_an_unknown_key(tmp_path):
    text = good_config().replace('secret = "s3cret"', 'secret = "s3cret"\ncolour = "blue"')
    code, out = check(write(tmp_path, text))
    assert code != 0, out
    assert "colour" in out, out


def test_check_config_refuses_a_site_id_with_an_underscore(tmp_path):
    text = good_config().replace('id = "globex"', 'id = "glo_bex"')
    code, out = check(write(tmp_path, text))
    assert code != 0, out
    assert "id" in out and "glo_bex" in out, out


@pytest.mark.timeout(1500)  # a clean release build of every dependency
def test_the_static_build_links_nothing_and_runs(tmp_path):
    """scripts/build-static (README's build step) gives one file that needs no shared library,
    reads its config, and resolves a host name (static glibc's getaddrinfo) when it connects."""
    r = subprocess.run([str(xmpp_env.REPO / "scripts" / "build-static")], capture_output=True,
                       text=True, timeout=1200, stdin=subprocess.DEVNULL)
    assert r.returncode == 0, r.stderr[-3000:]
    binary = r.stdout.strip().splitlines()[-1]
    ldd = subprocess.run(["ldd", binary], capture_output=True, text=True)
    said = ldd.stdout + ldd.stderr
    assert "statically linked" in said or "not a dynamic executable" in said, said
    # Port 1 on loopback: nothing listens, so a working resolver shows as "connection refused".
    cfg = write(tmp_path, good_config().replace("127.0.0.1:5347", "localhost:1"))
    ok = subprocess.run([binary, "check-config", "--config", str(cfg)], capture_output=True,
                        text=True, timeout=15, stdin=subprocess.DEVNULL)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    p = subprocess.Popen([binary, "run", "--config", str(cfg)], stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True, stdin=subprocess.DEVNULL)
    watchdog = threading.Timer(30, p.kill)  # bounds the wait if it never logs the attempt
    watchdog.start()
    try:
        seen = []
        for line in p.stdout:
            seen.append(line)
            if "cannot reach" in line or "cannot resolve" in line or len(seen) > 50:
                break
    finally:
        watchdog.cancel()
        p.kill()
        p.wait(timeout=10)
    text = "".join(seen)
    assert "cannot reach the XMPP server's component port at localhost:1" in text, text
    assert "refused" in text.lower(), text


def test_demo_help_prints_its_usage():
    """`scripts/demo --help` printed a line of the script (`set -euo pipefail`)."""
    r = subprocess.run([str(xmpp_env.REPO / "scripts" / "demo"), "--help"], capture_output=True,
                       text=True, timeout=30, stdin=subprocess.DEVNULL)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("Usage: scripts/demo [--no-wait] [--release] [--dir DIR]"), r.stdout
    for option in ("--no-wait", "--release", "--dir DIR", "--help"):
        assert option in r.stdout, r.stdout
    assert "set -e" not in r.stdout and "#" not in r.stdout, r.stdout
    assert r.stderr == "", "--help installed or built something: " + r.stderr


def test_demo_says_how_to_reach_it_from_another_machine(monkeypatch):
    """The demo listens on 127.0.0.1 only; its instructions forward each port a visitor or
    staff client needs over SSH under the same number, so the printed addresses work there."""
    import importlib.util
    import types
    spec = importlib.util.spec_from_file_location("demo", xmpp_env.REPO / "scripts" / "demo.py")
    demo = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(demo)
    ej = types.SimpleNamespace(c2s_port=45222, http_port=45280, component_port=45347,
                               anon_host="anon.localhost", staff_host="localhost",
                               component_jid="chat.localhost", passwords={"alice_acme": "a", "bob_acme": "b"},
                               logs=Path("/x"), ctl_argv=lambda: ["ejabberdctl"])
    fd = types.SimpleNamespace(config=Path("/x/frontdesk.toml"), binary=Path("/x/frontdesk"), log=Path("/x/log"))
    text = demo.instructions(ej, fd, Path("/x"), "http://127.0.0.1:45080")
    line = next((l for l in text.splitlines() if "ssh -N" in l), None)
    assert line, text
    for port in (45222, 45280, 45080):
        assert f"-L {port}:127.0.0.1:{port}" in line, line
    assert "another machine" in text, text
