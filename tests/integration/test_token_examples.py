"""The PHP and Node token examples (examples/php/frontdesk_token.php, examples/node/frontdesk-token.js),
run by the real `php` (Debian's php-cli) and `node`: they mint every published vector in
tests/token_vectors.json byte for byte, their verify functions accept each vector and refuse
tampered and expired ones, they refuse values frontdesk would refuse, and tokens they mint with
details get a visitor into a real ejabberd + frontdesk, the details showing to staff as signed.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from helpers import attr, body, frontdesk_with_clients, kind
from test_desk_routing import offer_of
from test_staff import desk, room_of, until_desk_says

REPO = Path(__file__).resolve().parents[2]
PHP_EXAMPLE = REPO / "examples" / "php" / "frontdesk_token.php"
NODE_EXAMPLE = REPO / "examples" / "node" / "frontdesk-token.js"
VECTORS = json.loads((REPO / "tests" / "token_vectors.json").read_text())
SECRET = "a-long-enough-token-secret-for-acme"

# Each driver reads {"mint": [...], "verify": [...]} on stdin and prints
# {"minted": [token...], "verified": [details or null...], "errors": [message...]}.
PHP_DRIVER = """<?php
require $argv[1];
$in = json_decode(stream_get_contents(STDIN), true);
$out = ['minted' => [], 'verified' => [], 'errors' => []];
foreach ($in['mint'] as $m) {
    try {
        $out['minted'][] = frontdesk_mint_token($m['secret'], $m['site'], $m['visitor'],
            ['expires' => $m['expires'], 'details' => $m['details'] ?? []]);
    } catch (InvalidArgumentException $e) {
        $out['minted'][] = null;
        $out['errors'][] = $e->getMessage();
    }
}
foreach ($in['verify'] as $v) {
    $d = frontdesk_verify_token($v['secret'], $v['site'], $v['visitor'], $v['token'], $v['now']);
    $out['verified'][] = $d === null ? null : (object) $d;
}
echo json_encode($out, JSON_UNESCAPED_UNICODE | JSON_UNESCAPED_SLASHES), "\\n";
"""

NODE_DRIVER = """
const { mintToken, verifyToken } = require(process.argv[2]);
const input = JSON.parse(require("node:fs").readFileSync(0, "utf8"));
const out = { minted: [], verified: [], errors: [] };
for (const m of input.mint) {
  try {
    out.minted.push(mintToken(m.secret, m.site, m.visitor, { expires: m.expires, details: m.details }));
  } catch (e) {
    out.minted.push(null);
    out.errors.push(e.message);
  }
}
for (const v of input.verify) out.verified.push(verifyToken(v.secret, v.site, v.visitor, v.token, v.now));
console.log(JSON.stringify(out));
"""


def run_example(tool: str, tmp_path: Path, mint: list, verify: list) -> dict:
    exe = shutil.which(tool)
    assert exe, f"`{tool}` is not installed: scripts/test installs it (ensure_php, ensure_web in scripts/lib.sh)"
    if tool == "php":
        driver, example = tmp_path / "driver.php", PHP_EXAMPLE
        driver.write_text(PHP_DRIVER)
    else:
        driver, example = tmp_path / "driver.js", NODE_EXAMPLE
        driver.write_text(NODE_DRIVER)
    r = subprocess.run([exe, str(driver), str(example)], input=json.dumps({"mint": mint, "verify": verify}),
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, f"{tool}: {r.stderr}"
    return json.loads(r.stdout)


def flip(hex_sig: str) -> str:
    return ("1" if hex_sig[0] == "0" else "0") + hex_sig[1:]


@pytest.mark.parametrize("tool", ["php", "node"])
def test_the_example_mints_and_verifies_every_published_vector(tool, tmp_path):
    assert len(VECTORS) >= 8 and sum("details" in v for v in VECTORS) >= 5
    checks, expected = [], []
    for v in VECTORS:
        base = {k: v[k] for k in ("secret", "site", "visitor")}
        parts = v["token"].split(".")
        checks += [
            dict(base, token=v["token"], now=v["expires"] - 1),
            dict(base, token=v["token"], now=v["expires"]),                       # expired
            dict(base, token=".".join(parts[:-1] + [flip(parts[-1])]), now=0),    # another signature
            dict(base, token=v["token"].upper() if len(parts) == 2 else v["token"], now=0),
            dict(base, visitor=v["visitor"] + "x", token=v["token"], now=0),      # another visitor
            dict(base, token=f"{parts[0]}.{parts[-1]}", now=0) if len(parts) == 3 else
            dict(base, token=f"{int(parts[0]) + 1}.{parts[1]}", now=0),          # details dropped / later expiry
        ]
        expected += [v.get("details", {}), None, None, v.get("details", {}), None, None]
    out = run_example(tool, tmp_path, VECTORS, checks)
    for v, minted in zip(VECTORS, out["minted"]):
        assert minted == v["token"], (tool, v["visitor"], minted)
    assert out["errors"] == []
    for check, want, got in zip(checks, expected, out["verified"]):
        assert got == want, (tool, check, got)


@pytest.mark.parametrize("tool", ["php", "node"])
def test_the_example_refuses_what_frontdesk_would_refuse(tool, tmp_path):
    base = {"secret": SECRET, "site": "acme", "visitor": "v1", "expires": 2_000_000_000}
    mint = [
        dict(base, details={"name": "x" * 101}),
        dict(base, details={"email": "e" * 255}),
        dict(base, details={"user_id": "é" * 129}),
        dict(base, details={"name": "🦊" * 100}),   # 100 characters (200 UTF-16 units): fine
        dict(base, details={"name": None, "email": None}),  # nothing to sign: the short form
    ]
    out = run_example(tool, tmp_path, mint, [])
    assert out["minted"][:3] == [None, None, None], out
    assert [e.split(" is ")[0] for e in out["errors"]] == ["name", "email", "user_id"], out["errors"]
    assert all("longer than" in e for e in out["errors"]), out["errors"]
    assert out["minted"][3] and out["minted"][3].count(".") == 2, out
    assert out["minted"][4] and out["minted"][4].count(".") == 1, out


async def test_tokens_the_examples_mint_let_visitors_in_with_signed_details(ejabberd, tmp_path):
    host = ejabberd.staff_host
    sites = [{"id": "acme", "name": "ACME Inc.", "staff": [f"alice_acme@{host}"], "token_secret": SECRET}]
    roster = {"ejabberd_api": f"http://127.0.0.1:{ejabberd.http_port}/api", "remove_after_secs": 3}
    expires = int(time.time()) + 3600
    people = {"php": ("v91", {"name": "Zoë O'Brien 李 🦊", "email": "zoe+php@example.com", "user_id": "php-7"}),
              "node": ("v92", {"name": "Åsa \"Node\" Ørn", "email": "asa/node@example.com", "user_id": "node-8"})}
    tokens = {}
    for tool, (visitor, details) in people.items():
        mint = [{"secret": SECRET, "site": "acme", "visitor": visitor, "expires": expires, "details": details}]
        tokens[tool] = run_example(tool, tmp_path, mint, [])["minted"][0]
        assert tokens[tool] and tokens[tool].count(".") == 2, tokens
    async with frontdesk_with_clients(ejabberd, tmp_path / "frontdesk", sites=sites, roster=roster) as (fd, clients):
        component = ejabberd.component_jid
        alice = await clients.staff("alice_acme")
        await until_desk_says(alice, component, "!diag", "available: 1", timeout=20)
        for tool, (visitor, details) in people.items():
            room = room_of(visitor)
            v = await clients.visitor()
            v.send_raw(f"<presence to='{room}/Guest'><x xmlns='http://jabber.org/protocol/muc'>"
                       f"<password>{tokens[tool]}</password></x></presence>")
            await v.expect(lambda st: kind(st) == "presence" and attr(st, "from") == f"{room}/Guest"
                           and attr(st, "type") != "error", what=f"the {tool} token's visitor admitted")
            await v.say(room, f"Hello from {tool}")
            n = fd.session_of(room)["id"]
            offer = await alice.expect(offer_of(component, n), what=f"the offer of the {tool} visitor")
            assert f"name: {details['name']} ✓ · email: {details['email']} ✓" in body(offer), body(offer)
            info = body(await desk(alice, component, f"!info {n}", f"#{n}"))
            for label, key in (("name", "name"), ("email", "email"), ("user id", "user_id")):
                assert f"{label}: {details[key]} (signed by the website)" in info, (tool, info)

        # A token minted by one example for another visitor is refused, and opens no session.
        v = await clients.visitor()
        room = room_of("v93")
        v.send_raw(f"<presence to='{room}/Eve'><x xmlns='http://jabber.org/protocol/muc'>"
                   f"<password>{tokens['php']}</password></x></presence>")
        refused = await v.expect(lambda st: kind(st) == "presence" and attr(st, "type") == "error",
                                 what="the refusal of a token for another visitor")
        assert "not-authorized" in str(refused), refused
        assert fd.session_of(room) is None
