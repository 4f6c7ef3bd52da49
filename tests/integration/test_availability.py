"""Staff availability against the real ejabberd 23.01: frontdesk's idea of who is online must
match the server's sessions, and offers must reach exactly the staff who are there.

The two bugs this guards against: a closed visitor's roster item being removed made ejabberd
send the staff member's unavailable presence to that contact, which frontdesk took as the
staff member going offline; and staff sessions that ended without frontdesk hearing of it.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap

import pytest

from helpers import attr, body, frontdesk_with_clients, groupchat_from, kind, poll, wait_component
from test_prosody import on_prosody, prosody  # noqa: F401 (fixtures)
from test_staff import (chat_from, contact_presence, desk, roster_item, room_of, session_when,
                        until_desk_says)


def staff_sessions(ejabberd) -> set[str]:
    """The staff accounts with a session on the server (`ejabberdctl connected_users`)."""
    out = ejabberd.ctl("connected_users").stdout
    return {line.split("/")[0] for line in out.splitlines()
            if line.split("@")[0] in ("alice_acme", "bob_acme", "carol_globex")}


async def diag_matches_server(observer, ejabberd, timeout: float = 20) -> str:
    """`!diag`'s staff count agrees with the server's sessions (the observer included)."""
    component = ejabberd.component_jid

    async def ask():
        return body(await desk(observer, component, "!diag", "staff online:"))

    def agrees(text):
        return f"staff online: {len(staff_sessions(ejabberd))}," in (text or "")

    answer = ""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        answer = await ask()
        if agrees(answer):
            return answer
        await asyncio.sleep(0.5)
    raise AssertionError(f"!diag never matched the server's sessions {sorted(staff_sessions(ejabberd))}: "
                         f"{answer!r}")


async def test_a_removed_visitor_item_leaves_staff_available(frontdesk, clients, ejabberd):
    component = ejabberd.component_jid
    alice = await clients.staff("alice_acme")
    await poll(lambda: roster_item(alice, component), lambda i: i is not None, 15, "the front desk in alice's roster")
    await until_desk_says(alice, component, "!status", "available for new chats")

    # A visitor comes and goes; a few seconds later (remove_after_secs) the item is removed,
    # and ejabberd sends alice's unavailable presence to that contact.
    first = room_of("v40")
    v1 = await clients.visitor()
    await v1.join(first, "Ann")
    await poll(lambda: roster_item(alice, first), lambda i: i is not None, 15, "the visitor in alice's roster")
    await v1.leave(first, "Ann")
    await session_when(frontdesk, first, lambda s: s["state"] == "CLOSED", "CLOSED")
    await poll(lambda: roster_item(alice, first), lambda i: i is None, 20, "the item removed from alice's roster")
    await poll(frontdesk.log_text, lambda t: "kind=Unsubscribe" in t or "subscription traffic noted" in t,
               10, "the removal's presence traffic reaching frontdesk")

    # Alice never left: she is still offered the next visitor, who is not told nobody is there.
    answer = await desk(alice, component, "!status", "You ")
    assert "available for new chats" in body(answer), body(answer)
    second = room_of("v41")
    v2 = await clients.visitor()
    await v2.join(second, "Bea")
    await v2.say(second, "Is anyone there?")
    await alice.expect(chat_from(second, body_is="Is anyone there?"), what="the offer to alice")
    await alice.expect(chat_from(component, contains="wants to chat"), what="the desk's note")
    await v2.expect_none(lambda st: groupchat_from(second)(st) and attr(st, "from") == second
                         and "No one is available" in (body(st) or ""), within=1.0,
                         what="a 'no one is available' notice")
    await diag_matches_server(alice, ejabberd)


KILLABLE_CLIENT = textwrap.dedent("""
    import asyncio, sys
    sys.path.insert(0, sys.argv[4])
    from helpers import Client

    async def main():
        c = Client(sys.argv[1], sys.argv[2], port=int(sys.argv[3]), name="killable")
        await c.start(roster=True)
        print("online", flush=True)
        await asyncio.sleep(3600)

    asyncio.run(main())
""")



async def test_staff_sessions_ending_every_way_match_the_server(frontdesk, clients, ejabberd):
    component = ejabberd.component_jid
    bob = await clients.staff("bob_acme")
    await poll(lambda: roster_item(bob, component), lambda i: i is not None, 15, "the front desk in bob's roster")
    await until_desk_says(bob, component, "!status", "available for new chats")

    # Alice logs in and quits cleanly.
    alice = await clients.staff("alice_acme", resource="one")
    await until_desk_says(alice, component, "!status", "available for new chats")
    await diag_matches_server(bob, ejabberd)
    await alice.stop()
    await poll(lambda: staff_sessions(ejabberd), lambda s: "alice_acme@localhost" not in s, 10, "alice's session gone")
    await diag_matches_server(bob, ejabberd)

    # Alice's client is killed (kill -9): the server closes the session.
    proc = subprocess.Popen(
        [sys.executable, "-c", KILLABLE_CLIENT, f"alice_acme@{ejabberd.staff_host}/killed",
         ejabberd.passwords["alice_acme"], str(ejabberd.c2s_port), os.path.dirname(__file__)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = await asyncio.wait_for(asyncio.to_thread(proc.stdout.readline), 20)
        assert line.strip() == "online", (line, proc.stderr.read() if proc.poll() is not None else "")
        await diag_matches_server(bob, ejabberd)
        assert "alice_acme@localhost" in staff_sessions(ejabberd)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    await poll(lambda: staff_sessions(ejabberd), lambda s: "alice_acme@localhost" not in s, 30,
               "the killed client's session gone")
    await diag_matches_server(bob, ejabberd)

    # She comes back with another resource: available again, and offered a visitor.
    alice2 = await clients.staff("alice_acme", resource="two")
    await until_desk_says(alice2, component, "!status", "available for new chats")
    await diag_matches_server(bob, ejabberd)
    room = room_of("v42")
    v = await clients.visitor()
    await v.join(room, "Cy")
    await v.say(room, "Hello")
    await alice2.expect(chat_from(room, body_is="Hello"), what="the offer to alice's new resource")
    await alice2.expect(contact_presence(room, "chat", "ACTIVE — Hello"), what="the ACTIVE presence")
    assert kind(await bob.expect(chat_from(room, body_is="Hello"), what="the offer to bob")) == "message"


# ---- the same on Prosody 0.12 (privileged roster sets) ------------------------------------------

async def test_on_prosody_a_removed_item_leaves_staff_available_and_quits_are_seen(on_prosody, prosody):
    fd, clients = on_prosody
    component = prosody.component_jid
    alice = await clients.staff("alice_acme")
    bob = await clients.staff("bob_acme")
    for c in (alice, bob):
        await poll(lambda c=c: roster_item(c, component), lambda i: i is not None, 15, "the front desk in the roster")
        await until_desk_says(c, component, "!status", "available for new chats")

    first = room_of("v50")
    v1 = await clients.visitor()
    await v1.join(first, "Ann")
    await poll(lambda: roster_item(alice, first), lambda i: i is not None, 15, "the visitor in alice's roster")
    await v1.leave(first, "Ann")
    await poll(lambda: roster_item(alice, first), lambda i: i is None, 20, "the item removed from alice's roster")

    answer = await desk(alice, component, "!status", "You ")
    assert "available for new chats" in body(answer), body(answer)
    second = room_of("v51")
    v2 = await clients.visitor()
    await v2.join(second, "Bea")
    await v2.say(second, "Is anyone there?")
    await alice.expect(chat_from(second, body_is="Is anyone there?"), what="the offer to alice")
    await bob.expect(chat_from(second, body_is="Is anyone there?"), what="the offer to bob")

    # Bob quits: only alice is online, as the server knows.
    await bob.stop()
    await until_desk_says(alice, component, "!diag", "staff online: 1, available: 1")
    # Alice's client is killed: the server ends her session; bob, back, sees nobody else.
    proc = subprocess.Popen(
        [sys.executable, "-c", KILLABLE_CLIENT, f"alice_acme@{prosody.staff_host}/killed",
         prosody.passwords["alice_acme"], str(prosody.c2s_port), os.path.dirname(__file__)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = await asyncio.wait_for(asyncio.to_thread(proc.stdout.readline), 20)
        assert line.strip() == "online", line
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    await alice.stop()
    bob2 = await clients.staff("bob_acme", resource="again")
    await until_desk_says(bob2, component, "!diag", "staff online: 1, available: 1", timeout=30)


# ---- clients the server still lists that no longer answer ---------------------------------------

# A staff client in its own process, so the test can stop it (SIGSTOP: the connection stays
# open and silent, as when a laptop loses its network) or kill it. With "sm" it enables
# stream management, so the server keeps its session for resumption after a kill -9.
STAFF_PROCESS = textwrap.dedent("""
    import asyncio, sys
    sys.path.insert(0, sys.argv[4])
    from helpers import Client, body, attr

    async def main():
        c = Client(sys.argv[1], sys.argv[2], port=int(sys.argv[3]), name="process")
        if sys.argv[5] == "sm":
            c.register_plugin("xep_0198")
        def said(msg):
            if msg["type"] == "chat" and msg["body"]:
                print("message", msg["from"].bare, msg["body"].replace("\\n", " "), flush=True)
        c.add_event_handler("message", said)
        await c.start(roster=True)
        print("online", flush=True)
        await asyncio.sleep(3600)

    asyncio.run(main())
""")


class StaffProcess:
    def __init__(self, server, user: str, resource: str, sm: bool = False):
        self.proc = subprocess.Popen(
            [sys.executable, "-c", STAFF_PROCESS, f"{user}@{server.staff_host}/{resource}",
             server.passwords[user], str(server.c2s_port), os.path.dirname(__file__),
             "sm" if sm else "plain"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    async def line(self, want, timeout: float, what: str) -> str:
        """The next line of its output for which want(line) holds."""
        async def read():
            while True:
                line = await asyncio.to_thread(self.proc.stdout.readline)
                if not line:
                    raise AssertionError(f"the staff process ended before {what}: "
                                         f"{self.proc.stderr.read()[-2000:]}")
                if want(line.strip()):
                    return line.strip()
        return await asyncio.wait_for(read(), timeout)

    def signal(self, sig):
        os.kill(self.proc.pid, sig)

    def close(self):
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)


def checked_often(server, tmp_path):
    """frontdesk checking staff every 5 s (`[roster] check_staff_secs`), so a silent client
    is found within 20 s."""
    roster = {"remove_after_secs": 3, "check_staff_secs": 5}
    if hasattr(server, "ctl"):
        roster["ejabberd_api"] = f"http://127.0.0.1:{server.http_port}/api"
    return frontdesk_with_clients(server, tmp_path / "frontdesk", roster=roster)


async def test_a_staff_client_cut_off_without_the_connection_closing_gets_no_offers(ejabberd, tmp_path):
    """SIGSTOP: the TCP connection stays open and nothing answers, as when the network goes.
    The client comes back (SIGCONT): it answers the next ping and gets the waiting chat."""
    await silent_staff_flow(ejabberd, tmp_path, sm=False, room=room_of("v45"))


async def test_a_staff_client_killed_while_its_session_waits_for_resumption_gets_no_offers(ejabberd, tmp_path):
    """kill -9 of a client with stream management: ejabberd keeps the session for 300 s and
    answers probes for it; only the unanswered ping shows nobody is there."""
    await silent_staff_flow(ejabberd, tmp_path, sm=True, room=room_of("v44"))


async def test_on_prosody_a_staff_client_cut_off_gets_no_offers(prosody, tmp_path):
    await silent_staff_flow(prosody, tmp_path, sm=False, room=room_of("v52"))


async def silent_staff_flow(server, tmp_path, *, sm: bool, room: str):
    async with checked_often(server, tmp_path) as (fd, clients):
        component = server.component_jid
        bob = await clients.staff("bob_acme")
        await poll(lambda: roster_item(bob, component), lambda i: i is not None, 15, "the front desk in bob's roster")
        alice = StaffProcess(server, "alice_acme", "laptop", sm=sm)
        try:
            await alice.line(lambda l: l == "online", 20, "alice online")
            await until_desk_says(bob, component, "!diag", "staff online: 2, available: 2, not answering pings: 0",
                                  timeout=20)
            alice.signal(signal.SIGKILL if sm else signal.SIGSTOP)
            await until_desk_says(bob, component, "!diag", "staff online: 2, available: 1, not answering pings: 1",
                                  timeout=40)
            if hasattr(server, "ctl"):
                # The server has not noticed: only the ping told frontdesk.
                assert "alice_acme@localhost" in staff_sessions(server), staff_sessions(server)
            assert "staff member's client did not answer a ping" in fd.log_text(), fd.log_tail(30)
            v = await clients.visitor()
            await v.join(room, "Eve")
            await v.say(room, "Hello?")
            await bob.expect(chat_from(room, body_is="Hello?"), what="the offer to bob")
            await v.expect_none(lambda st: groupchat_from(room)(st) and "No one is available" in (body(st) or ""),
                                within=1.0, what="a 'no one is available' notice while bob is there")
            if sm:
                return
            # Back on the network: the next ping is answered and the waiting chat offered.
            alice.signal(signal.SIGCONT)
            await alice.line(lambda l: l.startswith(f"message {component}") and "wants to chat" in l, 30,
                             "the offer to alice once her client answers again")
            await until_desk_says(bob, component, "!diag", "staff online: 2, available: 2, not answering pings: 0",
                                  timeout=20)
        finally:
            alice.close()
            if sm and hasattr(server, "ctl"):
                # The session waiting for resumption would outlive the test by minutes.
                server.ctl("kick_session", "alice_acme", server.staff_host, "laptop", "test over")


@pytest.mark.restarts_server
async def test_a_server_restart_rebuilds_who_is_online(ejabberd, frontdesk, clients):
    component = ejabberd.component_jid
    alice = await clients.staff("alice_acme")
    bob = await clients.staff("bob_acme")
    for c in (alice, bob):
        await poll(lambda c=c: roster_item(c, component), lambda i: i is not None, 15, "the front desk in the roster")
        await until_desk_says(c, component, "!status", "available for new chats")
    await diag_matches_server(bob, ejabberd)

    await asyncio.to_thread(ejabberd.restart)
    for c in (alice, bob):  # their connections died with the server
        c.online = False
        c.abort()
    v = await clients.visitor("after the restart")
    await wait_component(v, component, timeout=40, is_alive=frontdesk.running)
    # Only bob comes back: frontdesk must not still count alice.
    bob2 = await clients.staff("bob_acme")
    await until_desk_says(bob2, component, "!status", "available for new chats", timeout=30)
    answer = await diag_matches_server(bob2, ejabberd)
    assert "staff online: 1, available: 1" in answer, answer
    room = room_of("v43")
    await v.join(room, "Di")
    await v.say(room, "Hello after the restart")
    await bob2.expect(chat_from(room, body_is="Hello after the restart"), what="the offer to bob")
