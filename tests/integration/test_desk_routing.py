"""Routing and capacity against the real ejabberd 23.01 with three slixmpp staff: waiting chats
offered one at a time in turn (`routing = "round-robin"`), an offer moving on when it runs out,
`!pass`, a staff member's own cap (`max_chats`) and display name (`name`).
"""

from __future__ import annotations

import asyncio

import pytest

from helpers import attr, body, frontdesk_with_clients, groupchat_from, kind, presence_from
from test_staff import chat_from, desk, room_of, until_desk_says

TIMEOUT = 5   # offer_timeout_secs


@pytest.fixture
async def routed(ejabberd, tmp_path):
    ejabberd.ensure_staff_account("dave_acme")
    host = ejabberd.staff_host
    sites = [
        {"id": "acme", "name": "ACME Inc.",
         "staff": [f"alice_acme@{host}", f"bob_acme@{host}",
                   {"jid": f"dave_acme@{host}", "name": "Dave", "max_chats": 1}],
         "desk": {"routing": "round-robin", "max_chats_per_staff": 2, "offer_timeout_secs": TIMEOUT}},
        {"id": "globex", "name": "Globex", "staff": [f"carol_globex@{host}"]},
    ]
    roster = {"ejabberd_api": f"http://127.0.0.1:{ejabberd.http_port}/api", "remove_after_secs": 3}
    async with frontdesk_with_clients(ejabberd, tmp_path / "frontdesk", sites=sites, roster=roster) as running:
        yield running


def offer_of(component: str, n: int | None = None):
    """The desk's note offering a chat (chat #n if given)."""
    def p(st):
        text = body(st) or ""
        return (chat_from(component)(st) and "wants to chat" in text
                and (n is None or f"(#{n})" in text))
    return p


async def test_round_robin_offers_in_turn_respects_caps_and_moves_on(routed, ejabberd):
    fd, clients = routed
    component = ejabberd.component_jid
    staff = {name: await clients.staff(f"{name}_acme") for name in ("alice", "bob", "dave")}
    await until_desk_says(staff["alice"], component, "!diag", "staff online: 3, available: 3", timeout=20)

    # Three visitors write: one offer each, in turn (staff in address order).
    visitors, numbers = {}, {}
    for v, name in (("v80", "alice"), ("v81", "bob"), ("v82", "dave")):
        room = room_of(v)
        visitors[v] = await clients.visitor()
        await visitors[v].join(room, v.upper())
        await visitors[v].say(room, f"hello from {v}")
        note = await staff[name].expect(offer_of(component), what=f"{v}'s offer to {name}")
        numbers[v] = int(body(note).split("(#")[1].split(")")[0])
        await staff[name].expect(chat_from(room, body_is=f"hello from {v}"), what=f"{v}'s words to {name}")
    await asyncio.gather(*(c.expect_none(offer_of(component), within=1.0, what=f"a second offer to {name}")
                           for name, c in staff.items()))

    # Dave answers his: the visitor sees "Dave" join and say it; Dave is now at his cap (1).
    room82 = room_of("v82")
    staff["dave"].send_message(mto=room82, mbody="Hi, Dave here.", mtype="chat")
    await visitors["v82"].expect(presence_from(f"{room82}/Dave"), what="Dave joining under his name")
    await visitors["v82"].expect(groupchat_from(room82, nick="Dave", body_is="Hi, Dave here."), what="Dave's reply")
    answer = await desk(staff["dave"], component, f"!accept {numbers['v80']}", "limit")
    assert body(answer) == ("You have 1 chat, your limit (max_chats in your staff entry is 1). "
                            "Finish one first (!finish N)."), body(answer)

    # Alice does not answer v80 within the timeout: it moves on to bob (dave is at his cap).
    moved = await staff["alice"].expect(chat_from(component, contains=f"#{numbers['v80']} went to the next person"),
                                        timeout=TIMEOUT + 5, what="alice told the offer moved on")
    assert f"no answer in {TIMEOUT} s" in body(moved), body(moved)
    await staff["bob"].expect(offer_of(component, numbers["v80"]), what="v80's offer moved to bob")
    await staff["bob"].expect(chat_from(room_of("v80"), body_is="hello from v80"), what="v80's words replayed to bob")
    await staff["dave"].expect_none(offer_of(component, numbers["v80"]), within=0.5, what="an offer to dave at his cap")

    # Bob passes it: alice already had her turn and dave is full, so it waits.
    answer = await desk(staff["bob"], component, f"!pass {numbers['v80']}", "passed")
    assert body(answer) == f"#{numbers['v80']} passed: nobody else can take it now; it waits and is offered again.", body(answer)
    # Anyone under their cap can still take it.
    answer = await desk(staff["alice"], component, f"!accept {numbers['v80']}", "yours")
    assert body(answer).startswith(f"#{numbers['v80']} is yours"), body(answer)
    await visitors["v80"].expect(presence_from(f"{room_of('v80')}/alice_acme"), what="alice joining v80's chat")
    # Nothing of it reached another site's staff.
    carol = await clients.staff("carol_globex")
    await carol.expect_none(lambda st: kind(st) == "message" and "v8" in (attr(st, "from") or ""), within=0.5,
                            what="a visitor of acme reaching carol")


@pytest.fixture
async def canned(ejabberd, tmp_path):
    host = ejabberd.staff_host
    sites = [
        {"id": "acme", "name": "ACME Inc.",
         "staff": [f"alice_acme@{host}", {"jid": f"bob_acme@{host}", "name": "Bob"}],
         "canned": [{"key": "hello", "text": "Hi! I'm looking into it right now."}]},
        {"id": "globex", "name": "Globex", "staff": [f"carol_globex@{host}"]},
    ]
    roster = {"ejabberd_api": f"http://127.0.0.1:{ejabberd.http_port}/api", "remove_after_secs": 3}
    async with frontdesk_with_clients(ejabberd, tmp_path / "frontdesk", sites=sites, roster=roster) as running:
        yield running


async def test_a_canned_reply_and_a_transfer_as_the_visitor_sees_them(canned, ejabberd):
    fd, clients = canned
    component = ejabberd.component_jid
    alice = await clients.staff("alice_acme")
    bob = await clients.staff("bob_acme")
    await until_desk_says(alice, component, "!diag", "staff online: 2, available: 2", timeout=20)
    room = room_of("v85")
    v = await clients.visitor()
    await v.join(room, "Ann")
    await v.say(room, "Where is my parcel?")
    await alice.expect(offer_of(component), what="the offer to alice")
    n = fd.session_of(room)["id"]

    alice.send_message(mto=room, mbody="Hello Ann.", mtype="chat")
    await v.expect(groupchat_from(room, nick="alice_acme", body_is="Hello Ann."), what="alice's reply")
    answer = await desk(alice, component, "!say hello", "Sent to")
    assert body(answer) == f"Sent to Ann (#{n}): Hi! I'm looking into it right now.", body(answer)
    await v.expect(groupchat_from(room, nick="alice_acme", body_is="Hi! I'm looking into it right now."),
                   what="the canned reply, as alice")

    answer = await desk(alice, component, f"!transfer {n} bob", "now")
    assert body(answer) == f"#{n} is now bob_acme@{ejabberd.staff_host}'s.", body(answer)
    await v.expect(lambda st: kind(st) == "presence" and attr(st, "from") == f"{room}/alice_acme"
                   and attr(st, "type") == "unavailable", what="alice leaving, as the visitor sees it")
    await v.expect(presence_from(f"{room}/Bob"), what="Bob joining under his name")
    note = await bob.expect(chat_from(component, contains=f"handed you chat #{n}"), what="the note to bob")
    assert "with Ann on ACME Inc." in body(note), body(note)
    await bob.expect(chat_from(room, body_is="Where is my parcel?"), what="what Ann wrote, replayed to bob")
    bob.send_message(mto=room, mbody="Bob here, I have it now.", mtype="chat")
    await v.expect(groupchat_from(room, nick="Bob", body_is="Bob here, I have it now."), what="bob's reply")
    s = await poll_session(fd, room, lambda s: s["staff"] == f"bob_acme@{ejabberd.staff_host}")
    assert s["state"] == "CHATTING", s
    transcript = fd.cli("transcript", str(n)).stdout
    for line in ("alice_acme left the chat", "Bob joined the chat", "Hi! I'm looking into it right now."):
        assert line in transcript, transcript


async def poll_session(fd, room, pred, timeout: float = 10):
    from helpers import poll
    return await poll(lambda: fd.session_of(room), lambda s: bool(s) and pred(s), timeout, "the session row")


def notice_from(room: str, starts: str):
    """A system line to the visitor: a groupchat message from the room's bare JID."""
    def p(st):
        return (kind(st) == "message" and attr(st, "type") == "groupchat" and attr(st, "from") == room
                and (body(st) or "").startswith(starts))
    return p


async def test_closed_hours_and_places_in_line_as_visitors_hear_them(ejabberd, tmp_path):
    import datetime
    day = datetime.datetime.now(datetime.timezone.utc).date() + datetime.timedelta(days=3)
    sites = [{"id": "acme", "name": "ACME Inc.", "staff": [f"alice_acme@{ejabberd.staff_host}"],
              "desk": {"hours": [f"{day.strftime('%a').lower()} 09:00-10:00"], "timezone": "UTC"}}]
    roster = {"ejabberd_api": f"http://127.0.0.1:{ejabberd.http_port}/api", "remove_after_secs": 3}
    async with frontdesk_with_clients(ejabberd, tmp_path / "frontdesk", sites=sites, roster=roster) as (fd, clients):
        first, second = room_of("v86"), room_of("v87")
        ann, bea = await clients.visitor(), await clients.visitor()
        await ann.join(first, "Ann")
        await ann.say(first, "Hello?")
        closed = await ann.expect(notice_from(first, "We are closed right now"), what="the closed-hours notice")
        assert body(closed).startswith(f"We are closed right now and open again on {day.strftime('%A')} at 09:00 "
                                       "(UTC time). Leave your email address here"), body(closed)
        await ann.expect_none(notice_from(first, "No one is available"), within=0.5,
                              what="'no one is available' on top of the closed notice")
        await bea.join(second, "Bea")
        await bea.say(second, "Hi")
        # Nobody takes them: after 10 s of waiting each hears their place.
        await ann.expect(notice_from(first, "You are next in line."), timeout=20, what="Ann's place")
        await bea.expect(notice_from(second, "You are number 2 in line."), timeout=20, what="Bea's place")
        # Ann leaves: Bea moves up.
        await ann.leave(first, "Ann")
        await bea.expect(notice_from(second, "You are next in line."), timeout=25, what="Bea's new place")


async def test_signed_details_and_the_page_reach_staff(ejabberd, tmp_path):
    host = ejabberd.staff_host
    sites = [{"id": "acme", "name": "ACME Inc.", "staff": [f"alice_acme@{host}"],
              "token_secret": "a-long-enough-token-secret-for-acme", "desk": {"prechat": ["company?"]}}]
    roster = {"ejabberd_api": f"http://127.0.0.1:{ejabberd.http_port}/api", "remove_after_secs": 3}
    async with frontdesk_with_clients(ejabberd, tmp_path / "frontdesk", sites=sites, roster=roster) as (fd, clients):
        component = ejabberd.component_jid
        alice = await clients.staff("alice_acme")
        await until_desk_says(alice, component, "!diag", "available: 1", timeout=20)
        r = fd.cli("token", "--site", "acme", "--visitor", "v88", "--name", "Ann Smith", "--email",
                   "ann@example.com", "--user-id", "4711")
        assert r.returncode == 0, r.stderr
        token = r.stdout.strip()
        room = room_of("v88")
        v = await clients.visitor()
        v.send_raw(f"<presence to='{room}/Ann'><x xmlns='http://jabber.org/protocol/muc'><password>{token}</password></x>"
                   "<visitor xmlns='urn:frontdesk:visitor:0'><page url='https://shop.example.com/cart' "
                   "title='Your cart &#x202E;evil' lang='en'/><field var='company'>A-1 Ltd</field>"
                   "<field var='order'>not asked</field></visitor></presence>")
        await v.expect(lambda st: kind(st) == "presence" and attr(st, "from") == f"{room}/Ann", what="the self-presence")
        await v.say(room, "Hello")
        n = fd.session_of(room)["id"]
        offer = await alice.expect(offer_of(component, n), what="the offer")
        assert body(offer).endswith(f"\nname: Ann Smith ✓ · email: ann@example.com ✓ · company: A-1 Ltd · page: "
                                    f"https://shop.example.com/cart (!info {n} for more)"), body(offer)
        info = body(await desk(alice, component, f"!info {n}", f"#{n} Ann"))
        for line in ("name: Ann Smith (signed by the website)", "user id: 4711 (signed by the website)",
                     "page: https://shop.example.com/cart (from the widget)", "asked: company: A-1 Ltd (from the widget)"):
            assert line in info, info
        assert "\u202e" not in info, repr(info)
        # Kept with the session: the database has them, signed ones marked.
        import sqlite3
        con = sqlite3.connect(f"file:{fd.db}?mode=ro", uri=True)
        try:
            rows = con.execute("SELECT key, value, signed FROM session_details WHERE session_id = ? ORDER BY key",
                               (n,)).fetchall()
        finally:
            con.close()
        assert ("email", "ann@example.com", 1) in rows and ("prechat.company", "A-1 Ltd", 0) in rows, rows
        assert not any(k == "prechat.order" for k, _, _ in rows), "an answer to a field the site does not ask"
        # The visitor never sees any of it.
        assert not any("4711" in (body(st) or "") for st in v.log), "details leaked to the visitor"
