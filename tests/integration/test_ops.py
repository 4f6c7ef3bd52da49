"""Operating frontdesk against the real ejabberd 23.01: reloading the config with SIGHUP in the
middle of a chat, and the metrics endpoint scraped by a real Prometheus (Debian's package,
installed by scripts/test's ensure_prometheus), with the example alert rules of
docs/operations.md checked by promtool and evaluated by that Prometheus.

Nothing here skips: without ejabberd, prometheus or promtool the tests fail.
"""

from __future__ import annotations

import copy
import json
import re
import shutil
import subprocess
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
import yaml

import xmpp_env
from helpers import JoinRefused, frontdesk_with_clients, groupchat_from, poll
from test_staff import chat_from, roster_item, room_of, until_desk_says

DOCS = xmpp_env.REPO / "docs" / "operations.md"


def http_get(url: str, timeout: float = 5) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()
    except OSError as e:
        return 0, str(e)


# ---- reload ---------------------------------------------------------------------------------

def sites_with_dave() -> list[dict]:
    sites = copy.deepcopy(xmpp_env.DEFAULT_SITES)
    sites[0]["staff"].append("dave_acme@localhost")
    sites.append({"id": "initech", "name": "Initech", "staff": ["dave_acme@localhost"]})
    return sites


async def reloaded(fd, n: int, timeout: float = 10) -> None:
    """Wait until the log says the config was reloaded `n` times in all."""
    await poll(lambda: fd.log_text().count("config reloaded"), lambda c: c >= n, timeout,
               f"reload number {n} in the log")


async def test_reload_adds_staff_and_a_site_mid_chat(frontdesk, clients, ejabberd):
    component = ejabberd.component_jid
    alice = await clients.staff("alice_acme")
    await until_desk_says(alice, component, "!status", "available for new chats")
    room = room_of("vreload")
    v = await clients.visitor()
    await v.join(room, "Ann")
    await v.say(room, "Hello?")
    await alice.expect(chat_from(room, body_is="Hello?"), what="alice's copy of the visitor's words")
    alice.send_message(mto=room, mbody="Alice here.", mtype="chat")
    await v.expect(groupchat_from(room, body_is="Alice here."), what="alice's reply in the room")

    # Dave has an account and is online, but is nobody's staff yet.
    ejabberd.ensure_staff_account("dave_acme")
    dave = await clients.staff("dave_acme")
    frontdesk.rewrite_config(sites=sites_with_dave())
    frontdesk.reload()
    await reloaded(frontdesk, 1)

    # The chat goes on, both ways, on the same link.
    await v.say(room, "Still there?")
    await alice.expect(chat_from(room, body_is="Still there?"), what="the visitor's words after the reload")
    alice.send_message(mto=room, mbody="Yes.", mtype="chat")
    await v.expect(groupchat_from(room, body_is="Yes."), what="alice's reply after the reload")
    log = frontdesk.log_text()
    assert "connection lost" not in log and log.count("connected component=") == 1, frontdesk.log_tail()

    # Dave gets the front desk, and the next visitor of acme is offered to him.
    await poll(lambda: roster_item(dave, component), lambda i: i is not None, 20,
               "the front desk in dave's roster")
    await until_desk_says(dave, component, "!status", "available for new chats", timeout=20)
    room2 = room_of("vreload2")
    v2 = await clients.visitor("v2")
    await v2.join(room2, "Bea")
    await v2.say(room2, "Anyone?")
    await dave.expect(chat_from(room2, body_is="Anyone?"), timeout=15, what="the new staff member's offer")
    await dave.expect(chat_from(component, contains="wants to chat"), what="the desk's note to dave")

    # The new site takes visitors.
    room3 = room_of("vreload3", "initech")
    v3 = await clients.visitor("v3")
    await v3.join(room3, "Cid")
    await v3.say(room3, "Hi Initech")
    await dave.expect(chat_from(room3, body_is="Hi Initech"), what="the offer of the new site's chat")


async def test_a_bad_config_is_refused_and_what_needs_a_restart_is_said(frontdesk, clients, ejabberd):
    frontdesk.rewrite_config(limits={"body_chars": 0, "colour": 1})
    frontdesk.reload()
    await poll(frontdesk.log_text, lambda t: "reload refused" in t, 10, "the refusal in the log")
    log = frontdesk.log_text()
    assert "limits.body_chars" in log and "limits.colour" in log, frontdesk.log_tail()
    assert "config reloaded" not in log

    # The running config stays: visitors still chat.
    room = room_of("vbadreload")
    v = await clients.visitor()
    await v.join(room, "Ann")
    await v.say(room, "Hello?")

    # A file that moves the server: the key is named, the link stays where it is.
    frontdesk.rewrite_config(limits=None, server="127.0.0.1:1")
    frontdesk.reload()
    await reloaded(frontdesk, 1)
    assert re.search(r'key="?component\.server', frontdesk.log_text()), frontdesk.log_tail()
    await v.say(room, "Still here?")
    assert "connection lost" not in frontdesk.log_text()


# ---- metrics and health -----------------------------------------------------------------------

def alert_rules() -> str:
    """The YAML block of docs/operations.md that holds the example alert rules."""
    text = DOCS.read_text()
    blocks = re.findall(r"```yaml\n(.*?)```", text, re.S)
    rules = [b for b in blocks if b.lstrip().startswith("groups:")]
    assert len(rules) == 1, f"expected one ```yaml block of alert rules in {DOCS}, found {len(rules)}"
    return rules[0]


def tool(name: str) -> str:
    path = shutil.which(name) or f"/usr/bin/{name}"
    assert Path(path).exists(), f"{name} is missing: scripts/test installs it (ensure_prometheus)"
    return path


class Prometheus:
    """A private Prometheus on a loopback port, scraping one target every second."""

    def __init__(self, workdir: Path, target: str, rules: Path):
        self.port = xmpp_env.free_port()
        self.log = workdir / "prometheus.log"
        config = workdir / "prometheus.yml"
        config.write_text(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
            f"rule_files: ['{rules}']\n"
            "scrape_configs:\n  - job_name: frontdesk\n"
            f"    static_configs:\n      - targets: ['{target}']\n")
        with open(self.log, "ab") as logf:
            self.proc = subprocess.Popen(
                [tool("prometheus"), f"--config.file={config}", f"--storage.tsdb.path={workdir / 'tsdb'}",
                 f"--web.listen-address=127.0.0.1:{self.port}"],
                stdout=logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    async def ready(self) -> None:
        def alive_and_ready():
            if self.proc.poll() is not None:
                raise AssertionError(f"prometheus exited with {self.proc.returncode}: "
                                     f"{xmpp_env.tail(self.log, 20)}")
            return http_get(self.url("/-/ready"), timeout=2)[0]
        await poll(alive_and_ready, lambda s: s == 200, 30, "prometheus to be ready", interval=0.2)

    def query(self, q: str) -> list[dict]:
        status, body = http_get(self.url("/api/v1/query?" + urllib.parse.urlencode({"query": q})))
        assert status == 200, f"query {q!r}: {status} {body}"
        return json.loads(body)["data"]["result"]

    async def value(self, q: str, pred, timeout: float = 30) -> float:
        """The query's single value once `pred` holds for it."""
        def get():
            r = self.query(q)
            return float(r[0]["value"][1]) if len(r) == 1 else None
        v = await poll(get, lambda x: x is not None and pred(x), timeout, f"{q} in prometheus", interval=0.25)
        return v

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)


@pytest.fixture
def rules_file(tmp_path):
    p = tmp_path / "frontdesk-alerts.yml"
    p.write_text(alert_rules())
    return p


def test_the_example_alert_rules_pass_promtool(rules_file):
    r = subprocess.run([tool("promtool"), "check", "rules", str(rules_file)], capture_output=True,
                       text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert r.returncode == 0, r.stdout + r.stderr
    names = {rule["alert"] for g in yaml.safe_load(rules_file.read_text())["groups"] for rule in g["rules"]}
    assert {"FrontdeskLinkDown", "FrontdeskStoreErrors", "FrontdeskVisitorsWaitingNobodyAvailable"} <= names


@pytest.mark.timeout(180)
async def test_prometheus_scrapes_the_chat(ejabberd, tmp_path, rules_file):
    mport = xmpp_env.free_port()
    async with frontdesk_with_clients(ejabberd, tmp_path / "fd", metrics_listen=f"127.0.0.1:{mport}") as (fd, clients):
        status, body = http_get(f"http://127.0.0.1:{mport}/healthz")
        assert (status, body) == (200, "ok\n")
        prom = Prometheus(tmp_path, f"127.0.0.1:{mport}", rules_file)
        try:
            await prom.ready()
            await scripted_chat_is_seen(prom, clients, ejabberd)
        finally:
            prom.stop()


async def scripted_chat_is_seen(prom: Prometheus, clients, ejabberd) -> None:
    component = ejabberd.component_jid
    # A visitor waits while no staff member is there: the alert rule's expression finds the site.
    room = room_of("vmetrics")
    v = await clients.visitor()
    await v.join(room, "Ann")
    await v.say(room, "Hello?")
    waiting = next(r for g in yaml.safe_load(alert_rules())["groups"] for r in g["rules"]
                   if r["alert"] == "FrontdeskVisitorsWaitingNobodyAvailable")
    found = await poll(lambda: prom.query(waiting["expr"]), lambda r: len(r) == 1, 30,
                       "the waiting-visitor alert's expression to find acme", interval=0.25)
    assert found[0]["metric"].get("site") == "acme", found

    alice = await clients.staff("alice_acme")
    await until_desk_says(alice, component, "!status", "available for new chats", timeout=20)
    await alice.expect(chat_from(room, body_is="Hello?"), what="the offer")
    alice.send_message(mto=room, mbody="Alice here.", mtype="chat")
    await v.expect(groupchat_from(room, body_is="Alice here."), what="alice's reply")
    # Carol is staff of globex only: her join is refused.
    carol = await clients.staff("carol_globex")
    refused = await carol.try_join(room, "Carol")
    assert isinstance(refused, JoinRefused), refused

    await prom.value("frontdesk_link_up", lambda x: x == 1)
    await prom.value('frontdesk_messages_stored_total', lambda x: x >= 2)
    await prom.value('frontdesk_messages_reflected_total', lambda x: x >= 2)
    await prom.value('frontdesk_joins_total{site="acme"}', lambda x: x >= 1)
    await prom.value('frontdesk_offers_total{site="acme"}', lambda x: x >= 1)
    await prom.value('frontdesk_claims_total{site="acme"}', lambda x: x == 1)
    await prom.value('frontdesk_refusals_total{reason="forbidden"}', lambda x: x >= 1)
    await prom.value('frontdesk_sessions{site="acme",state="CHATTING"}', lambda x: x == 1)
    await prom.value('frontdesk_staff_available{site="acme"}', lambda x: x >= 1)
    await prom.value('frontdesk_commit_seconds_count', lambda x: x >= 3)
    await prom.value('sum(frontdesk_roster_operations_total{rung="ejabberd-api",outcome="done"})', lambda x: x >= 1)
    await prom.value('frontdesk_store_errors_total', lambda x: x == 0)
    await prom.value('frontdesk_link_reconnects_total', lambda x: x == 0)
    # Alice is there now: nothing waits with nobody to take it.
    await poll(lambda: prom.query(waiting["expr"]), lambda r: r == [], 30,
               "the waiting-visitor alert's expression to clear", interval=0.25)
    rules = json.loads(http_get(prom.url("/api/v1/rules"))[1])["data"]["groups"]
    assert all(r["health"] == "ok" for g in rules for r in g["rules"]), rules


async def test_healthz_says_why_when_the_link_is_down(ejabberd, tmp_path):
    """A frontdesk whose server does not answer: /healthz is 503 with the reason, /metrics
    still answers."""
    mport = xmpp_env.free_port()
    fd = xmpp_env.Frontdesk(tmp_path / "fd", ejabberd=ejabberd, metrics_listen=f"127.0.0.1:{mport}",
                            server=f"127.0.0.1:{xmpp_env.free_port()}")
    fd.start()
    try:
        status, body = await poll(lambda: http_get(f"http://127.0.0.1:{mport}/healthz"),
                                  lambda r: r[0] != 0, 15, "the metrics endpoint to answer")
        assert status == 503, body
        assert "component link" in body and "down" in body, body
        status, body = http_get(f"http://127.0.0.1:{mport}/metrics")
        assert status == 200 and "frontdesk_link_up 0" in body, body
        assert fd.running(), fd.log_tail()
    finally:
        code = fd.stop()
    assert code == 0, fd.log_tail()


def test_a_taken_metrics_port_stops_frontdesk_with_the_key(ejabberd, tmp_path):
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        port = s.getsockname()[1]
        fd = xmpp_env.Frontdesk(tmp_path / "fd", ejabberd=ejabberd, metrics_listen=f"127.0.0.1:{port}")
        fd.start()
        code = fd.proc.wait(timeout=15)
    assert code != 0
    assert f"metrics.listen 127.0.0.1:{port}" in fd.log_text(), fd.log_tail()
