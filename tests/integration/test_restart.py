"""The XMPP server restarted in the middle of a chat: frontdesk reconnects by itself, the
visitor (with a new anonymous JID) and the staff member rejoin, and the session goes on."""

from __future__ import annotations

import asyncio

import pytest

from helpers import body, delay_of, groupchat_from, poll, presence_from, show, wait_component

ROOM = "v10_acme@chat.localhost"


@pytest.mark.restarts_server
async def test_server_restart_mid_chat_continues_the_session(ejabberd, frontdesk, clients):
    v = await clients.visitor("visitor")
    alice = await clients.staff("alice_acme")
    await v.join(ROOM, "Ann")
    await v.say(ROOM, "before the restart")
    await alice.join(ROOM, "Alice")
    await alice.say(ROOM, "hello from before")
    await v.expect(groupchat_from(ROOM, nick="Alice", body_is="hello from before"))
    s = await poll(lambda: frontdesk.session_of(ROOM), lambda s: s and s["state"] == "CHATTING",
                   what="CHATTING before the restart")
    sid = s["id"]

    stop_s, start_s = await asyncio.to_thread(ejabberd.restart)
    for c in (v, alice):  # their connections died with the server
        c.online = False
        c.abort()
    assert frontdesk.running(), f"frontdesk exited when ejabberd stopped\n{frontdesk.log_tail()}"

    # New connections: the visitor gets a new anonymous JID, alice the same full JID.
    v2 = await clients.visitor("visitor after restart")
    assert v2.boundjid.bare != v.boundjid.bare
    took = await wait_component(v2, "chat.localhost", timeout=40, is_alive=frontdesk.running)
    alice2 = await clients.staff("alice_acme")
    assert str(alice2.boundjid) == str(alice.boundjid)

    j = await v2.join(ROOM, "Ann", timeout=20)
    assert 201 not in j.codes, f"the rejoin opened a new room/session: {show(j.self_presence)}"
    assert [body(m) for m in j.history] == ["before the restart", "hello from before"], \
        [show(st) for st in j.stanzas]
    assert all(delay_of(m) is not None for m in j.history)
    ja = await alice2.join(ROOM, "Alice", timeout=20)
    assert [body(m) for m in ja.history] == ["before the restart", "hello from before"], \
        [show(st) for st in ja.stanzas]
    await v2.expect(presence_from(f"{ROOM}/Alice"), what="Alice's presence after the restart")

    await v2.say(ROOM, "after the restart")
    await alice2.expect(groupchat_from(ROOM, nick="Ann", body_is="after the restart"))
    await alice2.say(ROOM, "welcome back")
    await v2.expect(groupchat_from(ROOM, nick="Alice", body_is="welcome back"))

    s = await poll(lambda: frontdesk.session_of(ROOM), lambda s: s and s["state"] == "CHATTING",
                   what="CHATTING after the restart")
    assert s["id"] == sid and s["staff"] == "alice_acme@localhost" and s["closed_at"] is None, s
    spoken = [(t["role"], t["from"], t["body"]) for t in frontdesk.transcript(sid) if t["role"] != "system"]
    assert spoken == [
        ("visitor", str(v.boundjid), "before the restart"),
        ("staff", str(alice.boundjid), "hello from before"),
        ("visitor", str(v2.boundjid), "after the restart"),
        ("staff", str(alice2.boundjid), "welcome back"),
    ], spoken
    assert frontdesk.running(), frontdesk.log_tail()
    print(f"ejabberd stop {stop_s:.2f} s, start {start_s:.2f} s, frontdesk answered "
          f"{took:.2f} s after the visitor logged in again")
