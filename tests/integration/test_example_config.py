"""ejabberd.yml.example, as scripts/demo uses it: derived for loopback (same options, private
ports, localhost domains, no TLS), it starts, and frontdesk, visitors, staff and BOSH work."""

from __future__ import annotations

import urllib.error
import urllib.request

import pytest

import xmpp_env
from helpers import Clients, groupchat_from, wait_component


@pytest.fixture
def example_ejabberd(tmp_path):
    template = xmpp_env.derive_from_example(xmpp_env.EXAMPLE.read_text())
    ej = xmpp_env.Ejabberd.create(tmp_path / "ejabberd", template=template)
    try:
        ej.start(timeout=30)
    except xmpp_env.StartError as e:
        pytest.fail(f"ejabberd does not start from ejabberd.yml.example: {e}", pytrace=False)
    try:
        ej.register("alice_acme", ej.staff_host, "alice-pw")
        yield ej
    finally:
        ej.stop()


def test_example_config_keeps_the_component_listener_settings():
    import yaml
    cfg = yaml.safe_load(xmpp_env.EXAMPLE.read_text())
    service = [l for l in cfg["listen"] if l["module"] == "ejabberd_service"]
    assert len(service) == 1, service
    s = service[0]
    assert s["ip"] == "127.0.0.1" and s["port"] == 5347, s
    assert s["max_stanza_size"] == 262144 and "shaper" not in s, s
    assert "chat.example.com" in s["hosts"], s
    c2s = [l for l in cfg["listen"] if l["module"] == "ejabberd_c2s"][0]
    assert c2s.get("max_stanza_size") and c2s.get("shaper"), c2s
    anon = cfg["host_config"]["anon.example.com"]
    assert anon["auth_method"] == "anonymous" and anon["anonymous_protocol"] == "sasl_anon", anon
    http = [l for l in cfg["listen"] if l["module"] == "ejabberd_http"][0]
    assert http["request_handlers"]["/bosh"] == "mod_bosh", http
    assert http["request_handlers"]["/ws"] == "ejabberd_http_ws", http


async def test_example_config_runs_a_chat(example_ejabberd, tmp_path):
    ej = example_ejabberd
    fd = xmpp_env.Frontdesk(tmp_path / "frontdesk", ejabberd=ej)
    fd.start()
    clients = Clients(ej, ej.passwords)
    try:
        v = await clients.visitor()
        assert v.boundjid.domain == ej.anon_host
        await wait_component(v, ej.component_jid, timeout=20, is_alive=fd.running)
        alice = await clients.staff("alice_acme")
        room = f"v1_acme@{ej.component_jid}"
        await v.join(room, "Ann")
        await alice.join(room, "Alice")
        await v.say(room, "hello from the example config")
        await alice.expect(groupchat_from(room, nick="Ann", body_is="hello from the example config"))

        # BOSH answers at /bosh, with CORS for a widget served from another origin.
        req = urllib.request.Request(f"http://127.0.0.1:{ej.http_port}/bosh", method="OPTIONS",
                                     headers={"Origin": "http://127.0.0.1:1",
                                              "Access-Control-Request-Method": "POST"})
        with urllib.request.urlopen(req, timeout=10) as resp:
            assert resp.status == 200
            assert resp.headers.get("Access-Control-Allow-Origin") == "*", dict(resp.headers)
    finally:
        await clients.close()
        code = fd.stop()
    assert code == 0, fd.log_tail()


def test_optional_api_permissions_allow_roster_admin_from_loopback(tmp_path):
    """The commented-out api_permissions block, once uncommented, is valid and does what it
    says: POST /api/add_rosteritem from loopback works, and ejabberdctl still works."""
    import json

    text = xmpp_env.enable_optional_api(xmpp_env.EXAMPLE.read_text())
    ej = xmpp_env.Ejabberd.create(tmp_path / "ejabberd", template=xmpp_env.derive_from_example(text))
    try:
        try:
            ej.start(timeout=30)
        except xmpp_env.StartError as e:
            pytest.fail(f"ejabberd does not start with the optional API block enabled: {e}",
                        pytrace=False)
        ej.register("alice_acme", ej.staff_host, "alice-pw")  # ejabberdctl still allowed
        body = {"localuser": "alice_acme", "localhost": ej.staff_host, "user": "v1",
                "host": ej.anon_host, "nick": "Visitor v1", "group": "Visitors", "subs": "both"}
        req = urllib.request.Request(f"http://127.0.0.1:{ej.http_port}/api/add_rosteritem",
                                     data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as resp:
            assert resp.status == 200, resp.read()
        roster = ej.ctl("get_roster", "alice_acme", ej.staff_host).stdout
        assert f"v1@{ej.anon_host}" in roster, roster
        req = urllib.request.Request(f"http://127.0.0.1:{ej.http_port}/api/delete_rosteritem",
                                     data=json.dumps({k: body[k] for k in ("localuser", "localhost", "user", "host")}).encode(),
                                     method="POST", headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as resp:
            assert resp.status == 200, resp.read()
        assert f"v1@{ej.anon_host}" not in ej.ctl("get_roster", "alice_acme", ej.staff_host).stdout
        # Anything else through the API stays forbidden.
        req = urllib.request.Request(f"http://127.0.0.1:{ej.http_port}/api/registered_users",
                                     data=json.dumps({"host": ej.staff_host}).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                status = resp.status
        except urllib.error.HTTPError as e:
            status = e.code
        assert status in (401, 403), status
    finally:
        ej.stop()
