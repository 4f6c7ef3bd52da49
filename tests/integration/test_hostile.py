"""Hostile input from a visitor through the real ejabberd: stanzas that would have ended
frontdesk's component stream (a 10 KB attribute value went over the XML parser's 8 KiB token
limit) or that are too big or too deep get `policy-violation`, and the link, the room and
everyone else's chats go on. The frontdesk log must show no reconnect.
"""

from __future__ import annotations

import pytest

from helpers import attr, error_of, kind, show


@pytest.fixture
def frontdesk_limits():
    # The test ejabberd shapes each client to 3 kB/s: small limits keep the test quick.
    return {"stanza_bytes": 8192, "depth": 16, "messages_per_minute": 600, "message_burst": 50}


def room_of(visitor: str) -> str:
    return f"{visitor}_acme@chat.localhost"


def error_for(mid: str):
    return lambda st: attr(st, "type") == "error" and attr(st, "id") == mid


async def test_oversized_and_deep_stanzas_are_refused_and_the_link_survives(frontdesk, clients):
    room, other = room_of("v30"), room_of("v31")
    v = await clients.visitor("mallory")
    w = await clients.visitor("bystander")
    await v.join(room, "Mal")
    await w.join(other, "Ann")

    # A 10 KB id: over the token limit. The stand-in keeps no id, so look for the error by type.
    v.send_raw(f"<message type='groupchat' to='{room}' id='{'A' * 10000}'><body>hi</body></message>")
    err = await v.expect(lambda st: kind(st) == "message" and attr(st, "type") == "error" and attr(st, "from") == room,
                         what="the refusal of the long id")
    assert error_of(err)[:2] == ("modify", "policy-violation"), show(err)

    # 9 KB of body: over the stanza size limit (8192 here).
    v.send_raw(f"<message type='groupchat' to='{room}' id='big1'><body>{'x' * 9_000}</body></message>")
    err = await v.expect(error_for("big1"), what="the refusal of the big message")
    assert error_of(err)[:2] == ("modify", "policy-violation"), show(err)

    # 20 levels of nesting: over the depth limit (16 here).
    deep = "<a xmlns='urn:x:deep'>" * 20 + "</a>" * 20
    v.send_raw(f"<message type='groupchat' to='{room}' id='deep1'><body>hi</body>{deep}</message>")
    err = await v.expect(error_for("deep1"), what="the refusal of the deep message")
    assert error_of(err)[:2] == ("modify", "policy-violation"), show(err)

    # Nothing of it was stored or reflected, and everything goes on.
    await v.say(room, "a normal message")
    await w.say(other, "meanwhile, another room")
    assert [e["body"] for e in frontdesk.transcript(frontdesk.session_of(room)["id"])] == ["a normal message"]
    log = frontdesk.log_text()
    assert "connection lost" not in log and log.count(" connected ") <= 1 and "stanza over a limit refused" in log, frontdesk.log_tail(30)
    # Logged once a minute per sender, not once per stanza.
    assert log.count("stanza over a limit refused") == 1, frontdesk.log_tail(30)
