"""A second real staff client: Psi+ 1.4.554 (Debian bookworm) as alice_acme, headless (Xvfb, a
private D-Bus session bus; see gui_clients.py), against the private ejabberd 23.01 and Prosody 0.12 with frontdesk. The
visitor is a slixmpp client.

Psi+ has no interface to its roster or presence (its D-Bus interface only opens URIs and
raises profiles), so this test checks what can be read from Psi+'s own state: the offer and
the visitor's messages arrive in its history database, and a reply typed in its chat window
reaches the visitor and claims the chat. The roster with the contacts' presence, and the chat
window with the contact's status line, are saved as screenshots.

Psi+ locks a chat onto the resource a contact's presence came from, so its reply goes to
`<room>/frontdesk`, not to the contact's bare JID as Gajim's does: this test covers that route.
"""

from __future__ import annotations

import contextlib
import time

import pytest

from conftest import ARTEFACTS, TIMINGS
from gui_clients import (PSI_PROGRAMS, PsiPlus, Steps, end_session, missing_requirements,
                         no_sessions_before, poll, server_roster, server_sessions)
from helpers import frontdesk_with_clients, groupchat_from, presence_from
from test_prosody import prosody  # noqa: F401 (fixture)
from test_staff import room_of

STAFF = "alice_acme"
FIRST = "Hello, do you ship to Norway?"
REPLY = "Hi Ann, Alice here. Yes, we do."
SECOND = "Great, to Tromsø then."
SENT, RECEIVED = 1, 2   # Psi+'s history: events.direction


@contextlib.asynccontextmanager
async def running_psi(server, tmp_path):
    missing = missing_requirements(*PSI_PROGRAMS)
    if missing:
        pytest.fail("Psi+ cannot run here, missing: " + ", ".join(missing) +
                    " (scripts/test installs them: ensure_psi in scripts/lib.sh)", pytrace=False)
    # As when staff log in to a running desk: the front desk is in the roster already.
    await poll(lambda: server_roster(server, STAFF), lambda out: server.component_jid in out, 20,
               "the front desk in alice's roster on the server", interval=0.3)
    p = PsiPlus(tmp_path / "psi", jid=f"{STAFF}@{server.staff_host}", password=server.passwords[STAFF],
                port=server.c2s_port)
    await no_sessions_before(server, STAFF)
    async with p:
        yield p
        await end_session(p, server, STAFF, PsiPlus.resource)


@pytest.fixture
async def psi(ejabberd, frontdesk, tmp_path):
    async with running_psi(ejabberd, tmp_path) as p:
        yield p


@pytest.fixture
async def psi_on_prosody(prosody, tmp_path):
    """Psi+, frontdesk and a client factory on the private Prosody 0.12 (privileged roster)."""
    async with frontdesk_with_clients(prosody, tmp_path / "frontdesk", roster={"remove_after_secs": 3}) as (fd, clients):
        async with running_psi(prosody, tmp_path) as p:
            yield p, fd, clients


def events(psi: PsiPlus, jid: str, direction: int, since: int = 0) -> list[tuple[str, str]]:
    """(resource, text) of what Psi+ logged with `jid` in `direction`, after event `since`."""
    return [(res or "", text) for i, j, res, d, text in psi.history() if i > since and j == jid and d == direction]


def last_event(psi: PsiPlus) -> int:
    return max((r[0] for r in psi.history()), default=0)


async def test_offers_reach_psi_and_a_reply_from_psi_claims_the_chat(psi, frontdesk, clients, ejabberd, tmp_path):
    await psi_flow(psi, frontdesk, clients, ejabberd, tmp_path, "ejabberd")


async def test_on_prosody_offers_reach_psi_and_a_reply_from_psi_claims_the_chat(psi_on_prosody, prosody, tmp_path):
    psi, fd, clients = psi_on_prosody
    await psi_flow(psi, fd, clients, prosody, tmp_path, "Prosody")


async def psi_flow(psi, frontdesk, clients, server, tmp_path, server_name):
    component = server.component_jid
    room = room_of("v61")
    steps = Steps(psi, tmp_path / "psi-evidence.txt")
    ARTEFACTS.append(f"what Psi+ showed at each step: {steps.evidence_file}")

    async with steps.step(1, "Psi+ logs in: frontdesk counts alice available"):
        sessions = await poll(lambda: server_sessions(server, STAFF), lambda s: s, 30,
                              "alice's Psi+ session on the server", interval=0.3)
        steps.saw("alice's sessions on the server", sessions)
        assert sessions == [f"{STAFF}@{server.staff_host}/{PsiPlus.resource}"], sessions
        # (Psi+'s is alice's only session: no_sessions_before)
        await poll(frontdesk.log_text, lambda t: f"staff available staff={STAFF}@{server.staff_host}" in t, 30,
                   "frontdesk's 'staff available' for alice")

    async with steps.step(2, "a visitor joins and writes: the offer and the desk's note reach Psi+"):
        visitor = await clients.visitor()
        await visitor.join(room, "Ann")
        await poll(lambda: server_roster(server, STAFF), lambda out: room in out, 15,
                   "the visitor contact in alice's roster on the server", interval=0.3)
        await visitor.say(room, FIRST)
        got = await poll(lambda: events(psi, room, RECEIVED), lambda e: [t for _, t in e] == [FIRST], 15,
                         "the visitor's message in Psi+'s history, received from the contact")
        steps.saw(f"history, received from {room}", got)
        n = frontdesk.session_of(room)["id"]
        note = f"Visitor Ann on ACME Inc. wants to chat (#{n}). Reply to them, or send !accept {n}."
        got = await poll(lambda: events(psi, component, RECEIVED), lambda e: note in [t for _, t in e], 10,
                         "the desk's note in Psi+'s history")
        steps.saw(f"history, received from {component}", got)
        shot = await psi.screenshot_settled(tmp_path / "psi-roster-offer.png")
        steps.saw("screenshot", str(shot))
        ARTEFACTS.append(f"Psi+'s roster with the waiting visitor: {shot}")

    async with steps.step(3, "alice replies in Psi+'s chat window: the visitor gets it, she has the chat"):
        mark = last_event(psi)
        await psi.reply(room, REPLY, window="Ann (ACME Inc.)")
        await visitor.expect(presence_from(f"{room}/{STAFF}"), what="alice joining, as the visitor sees it")
        await visitor.expect(groupchat_from(room, nick=STAFF, body_is=REPLY), what="alice's reply in the room")
        s = await poll(lambda: frontdesk.session_of(room), lambda s: s and s["state"] == "CHATTING", 10,
                       "the session CHATTING")
        steps.saw("frontdesk session", {k: s[k] for k in ("id", "state", "staff")})
        assert s["staff"] == f"{STAFF}@{server.staff_host}", s
        # Psi+ sent it to the resource the contact's presence came from.
        got = await poll(lambda: events(psi, room, SENT, mark), lambda e: e, 10, "the reply in Psi+'s history")
        steps.saw(f"history, sent to {room}", got)
        assert got == [("frontdesk", REPLY)], got

    async with steps.step(4, "the visitor writes again: it reaches Psi+"):
        mark = last_event(psi)
        await visitor.say(room, SECOND)
        got = await poll(lambda: events(psi, room, RECEIVED, mark), lambda e: e, 10,
                         "the visitor's second message in Psi+'s history")
        steps.saw(f"history, received from {room}", got)
        assert [t for _, t in got] == [SECOND], got
        shot = await psi.screenshot_settled(tmp_path / "psi-chat-with-visitor.png")
        steps.saw("screenshot", str(shot))
        ARTEFACTS.append(f"Psi+'s chat with the visitor: {shot}")

    async with steps.step(5, "!finish typed in Psi+'s chat with the front desk: the chat closes"):
        mark = last_event(psi)
        await psi.reply(component, "!finish", window="Front desk")
        await visitor.expect(groupchat_from(room, body_is="The chat is now closed."), what="the closing line")
        s = await poll(lambda: frontdesk.session_of(room), lambda s: s and s["state"] == "CLOSED", 10,
                       "the session CLOSED")
        steps.saw("frontdesk session", {k: s[k] for k in ("id", "state", "staff")})
        got = await poll(lambda: (events(psi, component, SENT, mark), events(psi, component, RECEIVED, mark),
                                  events(psi, room, RECEIVED, mark)),
                         lambda e: all(e), 10, "!finish, the desk's answer and the closing line in Psi+'s history")
        steps.saw("history: sent to the desk, received from the desk, received from the contact", got)
        assert [t for _, t in got[0]] == ["!finish"], got
        assert [t for _, t in got[1]] == [f"#{n} is closed."], got
        assert [t for _, t in got[2]] == ["The chat is now closed."], got

    assert psi.running(), f"Psi+ exited ({psi.exit_code()})\n{psi.describe()}"
    TIMINGS.setdefault(f"psi+ staff flow (5 steps, {server_name})", []).append(time.monotonic() - steps.t0)
    print(f"steps: {steps.summary()}")
