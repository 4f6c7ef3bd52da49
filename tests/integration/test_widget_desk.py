"""What the desk's rules look like to a visitor in a real browser (issue 19): the pre-chat
form, the place in line, and the closed-hours notice. The widget from examples/web in Debian's
headless Chromium (Playwright), over ejabberd's BOSH, as in test_widget.py, whose page helpers
this reuses; staff on slixmpp. One frontdesk with three sites serves the module:

* `form` asks name, email, an optional phone number and an optional question;
* `line` has nobody online, so its visitors wait in line;
* `late` is closed now (its hours are on a day three days from today, in UTC) and asks for an
  optional email address.
"""

from __future__ import annotations

import asyncio
import datetime

import pytest
import pytest_asyncio

from helpers import body, frontdesk_with_clients
from test_desk_routing import offer_of
from test_staff import desk as ask_desk, until_desk_says
from test_widget import (DESKTOP, PHONE, axe, browser, open_widget, page_url, shot, shots,  # noqa: F401
                         state_is, wait_line, web_server)

MODULE_LOOP = pytest.mark.asyncio(loop_scope="module")
CLOSED_DAY = datetime.datetime.now(datetime.timezone.utc).date() + datetime.timedelta(days=3)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def desks(ejabberd, tmp_path_factory):
    host = ejabberd.staff_host
    sites = [
        {"id": "form", "name": "Form Shop", "staff": [f"alice_acme@{host}"],
         "desk": {"prechat": ["name", "email", "phone?", "question?"]}},
        {"id": "line", "name": "Line Shop", "staff": [f"bob_acme@{host}"]},
        {"id": "late", "name": "Late Shop", "staff": [f"carol_globex@{host}"],
         "desk": {"hours": [f"{CLOSED_DAY.strftime('%a').lower()} 09:00-10:00"], "timezone": "UTC",
                  "prechat": ["email?"]}},
    ]
    roster = {"ejabberd_api": f"http://127.0.0.1:{ejabberd.http_port}/api", "remove_after_secs": 3}
    async with frontdesk_with_clients(ejabberd, tmp_path_factory.mktemp("widget-desk"), sites=sites,
                                      roster=roster) as running:
        yield running


def field(name: str) -> str:
    return f".frontdesk .fd-prechat [name='{name}']"


async def field_error(page, name: str) -> str | None:
    """The error shown under a field (None when hidden), found as a screen reader finds it."""
    return await page.eval_on_selector(field(name), """e => {
        const err = document.getElementById(e.getAttribute('aria-describedby'));
        return err.hidden ? null : err.textContent; }""")


async def focused_name(page) -> str | None:
    return await page.evaluate("() => document.activeElement.name || document.activeElement.className")


async def start_with_prechat(page, name: str, email: str):
    """Answers the form's name and email fields with the keyboard and starts the chat."""
    await state_is(page, "prechat")
    await page.keyboard.type(name)
    await page.keyboard.press("Tab")
    await page.keyboard.type(email)
    await page.keyboard.press("Enter")


def visitor_nicks(fd, room: str) -> list[tuple[str]]:
    """The nicks the visitor's lines in `room` are stored under."""
    import sqlite3
    con = sqlite3.connect(f"file:{fd.db}?mode=ro", uri=True)
    try:
        return con.execute("SELECT DISTINCT m.nick FROM messages m JOIN sessions s ON s.id = m.session_id "
                           "WHERE s.room = ? AND m.role = 'visitor'", (room,)).fetchall()
    finally:
        con.close()


async def say(page, text: str):
    await page.fill(".frontdesk .fd-input", text)
    await page.press(".frontdesk .fd-input", "Enter")
    await wait_line(page, text)


@MODULE_LOOP
async def test_the_prechat_form_is_asked_checked_and_its_answers_reach_staff(ejabberd, desks, browser,
                                                                              web_server, shots):
    fd, clients = desks
    component = ejabberd.component_jid
    room = "p1_form@chat.localhost"
    alice = await clients.staff("alice_acme")
    await until_desk_says(alice, component, "!diag", "available: 1", timeout=20)
    # No nick from the page: the widget takes the pre-chat name.
    url = page_url(web_server, ejabberd, visitor="p1", nick=None, site="form")
    page, errors = await open_widget(browser, url)
    await state_is(page, "prechat")
    assert fd.session_of(room) is None, "the widget joined before the form was answered"
    labels = await page.eval_on_selector_all(".frontdesk .fd-prechat label", "ls => ls.map(l => l.textContent)")
    assert labels == ["Your name *", "Email address *", "Phone number", "Your question"], labels
    assert await page.is_hidden(".frontdesk .fd-form"), "the message input shows before the form is answered"
    assert await focused_name(page) == "name", "the keyboard is not in the form's first field"
    await shot(page, shots, "20-prechat-form")
    await axe(page, "the pre-chat form")
    await page.set_viewport_size(PHONE)
    await shot(page, shots, "20b-phone-prechat-form")
    await axe(page, "the pre-chat form on a phone")
    await page.set_viewport_size(DESKTOP)

    # Keyboard only. Enter with nothing filled in: each required field says what to fix.
    await page.keyboard.press("Enter")
    assert await field_error(page, "name") == "Your name is required: please fill it in."
    assert await field_error(page, "email") == "Email address is required: please fill it in."
    assert await field_error(page, "phone") is None
    assert await page.get_attribute(field("email"), "aria-invalid") == "true"
    assert await focused_name(page) == "name"
    await page.keyboard.type("Ann Smith")
    await page.keyboard.press("Tab")
    await page.keyboard.type("ann at example")
    await page.keyboard.press("Tab")
    await page.keyboard.type("555-CALL")
    await page.keyboard.press("Tab")
    await page.keyboard.type("Where is my order?")
    await page.keyboard.press("Tab")
    assert await focused_name(page) == "fd-start"
    await page.keyboard.press("Enter")
    assert await field_error(page, "name") is None
    assert await field_error(page, "email") == "Email address must look like name@example.com."
    assert "at least 3 digits" in await field_error(page, "phone")
    assert await focused_name(page) == "email", "the focus is not on the first field to fix"
    await shot(page, shots, "21-prechat-errors")
    await axe(page, "the pre-chat form with errors")
    await page.keyboard.press("Control+A")
    await page.keyboard.type("ann@example.com")
    await page.keyboard.press("Tab")
    await page.keyboard.press("Control+A")
    await page.keyboard.type("+47 22 33 44 55")
    await page.keyboard.press("Enter")
    await state_is(page, "waiting")
    assert await page.is_hidden(".frontdesk .fd-prechat")
    await page.wait_for_function("() => document.activeElement.classList.contains('fd-input')", timeout=5000)
    await page.keyboard.type("Hello, my parcel is late")
    await page.keyboard.press("Enter")
    await wait_line(page, "Hello, my parcel is late")

    # Staff see the answers in the offer and in !info.
    offer = body(await alice.expect(offer_of(component), what="the offer"))
    n = fd.session_of(room)["id"]
    assert offer.startswith(f"Visitor Ann Smith on Form Shop wants to chat (#{n})."), offer
    assert ("name: Ann Smith · email: ann@example.com · phone: +47 22 33 44 55 · "
            "question: Where is my order? · page: ") in offer, offer
    info = body(await ask_desk(alice, component, f"!info {n}", f"#{n} Ann Smith"))
    for line in ("asked: name: Ann Smith (from the widget)", "asked: email: ann@example.com (from the widget)",
                 "asked: phone: +47 22 33 44 55 (from the widget)",
                 "asked: question: Where is my order? (from the widget)"):
        assert line in info, info

    # A reload in the same tab joins again with the answers, without asking.
    await page.reload()
    await state_is(page, "waiting")
    await wait_line(page, "Hello, my parcel is late")
    assert await page.eval_on_selector_all(".frontdesk .fd-prechat", "fs => fs.length") == 0
    assert fd.session_of(room)["id"] == n
    await ask_desk(alice, component, f"!info {n}", "asked: email: ann@example.com")
    await alice.stop()
    assert not errors, errors


@MODULE_LOOP
async def test_a_staff_members_name_given_in_the_prechat_form_is_not_taken(ejabberd, desks, browser,
                                                                           web_server, shots):
    fd, clients = desks
    component = ejabberd.component_jid
    room = "p2_form@chat.localhost"
    alice = await clients.staff("alice_acme")
    await until_desk_says(alice, component, "!diag", "available: 1", timeout=20)
    page, errors = await open_widget(browser, page_url(web_server, ejabberd, visitor="p2", nick=None, site="form"))
    # Full-width letters and a zero-width space: alice_acme once folded, as frontdesk folds it.
    await start_with_prechat(page, "\uff21lice\u200b_acme", "p2@example.com")
    # Refused as a nick, the name still lets the visitor in, under the default one.
    await state_is(page, "waiting")
    await say(page, "Hi, it is me")
    offer = body(await alice.expect(offer_of(component), what="the offer"))
    n = fd.session_of(room)["id"]
    assert offer.startswith(f"Visitor Visitor p2 on Form Shop wants to chat (#{n})."), offer
    nicks = visitor_nicks(fd, room)
    assert nicks == [("Visitor p2",)], nicks
    await alice.stop()
    assert not errors, errors


@MODULE_LOOP
async def test_a_prechat_name_the_server_refuses_as_a_nick_still_lets_the_visitor_in(ejabberd, desks, browser,
                                                                                     web_server, shots):
    fd, _ = desks
    room = "p3_form@chat.localhost"
    page, errors = await open_widget(browser, page_url(web_server, ejabberd, visitor="p3", nick=None, site="form"))
    # Latin and Hebrew letters in one name, and a private-use character: resourceprep
    # (RFC 3920) refuses both in a JID, and frontdesk's nick rules refuse the private-use one.
    # Whoever answers, the widget joins again under the default name.
    await start_with_prechat(page, "Ann \u05d0\u05d1 \ue000", "p3@example.com")
    await state_is(page, "waiting")
    await say(page, "Hello from p3")
    nicks = visitor_nicks(fd, room)
    assert nicks == [("Visitor p3",)], nicks
    assert not errors, errors


@MODULE_LOOP
async def test_waiting_visitors_see_their_place_in_line(ejabberd, desks, browser, web_server, shots):
    fd, _ = desks
    (first, _), (second, errors) = await asyncio.gather(
        open_widget(browser, page_url(web_server, ejabberd, visitor="q1", nick="Ann", site="line")),
        open_widget(browser, page_url(web_server, ejabberd, visitor="q2", nick="Bea", site="line")))
    await asyncio.gather(state_is(first, "waiting"), state_is(second, "waiting"))
    # In this order: Ann has waited longer.
    await say(first, "Is anyone there?")
    await say(second, "Hello?")
    # Nobody answers: after 10 s of waiting each hears their place (frontdesk's fixed pace).
    await wait_line(first, "You are next in line.", timeout=25)
    await wait_line(second, "You are number 2 in line.", timeout=25)
    await shot(second, shots, "22-place-in-line")
    await axe(second, "a place in line")
    assert not errors, errors


@MODULE_LOOP
async def test_outside_hours_the_visitor_hears_when_the_desk_opens(ejabberd, desks, browser, web_server, shots):
    fd, _ = desks
    opens = f"We are closed right now and open again on {CLOSED_DAY.strftime('%A')} at 09:00 (UTC time). "
    # One gives an email address in the optional field: not asked again.
    page, errors = await open_widget(browser, page_url(web_server, ejabberd, visitor="c1", site="late"))
    await state_is(page, "prechat")
    labels = await page.eval_on_selector_all(".frontdesk .fd-prechat label", "ls => ls.map(l => l.textContent)")
    assert labels == ["Email address"], labels
    await page.keyboard.type("cat@example.com")
    await page.keyboard.press("Enter")
    await state_is(page, "waiting")
    await say(page, "Are you open?")
    await wait_line(page, opens + "We will write back to the email address you gave")
    await shot(page, shots, "23-closed-with-email")
    await axe(page, "the closed-hours notice")
    # The other leaves it empty: asked in the chat.
    page2, errors2 = await open_widget(browser, page_url(web_server, ejabberd, visitor="c2", site="late"))
    await state_is(page2, "prechat")
    await page2.keyboard.press("Enter")
    await state_is(page2, "waiting")
    await say(page2, "Hello?")
    await wait_line(page2, opens + "Leave your email address here and we will write back")
    shown = await page2.eval_on_selector_all(".frontdesk .fd-line", "els => els.map(e => e.textContent)")
    assert not any("No one is available" in s for s in shown), shown
    assert not errors and not errors2, errors + errors2
