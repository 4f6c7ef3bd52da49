"""Soak: waves of visitors join, chat with staff, and leave, against the real ejabberd. After
each wave every session is CLOSED again; after the last one frontdesk's memory is back near its
level after the first wave, and no file descriptor has leaked. Bounded: about a minute.
"""

from __future__ import annotations

import asyncio
import os

import pytest

from conftest import TIMINGS
from helpers import groupchat_from, poll

WAVES = int(os.environ.get("FRONTDESK_SOAK_WAVES", "6"))
PER_WAVE = int(os.environ.get("FRONTDESK_SOAK_VISITORS", "50"))
STAFFED = 5  # rooms per wave that alice answers


@pytest.fixture
def frontdesk_limits():
    return {"sessions_per_site": 1000}


async def visit(clients, wave: int, i: int):
    room = f"soak{wave}x{i}_acme@chat.localhost"
    v = await clients.visitor(f"soak {wave}/{i}")
    await v.join(room, f"V{i}")
    for n in range(3):
        await v.say(room, f"message {n} from {wave}/{i}")
    return v, room


async def wave_of_visitors(frontdesk, clients, alice, wave: int) -> None:
    started = await asyncio.gather(*(visit(clients, wave, i) for i in range(PER_WAVE)))
    for v, room in started[:STAFFED]:
        await alice.join(room, "Alice")
        await alice.say(room, "hello, how can I help?")
        await v.expect(groupchat_from(room, nick="Alice", body_is="hello, how can I help?"))
        await v.say(room, "thanks, bye")
        await alice.leave(room, "Alice")
    await asyncio.gather(*(v.leave(room, f"V{i}") for i, (v, room) in enumerate(started)))
    for v, _ in started:
        await v.stop()
        clients.made.remove(v)
    # Every room closes after the short linger once everyone has left.
    await poll(lambda: [s for s in frontdesk.sessions() if s["state"] != "CLOSED"], lambda open_: not open_,
               timeout=30, what=f"every session of wave {wave} CLOSED", interval=0.5)


async def test_waves_of_visitors_leave_nothing_behind(frontdesk, clients):
    alice = await clients.staff("alice_acme")
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    await wave_of_visitors(frontdesk, clients, alice, 0)
    base_rss, base_fds = frontdesk.rss_kib(), frontdesk.open_fds()
    rss = [base_rss]
    for wave in range(1, WAVES):
        await wave_of_visitors(frontdesk, clients, alice, wave)
        rss.append(frontdesk.rss_kib())
    took = loop.time() - t0
    end_rss, end_fds = frontdesk.rss_kib(), frontdesk.open_fds()

    sessions = frontdesk.sessions()
    assert len(sessions) == WAVES * PER_WAVE, len(sessions)
    assert all(s["state"] == "CLOSED" and s["closed_at"] for s in sessions)
    staffed = [s for s in sessions if s["staff"] == "alice_acme@localhost"]
    assert len(staffed) == WAVES * STAFFED, len(staffed)
    # Each transcript holds what was said: 3 messages, and 2 more in the staffed rooms.
    for s in staffed[:3] + [s for s in sessions if s["staff"] is None][:3]:
        said = [t for t in frontdesk.transcript(s["id"]) if t["role"] != "system"]
        assert len(said) == (5 if s["staff"] else 3), (s, said)

    assert end_fds <= base_fds, f"file descriptors: {base_fds} after the first wave, {end_fds} at the end"
    # The heap is reused, not grown: allow the allocator some slack over the first wave's level.
    assert end_rss <= base_rss * 1.2 + 2048, f"RSS KiB per wave: {rss}"
    TIMINGS.setdefault("soak: seconds for all waves", []).append(took)
    print(f"{WAVES} waves x {PER_WAVE} visitors in {took:.1f} s; RSS KiB after each wave {rss}; "
          f"fds {base_fds} -> {end_fds}")
