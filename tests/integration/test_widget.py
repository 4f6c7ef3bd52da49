"""The visitor's side in a real browser: examples/web's widget (Strophe.js from npm over
ejabberd's BOSH) in Debian's headless Chromium, driven by Playwright, with frontdesk and a staff
member on slixmpp. Screenshots of each state go to the folder printed at the start.

The shop site requires signed tokens (`token_secret`); its tokens come from `frontdesk token`.
"""

from __future__ import annotations

import asyncio
import functools
import http.server
import os
import threading
from pathlib import Path

import pytest

import xmpp_env
from helpers import JoinRefused, body, frontdesk_with_clients, groupchat_from, kind, attr, child, poll, show

REPO = Path(__file__).resolve().parents[2]
WEB = REPO / "examples" / "web"
CHROMIUM = os.environ.get("FRONTDESK_CHROMIUM", "/usr/bin/chromium")
SHOP_SECRET = "widget-test-token-secret-0123456789"
SITES = xmpp_env.DEFAULT_SITES + [
    {"id": "shop", "name": "The Shop", "staff": ["alice_acme@localhost"], "token_secret": SHOP_SECRET},
]
NS_CHATSTATES = "http://jabber.org/protocol/chatstates"


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
    """examples/web on a free localhost port (the page, the widget and node_modules)."""
    strophe = WEB / "node_modules" / "strophe.js" / "dist" / "strophe.umd.min.js"
    if not strophe.exists():
        pytest.fail(f"{strophe} is missing: run `npm ci` in examples/web (scripts/test does)", pytrace=False)

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


@pytest.fixture
async def browser():
    from playwright.async_api import async_playwright
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (scripts/test does)", pytrace=False)
    async with async_playwright() as p:
        b = await p.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync"])
        yield b
        await b.close()


@pytest.fixture
async def desk(ejabberd, tmp_path):
    """frontdesk with the token site, and a Clients factory; stopped cleanly afterwards."""
    async with frontdesk_with_clients(ejabberd, tmp_path / "frontdesk", sites=SITES) as running:
        yield running


def token(fd, visitor: str, site: str = "shop", ttl: int = 3600) -> str:
    r = fd.cli("token", "--site", site, "--visitor", visitor, "--ttl", str(ttl))
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


def page_url(web_server, ejabberd, *, visitor, nick="Ann", site="shop", tok=None, bosh=None) -> str:
    from urllib.parse import urlencode
    q = {"bosh": bosh or f"http://127.0.0.1:{ejabberd.http_port}/bosh", "domain": ejabberd.anon_host,
         "component": ejabberd.component_jid, "site": site, "visitor": visitor, "nick": nick}
    if tok:
        q["token"] = tok
    return f"{web_server}/index.html?{urlencode(q)}"


async def open_widget(browser, url):
    ctx = await browser.new_context(viewport={"width": 520, "height": 640})
    page = await ctx.new_page()
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    await page.goto(url)
    return page, errors


async def state_is(page, state: str, timeout: float = 15):
    await page.wait_for_selector(f"#chat[data-state='{state}']", timeout=timeout * 1000)


async def lines(page) -> list[str]:
    return await page.eval_on_selector_all("#chat .fd-line", "els => els.map(e => e.textContent)")


async def wait_line(page, text: str, timeout: float = 15):
    await page.wait_for_function(
        "t => [...document.querySelectorAll('#chat .fd-line')].some(e => e.textContent.includes(t))",
        arg=text, timeout=timeout * 1000)


async def shot(page, shots: Path, name: str):
    await page.locator("#chat").screenshot(path=str(shots / f"{name}.png"))


def chat_state_from(room_nick: str, state: str):
    return lambda st: (kind(st) == "message" and attr(st, "from") == room_nick
                       and child(st, NS_CHATSTATES, state) is not None)


async def test_visitor_and_staff_chat_through_the_widget(ejabberd, desk, browser, web_server, shots):
    fd, clients = desk
    room = "w1_shop@chat.localhost"
    page, errors = await open_widget(browser, page_url(web_server, ejabberd, visitor="w1", tok=token(fd, "w1")))
    await state_is(page, "waiting")
    await shot(page, shots, "1-waiting")

    # Typing shows up for staff, then the message.
    alice = await clients.staff("alice_acme")
    await alice.join(room, "Alice")
    await state_is(page, "chatting")
    await wait_line(page, "Alice joined the chat.")
    await page.fill("#chat .fd-input", "Hello from the browser")
    await alice.expect(chat_state_from(f"{room}/Ann", "composing"), what="the visitor's composing state")
    await page.press("#chat .fd-input", "Enter")
    got = await alice.expect(groupchat_from(room, nick="Ann", body_is="Hello from the browser"))
    assert child(got, NS_CHATSTATES, "active") is not None, show(got)
    await wait_line(page, "Hello from the browser")

    # Staff typing shows in the widget, and the answer replaces it.
    alice.send_raw(f"<message type='groupchat' to='{room}'><composing xmlns='{NS_CHATSTATES}'/></message>")
    await page.wait_for_function("() => document.querySelector('#chat .fd-typing').textContent.includes('Alice is typing')")
    await shot(page, shots, "2-staff-typing")
    await alice.say(room, "Hi! <b>How</b> can I help?")
    await wait_line(page, "Hi! <b>How</b> can I help?")
    assert await page.eval_on_selector("#chat .fd-typing", "e => e.textContent") == ""
    # Shown as text, never as HTML.
    assert await page.eval_on_selector_all("#chat .fd-log b", "els => els.length") == 0
    await shot(page, shots, "3-chatting")

    s = await poll(lambda: fd.session_of(room), lambda s: s and s["state"] == "CHATTING", what="CHATTING")
    said = [(t["role"], t["body"]) for t in fd.transcript(s["id"]) if t["role"] != "system"]
    assert said == [("visitor", "Hello from the browser"), ("staff", "Hi! <b>How</b> can I help?")], said

    # A reload: a new anonymous JID, the same visitor (a fresh token), and the history is back.
    await page.goto(page_url(web_server, ejabberd, visitor="w1", tok=token(fd, "w1")))
    await state_is(page, "chatting")
    await wait_line(page, "Hello from the browser")
    await wait_line(page, "Hi! <b>How</b> can I help?")
    await shot(page, shots, "4-after-reload")
    await page.fill("#chat .fd-input", "Still me after the reload")
    await page.press("#chat .fd-input", "Enter")
    await alice.expect(groupchat_from(room, nick="Ann", body_is="Still me after the reload"))
    assert fd.session_of(room)["id"] == s["id"]

    # Staff finish the chat from their client: the widget shows it closed.
    alice.send_raw(f"<message type='chat' to='chat.localhost'><body>!finish {s['id']}</body></message>")
    await state_is(page, "closed")
    await wait_line(page, "The chat is now closed.")
    await shot(page, shots, "5-closed")
    assert await page.is_visible("#chat .fd-again")
    s = await poll(lambda: fd.session_of(room), lambda s: s and s["state"] == "CLOSED", what="CLOSED")
    assert not errors, errors


async def test_a_wrong_or_missing_token_is_refused_and_the_page_says_so(ejabberd, desk, browser, web_server, shots):
    fd, _ = desk
    other = token(fd, "someone-else")
    page, errors = await open_widget(browser, page_url(web_server, ejabberd, visitor="w2", tok=other))
    await state_is(page, "refused")
    status = await page.text_content("#chat .fd-status")
    assert "token" in status and "not valid" in status, status
    await shot(page, shots, "6-refused")
    assert fd.session_of("w2_shop@chat.localhost") is None

    page2, _ = await open_widget(browser, page_url(web_server, ejabberd, visitor="w2"))
    await state_is(page2, "refused")
    assert "needs a sign-in token" in await page2.text_content("#chat .fd-status")
    assert not errors, errors


async def test_a_reload_leaves_the_room_before_it_rejoins(ejabberd, desk, browser, web_server, shots):
    # globex has no token_secret: a new address takes the visitor's room only once the old one
    # is gone. The widget leaves and ends its BOSH session with a beacon when the page goes
    # away; without that, frontdesk lets the reloaded page in only after its ping to the old
    # address (whose BOSH session ejabberd keeps) goes unanswered, and logs that it did.
    fd, _clients = desk
    room = "w6_globex@chat.localhost"
    page, errors = await open_widget(browser, page_url(web_server, ejabberd, visitor="w6", nick="Gus",
                                                       site="globex"))
    await state_is(page, "waiting", 20)
    await page.fill("#chat .fd-input", "before the reload")
    await page.press("#chat .fd-input", "Enter")
    await wait_line(page, "before the reload")
    first = fd.session_of(room)
    await page.reload()
    await state_is(page, "waiting", 30)
    await wait_line(page, "before the reload")  # the history, on the new page
    assert fd.session_of(room)["id"] == first["id"], "the reload opened a new session"
    assert "did not answer a ping" not in fd.log.read_text(), \
        "the reloaded page was let in only after the old address's ping timed out"
    assert not errors, errors
    await shot(page, shots, "8-reloaded-without-token")


async def test_an_unreachable_server_is_said_and_retried(ejabberd, desk, browser, web_server, shots):
    fd, _ = desk
    dead = xmpp_env.free_port()
    page, errors = await open_widget(browser, page_url(web_server, ejabberd, visitor="w3", tok=token(fd, "w3"),
                                                       bosh=f"http://127.0.0.1:{dead}/bosh"))
    await state_is(page, "unreachable", timeout=20)
    assert "cannot be reached" in await page.text_content("#chat .fd-status")
    await shot(page, shots, "7-unreachable")
    assert await page.is_disabled("#chat .fd-input")
    assert not errors, errors


def django_tokens():
    """The Django example's token module, loaded from its file (no Django needed)."""
    import importlib.util
    spec = importlib.util.spec_from_file_location("frontdesk_token", REPO / "examples" / "django" / "frontdesk_token.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


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
    status = await page2.text_content("#chat .fd-status")
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
        await page.fill("#chat .fd-input", "before the cut")
        await page.press("#chat .fd-input", "Enter")
        await alice.expect(groupchat_from(room, nick="Ann", body_is="before the cut"))

        await relay.stop()  # the chat server is gone for the page
        await page.wait_for_selector("#chat[data-state='reconnecting'], #chat[data-state='unreachable']",
                                     timeout=90_000)
        await shot(page, shots, "8-reconnecting")
        await relay.start()
        await state_is(page, "chatting", timeout=90)
        await page.fill("#chat .fd-input", "after the cut")
        await page.press("#chat .fd-input", "Enter")
        await alice.expect(groupchat_from(room, nick="Ann", body_is="after the cut"), timeout=20)
        await wait_line(page, "after the cut")
        shown = await lines(page)
        assert sum("before the cut" in line for line in shown) == 1, shown
        assert not errors, errors
    finally:
        await relay.stop()


async def test_a_stranger_cannot_take_a_widget_visitors_room(ejabberd, desk, browser, web_server, shots):
    """The victim is the real widget (Strophe.js in Chromium) on a site without tokens. A
    stranger who knows the visitor id joins the same room: frontdesk pings the widget, which
    answers (XEP-0199), and the stranger is refused, gets no history, and the visitor chats on."""
    fd, clients = desk
    room = "w7_globex@chat.localhost"
    page, errors = await open_widget(browser, page_url(web_server, ejabberd, visitor="w7", nick="Gus",
                                                       site="globex"))
    await state_is(page, "waiting", 20)
    await page.fill("#chat .fd-input", "my card number is in this chat")
    await page.press("#chat .fd-input", "Enter")
    await wait_line(page, "my card number is in this chat")
    stranger = await clients.visitor("stranger")
    for nick in ("Gus", "Eve"):
        r = await stranger.try_join(room, nick, timeout=20)
        assert isinstance(r, JoinRefused), f"the stranger got into the widget visitor's room: {r}"
    assert not [st for st in stranger.log if "card number" in (body(st) or "")], "history leaked"
    await page.fill("#chat .fd-input", "still mine")
    await page.press("#chat .fd-input", "Enter")
    await wait_line(page, "still mine")
    said = [t["body"] for t in fd.transcript(fd.session_of(room)["id"]) if t["role"] == "visitor"]
    assert said == ["my card number is in this chat", "still mine"], said
    assert "did not answer a ping" not in fd.log.read_text(), "the widget did not answer frontdesk's ping"
    assert not errors, errors
