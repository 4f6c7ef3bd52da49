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


async def test_unknown_payloads_are_dropped_on_reflection(frontdesk, clients):
    room = room_of("v32")
    v = await clients.visitor("mallory")
    alice = await clients.staff("alice_acme")
    await v.join(room, "Mal")
    await alice.join(room, "Alice")
    v.send_raw(f"<message type='groupchat' to='{room}' id='p1'><body>look</body>"
               "<x xmlns='urn:example:evil'><script>alert(1)</script></x>"
               "<html xmlns='http://jabber.org/protocol/xhtml-im'><body xmlns='http://www.w3.org/1999/xhtml'>"
               "<img src='http://example.invalid/track.png'/></body></html>"
               "<nick xmlns='http://jabber.org/protocol/nick'>Alice</nick>"
               "<composing xmlns='http://jabber.org/protocol/chatstates'/></message>")
    got = await alice.expect(lambda st: attr(st, "from") == f"{room}/Mal" and attr(st, "type") == "groupchat",
                             what="the reflection")
    namespaces = {c.tag.split("}")[0].strip("{") for c in got.xml}
    assert "urn:example:evil" not in namespaces and "http://jabber.org/protocol/xhtml-im" not in namespaces, show(got)
    # The sender's claimed <nick/> is dropped: the room's own name for it is in the from.
    assert "http://jabber.org/protocol/nick" not in namespaces, show(got)
    assert "http://jabber.org/protocol/chatstates" in namespaces, show(got)


async def test_iqs_of_every_type_to_every_address_and_errors_to_errors(frontdesk, clients):
    room = room_of("v33")
    v = await clients.visitor("prober")
    await v.join(room, "Pro")
    targets = ["chat.localhost", room, f"{room}/Pro", f"{room}/Nobody", "nobody_acme@chat.localhost"]
    for to in targets:
        for type_ in ("get", "set"):
            r = await v.iq(to, "<query xmlns='urn:example:unknown'/>", type_=type_)
            assert attr(r, "type") == "error" and error_of(r)[1] in (
                "service-unavailable", "feature-not-implemented", "item-not-found", "bad-request",
                "not-acceptable", "forbidden"), f"{type_} to {to}: {show(r)}"
        # Results and errors are never answered.
        for type_ in ("result", "error"):
            iid = f"quiet-{type_}-{to}"
            v.send_raw(f"<iq type='{type_}' to='{to}' id='{iid}'>"
                       + ("<error type='cancel'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error>"
                          if type_ == "error" else "") + "</iq>")
            await v.expect_none(lambda st, iid=iid: attr(st, "id") == iid, within=0.3, what=f"an answer to iq {iid}")
    # An error message to the room is not answered either, and the visitor is still in.
    v.send_raw(f"<message type='error' to='{room}' id='e1'><error type='cancel'>"
               "<undefined-condition xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></message>")
    await v.expect_none(lambda st: attr(st, "id") == "e1", within=0.5, what="an answer to an error")
    await v.say(room, "still here")


async def test_doctype_entities_and_processing_instructions_do_not_reach_frontdesk(frontdesk, clients):
    # ejabberd's parser deals with these on the client's own stream (frontdesk sees at most a
    # re-serialised stanza): the sender may lose its connection, nobody else notices.
    room, other = room_of("v34"), room_of("v35")
    w = await clients.visitor("bystander")
    await w.join(other, "Ann")
    tricks = [
        "<?xml-stylesheet href='x'?>",
        "<!DOCTYPE message [<!ENTITY lol 'lol'>]>",
        f"<message type='groupchat' to='{room}' id='ent'><body>&lol;&lol;</body></message>",
        f"<message type='groupchat' to='{room}' id='pi'><?evil do-it?><body>pi</body></message>",
    ]
    for trick in tricks:
        m = await clients.visitor("mallory")
        await m.join(room, "Mal")
        m.send_raw(trick)
        m.send_raw(f"<message type='groupchat' to='{room}' id='after'><body>after</body></message>")
        # Either the server cut the sender off, or the room went on for it; never a crash.
        try:
            await m.expect(lambda st: attr(st, "id") == "after", timeout=3, what="the room answering afterwards")
        except AssertionError:
            pass
        await m.stop()
        await w.say(other, f"still fine after {trick[:20]}")
    log = frontdesk.log_text()
    assert "connection lost" not in log and log.count(" connected ") <= 1, frontdesk.log_tail(30)
    assert frontdesk.running()
    bodies = [t["body"] for t in frontdesk.transcript(frontdesk.session_of(other)["id"])]
    assert len(bodies) == len(tricks), bodies
