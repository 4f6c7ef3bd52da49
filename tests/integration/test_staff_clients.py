"""The whole staff flow from real console XMPP clients, driven in tmux, with the visitor played by
slixmpp: log in (the front desk in the roster), a visitor joins (INACTIVE on the client's
screen), writes (ACTIVE with the first words, the offer), the staff member claims by replying
one-to-one, `!waiting` / `!status` to the front desk, ad-hoc commands from the client's own
menu, `!finish`.

Tested with (Debian bookworm packages): Profanity 0.13.1 (`profanity --version`: "Profanity,
version 0.13.1"), poezio 0.14 (`poezio --version`: "Poezio v0.14", package 0.14-2, on Debian's
python3-slixmpp 1.8.3), tmux 3.3a.

Every assertion about the client reads its screen (tmux capture-pane); frontdesk's side is read
from its database (`frontdesk sessions` / `transcript`). Each test saves the clients' final
screens as <name>.screen.txt in its tmp_path and adds them to a failure's message; the clients'
own logs (profanity -l DEBUG, poezio -d) are there too.

poezio refuses to run as root: as root it runs as `nobody`, with its HOME under tmp_path.

What the screens show besides the flow, not asserted (see the clients' logs):
- poezio prints the first message of a new conversation twice: it was received once (asserted
  from its debug log); the new tab also loads it from poezio's own local log (not with
  use_log = false). It shows an unavailable presence as "changed: show: available" then
  "is offline".
- After !finish, the client's next chat state to the closed contact (poezio: <active/> when
  its tab is focused; Profanity: <gone/> at /quit) is answered by frontdesk with an
  item-not-found error, "This chat is closed: the visitor is no longer here.", which poezio
  prints in the conversation.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import tui
from helpers import attr, groupchat_from, kind, poll, presence_from, show, status_codes
from test_prosody import on_prosody, prosody  # noqa: F401 (fixtures)
from test_staff import room_of, session_when

FIRST_WORDS = "Hello? My parcel is late."
REPLY = "Hi Ann, Alice here. Let me look."


def lit(text: str) -> str:
    """A regex matching `text` literally."""
    return re.escape(text)


def stacked(*lines: str) -> str:
    """A regex for these texts on consecutive screen lines (whatever is beside them)."""
    return r"[^\n]*\n[^\n]*".join(lit(ln) for ln in lines)


async def visitor_joins(clients, room: str):
    v = await clients.visitor()
    await v.join(room, "Ann")
    return v


async def visitor_sees_reply(v, room: str):
    await v.expect(presence_from(f"{room}/alice_acme"), what="alice joining, as the visitor sees it")
    await v.expect(groupchat_from(room, nick="alice_acme", body_is=REPLY), what="alice's reply in the room")


async def visitor_sees_closed(v, room: str):
    await v.expect(groupchat_from(room, body_is="The chat is now closed."), what="the closing line")
    gone = await v.expect(lambda st: kind(st) == "presence" and attr(st, "from") == f"{room}/Ann"
                          and attr(st, "type") == "unavailable", what="the visitor's own exit")
    assert 110 in status_codes(gone) and "destroy" in show(gone), show(gone)


async def desk_settled(t: tui.Terminal, send, prefix: str, timeout: float = 20) -> None:
    """From the front desk's conversation, where `!diag` was just sent: ask again (`send`)
    until the desk has chosen how it writes rosters, then `!status` until it says this staff
    member is available. Until the roster rung is chosen (about 2 s after frontdesk connects)
    roster items wait in a queue, so a visitor who joins then reaches staff rosters up to 2 s
    after the contact's presence: the flow starts once frontdesk is settled, so that each
    wait below is about its own step."""
    deadline = asyncio.get_running_loop().time() + timeout
    attempt = 1
    while True:
        m = await t.wait_for(r"roster: (\S+)", 10, count=attempt, what=f"answer {attempt} to !diag")
        if m.group(1) != "choosing…":
            break
        assert asyncio.get_running_loop().time() < deadline, f"the desk still says {m.group(0)!r}"
        await asyncio.sleep(0.3)  # the retry interval; the answer is waited for above
        await send("!diag")
        attempt += 1
    await send("!status")
    attempt = 1
    while True:
        m = await t.wait_for(lit(prefix) + r"(You have no chats\. You are .*)$", 10, count=attempt,
                             what=f"answer {attempt} to !status")
        if "available for new chats" in m.group(1):
            return
        assert asyncio.get_running_loop().time() < deadline, f"the desk still says {m.group(1)!r}"
        await asyncio.sleep(0.3)
        await send("!status")
        attempt += 1


def offline_lines(fd, jid: str) -> int:
    """How many times frontdesk has logged `jid` going offline."""
    return len(re.findall(r"staff offline[^\n]*staff=" + lit(jid) + r"\b", fd.log_text()))


async def logged_out(fd, jid: str, term: tui.Terminal, before: int) -> None:
    """The client, asked to /quit at the end of the test block, exited, and frontdesk saw the
    staff member go offline (once more than `before`), so no session is left over for the
    next test (a killed Profanity would leave one: it resumes streams, XEP-0198)."""
    assert term.pane_pid is not None and not tui.process_alive(term.pane_pid), f"{term.name} still running"
    await poll(lambda: offline_lines(fd, jid), lambda n: n > before, 10,
               f"frontdesk seeing {jid} go offline after /quit")


def received(log: Path, needle: str) -> list[str]:
    """The stanzas a client logged as received (the RECV: lines of profanity -l DEBUG and of
    poezio -d) that contain `needle`."""
    try:
        text = log.read_text(errors="replace")
    except OSError:
        return []
    return [ln for ln in text.splitlines() if "RECV:" in ln and needle in ln]


def said(fd, session_id: int) -> list[tuple[str, str, str]]:
    return [(e["role"], e["nick"], e["body"]) for e in fd.transcript(session_id) if e["role"] != "system"]


# ---- Profanity ------------------------------------------------------------------------------

class Profanity:
    """Profanity in tmux, with an account file and profrc written beforehand under its own
    HOME (XDG dirs), logging at DEBUG to its own log file."""

    def __init__(self, workdir: Path, server, user: str = "alice_acme"):
        tui.require("profanity")
        self.home = workdir / "home"
        data = self.home / ".local" / "share" / "profanity"
        conf = self.home / ".config" / "profanity"
        data.mkdir(parents=True)
        conf.mkdir(parents=True)
        self.jid = f"{user}@{server.staff_host}"
        (data / "accounts").write_text(
            "[alice]\n"
            "enabled=true\n"
            f"jid={self.jid}\n"
            "resource=tui\n"
            "server=127.0.0.1\n"
            f"port={server.c2s_port}\n"
            # No TLS on the private loopback servers.
            "tls.policy=disable\n"
            f"password={server.passwords[user]}\n"
            "presence.login=online\n")
        (conf / "profrc").write_text(
            "[connection]\n"
            "account=alice\n"
            "[notifications]\n"
            "message=false\n"
            "room=false\n"
            "invite=false\n"
            "sub=false\n")
        self.log = data / "logs" / "profanity.log"
        # Tall: /roster lists every item, and in the full suite alice's roster still holds
        # visitors of earlier tests (each test's frontdesk starts with a new database).
        self.term = tui.Terminal("profanity", workdir, ["profanity", "-a", "alice", "-l", "DEBUG"],
                                 home=self.home, height=150)
        self.term.quit = self.quit

    async def quit(self) -> None:
        self.cmd("/quit")

    def start(self):
        self.term.start()
        return self

    def cmd(self, text: str) -> None:
        """Type a line and Enter (Profanity takes them in one go)."""
        self.term.type(text)

    async def say(self, text: str) -> None:
        self.cmd(text)

    async def win(self, target: str, title: str) -> None:
        """Focus a window (`/win console`, `/win <jid>`) and wait for its title bar."""
        self.cmd(f"/win {target}")
        await self.term.wait_for(r"\A\s*" + lit(title), 5, what=f"the window {target!r} in front")


async def profanity_flow(server, fd, clients, tmp_path: Path, visitor: str):
    component = server.component_jid
    room = room_of(visitor)
    p = Profanity(tmp_path / "profanity", server)
    t = p.term
    async with tui.screens_on_failure(tmp_path, [t], {"profanity log": p.log, "frontdesk log": fd.log}):
        p.start()
        # 1. Logged in; the front desk in the roster (the panel and /roster); frontdesk settled
        #    and knowing alice is there (!diag and !status from the client say so).
        await t.wait_for(lit(f"{p.jid}/tui logged in successfully"), 20, what="the login")
        await t.wait_for(r"Front desk \(frontdesk\) is online", 15, what="the front desk's presence in the console")
        p.cmd("/roster")
        await t.wait_for(lit(f"{component} (Front desk) - both"), 10, what="the front desk in /roster")
        p.cmd(f"/msg {component} !diag")
        await p.term.wait_for(r"\A\s*" + lit("Front desk [online]"), 5, what="the front desk's window")
        await desk_settled(t, p.say, "Front desk: ")

        # 2. A visitor joins: INACTIVE on the console, in /status get, under Away in the roster.
        v = await visitor_joins(clients, room)
        await p.win("console", "Profanity.")
        contact = "Ann (ACME Inc.)"
        await t.wait_for(lit(f"Roster item added: {room} ({contact})"), 15, what="the visitor's roster item")
        await t.wait_for(lit(f'++ {contact} (frontdesk) is away, "INACTIVE — browsing"'), 10, what="the INACTIVE presence")
        p.cmd(f"/status get {room}")
        await t.wait_for(r"^\S+ - " + lit(f'{contact} is away, "INACTIVE — browsing"'), 5,
                         what="/status get: INACTIVE")
        await t.wait_until(lambda s: in_roster_group(s, "Away", contact), 5, "the visitor under Away in the panel")
        p.cmd("/roster")
        await t.wait_for(lit(f"{room} ({contact}) - both - ACME Inc. visitors"), 5, what="the visitor in /roster")
        n = (await session_when(fd, room, lambda s: s["state"] == "INACTIVE", "INACTIVE"))["id"]

        # 3. The visitor writes: ACTIVE with the first words; the offer (the visitor's words from
        #    the contact, the desk's note in the front desk's window).
        await v.say(room, FIRST_WORDS)
        await t.wait_for(lit(f"<< chat message: {contact} (win "), 10, what="the offer's window announced")
        await t.wait_for(lit(f'++ {contact} (frontdesk) is chat, "ACTIVE — {FIRST_WORDS}"'), 10, what="the ACTIVE presence")
        p.cmd(f"/status get {room}")
        await t.wait_for(r"^\S+ - " + lit(f'{contact} is chat, "ACTIVE — {FIRST_WORDS}"'), 5,
                         what="/status get: ACTIVE")
        await t.wait_until(lambda s: in_roster_group(s, "Available for chat", contact), 5,
                           "the visitor under Available for chat in the panel")
        await p.win(room, f"{contact} [chat]")
        await t.wait_for(r"^\S+ - " + lit(f"{contact}: {FIRST_WORDS}"), 5, what="the visitor's words")
        await p.win(component, "Front desk [online]")
        await t.wait_for(r"^\S+ - " + lit(f"Front desk: Visitor Ann on ACME Inc. wants to chat (#{n}). "
                                          f"Reply to them, or send !accept {n}."), 5, what="the desk's note")
        # What reached the client (its log): one offer, one note.
        assert len(received(p.log, f">{FIRST_WORDS}</body>")) == 1, received(p.log, FIRST_WORDS)
        assert len(received(p.log, "wants to chat")) == 1, received(p.log, "wants to chat")
        p.cmd("!waiting")
        await t.wait_for(r"Front desk: 1 open request\(s\):\n\s+" + lit(f"#{n} Ann on ACME Inc. — ACTIVE for ")
                         + r".*" + lit(f'"{FIRST_WORDS}"'), 10, what="!waiting listing the chat")
        assert fd.session_of(room)["state"] == "ACTIVE", fd.session_of(room)

        # 4. The claim: /msg to the contact from the console window.
        await p.win("console", "Profanity.")
        p.cmd(f"/msg {room} {REPLY}")
        await visitor_sees_reply(v, room)
        await t.wait_for(r"^\S+ - me: " + lit(REPLY), 10, what="the reply in the chat window")
        s = await session_when(fd, room, lambda s: s["state"] == "CHATTING", "CHATTING")
        assert s["staff"] == f"alice_acme@{server.staff_host}", s
        await v.say(room, "Order 42")
        await t.wait_for(r"^\S+ - " + lit(f"{contact}: Order 42"), 10, what="the visitor's next message, one-to-one")
        await p.win("console", "Profanity.")
        await t.wait_for(lit(f'++ {contact} (frontdesk) is dnd, "CHATTING with alice_acme"'), 10, what="the CHATTING presence")

        # 5. !waiting and !status to the front desk.
        await p.win(component, "Front desk [online]")
        p.cmd("!waiting")
        await t.wait_for(r"Front desk: No chats are waiting on your sites\.", 10, what="!waiting: none left")
        p.cmd("!status")
        await t.wait_for(r"Front desk: Your chats \(1\); you are available for new chats:\n\s+"
                         + lit(f"#{n} Ann ({room}) since "), 10, what="!status with the chat")

        # 6. Ad-hoc commands from the client's menu: the list, `status`, and `transcript` (a form).
        p.cmd(f"/cmd list {component}")
        m = await t.wait_for(r"! Ad hoc commands:\n((?:\S+ !   \S+\n)+)", 10, what="the ad-hoc command list")
        nodes = re.findall(r"!   (\S+)", m.group(1))
        assert {"waiting", "accept", "cancel", "finish", "status", "transcript", "diag", "help"} <= set(nodes), nodes
        p.cmd(f"/cmd exec status {component}")
        await t.wait_for(r"! status completed\n\S+ ! Your chats \(1\); you are available for new chats:\n\s+"
                         + lit(f"#{n} Ann ({room})"), 10, what="the ad-hoc status result")
        p.cmd(f"/cmd exec transcript {component}")
        await t.wait_for(r"Form title: transcript: which chat\?", 10, what="the transcript form")
        await t.wait_for(r"\[field1\] Chat \(required\)", 5, what="the form's field")
        p.cmd(f"/field1 {n}")
        # Profanity shows a list-single field's options again, the chosen one in another colour.
        # (Matching "Chat (required): N" passed only before 20:00: the next line's timestamp
        # followed the empty field on the same screen line.)
        await t.wait_for(r"Field updated\.\.\.\n[^\n]*\[field1\] Chat \(required\):[ ]*\n[^\n]* - +"
                         + re.escape(f"[{n}] #{n} Ann ("), 5, what="the field set")
        p.cmd("/form submit")
        await p.win(component, "Front desk [online]")
        await t.wait_for(r"! transcript completed\n\S+ ! " + lit(f"#{n} {visitor} (acme), CHATTING:")
                         + r"[\s\S]*Ann \(visitor\): " + lit(FIRST_WORDS) + r"[\s\S]*alice_acme \(staff\): " + lit(REPLY), 10,
                         what="the transcript by ad-hoc")

        # 7. !finish: the visitor is told, the contact goes offline, then leaves the roster.
        p.cmd("!finish")
        await t.wait_for(r"Front desk: " + lit(f"#{n} is closed."), 10, what="!finish answered")
        await visitor_sees_closed(v, room)
        s = await session_when(fd, room, lambda s: s["state"] == "CLOSED", "CLOSED")
        assert s["staff"] == f"alice_acme@{server.staff_host}", s
        await p.win(room, contact)
        await t.wait_for(r"^\S+ - " + lit(f"{contact}: The chat is now closed."), 10, what="the closing line")
        await p.win("console", "Profanity.")
        await t.wait_for(lit(f"-- {contact} (frontdesk) is offline"), 10, what="the contact offline")
        await t.wait_for(lit(f"Roster item removed: {room}"), 20, what="the contact leaving the roster")
        assert said(fd, n) == [("visitor", "Ann", FIRST_WORDS), ("staff", "alice_acme", REPLY),
                               ("visitor", "Ann", "Order 42")], fd.transcript(n)
        offline_before = offline_lines(fd, p.jid)
    await logged_out(fd, p.jid, t, offline_before)


def in_roster_group(screen: str, group: str, contact: str) -> bool:
    """Whether Profanity's roster panel (the right column) lists `contact` under `group`."""
    lines = screen.splitlines()
    col = next((ln.find("Available for chat (") for ln in lines if "Available for chat (" in ln), -1)
    if col < 0:
        return False
    panel = [ln[col:].strip() for ln in lines]
    try:
        start = next(i for i, ln in enumerate(panel) if re.fullmatch(lit(group) + r" \(\d+\)", ln))
    except StopIteration:
        return False
    for ln in panel[start + 1:]:
        if re.fullmatch(r".* \(\d+\)", ln) and not ln.startswith(contact):
            return False  # the next group
        if ln.startswith(contact):
            return True
    return False


async def test_profanity_on_ejabberd(frontdesk, clients, ejabberd, tmp_path):
    await profanity_flow(ejabberd, frontdesk, clients, tmp_path, "v70")


async def test_profanity_on_prosody(on_prosody, prosody, tmp_path):
    fd, clients = on_prosody
    await profanity_flow(prosody, fd, clients, tmp_path, "v72")


# ---- poezio ---------------------------------------------------------------------------------

class Poezio:
    """poezio in tmux with ~/.config/poezio/poezio.cfg written beforehand (jid, password, the
    private server's port, no forced encryption on loopback), its debug log (every stanza
    sent and received) in its HOME. As root it runs as `nobody`."""

    def __init__(self, workdir: Path, server, user: str = "alice_acme"):
        tui.require("poezio")
        self.home = workdir / "home"
        conf = self.home / ".config" / "poezio"
        conf.mkdir(parents=True)
        self.jid = f"{user}@{server.staff_host}"
        (conf / "poezio.cfg").write_text(
            "[Poezio]\n"
            f"jid = {self.jid}/tui\n"
            f"password = {server.passwords[user]}\n"
            "custom_host = 127.0.0.1\n"
            f"custom_port = {server.c2s_port}\n"
            # Plain TCP on loopback: the private servers offer no STARTTLS, and with
            # force_encryption off SCRAM may go unencrypted. No certificate is ever presented,
            # so the certificate options (certificate, ignore_certificate, ca_cert_path) stay
            # at their defaults.
            "force_encryption = false\n"
            "device_id = fdtest\n")
        self.log = self.home / "debug.log"
        user_ = tui.unprivileged_user()
        tui.give_to(user_, self.home)
        self.term = tui.Terminal("poezio", workdir, ["poezio", "-d", str(self.log)], home=self.home,
                                 user=user_)
        self.term.quit = self.quit

    async def quit(self) -> None:
        await self.command("/quit")

    def start(self):
        self.term.start()
        return self

    def selected_row(self) -> str | None:
        """The first word of the highlighted row of a list tab (white on blue: SGR 37;44),
        header excluded."""
        for line in self.term.styled_screen():
            rest = line.split("│", 1)[-1] if "│" in line else ""
            m = re.match(r"((?:\x1b\[[0-9;]*m)*)(\S+)", rest)
            if m and "\x1b[44m" in m.group(1) and "\x1b[37m" in m.group(1) and m.group(2) != "Node":
                return m.group(2)
        return None

    async def select_row(self, first_word: str, limit: int = 20) -> None:
        """Move the list tab's selection down to the row starting with `first_word`, one Down
        at a time, each seen to move the highlight."""
        for _ in range(limit):
            now = self.selected_row()
            if now == first_word:
                return
            self.term.key("Down")
            await self.term.wait_until(lambda _: self.selected_row() != now, 5, f"the selection to leave {now!r}")
        raise AssertionError(f"no row {first_word!r} in the list (selected: {self.selected_row()!r})")

    async def enter(self, text: str) -> None:
        """Type `text`, then Enter once the input line shows it. poezio reads what arrives at
        once as a paste and drops a final Enter from it, so the Enter must come on its own."""
        self.term.type(text, enter=False)
        tail = text[-40:]
        await self.term.wait_until(lambda s: s.splitlines()[-1].rstrip().endswith(tail), 5,
                                   f"{text!r} on the input line")
        self.term.key("Enter")

    async def command(self, text: str) -> None:
        """A /command: "/" on its own first (a tab that is not a conversation, like the ad-hoc
        list, drops a command pasted in one go), then the rest."""
        assert text.startswith("/")
        self.term.key("/")
        await self.term.wait_until(lambda s: s.splitlines()[-1].rstrip().endswith("/"), 5,
                                   "the command line")
        await self.enter(text[1:])

    async def end_search(self) -> None:
        """Enter ends a roster search; the next key only once the roster tab's help is back
        (an Enter read together with later keys is taken as part of a paste)."""
        self.term.key("Enter")
        await self.term.wait_until(lambda s: "Enter commands with" in s.splitlines()[-1], 5,
                                   "the end of the search")

    async def search(self, text: str, expect: str, what: str, timeout: float = 10) -> re.Match:
        """In the roster tab: `s` starts a search (the filter selects the first match), then
        wait for `expect` (a regex) on the screen. The text goes in once the input line is
        empty instead of showing the tab's help (typed together with the `s`, poezio takes it
        all as a paste and drops it).

        poezio 0.14 redraws its roster from a cache that a roster push does not invalidate
        (on_roster_update does not call roster.modified()): a contact whose presence came
        before its roster item can stay missing until something else changes the roster. Every
        keystroke in the search rebuilds it, so the last character is typed again until the
        contact is there."""
        self.term.key("s")
        await self.term.wait_until(lambda s: s.splitlines()[-1].strip(" │") == "", 5, "the search input")
        self.term.type(text, enter=False)
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            try:
                return await self.term.wait_for(expect, 1.5, what=what)
            except tui.TuiError:
                if asyncio.get_running_loop().time() > deadline:
                    raise
            self.term.key("BSpace")
            await self.term.wait_until(lambda s: not s.splitlines()[-1].rstrip().endswith(text), 5,
                                       "the search text shortened")
            self.term.type(text[-1], enter=False)
            await self.term.wait_until(lambda s: s.splitlines()[-1].rstrip().endswith(text), 5,
                                       "the search text typed again")

    def tab_number(self, screen: str, name: str) -> int | None:
        m = re.search(r"^\s*(\d+)\." + lit(name), screen, re.MULTILINE)
        return int(m.group(1)) if m else None

    async def tab(self, name: str, header: str) -> None:
        """Focus the tab `name` (from the tab list on the left) and wait for its header."""
        screen = await self.term.wait_until(lambda s: self.tab_number(s, name) is not None, 10,
                                            f"the tab {name!r}")
        n = self.tab_number(screen, name)
        assert n is not None and n <= 9, (name, n)
        self.term.key(f"M-{n}")
        await self.term.wait_for(lit(header), 5, what=f"the tab {name!r} in front")


async def poezio_flow(server, fd, clients, tmp_path: Path, visitor: str):
    component = server.component_jid
    room = room_of(visitor)
    z = Poezio(tmp_path / "poezio", server)
    t = z.term
    async with tui.screens_on_failure(tmp_path, [t], {"poezio debug log": z.log, "frontdesk log": fd.log}):
        z.start()
        # 1. Logged in; the front desk in the roster tab (its info box: subscription both and
        #    the desk's status); frontdesk settled and knowing alice is there (!diag, !status).
        await t.wait_for(r"Info> Authentication success\.", 20, what="the login")
        await t.wait_for(lit(f"Front desk ({component})"), 15, what="the front desk in the roster")
        await z.search(component, stacked(f"{component} ()", "Subscription: both",
                                          "Status: frontdesk — send !help for the commands"),
                       "the front desk's info box (available, subscription both)")
        await z.end_search()
        await z.command(f"/message {component} !diag")
        await z.tab("Front desk", f"[{component}] Front desk")
        await desk_settled(t, z.enter, "Front desk> ")

        # 2. A visitor joins: in the roster tab (a search selects it), its info box says away,
        #    INACTIVE; the box follows its presence.
        v = await visitor_joins(clients, room)
        contact = "Ann (ACME Inc.)"
        t.key("M-0")
        await t.wait_for(r"Roster: \d+/\d+ contacts", 5, what="the roster tab")
        await z.search(room, lit(f"{contact} ({room})") + r"[\s\S]*"
                       + stacked(f"{room} (away)", "Subscription: both", "Status: INACTIVE — browsing"),
                       "the visitor found, its info box: INACTIVE", timeout=15)
        n = (await session_when(fd, room, lambda s: s["state"] == "INACTIVE", "INACTIVE"))["id"]

        # 3. The visitor writes: the box says chat, ACTIVE with the first words; the offer
        #    opens a tab for the contact and one for the front desk's note.
        await v.say(room, FIRST_WORDS)
        await t.wait_for(stacked(f"{room} (chat)", "Subscription: both", f"Status: ACTIVE — {FIRST_WORDS}"), 10,
                         what="the visitor's info box: ACTIVE")
        await z.end_search()
        await t.wait_for(r"\[-\] ACME Inc\. visitors \(\d+/\d+\)[^\n]*\n[^\n]*" + lit(f"{contact} ({room})"), 5,
                         what="the visitor in its group in the whole roster")
        await z.tab(contact, f"[{room}] {contact} [chat ACTIVE")
        await t.wait_for(lit(f"{contact}> {FIRST_WORDS}"), 5, what="the visitor's words")
        await z.tab("Front desk", f"[{component}] Front desk")
        note = (f"Visitor Ann on ACME Inc. wants to chat (#{n}). Reply to them, or send !accept {n}.")
        await t.wait_for(lit(f"Front desk> {note}"), 5, what="the desk's note")
        await z.enter("!waiting")
        await t.wait_for(r"Front desk> 1 open request\(s\):\n.*" + lit(f"#{n} Ann on ACME Inc. — ACTIVE for ")
                         + r".*" + lit(f'"{FIRST_WORDS}"'), 10, what="!waiting listing the chat")
        assert fd.session_of(room)["state"] == "ACTIVE", fd.session_of(room)
        # What reached the client (its debug log): one offer, one note.
        assert len(received(z.log, f">{FIRST_WORDS}</body>")) == 1, received(z.log, FIRST_WORDS)
        assert len(received(z.log, "wants to chat")) == 1, received(z.log, "wants to chat")

        # 4. The claim: typed in the contact's conversation tab.
        await z.tab(contact, f"[{room}] {contact}")
        await z.enter(REPLY)
        await visitor_sees_reply(v, room)
        await t.wait_for(r"alice_acme> " + lit(REPLY), 10, what="the reply in the conversation")
        s = await session_when(fd, room, lambda s: s["state"] == "CHATTING", "CHATTING")
        assert s["staff"] == f"alice_acme@{server.staff_host}", s
        await t.wait_for(lit(f"{contact} changed: status: CHATTING with alice_acme, show: busy"), 10,
                         what="the CHATTING presence")
        await v.say(room, "Order 42")
        await t.wait_for(lit(f"{contact}> Order 42"), 10, what="the visitor's next message, one-to-one")

        # 5. !waiting and !status to the front desk.
        await z.tab("Front desk", f"[{component}] Front desk")
        await z.enter("!waiting")
        await t.wait_for(r"Front desk> No chats are waiting on your sites\.", 10, what="!waiting: none left")
        await z.enter("!status")
        await t.wait_for(r"Front desk> Your chats \(1\); you are available for new chats:\n.*"
                         + lit(f"#{n} Ann ({room}) since "), 10, what="!status with the chat")

        # 6. Ad-hoc commands: /ad-hoc lists them in a tab; Enter on `status` runs it; Enter on
        #    `transcript` opens its form (a list of chats), Ctrl+Y sends it. Results go to the
        #    information buffer, read in full on the roster tab.
        await z.command(f"/ad-hoc {component}")
        screen = await t.wait_until(lambda s: f"Ad-hoc commands of JID {component}" in s
                                    and "(Loading)" not in s, 10, "the ad-hoc command list")
        nodes = adhoc_nodes(screen)
        assert {"waiting", "accept", "cancel", "finish", "status", "transcript", "diag", "help"} <= set(nodes), nodes
        await z.select_row("status")
        t.key("Enter")
        await t.wait_for(r"Adhoc command completed: Your chats \(1\); you are available for new chats:", 10,
                         what="the ad-hoc status result")
        await z.select_row("transcript")
        t.key("Enter")
        await t.wait_for(r"transcript: which chat\?", 10, what="the transcript form")
        await t.wait_for(r"Chat\s+" + lit(f"#{n} Ann (CHATTING)"), 5, what="the chat offered in the form")
        t.key("C-y")
        t.key("M-0")
        await t.wait_for(r"Adhoc command completed: " + lit(f"#{n} {visitor} (acme), CHATTING:")
                         + r"[\s\S]*Ann \(visitor\): " + lit(FIRST_WORDS) + r"[\s\S]*alice_acme \(staff\): " + lit(REPLY), 10,
                         what="the transcript by ad-hoc, in the roster tab's information buffer")

        # 7. !finish: the visitor is told, the contact goes offline.
        await z.tab("Front desk", f"[{component}] Front desk")
        await z.enter("!finish")
        await t.wait_for(r"Front desk> " + lit(f"#{n} is closed."), 10, what="!finish answered")
        await visitor_sees_closed(v, room)
        s = await session_when(fd, room, lambda s: s["state"] == "CLOSED", "CLOSED")
        assert s["staff"] == f"alice_acme@{server.staff_host}", s
        await z.tab(contact, f"[{room}] {contact}")
        await t.wait_for(lit(f"{contact}> The chat is now closed."), 10, what="the closing line")
        await t.wait_for(lit(f"{contact} is offline"), 10, what="the contact offline")
        assert said(fd, n) == [("visitor", "Ann", FIRST_WORDS), ("staff", "alice_acme", REPLY),
                               ("visitor", "Ann", "Order 42")], fd.transcript(n)
        offline_before = offline_lines(fd, z.jid)
    await logged_out(fd, z.jid, t, offline_before)


def adhoc_nodes(screen: str) -> list[str]:
    """The nodes of poezio's ad-hoc list tab, in the order shown."""
    lines = [ln.split("│", 1)[-1] for ln in screen.splitlines()]
    start = next(i for i, ln in enumerate(lines) if re.match(r"Node\s+Description", ln))
    nodes = []
    for ln in lines[start + 1:]:
        m = re.match(r"(\S+)\s{2,}\S", ln)
        if not m:
            break
        nodes.append(m.group(1))
    return nodes


async def test_poezio_on_ejabberd(frontdesk, clients, ejabberd, tmp_path):
    await poezio_flow(ejabberd, frontdesk, clients, tmp_path, "v71")


async def test_poezio_on_prosody(on_prosody, prosody, tmp_path):
    fd, clients = on_prosody
    await poezio_flow(prosody, fd, clients, tmp_path, "v73")
