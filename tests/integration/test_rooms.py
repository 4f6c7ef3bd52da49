"""Visitor rooms against a real ejabberd 23.01: joins, the conversation both ways, the session
states in the database at each step, history, and the joins frontdesk must refuse.

Visitors are anonymous slixmpp clients on anon.localhost, staff log in to localhost with
passwords. Each test uses its own visitor id (and gets a fresh frontdesk and database).
"""

from __future__ import annotations

from datetime import datetime

from helpers import (JoinRefused, attr, body, delay_of, error_of, groupchat_from, kind, poll,
                     presence_from, show, stanza_ids)

SITE_STAFF = "alice_acme@localhost"


def room_of(visitor_id: str, site: str = "acme") -> str:
    return f"{visitor_id}_{site}@chat.localhost"


async def session_when(fd, room, pred=lambda s: True, what="", timeout=10):
    """Poll `frontdesk sessions --json` until the room's newest session satisfies pred."""
    return await poll(lambda: fd.session_of(room), lambda s: s is not None and pred(s),
                      timeout=timeout, what=f"session of {room} {what}".strip())


def state_is(state):
    return lambda s: s["state"] == state


def rfc3339_utc(value: str) -> datetime:
    assert isinstance(value, str) and value.endswith("Z"), f"not an RFC 3339 UTC time: {value!r}"
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def spoken(transcript):
    return [(t["role"], t["nick"], t["from"], t["body"]) for t in transcript if t["role"] != "system"]


async def test_visitor_join_opens_an_inactive_session(frontdesk, clients):
    room = room_of("v1")
    v = await clients.visitor("visitor")
    j = await v.join(room, "Ann")
    assert {110, 201} <= j.codes, show(j.self_presence)
    assert j.subject is not None, "no subject message after the self-presence"
    assert j.occupants == [] and j.history == [], [show(s) for s in j.stanzas]

    s = await session_when(frontdesk, room)
    assert (s["state"], s["visitor"], s["site"], s["staff"]) == ("INACTIVE", "v1", "acme", None), s
    assert isinstance(s["id"], int)
    assert s["closed_at"] is None
    rfc3339_utc(s["created_at"]), rfc3339_utc(s["updated_at"])


async def test_conversation_both_ways_and_the_state_at_each_step(frontdesk, clients):
    room = room_of("v2")
    v = await clients.visitor("visitor")
    alice = await clients.staff("alice_acme")
    await v.join(room, "Ann")
    s = await session_when(frontdesk, room, state_is("INACTIVE"), "INACTIVE after the join")
    sid = s["id"]

    # The visitor writes: ACTIVE. The reflection keeps the id and carries a stanza-id by the room.
    r1 = await v.say(room, "Hello, is anyone there?")
    assert attr(r1, "from") == f"{room}/Ann"
    assert any(x.get("by") == room and x.get("id") for x in stanza_ids(r1)), show(r1)
    await session_when(frontdesk, room, state_is("ACTIVE"), "ACTIVE after the visitor wrote")

    # A staff member joins: CHATTING, naming them. They see the visitor and the history.
    j = await alice.join(room, "Alice")
    assert 110 in j.codes and 201 not in j.codes, show(j.self_presence)
    assert [attr(p, "from") for p in j.occupants] == [f"{room}/Ann"], [show(p) for p in j.stanzas]
    assert [body(m) for m in j.history] == ["Hello, is anyone there?"], [show(m) for m in j.stanzas]
    assert all(delay_of(m) is not None for m in j.history), [show(m) for m in j.history]
    await v.expect(presence_from(f"{room}/Alice"), what="Alice's join presence")
    s = await session_when(frontdesk, room, state_is("CHATTING"), "CHATTING after alice joined")
    assert s["staff"] == SITE_STAFF and s["id"] == sid, s

    # Both ways; each sees their own reflection with a stanza-id by the room.
    r2 = await alice.say(room, "Hi Ann, how can I help?")
    assert any(x.get("by") == room for x in stanza_ids(r2)), show(r2)
    m = await v.expect(groupchat_from(room, nick="Alice", body_is="Hi Ann, how can I help?"),
                       what="alice's message at the visitor")
    assert attr(m, "id") == attr(r2, "id")
    await v.say(room, "My order is late")
    await alice.expect(groupchat_from(room, nick="Ann", body_is="My order is late"),
                       what="the visitor's message at alice")

    t = frontdesk.transcript(sid)
    assert spoken(t) == [
        ("visitor", "Ann", str(v.boundjid), "Hello, is anyone there?"),
        ("staff", "Alice", str(alice.boundjid), "Hi Ann, how can I help?"),
        ("visitor", "Ann", str(v.boundjid), "My order is late"),
    ], t
    times = [rfc3339_utc(e["at"]) for e in t]
    assert times == sorted(times), t

    # The staff member leaves while the visitor stays: ACTIVE again.
    await alice.leave(room, "Alice")
    await v.expect(presence_from(f"{room}/Alice", "unavailable"), what="Alice leaving")
    s = await session_when(frontdesk, room, state_is("ACTIVE"), "ACTIVE after alice left")
    assert s["id"] == sid and s["closed_at"] is None

    # Everyone has left: CLOSED, with closed_at; the row stays.
    await v.leave(room, "Ann")
    s = await session_when(frontdesk, room, state_is("CLOSED"), "CLOSED after everyone left", timeout=20)
    assert s["id"] == sid
    assert rfc3339_utc(s["closed_at"]) >= rfc3339_utc(s["created_at"])
    assert [e["body"] for e in spoken_rows(frontdesk.transcript(sid))] == [
        "Hello, is anyone there?", "Hi Ann, how can I help?", "My order is late"]


def spoken_rows(transcript):
    return [t for t in transcript if t["role"] != "system"]


async def test_staff_leaving_a_silent_visitor_goes_back_to_inactive(frontdesk, clients):
    room = room_of("v2b")
    v = await clients.visitor()
    alice = await clients.staff("alice_acme")
    await v.join(room, "Ann")
    await alice.join(room, "Alice")
    await session_when(frontdesk, room, state_is("CHATTING"), "CHATTING")
    await alice.leave(room, "Alice")
    await session_when(frontdesk, room, state_is("INACTIVE"),
                       "INACTIVE after alice left a visitor who never wrote")


async def test_history_on_rejoin_from_a_new_anonymous_jid(frontdesk, clients):
    room = room_of("v3")
    v1 = await clients.visitor("visitor (first page)")
    alice = await clients.staff("alice_acme")
    await v1.join(room, "Ann")
    await v1.say(room, "one")
    await alice.join(room, "Alice")
    await alice.say(room, "two")
    await v1.say(room, "three")
    sid = (await session_when(frontdesk, room, state_is("CHATTING")))["id"]

    # The page reloads: the old anonymous session leaves, a new one (new JID) joins.
    await v1.leave(room, "Ann")
    await alice.expect(presence_from(f"{room}/Ann", "unavailable"), what="Ann leaving")
    await v1.stop()
    v2 = await clients.visitor("visitor (after reload)")
    assert v2.boundjid.bare != v1.boundjid.bare
    j = await v2.join(room, "Ann")
    assert 110 in j.codes and 201 not in j.codes, show(j.self_presence)
    assert [attr(p, "from") for p in j.occupants] == [f"{room}/Alice"], [show(s) for s in j.stanzas]
    assert [(attr(m, "from"), body(m)) for m in j.history] == [
        (f"{room}/Ann", "one"), (f"{room}/Alice", "two"), (f"{room}/Ann", "three")
    ], [show(s) for s in j.stanzas]
    for m in j.history:
        d = delay_of(m)
        assert d is not None and d.get("stamp"), show(m)
    # Order: occupants' presences, self-presence, history, then the subject.
    order = [kind(s) + ("/subject" if s is j.subject else "") for s in j.stanzas]
    assert order == ["presence", "presence", "message", "message", "message", "message/subject"], order
    await alice.expect(presence_from(f"{room}/Ann"), what="Ann's rejoin presence")

    s = await session_when(frontdesk, room, state_is("CHATTING"), "CHATTING after the rejoin")
    assert s["id"] == sid, f"the rejoin opened a new session: {s}"
    await v2.say(room, "four")
    await alice.expect(groupchat_from(room, nick="Ann", body_is="four"))
    t = spoken(frontdesk.transcript(sid))
    assert [b for *_, b in t] == ["one", "two", "three", "four"], t
    assert t[0][2] == str(v1.boundjid) and t[3][2] == str(v2.boundjid), t


async def test_a_lingering_visitor_session_keeps_its_room_against_a_new_jid(frontdesk, clients):
    """The server still thinks the old visitor connection is there (here: a stream-management
    session waiting for resumption after its TCP connection died, as a BOSH session before its
    inactivity timeout). A new anonymous JID's join makes frontdesk ping the old JID; silence
    is no proof it is gone (a stranger could be the one asking), so the newcomer is refused and
    the room stays the old visitor's. On a site with tokens a reload takes over at once
    (test_widget), and the widget leaves its room when the page goes away."""
    from helpers import Client
    room = room_of("v3c")
    ej = clients.ej
    v1 = Client(ej.anon_host, "", port=ej.c2s_port, name="visitor (old page, XEP-0198)")
    v1.register_plugin("xep_0198")
    clients.made.append(v1)
    await v1.start()
    alice = await clients.staff("alice_acme")
    await v1.join(room, "Ann")
    await v1.say(room, "before the reload")
    await alice.join(room, "Alice")
    sid = (await session_when(frontdesk, room, state_is("CHATTING")))["id"]
    bound = str(v1.boundjid)

    v1.abort()  # the TCP connection dies without a stream close: ejabberd waits for a resume
    v1.online = False
    await alice.expect_none(presence_from(f"{room}/Ann", "unavailable"), within=1.0,
                            what="Ann leaving (ejabberd should keep the resumable session)")
    v2 = await clients.visitor("a new JID")
    r = await v2.try_join(room, "Ann", timeout=30)  # frontdesk's ping to the old JID times out
    assert isinstance(r, JoinRefused) and r.condition == "forbidden", r
    assert not [st for st in v2.log if groupchat_from(room)(st) and body(st) == "before the reload"], \
        "the history went to the newcomer"
    s = await session_when(frontdesk, room)
    assert (s["id"], s["state"]) == (sid, "CHATTING"), s
    assert f"jid={bound}" in frontdesk.log_text() and "the waiting join is refused" in frontdesk.log_text(), \
        frontdesk.log_tail(20)


async def test_a_second_visitor_jid_is_refused_while_the_first_is_there(frontdesk, clients):
    room = room_of("v3b")
    v1 = await clients.visitor("visitor")
    await v1.join(room, "Ann")
    other = await clients.visitor("someone else")
    # frontdesk may ping v1 first; v1 answers (it is still there), so the newcomer is refused.
    r = await other.try_join(room, "Eve", timeout=20)
    assert isinstance(r, JoinRefused), f"a second visitor JID got into a bound room: {r}"
    assert r.condition == "forbidden", r
    s = await session_when(frontdesk, room)
    assert s["state"] == "INACTIVE", s


async def test_second_staff_member_is_told_who_has_the_room(frontdesk, clients):
    room = room_of("v4")
    v = await clients.visitor()
    alice = await clients.staff("alice_acme")
    bob = await clients.staff("bob_acme")
    await v.join(room, "Ann")
    await v.say(room, "Hello?")
    await alice.join(room, "Alice")
    await session_when(frontdesk, room, state_is("CHATTING"), "CHATTING")

    r = await bob.try_join(room, "Bob")
    assert isinstance(r, JoinRefused), f"bob got into a room alice has: {r}"
    assert r.type == "cancel" and r.condition == "not-allowed", r
    assert r.text and "Alice" in r.text, f"the error text does not name Alice: {r.text!r}"
    await v.expect_none(presence_from(f"{room}/Bob"), within=0.5, what="Bob's presence at the visitor")

    s = await session_when(frontdesk, room)
    assert (s["state"], s["staff"]) == ("CHATTING", SITE_STAFF), s
    # Alice still chats.
    await alice.say(room, "Still here")
    await v.expect(groupchat_from(room, nick="Alice", body_is="Still here"))


async def test_staff_of_another_site_is_forbidden(frontdesk, clients):
    room = room_of("v5")
    v = await clients.visitor()
    carol = await clients.staff("carol_globex")
    await v.join(room, "Ann")
    r = await carol.try_join(room, "Carol")
    assert isinstance(r, JoinRefused), f"globex staff got into an acme room: {r}"
    assert r.condition == "forbidden", r
    s = await session_when(frontdesk, room)
    assert (s["state"], s["staff"]) == ("INACTIVE", None), s

    # Not even into an empty acme room (they would otherwise bind it as its "visitor").
    r = await carol.try_join(room_of("v5empty"), "Carol")
    assert isinstance(r, JoinRefused) and r.condition == "forbidden", r


async def test_unknown_site_is_item_not_found(frontdesk, clients):
    v = await clients.visitor()
    r = await v.try_join("v6_nosuchsite@chat.localhost", "Ann")
    assert isinstance(r, JoinRefused) and r.condition == "item-not-found", r
    r = await v.try_join("nounderscore@chat.localhost", "Ann")
    assert isinstance(r, JoinRefused) and r.condition == "item-not-found", r
    assert frontdesk.sessions() == []


async def test_nick_in_use_is_a_conflict(frontdesk, clients):
    room = room_of("v7")
    v = await clients.visitor()
    alice = await clients.staff("alice_acme")
    await v.join(room, "Ann")
    r = await alice.try_join(room, "Ann")
    assert isinstance(r, JoinRefused) and r.condition == "conflict", r
    # Under another nick alice gets in.
    await alice.join(room, "Alice")


async def test_groupchat_from_a_non_occupant_is_not_acceptable(frontdesk, clients):
    room = room_of("v7b")
    v = await clients.visitor()
    await v.join(room, "Ann")
    outsider = await clients.visitor("outsider")
    await outsider.say(room, "let me in", reflect=False)
    err = await outsider.expect(lambda st: kind(st) == "message" and attr(st, "type") == "error",
                                what="an error for a groupchat from a non-occupant")
    assert error_of(err)[1] == "not-acceptable", show(err)
    await v.expect_none(groupchat_from(room, body_is="let me in"), within=0.5,
                        what="the outsider's message reaching the room")
    s = await session_when(frontdesk, room)
    assert s["state"] == "INACTIVE", s
    assert spoken(frontdesk.transcript(s["id"])) == []


async def test_a_visitor_back_after_close_gets_a_new_session(frontdesk, clients):
    room = room_of("v9")
    v = await clients.visitor()
    await v.join(room, "Ann")
    await v.say(room, "first visit")
    first = (await session_when(frontdesk, room, state_is("ACTIVE")))["id"]
    await v.leave(room, "Ann")
    await session_when(frontdesk, room, state_is("CLOSED"), "CLOSED", timeout=20)

    j = await v.join(room, "Ann")
    assert {110, 201} <= j.codes, show(j.self_presence)
    assert j.history == [], [show(s) for s in j.history]
    s = await session_when(frontdesk, room, lambda s: s["id"] != first, "a new session")
    assert s["state"] == "INACTIVE" and s["id"] > first, s
    rows = {r["id"]: r for r in frontdesk.sessions() if r["room"] == room}
    assert rows[first]["state"] == "CLOSED", rows
    assert [b for *_, b in spoken(frontdesk.transcript(first))] == ["first visit"]
