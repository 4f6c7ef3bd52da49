"""A real staff client: Gajim 1.7.3 (Debian bookworm) as alice_acme, headless (Xvfb, a private
D-Bus session bus; see gui_clients.py), through the whole staff flow against the private
ejabberd 23.01 and Prosody 0.12 with frontdesk. The visitor is a slixmpp client.

Every check on the staff side reads Gajim's own state: its roster contacts with show and status
over its D-Bus remote control (`gajim-remote list_contacts`), and the messages it stored in its
archive (`logs.db`). Staff actions go through Gajim as the UI's do: the chat is opened (Gajim's
open-chat action) and the text sent (`gajim-remote send_chat_message`, the same
OutgoingMessage as the chat input's). This client is what showed that Gajim drops available
presence from a bare JID (issue 16): the contacts' presence comes from `<contact>/frontdesk`.

Artefacts stay in the test's tmp_path: gajim/gajim.log (every stanza in and out),
gajim/gajim-remote.log (every question to Gajim and its answer), gajim/profile (its archive),
screenshots, and gajim-evidence.txt (what Gajim held at each step). A failure names the step
and shows what Gajim held, with a screenshot.
"""

from __future__ import annotations

import contextlib
import time

import pytest

from conftest import ARTEFACTS, TIMINGS
from gui_clients import (GAJIM_PROGRAMS, KIND_CHAT_RECEIVED, KIND_CHAT_SENT, Gajim, Steps, end_session,
                         missing_requirements, no_sessions_before, poll)
from helpers import attr, frontdesk_with_clients, groupchat_from, kind, presence_from, status_codes
from test_prosody import prosody  # noqa: F401 (fixture)
from test_staff import room_of

ACCOUNT = "alice"            # Gajim's name for the account
STAFF = "alice_acme"
FIRST = "Where is my parcel? It was due on Monday."
REPLY = "Hi Ann, Alice here. Let me look it up."


@contextlib.asynccontextmanager
async def running_gajim(server, tmp_path):
    missing = missing_requirements(*GAJIM_PROGRAMS)
    if missing:
        pytest.fail("Gajim cannot run here, missing: " + ", ".join(missing) +
                    " (scripts/test installs them: ensure_gajim in scripts/lib.sh)", pytrace=False)
    g = Gajim(tmp_path / "gajim", jid=f"{STAFF}@{server.staff_host}", password=server.passwords[STAFF],
              port=server.c2s_port, account=ACCOUNT)
    await no_sessions_before(server, STAFF)
    async with g:
        yield g
        await end_session(g, server, STAFF, "gajim")


@pytest.fixture
async def gajim(ejabberd, frontdesk, tmp_path):
    async with running_gajim(ejabberd, tmp_path) as g:
        yield g


@pytest.fixture
async def gajim_on_prosody(prosody, tmp_path):
    """Gajim, frontdesk and a client factory on the private Prosody 0.12 (privileged roster)."""
    async with frontdesk_with_clients(prosody, tmp_path / "frontdesk", roster={"remove_after_secs": 3}) as (fd, clients):
        async with running_gajim(prosody, tmp_path) as g:
            yield g, fd, clients


def resources(c: dict | None) -> dict[str, str]:
    return dict(c.get("resources") or []) if c else {}


def shows(show: str, status: str | None = None):
    """A Gajim contact with this show and (if given) this status on its `frontdesk` resource."""
    def p(c):
        return bool(c) and c.get("show") == show and (status is None or resources(c).get("frontdesk") == status)
    return p


def received(gajim: Gajim, jid: str, since: int = 0) -> list[str]:
    return [m for i, j, k, m in gajim.archive() if i > since and j == jid and k == KIND_CHAT_RECEIVED]


def sent(gajim: Gajim, jid: str, since: int = 0) -> list[str]:
    return [m for i, j, k, m in gajim.archive() if i > since and j == jid and k == KIND_CHAT_SENT]


def last_row(gajim: Gajim) -> int:
    return max((r[0] for r in gajim.archive()), default=0)


async def test_the_staff_flow_in_gajim(gajim, frontdesk, clients, ejabberd, tmp_path):
    await staff_flow_in_gajim(gajim, frontdesk, clients, ejabberd, tmp_path, "ejabberd")


async def test_the_staff_flow_in_gajim_on_prosody(gajim_on_prosody, prosody, tmp_path):
    gajim, fd, clients = gajim_on_prosody
    await staff_flow_in_gajim(gajim, fd, clients, prosody, tmp_path, "Prosody")


async def staff_flow_in_gajim(gajim, frontdesk, clients, server, tmp_path, server_name):
    component = server.component_jid
    room = room_of("v60")
    steps = Steps(gajim, tmp_path / "gajim-evidence.txt")
    ARTEFACTS.append(f"what Gajim showed at each step: {steps.evidence_file}")

    async with steps.step(1, "Gajim logs in and shows the front desk online"):
        desk = await poll(lambda: gajim.contact(component), shows("online"), 40,
                          "the front desk online in Gajim's contacts")
        steps.saw("front desk contact", desk)
        assert desk["name"] == "Front desk", desk
        assert resources(desk) == {"frontdesk": "frontdesk — send !help for the commands"}, desk
        # frontdesk has seen her come online, so the visitor is offered to her at once.
        await poll(frontdesk.log_text, lambda t: f"staff available staff={STAFF}@" in t, 15,
                   "frontdesk's 'staff available' for alice")

    async with steps.step(2, "a visitor joins: Gajim shows the contact away, INACTIVE"):
        visitor = await clients.visitor()
        await visitor.join(room, "Ann")
        c = await poll(lambda: gajim.contact(room), shows("away", "INACTIVE — browsing"), 15,
                       "the visitor contact away / INACTIVE in Gajim")
        steps.saw("visitor contact", c)
        assert c["name"] == "Ann (ACME Inc.)" and c["groups"] == ["ACME Inc. visitors"], c

    async with steps.step(3, "the visitor writes: Gajim shows chat / ACTIVE and stores the offer"):
        await visitor.say(room, FIRST)
        c = await poll(lambda: gajim.contact(room), shows("chat", f"ACTIVE — {FIRST}"), 15,
                       "the visitor contact chat / ACTIVE in Gajim")
        steps.saw("visitor contact", c)
        got = await poll(lambda: received(gajim, room), lambda r: r == [FIRST], 10,
                         "the visitor's message in Gajim's archive, received from the contact")
        steps.saw(f"archive, received from {room}", got)
        n = frontdesk.session_of(room)["id"]
        note = f"Visitor Ann on ACME Inc. wants to chat (#{n}). Reply to them, or send !accept {n}."
        got = await poll(lambda: received(gajim, component), lambda r: note in r, 10,
                         "the desk's note in Gajim's archive")
        steps.saw(f"archive, received from {component}", got)
        await gajim.show_contact_list()
        shot = await gajim.screenshot(tmp_path / "gajim-roster-waiting-visitor.png")
        steps.saw("screenshot", str(shot))
        ARTEFACTS.append(f"Gajim's contact list with the waiting visitor: {shot}")
        print(f"screenshot of Gajim's contact list with the waiting visitor: {shot}")

    async with steps.step(4, "alice replies from Gajim: she has the chat"):
        mark = last_row(gajim)
        await gajim.say(room, REPLY)
        await visitor.expect(presence_from(f"{room}/{STAFF}"), what="alice joining, as the visitor sees it")
        await visitor.expect(groupchat_from(room, nick=STAFF, body_is=REPLY), what="alice's reply in the room")
        s = await poll(lambda: frontdesk.session_of(room), lambda s: s and s["state"] == "CHATTING", 10,
                       "the session CHATTING")
        steps.saw("frontdesk session", {k: s[k] for k in ("id", "state", "staff")})
        assert s["staff"] == f"{STAFF}@{server.staff_host}", s
        c = await poll(lambda: gajim.contact(room), shows("dnd", f"CHATTING with {STAFF}"), 15,
                       "the visitor contact dnd / CHATTING in Gajim")
        steps.saw("visitor contact", c)
        # (Gajim commits its archive 0.5 s after a write)
        got = await poll(lambda: sent(gajim, room, mark), lambda r: r == [REPLY], 5,
                         "the reply in Gajim's archive, sent to the contact")
        steps.saw(f"archive, sent to {room}", got)
        shot = await gajim.screenshot_settled(tmp_path / "gajim-chat-with-visitor.png")
        ARTEFACTS.append(f"Gajim's chat with the visitor after the reply: {shot}")

    async with steps.step(5, "!status from Gajim, answered into its archive"):
        mark = last_row(gajim)
        await gajim.say(component, "!status")
        got = await poll(lambda: received(gajim, component, mark), lambda r: r, 10,
                         "the desk's answer to !status in Gajim's archive")
        steps.saw(f"archive, received from {component}", got)
        assert len(got) == 1, got
        assert got[0].startswith("Your chats (1); you are available for new chats:\n"), got
        assert f"\n#{n} Ann ({room}) since " in got[0], got

    async with steps.step(6, "!waiting from Gajim lists a second visitor's waiting chat"):
        other = room_of("v62")
        bea = await clients.visitor()
        await bea.join(other, "Bea")
        await bea.say(other, "Anyone there?")
        m = frontdesk.session_of(other)["id"]
        mark = last_row(gajim)
        await gajim.say(component, "!waiting")
        got = await poll(lambda: received(gajim, component, mark), lambda r: any("open request" in t for t in r),
                         10, "the desk's answer to !waiting in Gajim's archive")
        steps.saw(f"archive, received from {component}", got)
        answer = next(t for t in got if "open request" in t)
        assert answer.startswith("1 open request(s):\n"), answer
        assert f'#{m} Bea on ACME Inc. — ACTIVE for ' in answer and '"Anyone there?"' in answer, answer

    async with steps.step(7, "\"My chats\" from Gajim's own Execute Command window (ad-hoc)"):
        win, note = await gajim.run_command(component, "My chats")
        steps.saw("the completed command's note", note)
        assert note.startswith("Your chats (1); you are available for new chats:\n"), note
        assert f"\n#{n} Ann ({room}) since " in note, note
        shot = await gajim.screenshot(tmp_path / "gajim-adhoc-my-chats.png")
        ARTEFACTS.append(f"Gajim's command window after \"My chats\": {shot}")
        await poll(frontdesk.log_text, lambda t: "command=Status" in t, 5, "frontdesk's log of the command")
        await gajim.run("xdotool", "key", "--window", win, "Escape")

    async with steps.step(8, "!finish from Gajim: the visitor's chat closes, the contact goes offline"):
        mark = last_row(gajim)
        await gajim.say(component, "!finish")
        await visitor.expect(groupchat_from(room, body_is="The chat is now closed."), what="the closing line")
        gone = await visitor.expect(lambda st: kind(st) == "presence" and attr(st, "from") == f"{room}/Ann"
                                    and attr(st, "type") == "unavailable", what="the visitor's own exit")
        assert 110 in status_codes(gone), gone
        c = await poll(lambda: gajim.contact(room), lambda c: c is None or shows("offline")(c), 15,
                       "the visitor contact offline (or gone) in Gajim")
        steps.saw("visitor contact", c)
        assert c is not None, "the contact left Gajim's roster before it was seen offline"
        assert resources(c) == {}, c
        got = await poll(lambda: (received(gajim, room, mark), received(gajim, component, mark)),
                         lambda r: r == (["The chat is now closed."], [f"#{n} is closed."]), 10,
                         "the closing line from the contact and the desk's answer in Gajim's archive")
        steps.saw("archive, received from the contact and from the desk", got)
        s = await poll(lambda: frontdesk.session_of(room), lambda s: s and s["state"] == "CLOSED", 10,
                       "the session CLOSED")
        steps.saw("frontdesk session", {k: s[k] for k in ("id", "state", "staff")})
        # remove_after_secs (3): the contact leaves Gajim's roster; the desk stays.
        cs = await poll(lambda: gajim.contacts(), lambda cs: cs is not None and room not in [c["jid"] for c in cs],
                        15, "the visitor contact gone from Gajim's roster")
        steps.saw("Gajim's contacts", cs)
        assert shows("online")(next((c for c in cs if c["jid"] == component), None)), cs

    # Nothing frontdesk sent made Gajim fail.
    errors = gajim.exceptions()
    assert not errors, f"Gajim logged {len(errors)} exception(s) ({gajim.log}):\n" + "\n\n".join(errors)

    total = time.monotonic() - steps.t0
    TIMINGS.setdefault(f"gajim staff flow (8 steps, {server_name})", []).append(total)
    print(f"steps: {steps.summary()}; gajim-remote calls: {gajim.remote_calls} ({gajim.remote_seconds:.1f} s)")
