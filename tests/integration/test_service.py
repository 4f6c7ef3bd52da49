"""The component as a service: disco#info, ping, unknown IQs, and malformed stanzas that
ejabberd passes through (frontdesk answers them and goes on)."""

from __future__ import annotations

from helpers import (NS_DISCO_INFO, NS_PING, attr, child, error_of, error_reply, groupchat_from,
                     kind, poll, show)

COMPONENT = "chat.localhost"


async def test_disco_info_names_a_text_conference_service(frontdesk, clients):
    v = await clients.visitor()
    r = await v.iq(COMPONENT, f"<query xmlns='{NS_DISCO_INFO}'/>")
    assert attr(r, "type") == "result", show(r)
    q = child(r, NS_DISCO_INFO, "query")
    identities = [(i.get("category"), i.get("type")) for i in q.findall(f"{{{NS_DISCO_INFO}}}identity")]
    features = {f.get("var") for f in q.findall(f"{{{NS_DISCO_INFO}}}feature")}
    assert ("conference", "text") in identities, show(r)
    assert {"http://jabber.org/protocol/muc", "urn:xmpp:ping"} <= features, show(r)


async def test_ping_is_answered(frontdesk, clients):
    v = await clients.visitor()
    r = await v.iq(COMPONENT, f"<ping xmlns='{NS_PING}'/>")
    assert attr(r, "type") == "result", show(r)


async def test_unknown_iq_is_service_unavailable(frontdesk, clients):
    alice = await clients.staff("alice_acme")
    r = await alice.iq(COMPONENT, "<query xmlns='jabber:iq:last'/>")
    assert attr(r, "type") == "error" and error_of(r)[1] == "service-unavailable", show(r)
    r = await alice.iq(COMPONENT, "<query xmlns='jabber:iq:private'><x xmlns='a:b'/></query>", type_="set")
    assert attr(r, "type") == "error" and error_of(r)[1] == "service-unavailable", show(r)


async def test_malformed_stanzas_are_answered_and_everything_goes_on(frontdesk, clients):
    # What ejabberd 23.01 passes through to the component (seen in frontdesk's log):
    # the IQ get without a child and the presences with <priority>999</priority> arrive and
    # fail to parse there; frontdesk answers bad-request when they have an id. The message
    # with type='bogus' arrives too and is refused (it is not a groupchat from an occupant).
    room = "v8_acme@chat.localhost"
    v = await clients.visitor()
    await v.join(room, "Ann")

    v.send_raw(f"<iq type='get' to='{COMPONENT}' id='bad1'/>")
    r = await v.expect(error_reply("bad1", "iq"), what="an error reply to iq bad1")
    assert error_of(r)[1] == "bad-request", show(r)

    v.send_raw(f"<presence to='{room}/Vis'><priority>999</priority></presence>")
    v.send_raw(f"<presence id='bad2' to='{room}/Vis'><priority>999</priority></presence>")
    r = await v.expect(error_reply("bad2", "presence"), what="an error reply to presence bad2")
    assert error_of(r)[1] == "bad-request", show(r)

    v.send_raw(f"<message type='bogus' to='{room}'><body>x</body></message>")
    v.send_raw(f"<message type='bogus' id='bad3' to='{room}'><body>y</body></message>")
    r = await v.expect(error_reply("bad3", "message"), what="an error reply to message bad3")
    assert error_of(r)[0] is not None, show(r)

    # The link and the room go on: a normal conversation works and is recorded.
    alice = await clients.staff("alice_acme")
    await v.say(room, "Still there?")
    j = await alice.join(room, "Alice")
    assert [attr(p, "from") for p in j.occupants] == [f"{room}/Ann"], [show(s) for s in j.stanzas]
    await alice.say(room, "Yes, hello")
    await v.expect(groupchat_from(room, nick="Alice", body_is="Yes, hello"))
    assert frontdesk.running(), frontdesk.log_tail()

    s = await poll(lambda: frontdesk.session_of(room), lambda s: s and s["state"] == "CHATTING",
                   what="CHATTING")
    bodies = [(t["role"], t["body"]) for t in frontdesk.transcript(s["id"]) if t["role"] != "system"]
    assert bodies == [("visitor", "Still there?"), ("staff", "Yes, hello")], bodies
    # Nobody saw an occupant "Vis" (the malformed presences were not joins).
    assert not [st for st in v.log if kind(st) == "presence" and attr(st, "from") == f"{room}/Vis"
                and attr(st, "type") != "error"]
