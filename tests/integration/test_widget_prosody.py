"""The widget against Prosody 0.12 with Debian's own mod_websocket (/xmpp-websocket) and
mod_bosh (/http-bind): the same chat over WebSocket, and over BOSH when the WebSocket fails.
Headless Chromium and Playwright as in test_widget.py, whose page helpers this reuses."""

from __future__ import annotations

import secrets

import pytest
import pytest_asyncio

import prosody_env
import xmpp_env
from helpers import frontdesk_with_clients, groupchat_from, poll
from test_widget import (SITES, browser, open_widget, page_url, shot, shots, state_is, token,  # noqa: F401
                         wait_line, web_server)

# One event loop for the module, as the browser is shared (sync tests carry no mark).
MODULE_LOOP = pytest.mark.asyncio(loop_scope="module")
STAFF = {"alice_acme": "localhost", "bob_acme": "localhost", "carol_globex": "localhost"}


@pytest.fixture(scope="module")
def prosody(tmp_path_factory):
    try:
        p = prosody_env.Prosody.create(tmp_path_factory.mktemp("prosody-widget"))
        p.start(timeout=30)
        for user, host in STAFF.items():
            p.register(user, host, secrets.token_urlsafe(9))
    except (xmpp_env.StartError, RuntimeError, OSError) as e:
        pytest.fail(f"could not start prosody: {e}", pytrace=False)
    yield p
    p.stop()


@pytest_asyncio.fixture(loop_scope="module")
async def on_prosody(prosody, tmp_path):
    async with frontdesk_with_clients(prosody, tmp_path / "frontdesk", sites=SITES) as running:
        yield running


@MODULE_LOOP
@pytest.mark.parametrize("transport", ["websocket", "bosh"])
async def test_the_widget_on_prosody(prosody, on_prosody, browser, web_server, shots, transport):
    fd, clients = on_prosody
    visitor = f"p-{transport}"
    room = f"{visitor}_shop@{prosody.component_jid}"
    # "bosh": the WebSocket URL leads nowhere, so the widget falls back to /http-bind.
    ws_port = prosody.http_port if transport == "websocket" else xmpp_env.free_port()
    page, errors = await open_widget(browser, page_url(
        web_server, prosody, visitor=visitor, tok=token(fd, visitor),
        bosh=f"http://127.0.0.1:{prosody.http_port}/http-bind",
        ws=f"ws://127.0.0.1:{ws_port}/xmpp-websocket"))
    await state_is(page, "waiting", 20)
    assert await page.get_attribute(".frontdesk", "data-transport") == transport
    alice = await clients.staff("alice_acme")
    await alice.join(room, "Alice")
    await state_is(page, "chatting")
    await page.fill(".frontdesk .fd-input", f"Hello over {transport}")
    await page.press(".frontdesk .fd-input", "Enter")
    await alice.expect(groupchat_from(room, nick="Ann", body_is=f"Hello over {transport}"))
    await alice.say(room, "Hello from Prosody's side")
    await wait_line(page, "Hello from Prosody's side")
    await shot(page, shots, f"20-prosody-{transport}")
    await page.click(".frontdesk .fd-end")
    await state_is(page, "closed")
    await poll(lambda: fd.session_of(room), lambda s: s and s["state"] == "CLOSED", what="CLOSED")
    await alice.stop()
    assert not errors, errors
