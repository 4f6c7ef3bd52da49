"""Notes, tags and missed chats against the real ejabberd with slixmpp staff: a chat the
visitor leaves unanswered shows in !missed and `frontdesk sessions`; a note and tags never
reach the visitor (checked on every stanza the visitor's client received) and show in
!transcript and the CLI; notes from staff of another site, on chats that do not exist, and
empty ones are refused with a reason. Tags come off (`!untag`) and show in !missed; the note and
tag ad-hoc forms list one's open chats and take a typed number.

alice_acme is staff of "acme" (ACME Inc.), carol_globex of "globex".
"""

from __future__ import annotations

from helpers import body, escape, groupchat_from, poll, show
from test_staff import NS_COMMANDS, chat_from, desk, room_of, roster_item, session_when


async def test_a_missed_chat_then_notes_and_tags_the_visitor_never_sees(frontdesk, clients, ejabberd):
    component = ejabberd.component_jid
    alice = await clients.staff("alice_acme")
    carol = await clients.staff("carol_globex")
    await poll(lambda: roster_item(alice, component), lambda i: i is not None, 15, "the front desk in the roster")

    # A visitor writes and leaves; nobody answers: missed once the session closes.
    missed_room = room_of("v30")
    v = await clients.visitor()
    await v.join(missed_room, "Ann")
    await v.say(missed_room, "Please email me about order 77")
    await v.leave(missed_room, "Ann")
    s = await session_when(frontdesk, missed_room, lambda s: s["state"] == "CLOSED", "CLOSED", timeout=20)
    m = s["id"]
    assert s["missed"] is True and s["tags"] == [], s
    answer = await desk(alice, component, "!missed", "missed chat")
    assert f"#{m} visitor v30 on ACME Inc." in body(answer), body(answer)
    assert '"Please email me about order 77"' in body(answer), body(answer)
    answer = await desk(carol, component, "!missed", "missed chats")
    assert body(answer) == "No missed chats on your sites in the last 7 days.", body(answer)
    listed = frontdesk.cli("sessions", "--missed")
    assert listed.returncode == 0 and f"v30_acme@chat.localhost" in listed.stdout, listed
    # A follow-up note on the closed chat is not a reply: still missed.
    answer = await desk(alice, component, f"!note {m} emailed them", "Note")
    assert body(answer) == f"Note added to #{m}.", body(answer)
    assert frontdesk.session_of(missed_room)["missed"] is True

    # A chat in progress: a note and tags, while the visitor is there.
    room = room_of("v31")
    v2 = await clients.visitor()
    await v2.join(room, "Bo")
    await v2.say(room, "Hi, is anyone there?")
    n = (await session_when(frontdesk, room, lambda s: s["state"] == "ACTIVE", "ACTIVE"))["id"]
    secret = "internal-zq7: VIP, refund approved \u202e by finance"
    answer = await desk(alice, component, f"!note {n} {secret}", "Note")
    assert body(answer) == f"Note added to #{n}.", body(answer)
    answer = await desk(alice, component, f"!tag {n} Tagzq1 refund-zq2 tagzq1", "tagged")
    assert body(answer) == f"#{n} tagged tagzq1, refund-zq2.", body(answer)

    # Refused, with the reason: another site's staff, a chat that does not exist, no text,
    # a tag that is not a word.
    answer = await desk(carol, component, f"!note {n} mine now", "another site")
    assert body(answer) == f"#{n} is a chat of another site: you can only note chats of your own sites.", body(answer)
    answer = await desk(carol, component, f"!tag {n} mine", "another site")
    assert "you can only tag chats of your own sites" in body(answer), body(answer)
    answer = await desk(alice, component, "!note 99999 hello", "no such chat")
    assert body(answer) == "There is no such chat.", body(answer)
    answer = await desk(alice, component, f"!note {n}", "needs some text")
    answer = await desk(alice, component, f"!tag {n} bad\u202etag", "cannot be a tag")
    assert "bad\\u{202E}tag" in body(answer), body(answer)

    # The visitor keeps chatting: the room reflects their next line, and nothing of the note
    # or the tags ever reached their client (every stanza it received, join to now).
    await v2.say(room, "Hello?")
    seen = [show(st) for st in v2.log]
    assert seen and all("zq7" not in x and "zq1" not in x and "zq2" not in x for x in seen), seen
    assert all("zq7" not in show(st) for st in v.log)

    # Staff see the note, each hidden character escaped, and the tags in !transcript...
    answer = await desk(alice, component, f"!transcript {n}", f"#{n} v31")
    text = body(answer)
    assert text.splitlines()[0] == f"#{n} v31 (acme), ACTIVE, tags: refund-zq2, tagzq1:", text
    assert "alice_acme@localhost (note): internal-zq7: VIP, refund approved \\u{202E} by finance" in text, text
    # ... and in the CLI: the transcript has the note as it was written, the listing the tags.
    t = frontdesk.transcript(n)
    notes = [(e["role"], e["from"], e["body"]) for e in t if e["role"] == "note"]
    assert notes == [("note", "alice_acme@localhost/desk", secret)], t
    s = frontdesk.session_of(room)
    assert s["tags"] == ["refund-zq2", "tagzq1"] and s["missed"] is False, s
    printed = frontdesk.cli("transcript", str(n))
    assert "(note): internal-zq7" in printed.stdout and "\u202e" not in printed.stdout, printed.stdout

    # The numbers: one missed chat, and the open one neither answered nor missed.
    stats = frontdesk._json("stats", "--site", "acme")
    assert (stats["chats"], stats["answered"], stats["missed"]) == (2, 0, 1), stats


async def test_tags_come_off_and_missed_chats_show_theirs_also_by_ad_hoc(frontdesk, clients, ejabberd):
    component = ejabberd.component_jid
    alice = await clients.staff("alice_acme")
    carol = await clients.staff("carol_globex")
    await poll(lambda: roster_item(alice, component), lambda i: i is not None, 15, "the front desk in the roster")

    # A missed chat, tagged while following it up: !missed shows its tags.
    missed_room = room_of("v32")
    v = await clients.visitor()
    await v.join(missed_room, "Cy")
    await v.say(missed_room, "Nobody here? zq5")
    await v.leave(missed_room, "Cy")
    m = (await session_when(frontdesk, missed_room, lambda s: s["state"] == "CLOSED", "CLOSED", timeout=20))["id"]
    answer = await desk(alice, component, f"!tag {m} followed-up vip-zq", "tagged")
    assert body(answer) == f"#{m} tagged followed-up, vip-zq.", body(answer)
    line = next(x for x in body(await desk(alice, component, "!missed", "missed chat")).splitlines() if f"#{m} " in x)
    assert line.endswith('"Nobody here? zq5" — tags: followed-up, vip-zq'), line

    # !untag: what it removed, what the chat did not have, what is left; nothing when none.
    answer = await desk(alice, component, f"!untag {m} VIP-zq nope", "removed")
    assert body(answer) == f"#{m}: removed vip-zq. It had no nope. Tags now: followed-up.", body(answer)
    answer = await desk(alice, component, f"!untag {m} nope", "has no tag")
    assert body(answer) == f"#{m} has no tag nope (its tags: followed-up).", body(answer)
    answer = await desk(carol, component, f"!untag {m} followed-up", "another site")
    assert body(answer) == f"#{m} is a chat of another site: you can only untag chats of your own sites.", body(answer)
    # Back to back on the closed chat: !tag asks the store for its site before writing, and
    # !untag waits for that, in the order sent.
    # (In one write, so that they reach frontdesk together.)
    alice.send_raw(f"<message to='{component}' type='chat'><body>!tag {m} late-zq</body></message>"
                   f"<message to='{component}' type='chat'><body>!untag {m} late-zq</body></message>")
    answer = await alice.expect(chat_from(component, contains="late-zq"), what="the answer to !tag")
    assert body(answer) == f"#{m} tagged late-zq.", body(answer)
    answer = await alice.expect(chat_from(component, contains="late-zq"), what="the answer to !untag")
    assert body(answer) == f"#{m}: removed late-zq. Tags now: followed-up.", body(answer)
    answer = await desk(alice, component, f"!tag {m} -followed-up", "cannot be a tag")
    assert "use !untag N followed-up" in body(answer), body(answer)
    assert frontdesk.session_of(missed_room)["tags"] == ["followed-up"]
    line = next(x for x in body(await desk(alice, component, "!missed", "missed chat")).splitlines() if f"#{m} " in x)
    assert line.endswith('"Nobody here? zq5" — tags: followed-up'), line

    # The ad-hoc forms: the chat from a list of the open chats of one's sites, or typed.
    room = room_of("v33")
    v2 = await clients.visitor()
    await v2.join(room, "Bo")
    await v2.say(room, "Hi, about my invoice")
    n = (await session_when(frontdesk, room, lambda s: s["state"] == "ACTIVE", "ACTIVE"))["id"]
    form = await alice.iq(component, f"<command xmlns='{NS_COMMANDS}' node='tag' action='execute'/>", type_="set")
    fields = {f.get("var"): f for f in form.xml.iter("{jabber:x:data}field")}
    assert list(fields) == ["session", "number", "text"], show(form)
    assert fields["session"].get("type") == "list-single", show(form)
    options = {o.findtext("{jabber:x:data}value"): o.get("label") for o in fields["session"].iter("{jabber:x:data}option")}
    assert options.get(str(n)) == f"#{n} Bo (ACTIVE)", options
    assert str(m) not in options, options  # closed: typed instead
    answer = await adhoc(alice, component, "tag", session=str(n), text="adhoc-zq")
    assert answer == f"#{n} tagged adhoc-zq.", answer
    # Back to back, not waiting for the first answer: !untag reads the tags only once the tag
    # just added is committed.
    alice.send_raw(f"<message to='{component}' type='chat'><body>!tag {n} quick-zq</body></message>"
                   f"<message to='{component}' type='chat'><body>!untag {n} quick-zq</body></message>")
    answer = await alice.expect(chat_from(component, contains="tagged quick-zq"), what="the answer to !tag")
    assert body(answer) == f"#{n} tagged quick-zq.", body(answer)
    answer = await alice.expect(chat_from(component, contains="quick-zq"), what="the answer to !untag")
    assert body(answer) == f"#{n}: removed quick-zq. Tags now: adhoc-zq.", body(answer)
    answer = await adhoc(alice, component, "untag", session=str(n), number=f"#{m}", text="followed-up")
    assert answer == f"#{m}: removed followed-up. It has no tags now.", answer
    # Another site's chat, as the list's value (not one of carol's options): refused.
    answer = await adhoc(carol, component, "tag", session=str(n), text="mine")
    assert answer == f"#{n} is a chat of another site: you can only tag chats of your own sites.", answer
    answer = await adhoc(alice, component, "note", session=f"{n} forged", text="x")
    assert answer == f'"{n} forged" is not a chat number', answer

    # The file has what the answers said.
    import sqlite3
    con = sqlite3.connect(f"file:{frontdesk.db}?mode=ro", uri=True)
    try:
        rows = con.execute("SELECT session_id, tag, added_by FROM tags WHERE session_id IN (?, ?) ORDER BY 1, 2",
                           (m, n)).fetchall()
    finally:
        con.close()
    assert rows == [(n, "adhoc-zq", "alice_acme@localhost")], rows
    line = next(x for x in body(await desk(alice, component, "!missed", "missed chat")).splitlines() if f"#{m} " in x)
    assert line.endswith('"Nobody here? zq5"'), line
    assert all("zq" not in show(st) or "zq5" in show(st) for st in v2.log + v.log)


async def adhoc(client, component: str, node: str, **fields: str) -> str:
    """Submit ad-hoc command `node`'s form with `fields`; the text it completes with."""
    values = "".join(f"<field var='{k}'><value>{escape(val)}</value></field>" for k, val in fields.items())
    r = await client.iq(component, f"<command xmlns='{NS_COMMANDS}' node='{node}' sessionid='{node}' action='complete'>"
                                   f"<x xmlns='jabber:x:data' type='submit'>{values}</x></command>", type_="set")
    cmd = r.xml.find(f"{{{NS_COMMANDS}}}command")
    assert cmd is not None and cmd.get("status") == "completed", show(r)
    return "".join(cmd.itertext())
