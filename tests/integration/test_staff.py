"""The staff side against the real ejabberd 23.01 with slixmpp clients: visitors in staff rosters
(privilege advertised, roster set failing, fallback to the admin API), the contact's presence
per state, offers, the first claim winning, the refusal, the front desk's commands and the
ad-hoc commands.

alice_acme and bob_acme are staff of "acme" (ACME Inc.), carol_globex of "globex".
"""

from __future__ import annotations

import re
import secrets
import time

from conftest import TIMINGS
from helpers import (attr, body, child, error_of, groupchat_from, kind, poll, presence_from,
                     show, status_codes)

NS_ROSTER = "jabber:iq:roster"
NS_COMMANDS = "http://jabber.org/protocol/commands"


def room_of(visitor: str, site: str = "acme") -> str:
    return f"{visitor}_{site}@chat.localhost"


def chat_from(jid: str, body_is: str | None = None, contains: str | None = None):
    def p(st):
        return (kind(st) == "message" and attr(st, "type") == "chat" and attr(st, "from") == jid
                and (body_is is None or body(st) == body_is)
                and (contains is None or contains in (body(st) or "")))
    return p


def contact(room: str) -> str:
    """Where a roster contact's (a visitor's, the desk's) presence comes from: its own resource,
    since Gajim keeps presence per resource and drops it from a bare JID."""
    return f"{room}/frontdesk"


def contact_presence(room: str, show_is: str | None, status_starts: str):
    def p(st):
        if kind(st) != "presence" or attr(st, "from") != contact(room) or attr(st, "type") not in ("", "available"):
            return False
        sh = child(st, "jabber:client", "show")
        status = child(st, "jabber:client", "status")
        return ((sh.text if sh is not None else None) == show_is
                and status is not None and (status.text or "").startswith(status_starts))
    return p


def roster_item(client, jid: str):
    """The item for `jid` in the client's roster (slixmpp keeps it from the roster result and
    the server's pushes), or None."""
    roster = client.client_roster
    if not roster.has_jid(jid):
        return None
    item = roster[jid]
    # slixmpp also makes an entry (subscription none) for any JID it merely got presence from.
    return item if item["subscription"] in ("both", "to", "from") else None


async def session_when(fd, room, pred, what, timeout=10):
    return await poll(lambda: fd.session_of(room), lambda s: s is not None and pred(s), timeout, what)


async def until_desk_says(client, component: str, text: str, expect: str, timeout: float = 15):
    """Ask the desk again until its answer contains `expect` (frontdesk learns of a staff
    member's presence once the roster subscription exists, which takes a moment)."""
    import asyncio
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        answer = await desk(client, component, text, "")
        if expect in (body(answer) or ""):
            return answer
        if loop.time() > deadline:
            raise AssertionError(f"the desk never said {expect!r} to {text!r}; last: {body(answer)!r}")
        await asyncio.sleep(0.3)


async def desk(client, component: str, text: str, expect: str):
    """Send a command to the front desk and wait for its answer containing `expect`."""
    client.send_message(mto=component, mbody=text, mtype="chat")
    return await client.expect(chat_from(component, contains=expect), what=f"the desk's answer to {text!r}")


async def test_visitors_enter_and_leave_staff_rosters_through_the_admin_api(frontdesk, clients, ejabberd):
    component = ejabberd.component_jid
    alice = await clients.staff("alice_acme")
    carol = await clients.staff("carol_globex")
    # The front desk is in every staff roster.
    await poll(lambda: roster_item(alice, component), lambda i: i is not None, 15, "the front desk in alice's roster")
    await poll(lambda: roster_item(carol, component), lambda i: i is not None, 15, "the front desk in carol's roster")
    assert roster_item(alice, component)["name"] == "Front desk"

    room = room_of("v10")
    v = await clients.visitor()
    t0 = time.monotonic()
    await v.join(room, "Ann")
    item = await poll(lambda: roster_item(alice, room), lambda i: i is not None, 15, "the visitor in alice's roster",
                      interval=0.01)
    TIMINGS.setdefault("join -> staff roster item (ejabberd admin API)", []).append(time.monotonic() - t0)
    assert item["name"] == "Ann (ACME Inc.)", item
    assert item["groups"] == ["ACME Inc. visitors"], item
    assert item["subscription"] == "both", item
    await alice.expect(contact_presence(room, "away", "INACTIVE — browsing"), what="the INACTIVE presence")
    assert roster_item(carol, room) is None, "staff of another site must not get the visitor"

    # ejabberd 23.01 advertised roster privileges, failed the privileged set, and frontdesk
    # fell back to the admin API.
    log = frontdesk.log_text()
    assert "privileges advertised" in log and "falling back" in log, frontdesk.log_tail(40)
    answer = await desk(alice, component, "!diag", "roster:")
    assert "roster: ejabberd-api" in body(answer), body(answer)
    # The privileged sets ejabberd 23.01 refused were redone by the API: not failures, and
    # the operator is told the fallback is expected.
    assert re.search(r"\d+ done, 0 failed", body(answer)), body(answer)
    assert "fell back from privilege (urn:xmpp:privilege:1)" in body(answer), body(answer)
    assert "expected on ejabberd 23.01" in body(answer), body(answer)
    assert "; localhost urn:xmpp:privilege:1 [message=outgoing, presence=roster, roster=both]" in body(answer), body(answer)

    # CLOSED: the contact goes unavailable, and leaves the roster after remove_after_secs (3).
    await v.leave(room, "Ann")
    await alice.expect(lambda st: kind(st) == "presence" and attr(st, "from") == contact(room)
                       and attr(st, "type") == "unavailable", timeout=15, what="the contact going offline")
    await session_when(frontdesk, room, lambda s: s["state"] == "CLOSED", "CLOSED")
    await poll(lambda: roster_item(alice, room), lambda i: i is None, 20, "the visitor gone from alice's roster")
    assert roster_item(alice, component) is not None, "the front desk stays"


async def test_offers_reach_available_staff_and_the_first_reply_wins(frontdesk, clients, ejabberd):
    component = ejabberd.component_jid
    alice = await clients.staff("alice_acme")
    bob = await clients.staff("bob_acme")
    carol = await clients.staff("carol_globex")
    for c in (alice, bob):
        await poll(lambda c=c: roster_item(c, component), lambda i: i is not None, 15, "the front desk in the roster")
    # frontdesk must know they are online before the offer: !status says so.
    for c in (alice, bob):
        await until_desk_says(c, component, "!status", "available for new chats")

    room = room_of("v11")
    v = await clients.visitor()
    await v.join(room, "Ann")
    s = await session_when(frontdesk, room, lambda s: s["state"] == "INACTIVE", "INACTIVE")
    n = s["id"]
    await v.say(room, "Hello? My parcel is late.")
    for c in (alice, bob):
        await c.expect(chat_from(room, body_is="Hello? My parcel is late."), what="the offer from the visitor contact")
        await c.expect(chat_from(component, body_is=f"Visitor Ann on ACME Inc. wants to chat (#{n}). "
                                                    f"Reply to them, or send !accept {n}."), what="the desk's note")
        await c.expect(contact_presence(room, "chat", "ACTIVE — Hello? My parcel is late."), what="the ACTIVE presence")

    # Bob answers from his roster: he has the chat.
    bob.send_message(mto=room, mbody="Hi Ann, Bob here. Let me look.", mtype="chat")
    await v.expect(presence_from(f"{room}/bob_acme"), what="bob joining, as the visitor sees it")
    await v.expect(groupchat_from(room, nick="bob_acme", body_is="Hi Ann, Bob here. Let me look."), what="bob's answer")
    s = await session_when(frontdesk, room, lambda s: s["state"] == "CHATTING", "CHATTING")
    assert s["staff"] == "bob_acme@localhost", s
    await alice.expect(chat_from(component, body_is=f"#{n} is now handled by bob_acme."), what="alice told who took it")
    await alice.expect(contact_presence(room, "dnd", "CHATTING with bob_acme"), what="the CHATTING presence")

    # Alice is too late: refused, with who has it.
    alice.send_message(mto=room, mbody="Hello Ann!", mtype="chat")
    err = await alice.expect(lambda st: kind(st) == "message" and attr(st, "type") == "error"
                             and attr(st, "from") == room, what="the refusal")
    assert error_of(err)[:2] == ("cancel", "not-allowed"), show(err)
    assert "bob_acme is already chatting with this visitor" in (error_of(err)[2] or ""), show(err)

    # The visitor's next messages reach Bob one-to-one.
    await v.say(room, "Order 42")
    await bob.expect(chat_from(room, body_is="Order 42"), what="the visitor's message at bob")
    t = frontdesk.transcript(n)
    said = [(e["role"], e["nick"], e["body"]) for e in t if e["role"] != "system"]
    assert said == [("visitor", "Ann", "Hello? My parcel is late."),
                    ("staff", "bob_acme", "Hi Ann, Bob here. Let me look."),
                    ("visitor", "Ann", "Order 42")], t
    # Staff of another site saw none of it.
    assert not [st for st in carol.log if attr(st, "from").startswith(room)], [show(st) for st in carol.log]


async def test_no_one_available_then_offered_when_someone_comes(frontdesk, clients, ejabberd):
    component = ejabberd.component_jid
    alice = await clients.staff("alice_acme", show="away")
    await poll(lambda: roster_item(alice, component), lambda i: i is not None, 15, "the front desk in the roster")
    answer = await desk(alice, component, "!status", "You ")
    assert "not offered new chats" in body(answer), body(answer)
    room = room_of("v12")
    v = await clients.visitor()
    await v.join(room, "Ann")
    await v.say(room, "Anyone there?")
    notice = await v.expect(lambda st: groupchat_from(room)(st) and attr(st, "from") == room,
                            what="the room's notice")
    assert "No one is available right now" in body(notice), show(notice)
    # Alice comes back: the waiting chat is offered, with what the visitor wrote.
    alice.send_presence()
    await alice.expect(chat_from(room, body_is="Anyone there?"), timeout=15, what="the waiting message")
    await alice.expect(chat_from(component, contains="wants to chat"), what="the desk's note")


async def test_commands_run_the_desk(frontdesk, clients, ejabberd):
    component = ejabberd.component_jid
    alice = await clients.staff("alice_acme")
    await poll(lambda: roster_item(alice, component), lambda i: i is not None, 15, "the front desk in the roster")
    room = room_of("v13")
    v = await clients.visitor()
    await v.join(room, "Ann")
    await v.say(room, "I need an invoice")
    n = (await session_when(frontdesk, room, lambda s: s["state"] == "ACTIVE", "ACTIVE"))["id"]

    answer = await desk(alice, component, "!HELP", "Front desk commands")
    assert "!accept N" in body(answer)
    answer = await desk(alice, component, "!waiting", "open request")
    assert f'#{n} Ann on ACME Inc. — ACTIVE' in body(answer) and "I need an invoice" in body(answer), body(answer)

    # Ad-hoc commands: the menu, and one run.
    items = await alice.iq(component, f"<query xmlns='http://jabber.org/protocol/disco#items' node='{NS_COMMANDS}'/>")
    nodes = [i.get("node") for i in items.xml.iter("{http://jabber.org/protocol/disco#items}item")]
    assert nodes[:4] == ["waiting", "accept", "pass", "cancel"] and "finish" in nodes, show(items)
    r = await alice.iq(component, f"<command xmlns='{NS_COMMANDS}' node='accept' action='execute'/>", type_="set")
    assert r.xml.find(f"{{{NS_COMMANDS}}}command").get("status") == "executing", show(r)
    r = await alice.iq(component, f"<command xmlns='{NS_COMMANDS}' node='accept' sessionid='accept' action='complete'>"
                                  f"<x xmlns='jabber:x:data' type='submit'><field var='session'><value>{n}</value></field></x>"
                                  f"</command>", type_="set")
    cmd = r.xml.find(f"{{{NS_COMMANDS}}}command")
    assert cmd.get("status") == "completed" and f"#{n} is yours" in "".join(cmd.itertext()), show(r)
    await v.expect(presence_from(f"{room}/alice_acme"), what="alice taking the chat")
    s = await session_when(frontdesk, room, lambda s: s["state"] == "CHATTING", "CHATTING")
    assert s["staff"] == "alice_acme@localhost"

    answer = await desk(alice, component, "!status", "Your chats")
    assert f"#{n} Ann" in body(answer), body(answer)
    answer = await desk(alice, component, f"!transcript {n}", f"#{n} v13")
    assert "Ann (visitor): I need an invoice" in body(answer), body(answer)

    # !finish: both sides are told, the visitor's room is gone, the session CLOSED.
    alice.send_message(mto=component, mbody="!finish", mtype="chat")
    await v.expect(groupchat_from(room, body_is="The chat is now closed."), what="the closing line")
    gone = await v.expect(lambda st: kind(st) == "presence" and attr(st, "from") == f"{room}/Ann"
                          and attr(st, "type") == "unavailable", what="the visitor's own exit")
    assert 110 in status_codes(gone) and "destroy" in show(gone), show(gone)
    await alice.expect(chat_from(room, body_is="The chat is now closed."), what="the closing line at alice")
    s = await session_when(frontdesk, room, lambda s: s["state"] == "CLOSED", "CLOSED")
    assert s["closed_at"] and s["staff"] == "alice_acme@localhost", s

    # Not staff: refused.
    v2 = await clients.visitor()
    v2.send_message(mto=component, mbody="!waiting", mtype="chat")
    err = await v2.expect(lambda st: kind(st) == "message" and attr(st, "type") == "error", what="the refusal")
    assert error_of(err)[1] == "forbidden", show(err)


async def test_accept_by_command_and_cancel(frontdesk, clients, ejabberd):
    component = ejabberd.component_jid
    alice = await clients.staff("alice_acme")
    bob = await clients.staff("bob_acme")
    for c in (alice, bob):
        await poll(lambda c=c: roster_item(c, component), lambda i: i is not None, 15, "the front desk in the roster")

    # !accept by text: the visitor sees alice join; bob is refused the same chat.
    room = room_of("v14")
    v = await clients.visitor()
    await v.join(room, "Ann")
    await v.say(room, "Hello")
    n = (await session_when(frontdesk, room, lambda s: s["state"] == "ACTIVE", "ACTIVE"))["id"]
    await desk(alice, component, f"!accept {n}", f"#{n} is yours")
    await v.expect(presence_from(f"{room}/alice_acme"), what="alice joining")
    answer = await desk(bob, component, f"!accept {n}", "already chatting")
    assert body(answer) == f"alice_acme is already chatting with this visitor (#{n}).", body(answer)
    alice.send_message(mto=room, mbody="How can I help?", mtype="chat")
    await v.expect(groupchat_from(room, nick="alice_acme", body_is="How can I help?"), what="alice's answer")

    # !cancel of another waiting chat: its visitor is told and the session is CLOSED.
    room2 = room_of("v15")
    v2 = await clients.visitor()
    await v2.join(room2, "Bea")
    await v2.say(room2, "Hi?")
    n2 = (await session_when(frontdesk, room2, lambda s: s["state"] == "ACTIVE", "ACTIVE"))["id"]
    await desk(bob, component, f"!cancel {n2}", f"#{n2} cancelled")
    await v2.expect(groupchat_from(room2, body_is="Sorry, no one can take your chat right now. Please try again later."),
                    what="the visitor told")
    await v2.expect(groupchat_from(room2, body_is="The chat is now closed."), what="the closing line")
    await session_when(frontdesk, room2, lambda s: s["state"] == "CLOSED", "CLOSED")
    # A chat someone has cannot be cancelled.
    await desk(bob, component, f"!cancel {n}", "cannot be cancelled")
    assert frontdesk.session_of(room)["state"] == "CHATTING"


async def test_with_visitors_waiting_only_visitors_who_write_reach_staff_rosters(frontdesk, clients, ejabberd):
    """[roster] visitors = "waiting", set by a reload: a browsing visitor never reaches a staff
    client (no roster push, no presence); the one who writes does, and leaves again."""
    roster = dict(frontdesk.toml_args["roster"], visitors="waiting")
    frontdesk.rewrite_config(roster=roster)
    frontdesk.reload()
    await poll(frontdesk.log_text, lambda t: "config reloaded" in t, 10, "the reload")
    await visitors_waiting_flow(frontdesk, clients, ejabberd.component_jid)


async def visitors_waiting_flow(frontdesk, clients, component):
    """The staff client's view with visitors = "waiting" (also run on Prosody)."""
    alice = await clients.staff("alice_acme")
    await poll(lambda: roster_item(alice, component), lambda i: i is not None, 15, "the front desk in alice's roster")
    # Fresh ids: other tests' visitors may still be in the shared server's stored rosters.
    tag = secrets.token_hex(3)
    browsing, writer = room_of(f"w{tag}b"), room_of(f"w{tag}w")
    vb = await clients.visitor("vb")
    await vb.join(browsing, "Ann")
    await session_when(frontdesk, browsing, lambda s: s["state"] == "INACTIVE", "the browsing visitor's session")
    vw = await clients.visitor("vw")
    await vw.join(writer, "Ben")
    await vw.say(writer, "Hello, anyone there?")
    await poll(lambda: roster_item(alice, writer), lambda i: i is not None, 15, "the writing visitor in alice's roster")
    await alice.expect(contact_presence(writer, "chat", "ACTIVE — Hello"), what="the ACTIVE presence")
    # Roster writes go out in order: one for the browsing visitor, who came first, would be
    # in place by now. Nothing about them reached the staff client at all.
    assert roster_item(alice, browsing) is None
    about = [show(st) for st in alice.log if browsing in show(st)]
    assert not about, "\n".join(about)
    # Writing brings them in.
    await vb.say(browsing, "Actually, one question")
    await poll(lambda: roster_item(alice, browsing), lambda i: i is not None, 15, "the browsing visitor, now writing")
    await alice.expect(contact_presence(browsing, "chat", "ACTIVE — Actually"), what="their ACTIVE presence")
    # Both leave: both items go after remove_after_secs (3).
    await vb.leave(browsing, "Ann")
    await vw.leave(writer, "Ben")
    await poll(lambda: (roster_item(alice, browsing), roster_item(alice, writer)),
               lambda items: items == (None, None), 25, "both visitors gone from alice's roster")
