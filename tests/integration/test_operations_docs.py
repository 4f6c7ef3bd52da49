"""docs/operations.md's nginx configuration, run as written: Debian's nginx with it (only the
ports and the certificate swapped for a private instance's) in front of the private ejabberd,
over TLS. A BOSH session and its long poll, a WebSocket upgrade carrying XMPP both ways, the
limit on new WebSocket connections, and the admin API kept out of reach.

nginx comes from scripts/test (ensure_nginx in scripts/lib.sh); without it this fails.
"""

from __future__ import annotations

import base64
import os
import re
import shutil
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.request

import pytest

import xmpp_env

DOCS = xmpp_env.REPO / "docs" / "operations.md"


def doc_block() -> str:
    blocks = re.findall(r"```nginx\n(.*?)```", DOCS.read_text(), re.S)
    assert len(blocks) == 1, f"docs/operations.md should have one nginx block, has {len(blocks)}"
    return blocks[0]


def swap(text: str, old: str, new: str) -> str:
    assert old in text, f"docs/operations.md's nginx block no longer has {old!r}"
    return text.replace(old, new)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def proxy(ejabberd, tmp_path):
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    assert os.access(nginx, os.X_OK), "nginx is missing: scripts/test installs it (ensure_nginx)"
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    r = subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                        "-subj", "/CN=localhost", "-keyout", str(key), "-out", str(cert)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    port = free_port()
    block = doc_block()
    block = swap(block, "listen 443 ssl http2;", f"listen 127.0.0.1:{port} ssl http2;")
    block = swap(block, "/etc/letsencrypt/live/example.com/fullchain.pem", str(cert))
    block = swap(block, "/etc/letsencrypt/live/example.com/privkey.pem", str(key))
    block = swap(block, "127.0.0.1:5280", f"127.0.0.1:{ejabberd.http_port}")
    conf = tmp_path / "nginx.conf"
    conf.write_text(f"""daemon off;
user root;
worker_processes 1;
pid {tmp_path}/nginx.pid;
error_log {tmp_path}/error.log info;
events {{ worker_connections 64; }}
http {{
access_log {tmp_path}/access.log;
{block}
}}
""")
    (tmp_path / "logs").mkdir()
    test = subprocess.run([nginx, "-t", "-p", str(tmp_path), "-c", str(conf)],
                          capture_output=True, text=True, timeout=30)
    assert test.returncode == 0, test.stderr
    proc = subprocess.Popen([nginx, "-p", str(tmp_path), "-c", str(conf)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            assert proc.poll() is None, proc.stderr.read().decode()
            assert time.monotonic() < deadline, "nginx did not listen within 10 s"
            time.sleep(0.05)
    ctx = ssl.create_default_context(cafile=str(cert))
    ctx.check_hostname = False
    try:
        yield port, ctx
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def bosh(port, ctx, body: str, timeout: float = 30) -> tuple[int, str]:
    req = urllib.request.Request(f"https://127.0.0.1:{port}/bosh", data=body.encode(),
                                 headers={"Content-Type": "text/xml; charset=utf-8"})
    with urllib.request.urlopen(req, context=ctx, timeout=timeout) as resp:
        return resp.status, resp.read().decode()


def test_bosh_through_the_documented_proxy_holds_its_long_poll(proxy, ejabberd):
    port, ctx = proxy
    status, text = bosh(port, ctx, (
        f"<body rid='1000' to='{ejabberd.anon_host}' xml:lang='en' wait='3' hold='1' ver='1.6' "
        "xmlns='http://jabber.org/protocol/httpbind' xmlns:xmpp='urn:xmpp:xbosh' xmpp:version='1.0'/>"))
    assert status == 200, text
    sid = re.search(r"sid=['\"]([^'\"]+)", text)
    assert sid and "ANONYMOUS" in text, text
    # An empty request is held by the server until its `wait` (3 s here): the proxy must
    # neither answer early nor cut it.
    t0 = time.monotonic()
    status, text = bosh(port, ctx, f"<body rid='1001' sid='{sid.group(1)}' "
                                   "xmlns='http://jabber.org/protocol/httpbind'/>")
    held = time.monotonic() - t0
    assert status == 200 and held >= 2.5, (held, text)
    # The documented timeouts outlast the wait a Strophe.js page asks for (60 s).
    timeout = re.search(r"location = /bosh \{.*?proxy_read_timeout (\d+)s;", doc_block(), re.S)
    assert timeout and int(timeout.group(1)) > 60, doc_block()


def ws_upgrade(port, ctx) -> tuple[ssl.SSLSocket, str]:
    sock = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=10))
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall((f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
                  f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
                  "Sec-WebSocket-Protocol: xmpp\r\n\r\n").encode())
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(4096)
        if not chunk:
            break
        head += chunk
    return sock, head.decode(errors="replace")


def ws_send_text(sock, text: str) -> None:
    data, mask = text.encode(), os.urandom(4)
    assert len(data) < 126
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(data))
    sock.sendall(bytes([0x81, 0x80 | len(data)]) + mask + masked)


def test_websocket_through_the_documented_proxy_upgrades_and_is_rate_limited(proxy, ejabberd):
    port, ctx = proxy
    sock, head = ws_upgrade(port, ctx)
    try:
        assert head.startswith("HTTP/1.1 101"), head
        ws_send_text(sock, f"<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' "
                           f"to='{ejabberd.anon_host}' version='1.0'/>")
        got = b""
        deadline = time.monotonic() + 10
        while b"ANONYMOUS" not in got and time.monotonic() < deadline:
            chunk = sock.recv(4096)
            if not chunk:
                break
            got += chunk
        assert b"<open" in got and b"ANONYMOUS" in got, got
    finally:
        sock.close()
    # limit_req: rate 10r/m with burst 5 lets 6 new connections through at once, not 10.
    statuses = []
    for _ in range(9):
        s, h = ws_upgrade(port, ctx)
        statuses.append(h.split(" ", 2)[1] if h else "none")
        s.close()
    assert "429" in statuses, statuses
    assert statuses.count("101") <= 6, statuses  # 5, or 6 if a token refilled (1 per 6 s)


def test_the_documented_proxy_does_not_forward_the_admin_api(proxy, ejabberd):
    port, ctx = proxy
    req = urllib.request.Request(f"https://127.0.0.1:{port}/api/status", data=b"{}")
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(req, context=ctx, timeout=10)
    assert e.value.code == 404
    # ejabberd itself answers there (the API is on the same listener), so the 404 is nginx's.
    direct = urllib.request.Request(f"http://127.0.0.1:{ejabberd.http_port}/api/status", data=b"{}")
    try:
        code = urllib.request.urlopen(direct, timeout=10).status
    except urllib.error.HTTPError as err:
        code = err.code
    assert code != 404, code
