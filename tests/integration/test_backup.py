"""`frontdesk backup` against the real ejabberd: a copy taken while a chat is going on (messages
still arriving) is one consistent snapshot that `transcript` opens, and a restored copy
resumes the chat."""

from __future__ import annotations

import asyncio
import json
import shutil

import pytest

from helpers import groupchat_from, poll, wait_component

COMPONENT = "chat.localhost"
ROOM = f"v70_acme@{COMPONENT}"
N = 150


@pytest.fixture
def frontdesk_limits():
    # The visitor sends a steady stream; the default rate limit would refuse part of it.
    return {"messages_per_minute": 6000, "message_burst": 200}


def spoken(rows) -> list[str]:
    return [t["body"] for t in rows if t["role"] != "system"]


def cli_json(fd, *args):
    r = fd.cli(*args, "--json")
    assert r.returncode == 0, f"frontdesk {' '.join(args)}: {r.stdout}{r.stderr}"
    return json.loads(r.stdout)


async def test_a_backup_taken_mid_chat_opens_and_restores(frontdesk, clients, tmp_path):
    fd = frontdesk
    v = await clients.visitor()
    alice = await clients.staff("alice_acme")
    await v.join(ROOM, "Ann")
    await alice.join(ROOM, "Alice")
    s = await poll(lambda: fd.session_of(ROOM), lambda s: s and s["state"] == "CHATTING",
                   what="CHATTING")
    sid = s["id"]
    received = 0

    async def stream():
        # Each message is sent once the previous one reached alice: a live, steady chat.
        nonlocal received
        for i in range(N):
            await v.say(ROOM, f"m{i}", reflect=False)
            await alice.expect(groupchat_from(ROOM, nick="Ann", body_is=f"m{i}"))
            received = i + 1

    sender = asyncio.create_task(stream())
    await poll(lambda: received, lambda n: n >= 20, what="20 messages through", interval=0.01)
    copy = tmp_path / "backup.db"
    at_start = received
    r = await asyncio.to_thread(fd.cli, "backup", "--to", str(copy))
    at_end = received
    assert r.returncode == 0, r.stdout + r.stderr
    assert "schema version" in r.stdout, r.stdout
    assert not sender.done(), "the chat ended before the backup did: make N larger"
    await asyncio.wait_for(sender, 60)

    # The copy is one snapshot: a prefix of the chat, holding at least what alice had seen.
    backed = cli_json(fd, "transcript", str(sid), "--db", str(copy))
    got = spoken(backed)
    assert got == [f"m{i}" for i in range(len(got))], got
    assert at_start <= len(got) < N, (at_start, len(got))
    live = spoken(fd.transcript(sid))
    assert live == [f"m{i}" for i in range(N)], live
    print(f"backup taken while alice had {at_start}..{at_end} of {N} messages: "
          f"the copy holds {len(got)}; {r.stdout.strip()}")

    # Restore: stop, put the copy in place (without the old WAL), start. The chat goes on in
    # the same session, after the copy's last line.
    assert fd.stop() == 0, fd.log_tail()
    for side in ("-wal", "-shm"):
        fd.db.with_name(fd.db.name + side).unlink(missing_ok=True)
    shutil.copyfile(copy, fd.db)
    fd.start()
    await wait_component(v, COMPONENT, timeout=20, is_alive=fd.running)
    assert spoken(fd.transcript(sid)) == got
    await v.say(ROOM, "after the restore", timeout=15)
    await alice.expect(groupchat_from(ROOM, nick="Ann", body_is="after the restore"))
    assert spoken(fd.transcript(sid)) == got + ["after the restore"]
