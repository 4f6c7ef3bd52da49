"""Fixtures: a private ejabberd for the whole session, a fresh frontdesk per test, clients.

Nothing is skipped: if ejabberd or frontdesk cannot be started, the tests that need them
fail with the tail of the logs.
"""

from __future__ import annotations

import secrets
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import xmpp_env  # noqa: E402
from helpers import Clients, wait_component  # noqa: E402

STAFF = {"alice_acme": "localhost", "bob_acme": "localhost", "carol_globex": "localhost"}
TIMINGS: dict[str, list[float]] = {}
# Files a test wants a reader to look at (screenshots...), listed at the end of the run.
ARTEFACTS: list[str] = []


def pytest_collection_modifyitems(config, items):
    # A test that restarts the shared ejabberd goes last, so that a failed restart cannot
    # take the other tests down with it.
    items.sort(key=lambda item: item.get_closest_marker("restarts_server") is not None)


@pytest.fixture(scope="session")
def ejabberd(tmp_path_factory):
    base = tmp_path_factory.mktemp("ejabberd")
    try:
        ej = xmpp_env.Ejabberd.create(base)
        took = ej.start(timeout=30)
    except (xmpp_env.StartError, OSError) as e:
        pytest.fail(f"could not start ejabberd: {e}", pytrace=False)
    TIMINGS.setdefault("ejabberd start", []).append(took)
    try:
        t0 = time.monotonic()
        for user, host in STAFF.items():
            pw = secrets.token_urlsafe(9)
            ej.register(user, host, pw)
        TIMINGS.setdefault("register 3 users", []).append(time.monotonic() - t0)
        yield ej
    finally:
        took = ej.stop()
        TIMINGS.setdefault("ejabberd stop", []).append(took)
        for k in ("start", "stop"):
            if len(ej.timings.get(k, [])) > 1:
                TIMINGS[f"ejabberd {k} (all)"] = ej.timings[k]
        if ej.running():
            pytest.fail(f"ejabberd node {ej.node} still running after stop", pytrace=False)


@pytest.fixture
async def clients(ejabberd):
    c = Clients(ejabberd, ejabberd.passwords)
    yield c
    await c.close()


@pytest.fixture
def frontdesk_limits():
    """Override in a test module to run frontdesk with a [limits] section."""
    return None


@pytest.fixture
async def frontdesk(ejabberd, tmp_path, frontdesk_limits):
    """`frontdesk run` with a fresh database, connected to the private ejabberd."""
    fd = xmpp_env.Frontdesk(tmp_path / "frontdesk", ejabberd=ejabberd, limits=frontdesk_limits)
    if not ejabberd.running():
        pytest.fail("ejabberd is not running (an earlier test broke it?)\n" + ejabberd.log_tail(),
                    pytrace=False)
    try:
        fd.start()
    except xmpp_env.StartError as e:
        pytest.fail(str(e), pytrace=False)
    probe = Clients(ejabberd, ejabberd.passwords)
    try:
        v = await probe.visitor("readiness-probe")
        took = await wait_component(v, ejabberd.component_jid, timeout=20, is_alive=fd.running)
        TIMINGS.setdefault("frontdesk ready", []).append(took)
    except AssertionError as e:
        code = fd.stop()
        pytest.fail(f"frontdesk did not come up: {e} (exit code {code})\n{fd.log_tail()}", pytrace=False)
    finally:
        await probe.close()
    yield fd
    alive = fd.running()
    code = fd.stop()
    assert alive, f"frontdesk exited during the test with code {fd.proc.returncode}\n{fd.log_tail()}"
    assert code == 0, f"frontdesk exited with {code} on SIGTERM\n{fd.log_tail()}"


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if report.failed:
        fd = item.funcargs.get("frontdesk") if hasattr(item, "funcargs") else None
        if isinstance(fd, xmpp_env.Frontdesk):
            report.sections.append(("frontdesk log", fd.log_tail(80)))
        ej = item.funcargs.get("ejabberd") if hasattr(item, "funcargs") else None
        if isinstance(ej, xmpp_env.Ejabberd):
            report.sections.append(("ejabberd log", ej.log_tail(25)))
    return report


def pytest_terminal_summary(terminalreporter):
    if ARTEFACTS:
        terminalreporter.section("artefacts")
        for line in ARTEFACTS:
            terminalreporter.write_line(line)
    if not TIMINGS:
        return
    terminalreporter.section("timings (seconds)")
    for name, values in TIMINGS.items():
        vals = ", ".join(f"{v:.2f}" for v in values[:12]) + (" ..." if len(values) > 12 else "")
        terminalreporter.write_line(f"{name}: n={len(values)} min={min(values):.2f} "
                                    f"max={max(values):.2f}  [{vals}]")
