"""The visitor's side in a real browser: examples/web's widget (Strophe.js from npm over
ejabberd's WebSocket and BOSH) in Debian's headless Chromium, driven by Playwright, with
frontdesk and a staff member on slixmpp. One browser serves the whole module. Screenshots of
each state (desktop and a 390×844 phone) are listed at the end of the run; axe-core checks
every state for accessibility violations.

The shop site requires signed tokens (`token_secret`); its tokens come from `frontdesk token`.
Its staff member has a display name and an avatar.
"""

from __future__ import annotations

import asyncio
import functools
import http.server
import os
import threading
from pathlib import Path

import gzip
import re

import pytest
import pytest_asyncio

import xmpp_env
from conftest import ARTEFACTS
from helpers import JoinRefused, body, frontdesk_with_clients, groupchat_from, kind, attr, child, poll, show

# One event loop for the module, as the browser is shared (sync tests carry no mark).
MODULE_LOOP = pytest.mark.asyncio(loop_scope="module")

REPO = Path(__file__).resolve().parents[2]
WEB = REPO / "examples" / "web"
CHROMIUM = os.environ.get("FRONTDESK_CHROMIUM", "/usr/bin/chromium")
SHOP_SECRET = "widget-test-token-secret-0123456789"
AVATAR = "https://example.com/alice.png"
SITES = xmpp_env.DEFAULT_SITES + [
    {"id": "shop", "name": "The Shop", "token_secret": SHOP_SECRET,
     "staff": [{"jid": "alice_acme@localhost", "name": "Alice Martin", "avatar": AVATAR}]},
]
NS_CHATSTATES = "http://jabber.org/protocol/chatstates"
NS_MARKERS = "urn:xmpp:chat-markers:0"
NS_SID = "urn:xmpp:sid:0"
NS_WIDGET = "urn:frontdesk:widget:0"
AVATAR_SVG = ("<svg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 2 2'>"
              "<circle cx='1' cy='1' r='1' fill='#c58b3a'/></svg>")
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1024, "height": 720}


# From helper-5's branch (issue4-web): a relay that can take the chat server away from the page.
class Relay:
    """A TCP relay on a fixed free port to `target_port`, which can be off (connections are
    refused: nothing listens), silent (connections hang) or on. It lets a test take the chat
    server away from the page."""

    def __init__(self, port: int, target_port: int):
        self.port = port
        self.target_port = target_port
        self.server: asyncio.base_events.Server | None = None
        self.tasks: set[asyncio.Task] = set()
        self.silent = False

    async def start(self, silent: bool = False) -> None:
        """Listen; `silent`: accept connections but never answer (a black-holed server)."""
        self.silent = silent
        self.server = await asyncio.start_server(self._client, "127.0.0.1", self.port)

    async def _client(self, reader, writer):
        if self.silent:
            task = asyncio.current_task()
            self.tasks.add(task)
            try:
                while await reader.read(65536):
                    pass
            except (ConnectionError, asyncio.CancelledError):
                pass
            finally:
                self.tasks.discard(task)
                writer.close()
            return
        try:
            up_r, up_w = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.close()
            return

        async def pipe(r, w):
            try:
                while data := await r.read(65536):
                    w.write(data)
                    await w.drain()
            except (ConnectionError, asyncio.CancelledError):
                pass
            finally:
                w.close()

        for t in (asyncio.create_task(pipe(reader, up_w)), asyncio.create_task(pipe(up_r, writer))):
            self.tasks.add(t)
            t.add_done_callback(self.tasks.discard)

    async def stop(self) -> None:
        """Stop listening and cut every relayed connection (wait_closed waits for them)."""
        for t in list(self.tasks):
            t.cancel()
        if self.server is not None:
            self.server.close()
            await asyncio.wait_for(self.server.wait_closed(), 10)
            self.server = None


@pytest.fixture(scope="module")
def web_server():
    """examples/web on a free localhost port (the pages, the widget and node_modules)."""
    for need in ("strophe.js/dist/strophe.umd.min.js", "axe-core/axe.min.js"):
        if not (WEB / "node_modules" / need).exists():
            pytest.fail(f"examples/web/node_modules/{need} is missing: run `npm ci` in examples/web "
                        "(scripts/test does)", pytrace=False)

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(WEB)))
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.fixture(scope="module")
def shots(tmp_path_factory):
    d = Path(os.environ.get("FRONTDESK_SCREENSHOTS") or tmp_path_factory.mktemp("widget-screenshots"))
    d.mkdir(parents=True, exist_ok=True)
    print(f"\nwidget screenshots: {d}")
    return d


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def browser():
    """One headless Chromium for the module; each test opens its own contexts."""
    from playwright.async_api import async_playwright
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (scripts/test does)", pytrace=False)
    async with async_playwright() as p:
        b = await p.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync"])
        yield b
        await b.close()


@pytest_asyncio.fixture(loop_scope="module")
async def desk(ejabberd, tmp_path):
    """frontdesk with the token site, and a Clients factory; stopped cleanly afterwards."""
    async with frontdesk_with_clients(ejabberd, tmp_path / "frontdesk", sites=SITES) as running:
        yield running


def token(fd, visitor: str, site: str = "shop", ttl: int = 3600) -> str:
    r = fd.cli("token", "--site", site, "--visitor", visitor, "--ttl", str(ttl))
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


def page_url(web_server, server, *, visitor, nick="Ann", site="shop", tok=None, bosh=None, ws=None,
             page="index.html", **extra) -> str:
    """The demo page for `server` (ejabberd: /bosh and /ws; Prosody: /http-bind and
    /xmpp-websocket); `ws`: a WebSocket URL tried first."""
    from urllib.parse import urlencode
    q = {"bosh": bosh or f"http://127.0.0.1:{server.http_port}/bosh", "domain": server.anon_host,
         "component": server.component_jid, "site": site, "visitor": visitor, "nick": nick}
    if nick is None:  # the widget's own choice
        del q["nick"]
    if ws:
        q["websocket"] = ws
    if tok:
        q["token"] = tok
    q.update(extra)
    return f"{web_server}/{page}?{urlencode(q)}"


async def open_widget(browser, url, viewport=None, open_panel=True):
    """A new browser context on `url`; the panel opened from the launcher (with the keyboard)."""
    ctx = await browser.new_context(viewport=viewport or DESKTOP)
    # The configured avatar, served without the internet.
    await ctx.route(AVATAR, lambda r: r.fulfill(content_type="image/svg+xml", body=AVATAR_SVG))
    page = await ctx.new_page()
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("console", lambda m: console_noise(m) and errors.append(f"console.{m.type}: {m.text}"))
    await page.goto(url)
    if open_panel:
        await page.wait_for_selector(".frontdesk .fd-launcher")
        if await page.get_attribute(".frontdesk", "data-open") != "true":
            await page.focus(".frontdesk .fd-launcher")
            await page.keyboard.press("Enter")
        await page.wait_for_selector(".frontdesk[data-open='true']", state="attached")
    return page, errors


def console_noise(m) -> bool:
    """Console output the widget must not make (Strophe's logging is off unless debug: true);
    the browser's own lines about refused connections are expected where a test cuts the server."""
    browser_net = m.text.startswith(("Failed to load resource", "WebSocket connection to"))
    return m.type in ("error", "debug", "info", "log") and not browser_net


async def state_is(page, state: str, timeout: float = 15):
    from playwright.async_api import TimeoutError as PlaywrightTimeout
    try:
        await page.wait_for_selector(f".frontdesk[data-state='{state}']", state="attached", timeout=timeout * 1000)
    except PlaywrightTimeout:
        now = await page.eval_on_selector(".frontdesk", "e => [e.dataset.state, e.textContent.slice(0, 300)]")
        raise AssertionError(f"the widget never reached {state!r} in {timeout} s; it is {now}") from None


async def lines(page) -> list[str]:
    return await page.eval_on_selector_all(".frontdesk .fd-line", "els => els.map(e => e.textContent)")


async def wait_line(page, text: str, timeout: float = 15):
    await page.wait_for_function(
        "t => [...document.querySelectorAll('.frontdesk .fd-line')].some(e => e.textContent.includes(t))",
        arg=text, timeout=timeout * 1000)


async def shot(page, shots: Path, name: str, full: bool = False):
    """A screenshot of the page (the widget is fixed in a corner), listed at the end of the run."""
    path = shots / f"{name}.png"
    await page.screenshot(path=str(path), full_page=full)
    ARTEFACTS.append(str(path))


async def axe(page, what: str):
    """axe-core (pinned in package.json) on the whole page: zero violations."""
    if not await page.evaluate("() => typeof axe !== 'undefined'"):
        await page.add_script_tag(path=str(WEB / "node_modules" / "axe-core" / "axe.min.js"))
    found = await page.evaluate("""async () => (await axe.run(document, {resultTypes: ['violations']}))
        .violations.map(v => `${v.id} (${v.impact}): ${v.help} at ${v.nodes.map(n => n.target.join(' ')).join('; ')}`)""")
    assert found == [], f"axe-core, {what}: {found}"


def chat_state_from(room_nick: str, state: str):
    return lambda st: (kind(st) == "message" and attr(st, "from") == room_nick
                       and child(st, NS_CHATSTATES, state) is not None)


def marker_from(room_nick: str, marker: str, id_: str):
    def p(st):
        m = child(st, NS_MARKERS, marker)
        return kind(st) == "message" and attr(st, "from") == room_nick and m is not None and m.get("id") == id_
    return p


def stanza_id(st) -> str:
    sid = child(st, NS_SID, "stanza-id")
    assert sid is not None, show(st)
    return sid.get("id")


async def staff_available(client, room: str, want: bool, timeout: float = 15):
    """Wait until the room's disco#info says what the widget will show."""
    def says(r):
        return r is not None and f"<value>{'true' if want else 'false'}</value>" in str(r)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        r = await client.iq(room, "<query xmlns='http://jabber.org/protocol/disco#info'/>")
        if says(r):
            return
        assert loop.time() < deadline, f"the room's disco#info never said staff-available={want}: {show(r)}"
        await asyncio.sleep(0.2)


@MODULE_LOOP
async def test_the_widget_from_launcher_to_end_chat(ejabberd, desk, browser, web_server, shots):
    """The whole visit over ejabberd's WebSocket, on a desktop and on a phone: the launcher, the
    panel, bubbles and names, links, read markers both ways, the unread badge, a reload, and
    the visitor ending the chat. axe-core finds nothing in any state."""
    fd, clients = desk
    room = "w1_shop@chat.localhost"
    url = page_url(web_server, ejabberd, visitor="w1", tok=token(fd, "w1"), ws=f"ws://127.0.0.1:{ejabberd.http_port}/ws")
    page, errors = await open_widget(browser, url, open_panel=False)
    await state_is(page, "waiting")
    assert await page.get_attribute(".frontdesk", "data-transport") == "websocket"
    assert not await page.is_visible(".frontdesk .fd-panel")
    await page.wait_for_selector(".frontdesk[data-available='false']", state="attached")
    await shot(page, shots, "01-launcher")
    await axe(page, "the launcher")

    # Keyboard only: the launcher opens the panel and puts the focus in the input.
    await page.focus(".frontdesk .fd-launcher")
    await page.keyboard.press("Enter")
    await page.wait_for_selector(".frontdesk .fd-panel", state="visible")
    assert await page.evaluate("() => document.activeElement.classList.contains('fd-input')")
    assert "We will answer as soon as we can" in await page.text_content(".frontdesk .fd-avail")
    await shot(page, shots, "02-open-waiting")
    await axe(page, "the open panel, waiting")
    await page.set_viewport_size(PHONE)
    await shot(page, shots, "02b-phone-open-waiting")
    await axe(page, "the open panel on a phone")
    await page.set_viewport_size(DESKTOP)

    alice = await clients.staff("alice_acme")
    await alice.join(room, "Alice")
    await state_is(page, "chatting")
    await wait_line(page, "Alice joined the chat.")
    assert await page.get_attribute(".frontdesk .fd-head-avatar", "src") == AVATAR
    await page.keyboard.type("Hello from the browser")
    await alice.expect(chat_state_from(f"{room}/Ann", "composing"), what="the visitor's composing state")
    await page.keyboard.press("Tab")
    assert await page.evaluate("() => document.activeElement.classList.contains('fd-send')")
    await page.keyboard.press("Enter")
    got = await alice.expect(groupchat_from(room, nick="Ann", body_is="Hello from the browser"))
    assert child(got, NS_MARKERS, "markable") is not None, show(got)
    await wait_line(page, "Hello from the browser")

    # XEP-0333 from staff: "Seen" under the visitor's message.
    alice.send_raw(f"<message type='groupchat' to='{room}'><displayed xmlns='{NS_MARKERS}' id='{stanza_id(got)}'/></message>")
    await page.wait_for_selector(".frontdesk .fd-mine .fd-seen")

    # Staff typing, then an answer with a link and would-be HTML: text, and one safe link.
    alice.send_raw(f"<message type='groupchat' to='{room}'><composing xmlns='{NS_CHATSTATES}'/></message>")
    await page.wait_for_function("() => document.querySelector('.frontdesk .fd-typing').textContent.includes('Alice is typing')")
    await shot(page, shots, "03-staff-typing")
    hostile = ("See https://example.com/help?a=1&b=2. <script>window.pwned=1</script>"
               "<img src=x onerror=\"window.pwned=1\"> javascript:window.pwned=1 <b>bold</b>")
    mine = await alice.say(room, hostile)
    await wait_line(page, "<script>window.pwned=1</script>")
    links = await page.eval_on_selector_all(".frontdesk .fd-log a", "as => as.map(a => [a.href, a.rel, a.target])")
    assert links == [["https://example.com/help?a=1&b=2", "noopener noreferrer", "_blank"]], links
    assert await page.eval_on_selector_all(".frontdesk .fd-log script, .frontdesk .fd-log img:not(.fd-avatar), .frontdesk .fd-log b",
                                           "els => els.length") == 0
    assert await page.evaluate("() => window.pwned") is None
    assert await page.get_attribute(".frontdesk .fd-theirs .fd-avatar", "src") == AVATAR
    assert await page.eval_on_selector(".frontdesk .fd-typing", "e => e.textContent") == ""
    # The panel is open on a visible page: the widget says it displayed Alice's message.
    await alice.expect(marker_from(f"{room}/Ann", "displayed", stanza_id(mine)), what="the visitor's displayed marker")
    await shot(page, shots, "04-chatting")
    await axe(page, "chatting")

    # Closed panel: a badge on the launcher and a flashing title.
    await page.keyboard.press("Escape")
    assert await page.evaluate("() => document.activeElement.classList.contains('fd-launcher')")
    await alice.say(room, "Are you still there?")
    await page.wait_for_selector(".frontdesk .fd-badge:not([hidden])")
    assert await page.text_content(".frontdesk .fd-badge") == "1"
    await page.wait_for_function("() => document.title.startsWith('(1) ')", timeout=5000)
    await shot(page, shots, "05-unread-badge")
    await axe(page, "the unread badge")
    await page.set_viewport_size(PHONE)
    await shot(page, shots, "05b-phone-unread-badge")
    await page.set_viewport_size(DESKTOP)
    await page.click(".frontdesk .fd-launcher")
    assert await page.is_hidden(".frontdesk .fd-badge")

    # A reload: the panel stays open and the history looks like the live conversation.
    live = await page.eval_on_selector_all(".frontdesk .fd-mine, .frontdesk .fd-theirs", "els => els.map(e => e.className)")
    await page.goto(url)
    await state_is(page, "chatting")
    await wait_line(page, "Are you still there?")
    assert await page.get_attribute(".frontdesk", "data-open") == "true"
    again = await page.eval_on_selector_all(".frontdesk .fd-mine, .frontdesk .fd-theirs", "els => els.map(e => e.className)")
    assert again == live, (again, live)
    assert await page.eval_on_selector_all(".frontdesk .fd-line time", "ts => ts.every(t => t.dateTime)")
    assert await page.eval_on_selector_all(".frontdesk .fd-day", "els => els.length") == 1
    await shot(page, shots, "06-after-reload")

    # The same page on a phone: full screen, 16 px input.
    await page.set_viewport_size(PHONE)
    box = await page.locator(".frontdesk .fd-panel").bounding_box()
    assert (box["x"], box["y"], box["width"], box["height"]) == (0, 0, 390, 844), box
    assert await page.eval_on_selector(".frontdesk .fd-input", "e => getComputedStyle(e).fontSize") == "16px"
    await shot(page, shots, "07-phone-chatting")
    await axe(page, "chatting on a phone")

    # The visitor ends the chat: the session closes and the closing line is in view.
    await page.click(".frontdesk .fd-end")
    await state_is(page, "closed")
    await wait_line(page, "The chat is now closed.")
    await alice.expect(groupchat_from(room, body_is="Ann ended the chat."), what="the visitor's ending")
    last = page.locator(".frontdesk .fd-line").last
    assert "The chat is now closed." in await last.text_content()
    log_box = await page.locator(".frontdesk .fd-log").bounding_box()
    last_box = await last.bounding_box()
    assert last_box["y"] + last_box["height"] <= log_box["y"] + log_box["height"] + 1, (last_box, log_box)
    await shot(page, shots, "08-phone-closed")
    await axe(page, "closed on a phone")
    await page.set_viewport_size(DESKTOP)
    await shot(page, shots, "09-closed")
    s = await poll(lambda: fd.session_of(room), lambda s: s and s["state"] == "CLOSED", what="CLOSED")
    said = [(t["role"], t["body"]) for t in fd.transcript(s["id"]) if t["role"] != "system"]
    assert said[0] == ("visitor", "Hello from the browser"), said
    assert not errors, errors


@MODULE_LOOP
async def test_availability_options_and_french(ejabberd, desk, browser, web_server, shots):
    """Staff online: the panel says so before the chat, never who. A French page with its own
    colour on the left, started from the one-line script tag."""
    fd, clients = desk
    alice = await clients.staff("alice_acme")
    probe = await clients.visitor("probe")
    await staff_available(probe, "w8_shop@chat.localhost", True)
    page, errors = await open_widget(browser, page_url(
        web_server, ejabberd, visitor="w8", tok=token(fd, "w8"), page="embed.html", lang="fr",
        color="#8a2f5d", position="bottom-left", title="La Boutique"))
    await state_is(page, "waiting")
    await page.wait_for_selector(".frontdesk[data-available='true']", state="attached")
    avail = await page.text_content(".frontdesk .fd-avail")
    assert avail == "Nous sommes en ligne.", avail
    assert "alice" not in (await page.text_content(".frontdesk")).lower()
    assert await page.text_content(".frontdesk .fd-send") == "Envoyer"
    assert await page.text_content(".frontdesk .fd-title") == "La Boutique"
    accent = await page.eval_on_selector(".frontdesk .fd-send", "e => getComputedStyle(e).backgroundColor")
    assert accent == "rgb(138, 47, 93)", accent
    box = await page.locator(".frontdesk .fd-launcher").bounding_box()
    assert box["x"] < 100, box
    await shot(page, shots, "10-french-online")
    await axe(page, "French, staff online")

    # Alice answers one-to-one from her roster: her configured name and face, and read
    # markers both ways (her client names the copy's id, the room's stanza-id).
    room = "w8_shop@chat.localhost"
    await page.fill(".frontdesk .fd-input", "Bonjour")
    await page.press(".frontdesk .fd-input", "Enter")
    def copy_of(text):
        return lambda st: (kind(st) == "message" and attr(st, "from") == room
                           and attr(st, "type") == "chat" and body(st) == text)
    await alice.expect(copy_of("Bonjour"), what="the offer's copy to alice")
    alice.send_message(mto=room, mbody="Bonjour Ann, je regarde.", mtype="chat")
    await wait_line(page, "Alice Martin a rejoint la discussion.")
    await wait_line(page, "Bonjour Ann, je regarde.")
    await page.fill(".frontdesk .fd-input", "Merci")
    await page.press(".frontdesk .fd-input", "Enter")
    copy = await alice.expect(copy_of("Merci"), what="the copy to alice, one-to-one")
    assert child(copy, NS_MARKERS, "markable") is not None, show(copy)
    assert await page.get_attribute(".frontdesk .fd-theirs .fd-avatar", "src") == AVATAR
    alice.send_raw(f"<message type='chat' to='{room}'><displayed xmlns='{NS_MARKERS}' id='{attr(copy, 'id')}'/></message>")
    await page.wait_for_selector(".frontdesk .fd-mine .fd-seen")
    assert await page.text_content(".frontdesk .fd-seen") == "Vu"
    await alice.expect(lambda st: attr(st, "from") == room and attr(st, "type") == "chat"
                       and child(st, NS_MARKERS, "displayed") is not None, what="the visitor's marker, one-to-one")
    await shot(page, shots, "10b-french-one-to-one")
    await axe(page, "French, one-to-one")
    await alice.stop()
    assert not errors, errors


@MODULE_LOOP
async def test_an_upper_case_visitor_id_is_lower_cased_and_a_bad_one_is_said(ejabberd, desk, browser, web_server, shots):
    fd, _ = desk
    ctx = await browser.new_context(viewport=DESKTOP)
    page = await ctx.new_page()
    warnings = []
    page.on("console", lambda m: m.type == "warning" and warnings.append(m.text))
    await page.goto(page_url(web_server, ejabberd, visitor="UpperCase1", tok=token(fd, "uppercase1")))
    await state_is(page, "waiting")
    assert any("lower-cased" in w for w in warnings), warnings
    assert fd.session_of("uppercase1_shop@chat.localhost") is not None

    page2, _ = await open_widget(browser, page_url(web_server, ejabberd, visitor="bad_id"), open_panel=False)
    await state_is(page2, "misconfigured", 5)
    text = await page2.text_content(".frontdesk .fd-status")
    assert "bad_id" in text and "may only have" in text, text
    await shot(page2, shots, "11-misconfigured")
    page3, _ = await open_widget(browser, page_url(web_server, ejabberd, visitor="w10", position="top-left"),
                                 open_panel=False)
    await state_is(page3, "misconfigured", 5)
    assert "bottom-right or bottom-left" in await page3.text_content(".frontdesk .fd-status")


@MODULE_LOOP
async def test_websocket_falls_back_to_bosh(ejabberd, desk, browser, web_server, shots):
    fd, clients = desk
    room = "w9_shop@chat.localhost"
    dead = xmpp_env.free_port()
    page, errors = await open_widget(browser, page_url(web_server, ejabberd, visitor="w9", tok=token(fd, "w9"),
                                                       ws=f"ws://127.0.0.1:{dead}/ws"))
    await state_is(page, "waiting", 20)
    assert await page.get_attribute(".frontdesk", "data-transport") == "bosh"
    alice = await clients.staff("alice_acme")
    await alice.join(room, "Alice")
    await page.fill(".frontdesk .fd-input", "over BOSH")
    await page.press(".frontdesk .fd-input", "Enter")
    await alice.expect(groupchat_from(room, nick="Ann", body_is="over BOSH"))
    await alice.say(room, "Got it")
    await wait_line(page, "Got it")

    # Staff finish the chat from their client; the visitor starts a new one from the panel.
    first = fd.session_of(room)["id"]
    alice.send_raw(f"<message type='chat' to='chat.localhost'><body>!finish {first}</body></message>")
    await state_is(page, "closed")
    await wait_line(page, "The chat is now closed.")
    await page.click(".frontdesk .fd-again")
    await state_is(page, "waiting")
    await page.fill(".frontdesk .fd-input", "a new question")
    await page.press(".frontdesk .fd-input", "Enter")
    await wait_line(page, "a new question")
    assert fd.session_of(room)["id"] != first
    assert not errors, errors


def test_the_widget_is_small():
    """widget JS + CSS at most 30 KB gzipped (Strophe.js aside)."""
    sizes = {f: len(gzip.compress((WEB / f).read_bytes(), 9)) for f in ("frontdesk-widget.js", "frontdesk-widget.css")}
    total = sum(sizes.values())
    print(f"\nwidget gzipped: {sizes}, {total} bytes in all")
    assert total <= 30 * 1024, sizes


@MODULE_LOOP
async def test_a_wrong_or_missing_token_is_refused_and_the_page_says_so(ejabberd, desk, browser, web_server, shots):
    fd, _ = desk
    other = token(fd, "someone-else")
    page, errors = await open_widget(browser, page_url(web_server, ejabberd, visitor="w2", tok=other))
    await state_is(page, "refused")
    status = await page.text_content(".frontdesk .fd-status")
    assert "token" in status and "not valid" in status, status
    await shot(page, shots, "12-refused")
    assert fd.session_of("w2_shop@chat.localhost") is None

    page2, _ = await open_widget(browser, page_url(web_server, ejabberd, visitor="w2"))
    await state_is(page2, "refused")
    assert "needs a sign-in token" in await page2.text_content(".frontdesk .fd-status")
    assert not errors, errors


@MODULE_LOOP
@pytest.mark.parametrize("transport", ["bosh", "websocket"])
async def test_a_reload_leaves_the_room_before_it_rejoins(ejabberd, desk, browser, web_server, shots, transport):
    # globex has no token_secret: a new address takes the visitor's room only once the old one
    # is gone. The widget leaves (and ends its BOSH session with a beacon) when the page goes
    # away; without that, frontdesk lets the reloaded page in only after its ping to the old
    # address (whose BOSH session ejabberd keeps) goes unanswered, and logs that it did.
    fd, _clients = desk
    visitor = f"w6-{transport}"
    room = f"{visitor}_globex@chat.localhost"
    ws = f"ws://127.0.0.1:{ejabberd.http_port}/ws" if transport == "websocket" else None
    page, errors = await open_widget(browser, page_url(web_server, ejabberd, visitor=visitor, nick="Gus",
                                                       site="globex", ws=ws))
    await state_is(page, "waiting", 20)
    assert await page.get_attribute(".frontdesk", "data-transport") == transport
    await page.fill(".frontdesk .fd-input", "before the reload")
    await page.press(".frontdesk .fd-input", "Enter")
    await wait_line(page, "before the reload")
    first = fd.session_of(room)
    await page.reload()
    await state_is(page, "waiting", 30)
    await wait_line(page, "before the reload")  # the history, on the new page
    assert fd.session_of(room)["id"] == first["id"], "the reload opened a new session"
    assert "did not answer a ping" not in fd.log.read_text(), \
        "the reloaded page was let in only after the old address's ping timed out"
    assert not errors, errors
    await shot(page, shots, f"13-reloaded-without-token-{transport}")


@MODULE_LOOP
async def test_an_unreachable_server_is_said_and_retried(ejabberd, desk, browser, web_server, shots):
    fd, _ = desk
    dead = xmpp_env.free_port()
    page, errors = await open_widget(browser, page_url(web_server, ejabberd, visitor="w3", tok=token(fd, "w3"),
                                                       bosh=f"http://127.0.0.1:{dead}/bosh"))
    await state_is(page, "unreachable", timeout=20)
    assert "cannot be reached" in await page.text_content(".frontdesk .fd-status")
    await shot(page, shots, "14-unreachable")
    assert await page.is_disabled(".frontdesk .fd-input")
    await axe(page, "unreachable")
    assert not errors, errors


def django_tokens():
    """The Django example's token module, loaded from its file (no Django needed)."""
    import importlib.util
    spec = importlib.util.spec_from_file_location("frontdesk_token", REPO / "examples" / "django" / "frontdesk_token.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@MODULE_LOOP
async def test_django_tokens_are_accepted_until_they_expire(ejabberd, desk, browser, web_server, shots):
    import time
    fd, _ = desk
    mint = django_tokens().mint_token
    page, errors = await open_widget(browser, page_url(
        web_server, ejabberd, visitor="w5", tok=mint(SHOP_SECRET, "shop", "w5", ttl=600)))
    await state_is(page, "waiting", 20)
    assert fd.session_of("w5_shop@chat.localhost") is not None

    expired = mint(SHOP_SECRET, "shop", "w6", expires=int(time.time()) - 5)
    page2, errors2 = await open_widget(browser, page_url(web_server, ejabberd, visitor="w6", tok=expired))
    await state_is(page2, "refused")
    status = await page2.text_content(".frontdesk .fd-status")
    assert "expired" in status, status
    await shot(page2, shots, "6b-expired")
    assert fd.session_of("w6_shop@chat.localhost") is None
    assert not errors and not errors2, errors + errors2


def test_the_django_example_mints_the_published_vectors():
    import json
    mod = django_tokens()
    vectors = json.loads((REPO / "tests" / "token_vectors.json").read_text())
    assert len(vectors) >= 5 and any("details" in v for v in vectors)
    for v in vectors:
        assert mod.mint_token(v["secret"], v["site"], v["visitor"], expires=v["expires"],
                              details=v.get("details")) == v["token"], v


@MODULE_LOOP
async def test_the_widget_reconnects_when_the_server_comes_back(ejabberd, desk, browser, web_server, shots):
    fd, clients = desk
    room = "w4_shop@chat.localhost"
    relay = Relay(xmpp_env.free_port(), ejabberd.http_port)
    await relay.start()
    try:
        page, errors = await open_widget(browser, page_url(web_server, ejabberd, visitor="w4", tok=token(fd, "w4"),
                                                           bosh=f"http://127.0.0.1:{relay.port}/bosh"))
        await state_is(page, "waiting")
        alice = await clients.staff("alice_acme")
        await alice.join(room, "Alice")
        await state_is(page, "chatting")
        await page.fill(".frontdesk .fd-input", "before the cut")
        await page.press(".frontdesk .fd-input", "Enter")
        await alice.expect(groupchat_from(room, nick="Ann", body_is="before the cut"))

        await relay.stop()  # the chat server is gone for the page
        await page.wait_for_selector(".frontdesk[data-state='reconnecting'], .frontdesk[data-state='unreachable']",
                                     timeout=90_000)
        await shot(page, shots, "8-reconnecting")
        await relay.start()
        await state_is(page, "chatting", timeout=90)
        await page.fill(".frontdesk .fd-input", "after the cut")
        await page.press(".frontdesk .fd-input", "Enter")
        await alice.expect(groupchat_from(room, nick="Ann", body_is="after the cut"), timeout=20)
        await wait_line(page, "after the cut")
        shown = await lines(page)
        assert sum("before the cut" in line for line in shown) == 1, shown
        assert not errors, errors
    finally:
        await relay.stop()


@MODULE_LOOP
async def test_a_stranger_cannot_take_a_widget_visitors_room(ejabberd, desk, browser, web_server, shots):
    """The victim is the real widget (Strophe.js in Chromium) on a site without tokens. A
    stranger who knows the visitor id joins the same room: frontdesk pings the widget, which
    answers (XEP-0199), and the stranger is refused, gets no history, and the visitor chats on."""
    fd, clients = desk
    room = "w7_globex@chat.localhost"
    page, errors = await open_widget(browser, page_url(web_server, ejabberd, visitor="w7", nick="Gus",
                                                       site="globex"))
    await state_is(page, "waiting", 20)
    await page.fill(".frontdesk .fd-input", "my card number is in this chat")
    await page.press(".frontdesk .fd-input", "Enter")
    await wait_line(page, "my card number is in this chat")
    stranger = await clients.visitor("stranger")
    for nick in ("Gus", "Eve"):
        r = await stranger.try_join(room, nick, timeout=20)
        assert isinstance(r, JoinRefused), f"the stranger got into the widget visitor's room: {r}"
    assert not [st for st in stranger.log if "card number" in (body(st) or "")], "history leaked"
    await page.fill(".frontdesk .fd-input", "still mine")
    await page.press(".frontdesk .fd-input", "Enter")
    await wait_line(page, "still mine")
    said = [t["body"] for t in fd.transcript(fd.session_of(room)["id"]) if t["role"] == "visitor"]
    assert said == ["my card number is in this chat", "still mine"], said
    assert "did not answer a ping" not in fd.log.read_text(), "the widget did not answer frontdesk's ping"
    assert not errors, errors
