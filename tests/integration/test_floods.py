"""Floods from one visitor address through a real ejabberd 23.01 whose c2s shaper is off (the
suite's usual ejabberd shapes clients to 3 kB/s, which hides what frontdesk itself does):
presence updates with big statuses, and join/leave cycles. frontdesk must pass on no more than
the configured burst, cut statuses, keep the flooding visitor from rejoining past the join
rate, and keep answering an unrelated room. The disco#info round trip to that room during each
flood is recorded in the timings (reported, not asserted: this machine is shared and noisy).
"""

from __future__ import annotations

import asyncio
import secrets
import time

import pytest

import xmpp_env
from conftest import TIMINGS
from helpers import Clients, attr, child, frontdesk_with_clients, kind, poll

NS_MUC_USER = "http://jabber.org/protocol/muc#user"


@pytest.fixture(scope="module")
def unshaped(tmp_path_factory):
    template = xmpp_env.TEMPLATE.read_text().replace("c2s_shaper: normal", "c2s_shaper: none")
    assert "c2s_shaper: none" in template
    try:
        ej = xmpp_env.Ejabberd.create(tmp_path_factory.mktemp("ejabberd-unshaped"), template=template)
        ej.start(timeout=30)
        ej.register("alice_acme", "localhost", secrets.token_urlsafe(9))
    except (xmpp_env.StartError, OSError) as e:
        pytest.fail(f"could not start ejabberd: {e}", pytrace=False)
    yield ej
    ej.stop()


async def disco_rtts(client, room: str, until: asyncio.Event) -> list[float]:
    """disco#info round trips to `room` until `until` is set."""
    rtts = []
    while not until.is_set():
        t0 = time.monotonic()
        await client.iq(room, "<query xmlns='http://jabber.org/protocol/disco#info'/>", timeout=10)
        rtts.append(time.monotonic() - t0)
        await asyncio.sleep(0.02)
    return rtts


def record(name: str, rtts: list[float]) -> None:
    if rtts:
        rtts = sorted(rtts)
        TIMINGS.setdefault(f"disco#info round trip to another room during {name} (ms, p50/p99/max)", []).extend(
            [1000 * rtts[len(rtts) // 2], 1000 * rtts[min(len(rtts) - 1, int(len(rtts) * 0.99))], 1000 * rtts[-1]])


async def test_a_presence_flood_reaches_staff_only_up_to_the_burst(unshaped, tmp_path):
    async with frontdesk_with_clients(unshaped, tmp_path / "fd") as (fd, clients):
        room, other = "v60_acme@chat.localhost", "v61_acme@chat.localhost"
        mallory = await clients.visitor("mallory")
        bystander = await clients.visitor("bystander")
        await mallory.join(room, "Mal")
        await bystander.join(other, "Bea")
        alice = await clients.staff("alice_acme")
        await alice.join(room, "Alice")

        idle = asyncio.Event()
        asyncio.get_running_loop().call_later(1.0, idle.set)
        record("no flood", await disco_rtts(bystander, other, idle))

        status = "x" * 30_000
        done = asyncio.Event()
        probe = asyncio.create_task(disco_rtts(bystander, other, done))
        t0, cpu0 = time.monotonic(), fd.cpu_seconds()
        for i in range(1000):
            mallory.send_raw(f"<presence to='{room}/Mal'><status>{i}{status}</status></presence>")
        # The last stanza's effect: frontdesk has read them all once the bystander's next
        # disco answer comes after them (the link is one ordered stream).
        await bystander.iq(other, "<query xmlns='http://jabber.org/protocol/disco#info'/>", timeout=60)
        await mallory.iq(room, "<query xmlns='http://jabber.org/protocol/disco#info'/>", timeout=60)
        done.set()
        record("a presence flood (1,000 x 30 KB)", await probe)
        TIMINGS.setdefault("presence flood sent and read (s)", []).append(time.monotonic() - t0)
        TIMINGS.setdefault("frontdesk CPU for the presence flood (s)", []).append(fd.cpu_seconds() - cpu0)

        updates = [st for st in alice.log if kind(st) == "presence" and attr(st, "from") == f"{room}/Mal"
                   and child(st, NS_MUC_USER, "x") is not None and attr(st, "type") in ("", None)]
        # The join's presence plus at most the burst (10) of updates.
        assert len(updates) <= 11, f"{len(updates)} of mallory's presences reached staff"
        for st in updates:
            s = child(st, "jabber:client", "status")
            assert s is None or len(s.text or "") <= 500, len(s.text or "")
        await poll(fd.log_text, lambda t: "over a rate" in t, 5, "the flood logged")
        assert fd.log_text().count("over a rate") == 1, "logged once a minute, not per stanza"


async def test_join_floods_are_refused_past_the_rate(unshaped, tmp_path):
    async with frontdesk_with_clients(unshaped, tmp_path / "fd") as (fd, clients):
        mallory = await clients.visitor("mallory")
        refused = 0
        for i in range(30):
            room = f"v7{i}_acme@chat.localhost"
            r = await mallory.try_join(room, "Mal", timeout=10)
            if hasattr(r, "condition"):
                assert r.condition == "resource-constraint", r
                refused += 1
            else:
                await mallory.leave(room, "Mal")
        assert refused >= 15, f"only {refused} of 30 join/leave cycles were refused"
