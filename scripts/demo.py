"""The demo behind scripts/demo (run it through scripts/demo, which installs and builds first).

A private ejabberd from ejabberd.yml.example's settings on free loopback ports, two staff
accounts, frontdesk, a scripted visitor/staff chat, the sessions table and the transcript,
then instructions for chatting by hand; it stays up until Ctrl-C and cleans up on exit.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import shutil
import signal
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests" / "integration"))

import xmpp_env  # noqa: E402
from helpers import Clients, body, groupchat_from, subject, wait_component  # noqa: E402

SITE = {"id": "acme", "name": "ACME Inc.", "staff": ["alice_acme@localhost", "bob_acme@localhost"]}
VISITOR_ID = "42"
ROOM = f"{VISITOR_ID}_acme@chat.localhost"


def say(text: str = "") -> None:
    print(text, flush=True)


def step(text: str) -> None:
    print(f"\n--- {text}", flush=True)


async def scripted_chat(fd: xmpp_env.Frontdesk, clients: Clients):
    step(f"a visitor logs in anonymously and joins {ROOM} as 'Ann'")
    ann = await clients.visitor("Ann (visitor)")
    say(f"visitor JID: {ann.boundjid}")
    j = await ann.join(ROOM, "Ann")
    say(f"joined; room subject: {subject(j.subject)!r}; status codes {sorted(j.codes)}")
    say(f"session: {fd.session_of(ROOM)['state']}")

    step("the visitor writes")
    await ann.say(ROOM, "Hello, is anyone there?")
    say("Ann: Hello, is anyone there?")

    step("alice_acme joins from her Jabber client as 'Alice'")
    alice = await clients.staff("alice_acme", resource="demo")
    ja = await alice.join(ROOM, "Alice")
    say(f"Alice got the history: {[body(m) for m in ja.history]}")

    lines = [(alice, "Alice", "Hi Ann, how can I help?"),
             (ann, "Ann", "My order #1234 has not arrived yet."),
             (alice, "Alice", "Let me check... it ships today. Anything else?"),
             (ann, "Ann", "No, thank you!")]
    for speaker, nick, text in lines:
        await speaker.say(ROOM, text)
        other = ann if speaker is alice else alice
        got = await other.expect(groupchat_from(ROOM, nick=nick, body_is=text),
                                 what=f"{nick}'s message at the other side")
        say(f"{nick}: {body(got)}")

    step("Alice leaves the room (Ann stays, so you can take the chat by hand)")
    await alice.leave(ROOM, "Alice")
    return ann, alice


def print_cli(fd: xmpp_env.Frontdesk, *args: str) -> None:
    cmd = f"{fd.binary.relative_to(REPO) if fd.binary.is_relative_to(REPO) else fd.binary} " \
          f"{' '.join(args)} --config {fd.config}"
    step(f"$ {cmd}")
    r = fd.cli(*args)
    print(r.stdout, end="", flush=True)
    if r.returncode != 0:
        raise RuntimeError(f"{cmd} exited {r.returncode}: {r.stderr}")


def serve_widget() -> str | None:
    """examples/web on a free localhost port (needs `npm ci` there; scripts/demo does it)."""
    import functools
    import http.server
    import threading
    web = REPO / "examples" / "web"
    if not (web / "node_modules" / "strophe.js").exists():
        return None

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(web)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_address[1]}"


def remote_access(ej, widget: str | None) -> str:
    """How to reach the demo from another machine: everything listens on 127.0.0.1 only (it
    has plain-TCP logins and no TLS), so forward the ports over SSH under the same numbers,
    and the addresses printed here work unchanged on the other machine."""
    import socket
    from urllib.parse import urlsplit
    ports = [ej.c2s_port, ej.http_port]
    if widget:
        ports.append(urlsplit(widget).port)
    forwards = " ".join(f"-L {p}:127.0.0.1:{p}" for p in ports)
    return (f" From another machine (everything here listens on 127.0.0.1 only), forward the ports\n"
            f" over SSH, then use the same addresses there:\n"
            f"   ssh -N {forwards} <you>@{socket.getfqdn()}")


def instructions(ej: xmpp_env.Ejabberd, fd: xmpp_env.Frontdesk, demo_dir: Path, widget: str | None) -> str:
    from urllib.parse import urlencode
    ctl = " ".join(ej.ctl_argv())
    page = "(run npm ci in examples/web to get the browser widget)"
    if widget:
        page = widget + "/index.html?" + urlencode({
            "websocket": f"ws://127.0.0.1:{ej.http_port}/ws",
            "bosh": f"http://127.0.0.1:{ej.http_port}/bosh", "domain": ej.anon_host,
            "component": ej.component_jid, "site": "acme", "visitor": "web1", "nick": "Browser visitor"})
    pw = ej.passwords
    return f"""
=============================================================================================
 frontdesk demo is running (private ejabberd 23.01 on 127.0.0.1, plain TCP, no TLS)

 XMPP client port   127.0.0.1:{ej.c2s_port}    (staff: SCRAM over plain TCP; allow plaintext)
 BOSH               http://127.0.0.1:{ej.http_port}/bosh    WebSocket ws://127.0.0.1:{ej.http_port}/ws
 component port     127.0.0.1:{ej.component_port}   ({ej.component_jid}, secret in {fd.config})

 staff accounts     alice_acme@{ej.staff_host}   password {pw['alice_acme']}
                    bob_acme@{ej.staff_host}     password {pw['bob_acme']}
 visitors           anonymous login (SASL ANONYMOUS) on {ej.anon_host}

 Be a visitor in your browser (the widget of examples/web):
   {page}

{remote_access(ej, widget)}

 Chat by hand: log in as a staff member and join {ROOM} (any nick): you get the
 history, the session turns CHATTING, and the demo visitor Ann answers. Or be a visitor:
 log in anonymously to {ej.anon_host} and join <any-id>_acme@{ej.component_jid}.
   e.g. profanity:  /connect alice_acme@{ej.staff_host} server 127.0.0.1 port {ej.c2s_port} tls disable
                    /join {ROOM} nick Alice
   slixmpp:         ClientXMPP('alice_acme@{ej.staff_host}/me', '<password>') with
                    enable_starttls = enable_direct_tls = False, enable_plaintext = True,
                    plugin['feature_mechanisms'].unencrypted_scram = True;
                    connect('127.0.0.1', {ej.c2s_port})

 Watch the sessions:   {fd.binary} sessions --config {fd.config}
 A transcript:         {fd.binary} transcript 1 --config {fd.config}
 frontdesk's log:      {fd.log}
 ejabberd's log:       {ej.logs / 'ejabberd.log'}
 ejabberdctl:          {ctl} <command>
 Everything is under   {demo_dir}

 Ctrl-C stops frontdesk and ejabberd.
=============================================================================================
"""


async def bot_visitor(ann, stop: asyncio.Event) -> None:
    """While waiting: the demo visitor prints what it receives and answers staff messages."""
    seen = len(ann.log)
    while not stop.is_set():
        try:
            await asyncio.wait_for(ann._arrived.wait(), 0.5)
        except asyncio.TimeoutError:
            continue
        ann._arrived.clear()
        for st in ann.log[seen:]:
            frm = st.xml.get("from", "")
            if st.xml.tag.endswith("message") and st.xml.get("type") == "groupchat" and body(st) is not None \
                    and frm.startswith(ROOM + "/") and not frm.endswith("/Ann"):
                nick = frm.split("/", 1)[1]
                say(f"[{ROOM}] {nick}: {body(st)}")
                await ann.say(ROOM, f"Thanks {nick}, I read: {body(st)!r}", reflect=False)
            elif st.xml.tag.endswith("presence") and frm.startswith(ROOM + "/") and not frm.endswith("/Ann"):
                what = "left" if st.xml.get("type") == "unavailable" else "is here"
                say(f"[{ROOM}] {frm.split('/', 1)[1]} {what}")
        seen = len(ann.log)


async def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--no-wait", action="store_true", help="exit after the scripted part")
    ap.add_argument("--dir", default=str(REPO / "demo"), help="where everything goes (wiped first)")
    args = ap.parse_args()

    demo_dir = Path(args.dir).resolve()
    if demo_dir.exists():
        shutil.rmtree(demo_dir)
    demo_dir.mkdir(parents=True)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)

    step("starting a private ejabberd from ejabberd.yml.example's settings")
    template = xmpp_env.derive_from_example(xmpp_env.EXAMPLE.read_text())
    ej = xmpp_env.Ejabberd.create(demo_dir / "ejabberd", template=template)
    fd = None
    clients = None
    code = 0
    try:
        took = ej.start(timeout=30)
        say(f"ejabberd up in {took:.1f} s: c2s 127.0.0.1:{ej.c2s_port}, HTTP {ej.http_port}, "
            f"component {ej.component_port} (config {ej.etc / 'ejabberd.yml'})")
        for user in ("alice_acme", "bob_acme"):
            pw = f"{user.split('_')[0]}-{secrets.token_hex(3)}"
            ej.register(user, ej.staff_host, pw)
            say(f"registered {user}@{ej.staff_host} with password {pw}")

        step("starting frontdesk")
        fd = xmpp_env.Frontdesk(demo_dir, ejabberd=ej, sites=[SITE], rust_log="frontdesk=info")
        say(f"config {fd.config}:\n" + "\n".join("    " + l for l in fd.config.read_text().splitlines()))
        fd.start(own_session=True)
        clients = Clients(ej, ej.passwords)
        probe = await clients.visitor("probe")
        took = await wait_component(probe, ej.component_jid, timeout=20, is_alive=fd.running)
        await probe.stop()
        say(f"frontdesk is connected as {ej.component_jid} (answered disco#info after {took:.2f} s)")

        ann, alice = await scripted_chat(fd, clients)
        await alice.stop()
        print_cli(fd, "sessions")
        sid = fd.session_of(ROOM)["id"]
        print_cli(fd, "transcript", str(sid))

        if args.no_wait:
            say("\n--no-wait: the scripted part worked; cleaning up.")
        else:
            say(instructions(ej, fd, demo_dir, serve_widget()))
            await bot_visitor(ann, stop)
            say("\nstopping...")
    except Exception as e:  # report, clean up, exit non-zero
        code = 1
        say(f"\nDEMO FAILED: {type(e).__name__}: {e}")
        if fd is not None:
            say(fd.log_tail(30))
        say(ej.log_tail(15))
    finally:
        if clients is not None:
            await clients.close()
        if fd is not None:
            rc = fd.stop()
            say(f"frontdesk stopped (exit code {rc})")
            if rc != 0:
                code = 1
        ej.stop()
        say(f"ejabberd stopped; files left in {demo_dir}")
    return code


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
