"""The staff side on Prosody 0.12 with prosody-modules' mod_privilege: frontdesk picks the
XEP-0356 rung (urn:xmpp:privilege:2) by itself, and staff rosters get the front desk and the
visitors through privileged roster sets. The suite starts its own Prosody on private ports.
"""

from __future__ import annotations

import asyncio
import secrets
import subprocess
import time

import pytest

import prosody_env
from conftest import TIMINGS
import xmpp_env
from helpers import body, frontdesk_with_clients, groupchat_from, poll
from test_staff import chat_from, contact_presence, roster_item, session_when, until_desk_says, visitors_waiting_flow

STAFF = {"alice_acme": "localhost", "bob_acme": "localhost", "carol_globex": "localhost"}


@pytest.fixture(scope="module")
def prosody(tmp_path_factory):
    try:
        p = prosody_env.Prosody.create(tmp_path_factory.mktemp("prosody"))
        p.start(timeout=30)
        for user, host in STAFF.items():
            p.register(user, host, secrets.token_urlsafe(9))
    except (xmpp_env.StartError, RuntimeError, OSError) as e:
        pytest.fail(f"could not start prosody: {e}", pytrace=False)
    yield p
    p.stop()


@pytest.fixture
async def on_prosody(prosody, tmp_path):
    async with frontdesk_with_clients(prosody, tmp_path / "frontdesk", roster={"remove_after_secs": 3}) as running:
        yield running


async def test_privileged_roster_rung_on_prosody(on_prosody, prosody):
    fd, clients = on_prosody
    component = prosody.component_jid
    alice = await clients.staff("alice_acme")
    bob = await clients.staff("bob_acme")
    carol = await clients.staff("carol_globex")
    await poll(lambda: roster_item(alice, component), lambda i: i is not None, 15, "the front desk in alice's roster")
    answer = await until_desk_says(alice, component, "!diag", "roster: privilege (urn:xmpp:privilege:2)")
    assert "localhost urn:xmpp:privilege:2" in body(answer), body(answer)
    assert "falling back" not in fd.log_text(), fd.log_tail(30)

    room = "v20_acme@chat.localhost"
    v = await clients.visitor()
    t0 = time.monotonic()
    await v.join(room, "Ann")
    item = await poll(lambda: roster_item(alice, room), lambda i: i is not None, 15, "the visitor in alice's roster",
                      interval=0.01)
    TIMINGS.setdefault("join -> staff roster item (Prosody privilege)", []).append(time.monotonic() - t0)
    assert item["name"] == "Ann (ACME Inc.)" and item["groups"] == ["ACME Inc. visitors"], item
    assert item["subscription"] == "both", item
    await alice.expect(contact_presence(room, "away", "INACTIVE — browsing"), what="the INACTIVE presence")
    assert roster_item(carol, room) is None

    # An offer, a one-to-one answer, !finish, and the item leaves the roster.
    for c in (alice, bob):
        await until_desk_says(c, component, "!status", "available for new chats")
    await v.say(room, "Hello from Prosody")
    for c in (alice, bob):
        await c.expect(chat_from(room, body_is="Hello from Prosody"), what="the offer")
        await c.expect(contact_presence(room, "chat", "ACTIVE — Hello from Prosody"), what="the ACTIVE presence")
    alice.send_message(mto=room, mbody="Hi Ann!", mtype="chat")
    await v.expect(groupchat_from(room, nick="alice_acme", body_is="Hi Ann!"), what="alice's answer")
    await session_when(fd, room, lambda s: s["state"] == "CHATTING", "CHATTING")
    n = fd.session_of(room)["id"]
    await bob.expect(chat_from(component, body_is=f"#{n} is now handled by alice_acme."), what="bob told")
    await bob.expect(contact_presence(room, "dnd", "CHATTING with alice_acme"), what="the CHATTING presence")
    bob.send_message(mto=room, mbody="Me too", mtype="chat")
    err = await bob.expect(lambda st: st.xml.get("type") == "error" and st.xml.get("from") == room, what="the refusal")
    assert "alice_acme is already chatting" in str(err), str(err)
    assert not [st for st in carol.log if st.xml.get("from", "").startswith(room)], "carol saw the visitor"
    alice.send_message(mto=component, mbody="!finish", mtype="chat")
    await v.expect(groupchat_from(room, body_is="The chat is now closed."), what="the closing line")
    await session_when(fd, room, lambda s: s["state"] == "CLOSED", "CLOSED")
    await poll(lambda: roster_item(alice, room), lambda i: i is None, 20, "the visitor gone from alice's roster")


async def test_with_visitors_waiting_only_visitors_who_write_reach_staff_rosters_on_prosody(prosody, tmp_path):
    async with frontdesk_with_clients(prosody, tmp_path / "frontdesk",
                                      roster={"remove_after_secs": 3, "visitors": "waiting"}) as (fd, clients):
        await visitors_waiting_flow(fd, clients, prosody.component_jid)
        assert "roster: privilege" in fd.log_text() or "rung=privilege" in fd.log_text(), fd.log_tail(30)


async def _refused(fd) -> tuple[int, str]:
    fd.start()
    try:
        code = await asyncio.to_thread(fd.proc.wait, 15)
    except subprocess.TimeoutExpired:
        fd.kill()
        raise AssertionError(f"frontdesk kept running (retrying?)\n{fd.log_tail()}")
    return code, fd.log_text()


async def test_wrong_secret_and_unknown_domain_say_which_and_exit(prosody, tmp_path):
    # Prosody tells the two apart (not-authorized / host-unknown); frontdesk says which and
    # stops at once instead of retrying a handshake that cannot succeed.
    fd = xmpp_env.Frontdesk(tmp_path / "wrong-secret", ejabberd=prosody)
    fd.config.write_text(fd.config.read_text().replace(prosody.component_secret, "not-the-secret"))
    code, log = await _refused(fd)
    assert code == 1, log
    assert "refused the component secret" in log and "component.secret" in log, log
    assert "retrying" not in log, log

    fd = xmpp_env.Frontdesk(tmp_path / "unknown-domain", ejabberd=prosody)
    fd.config.write_text(fd.config.read_text().replace(f'"{prosody.component_jid}"', '"nochat.localhost"'))
    code, log = await _refused(fd)
    assert code == 1, log
    assert "does not know the component domain nochat.localhost" in log, log
    assert "retrying" not in log, log
