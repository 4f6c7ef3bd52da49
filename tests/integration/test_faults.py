"""Faults survived against the real ejabberd: frontdesk killed with SIGKILL in the middle of a
conversation, the XMPP server down for a while, the disk full, the database on a read-only
file system, a second instance on the same database. Nothing that a room reflected is lost,
and the chats go on.
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
from pathlib import Path

import pytest

import xmpp_env
from helpers import attr, body, error_of, groupchat_from, kind, new_id, poll, show, wait_component

COMPONENT = "chat.localhost"


@pytest.fixture
def frontdesk_limits():
    # A burst of messages is part of these tests; the product's default rate would refuse it.
    return {"messages_per_minute": 6000, "message_burst": 200}


def bodies_from(client, room: str) -> list[str]:
    return [body(st) for st in client.log
            if kind(st) == "message" and attr(st, "type") == "groupchat"
            and attr(st, "from").startswith(room + "/") and body(st) is not None]


def spoken(fd, session_id: int) -> list[str]:
    return [t["body"] for t in fd.transcript(session_id) if t["role"] != "system"]


async def chatting(fd, clients, room: str, visitor_nick="Ann"):
    v = await clients.visitor()
    alice = await clients.staff("alice_acme")
    await v.join(room, visitor_nick)
    await v.say(room, "hello")
    await alice.join(room, "Alice")
    await alice.say(room, "hi, how can I help?")
    await v.expect(groupchat_from(room, nick="Alice", body_is="hi, how can I help?"))
    s = await poll(lambda: fd.session_of(room), lambda s: s and s["state"] == "CHATTING", what="CHATTING")
    return v, alice, s["id"]


async def test_kill_9_mid_conversation_loses_no_reflected_message_and_the_chat_goes_on(frontdesk, clients):
    room = f"v40_acme@{COMPONENT}"
    v, alice, sid = await chatting(frontdesk, clients, room)

    # A burst from the visitor; SIGKILL once alice has seen part of it.
    burst = [f"burst {i}" for i in range(60)]
    for text in burst:
        v.send_raw(f"<message type='groupchat' to='{room}' id='{new_id('b')}'><body>{text}</body></message>")
    await poll(lambda: [b for b in bodies_from(alice, room) if b.startswith("burst")], lambda seen: len(seen) >= 5,
               what="alice seeing the start of the burst", interval=0.01)
    frontdesk.kill()
    reflected = set(bodies_from(alice, room)) | set(bodies_from(v, room))
    assert any(b.startswith("burst") for b in reflected)

    frontdesk.start()
    await wait_component(v, COMPONENT, timeout=20, is_alive=frontdesk.running)
    stored = spoken(frontdesk, sid)
    missing = [b for b in reflected if b not in stored]
    assert not missing, f"reflected before the crash but not in the transcript: {missing}"
    # What was stored came in the order it was sent, with nothing twice.
    got = [b for b in stored if b.startswith("burst")]
    assert got == burst[:len(got)], got

    # The same people, still in the room from their side, go on without rejoining. A client
    # that checks with a XEP-0410 self-ping hears that it is still joined.
    r = await v.iq(f"{room}/Ann", "<ping xmlns='urn:xmpp:ping'/>")
    assert attr(r, "type") == "result", show(r)
    s = frontdesk.session_of(room)
    assert s["id"] == sid and s["state"] == "CHATTING" and s["staff"] == "alice_acme@localhost", s
    await v.say(room, "are you still there?", timeout=15)
    await alice.expect(groupchat_from(room, nick="Ann", body_is="are you still there?"))
    await alice.say(room, "yes, still here")
    await v.expect(groupchat_from(room, nick="Alice", body_is="yes, still here"))
    assert spoken(frontdesk, sid)[-2:] == ["are you still there?", "yes, still here"]
    lost = len(burst) - len(got)
    print(f"burst of {len(burst)}: {len(reflected & set(burst))} reflected before the kill, "
          f"{len(got)} stored, {lost} refused by the server while frontdesk was down or never sent")


async def test_a_second_instance_on_the_same_database_refuses_to_start(frontdesk, ejabberd, clients, tmp_path):
    second = xmpp_env.Frontdesk(tmp_path / "second", ejabberd=ejabberd, db=frontdesk.db)
    second.start()
    try:
        code = await asyncio.to_thread(second.proc.wait, 15)
    except subprocess.TimeoutExpired:
        second.kill()
        raise AssertionError(f"the second instance kept running\n{second.log_tail()}")
    assert code == 1, second.log_tail()
    assert "another frontdesk" in second.log_text(), second.log_tail()
    # The first one is untouched.
    v = await clients.visitor()
    await v.join(f"v41_acme@{COMPONENT}", "Ann")
    assert frontdesk.running()


@pytest.fixture
def small_disk(tmp_path):
    """A tiny tmpfs of its own for the database, so that it can be filled up and made
    read-only without touching the machine's disks (needs root, as CI has)."""
    mnt = tmp_path / "disk"
    mnt.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mnt)], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.fail(f"cannot mount a tmpfs for the disk-full test (needs root): {r.stderr.strip()}", pytrace=False)
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def fill(mnt: Path) -> Path:
    """Writes a file until the file system says ENOSPC, down to the last block."""
    filler = mnt / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        for size in (65536, 512):
            while True:
                try:
                    os.write(fd, b"\0" * size)
                except OSError:
                    break
    finally:
        os.close(fd)
    return filler


async def test_disk_full_refuses_messages_instead_of_reflecting_them_and_resumes(ejabberd, clients, tmp_path,
                                                                                 small_disk):
    fd = xmpp_env.Frontdesk(tmp_path / "fd", ejabberd=ejabberd, db=small_disk / "frontdesk.db",
                            limits={"messages_per_minute": 6000, "message_burst": 200})
    fd.start()
    try:
        probe = await clients.visitor("probe")
        await wait_component(probe, COMPONENT, timeout=20, is_alive=fd.running)
        room = f"v42_acme@{COMPONENT}"
        v, alice, sid = await chatting(fd, clients, room)

        filler = fill(small_disk)
        refused, reflected = None, []
        for i in range(200):
            text = f"while full {i}"
            mid = new_id("f")
            v.send_raw(f"<message type='groupchat' to='{room}' id='{mid}'><body>{text}</body></message>")
            st = await v.expect(lambda st: attr(st, "id") == mid, what=f"the reflection of or the error for {mid}")
            if attr(st, "type") == "error":
                refused = (text, st)
                break
            reflected.append(text)
        assert refused is not None, f"200 messages on a full disk were all accepted\n{fd.log_tail()}"
        text, err = refused
        assert error_of(err)[:2] == ("wait", "internal-server-error"), show(err)
        assert "could not be saved" in (error_of(err)[2] or ""), show(err)
        await alice.expect_none(groupchat_from(room, body_is=text), within=1.0, what="the refused message")
        log = fd.log_text()
        assert "could not be stored" in log and re.search(r"full|disk", log), fd.log_tail()
        assert fd.running()

        # A new chat cannot be saved either: it is closed at once, with the reason.
        room2 = f"v45_acme@{COMPONENT}"
        v2 = await clients.visitor("newcomer on a full disk")
        v2.send_join(room2, "Bea")
        notice = await v2.expect(groupchat_from(room2), timeout=10, what="the notice that the chat could not be saved")
        assert "could not be saved" in (body(notice) or ""), show(notice)
        await v2.expect(lambda st: kind(st) == "presence" and attr(st, "from") == f"{room2}/Bea"
                        and attr(st, "type") == "unavailable", what="the room's destroy presence")

        filler.unlink()
        await v.say(room, "the disk is back", timeout=15)
        await alice.expect(groupchat_from(room, nick="Ann", body_is="the disk is back"))
        stored = spoken(fd, sid)
        assert [b for b in reflected if b not in stored] == [], "reflected while the disk was full but not stored"
        assert text not in stored
        assert stored[-1] == "the disk is back", stored[-3:]
        # A newcomer's history holds only what was stored.
        bob = await clients.staff("bob_acme")
        j = await bob.try_join(room, "Bob")
        history = [body(m) for m in getattr(j, "history", [])]
        assert text not in history, history
        v2.inbox.clear()  # the closed join's stanzas
        j = await v2.join(room2, "Bea", timeout=15)
        assert 201 in j.codes, "a new room after the disk came back"
        print(f"{len(reflected)} messages were still accepted after the disk filled, "
              f"then refused")
    finally:
        code = fd.stop()
    assert code == 0, fd.log_tail()


async def test_a_read_only_database_is_a_clear_error_at_start(ejabberd, clients, tmp_path, small_disk):
    fd = xmpp_env.Frontdesk(tmp_path / "fd", ejabberd=ejabberd, db=small_disk / "frontdesk.db")
    fd.start()  # creates and migrates the database
    await poll(lambda: fd.cli("sessions").returncode, lambda code: code == 0, what="the database created")
    assert fd.stop() == 0, fd.log_tail()
    subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], check=True)
    fd.start()
    code = await asyncio.to_thread(fd.proc.wait, 15)
    assert code == 1, fd.log_tail()
    assert re.search(r"read-only|readonly", fd.log_text(), re.I), fd.log_tail()
    assert "frontdesk.db" in fd.log_text(), fd.log_tail()
    subprocess.run(["mount", "-o", "remount,rw", str(small_disk)], check=True)
    fd.start()
    try:
        probe = await clients.visitor("probe")
        await wait_component(probe, COMPONENT, timeout=20, is_alive=fd.running)
        await probe.join(f"v44_acme@{COMPONENT}", "Ann")
        s = await poll(lambda: fd.session_of(f"v44_acme@{COMPONENT}"), lambda s: s is not None, what="the session")
        assert s["state"] == "INACTIVE", s
    finally:
        assert fd.stop() == 0, fd.log_tail()


@pytest.mark.restarts_server
async def test_server_down_for_a_while_backoff_without_spinning_then_the_chat_goes_on(ejabberd, frontdesk, clients):
    room = f"v43_acme@{COMPONENT}"
    v, alice, sid = await chatting(frontdesk, clients, room)

    await asyncio.to_thread(ejabberd.stop)
    for c in (v, alice):
        c.online = False
        c.abort()
    cpu0 = frontdesk.cpu_seconds()
    # Three failed attempts: 1 s, 2 s and 4 s apart.
    retries = await poll(lambda: re.findall(r"cannot connect; retrying.*?retry_in_s=(\d+)", frontdesk.log_text()),
                         lambda r: len(r) >= 3, timeout=30, what="three reconnect attempts in the log")
    cpu = frontdesk.cpu_seconds() - cpu0
    waits = [int(x) for x in retries]
    assert waits[:3] == sorted(waits[:3]) and waits[2] > waits[0], f"no backoff: {waits}"
    assert cpu < 0.5, f"frontdesk used {cpu:.2f} s of CPU while the server was down"
    assert frontdesk.running()

    await asyncio.to_thread(ejabberd.start)
    v2 = await clients.visitor("visitor again")
    took = await wait_component(v2, COMPONENT, timeout=70, is_alive=frontdesk.running)
    j = await v2.join(room, "Ann", timeout=20)
    assert [body(m) for m in j.history][-2:] == ["hello", "hi, how can I help?"], [show(m) for m in j.stanzas]
    await v2.say(room, "back again")
    s = frontdesk.session_of(room)
    assert s["id"] == sid and s["closed_at"] is None, s
    assert spoken(frontdesk, sid)[-1] == "back again"
    print(f"down with retries every {waits} s, {cpu:.3f} s CPU meanwhile; answered {took:.2f} s after the "
          "visitor logged in again")


async def test_a_wrong_secret_on_ejabberd_exits_with_a_message_and_no_retries(ejabberd, tmp_path):
    fd = xmpp_env.Frontdesk(tmp_path / "fd", ejabberd=ejabberd)
    fd.config.write_text(fd.config.read_text().replace(ejabberd.component_secret, "not-the-secret"))
    fd.start()
    try:
        code = await asyncio.to_thread(fd.proc.wait, 15)
    except subprocess.TimeoutExpired:
        fd.kill()
        raise AssertionError(f"frontdesk kept running (retrying?)\n{fd.log_tail()}")
    log = fd.log_text()
    assert code == 1, log
    # ejabberd 23.01 cannot tell a wrong secret from a missing listener: the message names both.
    assert "refused the component secret" in log and "no listener entry" in log, log
    assert "retrying" not in log, log
