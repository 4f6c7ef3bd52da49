"""Routing and capacity against the real ejabberd 23.01 with three slixmpp staff: waiting chats
offered one at a time in turn (`routing = "round-robin"`), an offer moving on when it runs out,
`!pass`, a staff member's own cap (`max_chats`) and display name (`name`).
"""

from __future__ import annotations

import asyncio
import secrets

import pytest

from helpers import attr, body, frontdesk_with_clients, groupchat_from, kind, presence_from
from test_staff import chat_from, desk, room_of, until_desk_says

TIMEOUT = 5   # offer_timeout_secs


@pytest.fixture
async def routed(ejabberd, tmp_path):
    if "dave_acme" not in ejabberd.passwords:
        ejabberd.register("dave_acme", ejabberd.staff_host, secrets.token_urlsafe(9))
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
