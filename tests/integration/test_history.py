"""History older than frontdesk keeps in memory, against the real ejabberd: with a small
`[limits] history_bytes`, a rejoin that asks for `maxstanzas='1000'` gets every line of the
room from SQLite and memory, in order, with delay stamps and stanza ids, before the subject;
a join that asks for nothing (as the web widget's does on a page reload) gets the last 100;
and a line said while the rejoin is being answered comes exactly once."""

from __future__ import annotations

import asyncio

import pytest

from helpers import attr, body, delay_of, groupchat_from, show, stanza_ids

COMPONENT = "chat.localhost"
ROOM = f"v71_acme@{COMPONENT}"
N = 130
LIVE = "live during the rejoin"
LINE = "line {:03d} " + "x" * 20  # ~30 bytes: 130 of them are ~4 KB, memory keeps 512 bytes


@pytest.fixture
def frontdesk_limits():
    return {"history_bytes": 512, "messages_per_minute": 6000, "message_burst": 200}


async def test_a_rejoin_gets_history_older_than_memory_from_the_store(frontdesk, clients):
    v = await clients.visitor()
    alice = await clients.staff("alice_acme")
    await v.join(ROOM, "Ann")
    await alice.join(ROOM, "Alice")
    said = [LINE.format(i) for i in range(N)]
    for i, text in enumerate(said):
        who = v if i % 2 == 0 else alice
        await who.say(ROOM, text)
    await v.expect(groupchat_from(ROOM, nick="Alice", body_is=said[-1]))

    # The visitor rejoins (a page reload from the same connection) asking for everything.
    j = await v.join(ROOM, "Ann", history="<history maxstanzas='1000'/>")
    got = [body(m) for m in j.history]
    assert got == said, f"{len(got)} lines: {got[:3]} ... {got[-3:]}"
    assert all(delay_of(m) is not None for m in j.history), [show(m) for m in j.history[:2]]
    ids = [stanza_ids(m)[0]["id"] for m in j.history]
    assert len(set(ids)) == N, ids[:5]
    assert attr(j.history[0], "from") == f"{ROOM}/Ann" and attr(j.history[1], "from") == f"{ROOM}/Alice"

    # The widget asks for no particular amount: the last 100 lines, memory or not.
    j = await v.join(ROOM, "Ann")
    assert [body(m) for m in j.history] == said[-100:], len(j.history)
    j = await v.join(ROOM, "Ann", history="<history maxstanzas='3'/>")
    assert [body(m) for m in j.history] == said[-3:]


async def test_a_line_said_during_a_rejoin_comes_once(frontdesk, clients):
    v = await clients.visitor()
    alice = await clients.staff("alice_acme")
    await v.join(ROOM, "Ann")
    await alice.join(ROOM, "Alice")
    said = [LINE.format(i) for i in range(60)]
    for text in said:
        await alice.say(ROOM, text)
    await v.expect(groupchat_from(ROOM, nick="Alice", body_is=said[-1]))
    start = len(v.log)
    # Alice speaks while the visitor's rejoin (and its read of the store) is under way: the
    # join is sent as soon as the task first runs (sleep(0) lets it), the line right after.
    rejoin = asyncio.create_task(v.join(ROOM, "Ann", history="<history maxstanzas='1000'/>"))
    await asyncio.sleep(0)
    alice.send_raw(f"<message type='groupchat' to='{ROOM}' id='live1'><body>{LIVE}</body></message>")
    j = await rejoin
    history = [body(m) for m in j.history]
    if LIVE not in history:
        await v.expect(groupchat_from(ROOM, nick="Alice", body_is=LIVE), what="the live line")
    # Once: in the history if frontdesk took it before the join, else live after the subject.
    seen = [body(st) for st in v.log[start:] if groupchat_from(ROOM)(st) and body(st)]
    assert seen.count(LIVE) == 1, seen[-5:]
    assert history[:60] == said, history[:3]
    assert history[60:] in ([], [LIVE]), history[60:]
    print("the live line came", "in the history" if LIVE in history else "after the subject")
