"""`frontdesk check-config` as an operator meets it (no XMPP server needed)."""

from __future__ import annotations

import subprocess

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
