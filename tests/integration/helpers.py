"""slixmpp clients for the integration tests and the demo.

A `Client` records every stanza it receives (in order, in `log`) and keeps the ones no
`expect` has taken yet in `inbox`. Every wait has a bound and, when it runs out, fails with
the stanzas that did arrive, so a failure shows the exchange.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from typing import Callable

import slixmpp
from slixmpp.xmlstream import tostring

import xmpp_env

NS_MUC = "http://jabber.org/protocol/muc"
NS_MUC_USER = "http://jabber.org/protocol/muc#user"
NS_DELAY = "urn:xmpp:delay"
NS_SID = "urn:xmpp:sid:0"
NS_STANZAS = "urn:ietf:params:xml:ns:xmpp-stanzas"
NS_DISCO_INFO = "http://jabber.org/protocol/disco#info"
NS_PING = "urn:xmpp:ping"

_ids = itertools.count(1)


def new_id(prefix: str = "t") -> str:
    return f"{prefix}{next(_ids)}"


# ---- reading stanzas ------------------------------------------------------------------------

def xml(st) -> ET.Element:
    return st.xml if hasattr(st, "xml") else st


def show(st) -> str:
    return tostring(xml(st))


def kind(st) -> str:
    return xml(st).tag.split("}")[-1]


def attr(st, name: str) -> str:
    return xml(st).get(name, "")


def bare(jid: str) -> str:
    return jid.split("/", 1)[0]


def resource(jid: str) -> str:
    return jid.split("/", 1)[1] if "/" in jid else ""


def child(st, ns: str, name: str) -> ET.Element | None:
    return xml(st).find(f"{{{ns}}}{name}")


def body(st) -> str | None:
    e = next((c for c in xml(st) if c.tag.split("}")[-1] == "body"), None)
    return None if e is None else (e.text or "")


def subject(st) -> str | None:
    e = next((c for c in xml(st) if c.tag.split("}")[-1] == "subject"), None)
    return None if e is None else (e.text or "")


def status_codes(st) -> set[int]:
    x = child(st, NS_MUC_USER, "x")
    if x is None:
        return set()
    return {int(s.get("code")) for s in x.findall(f"{{{NS_MUC_USER}}}status") if s.get("code", "").isdigit()}


def muc_item(st) -> dict:
    x = child(st, NS_MUC_USER, "x")
    item = None if x is None else x.find(f"{{{NS_MUC_USER}}}item")
    return {} if item is None else dict(item.attrib)


def error_of(st) -> tuple[str | None, str | None, str | None]:
    """(type, condition, text) of the stanza's <error/>, or (None, None, None)."""
    err = next((c for c in xml(st) if c.tag.split("}")[-1] == "error"), None)
    if err is None:
        return None, None, None
    cond = next((c.tag.split("}")[-1] for c in err if c.tag.startswith(f"{{{NS_STANZAS}}}") and
                 c.tag.split("}")[-1] != "text"), None)
    text_el = err.find(f"{{{NS_STANZAS}}}text")
    return err.get("type"), cond, None if text_el is None else (text_el.text or "")


def delay_of(st) -> ET.Element | None:
    return child(st, NS_DELAY, "delay")


def stanza_ids(st) -> list[dict]:
    return [dict(e.attrib) for e in xml(st).findall(f"{{{NS_SID}}}stanza-id")]


# predicates
def presence_from(full_jid: str, type_: str | None = "available") -> Callable:
    def p(st):
        if kind(st) != "presence" or attr(st, "from") != full_jid:
            return False
        t = attr(st, "type") or "available"
        return type_ is None or t == type_
    return p


def groupchat_from(room: str, *, body_is: str | None = None, nick: str | None = None) -> Callable:
    def p(st):
        return (kind(st) == "message" and attr(st, "type") == "groupchat"
                and bare(attr(st, "from")) == room
                and (nick is None or resource(attr(st, "from")) == nick)
                and body(st) is not None
                and (body_is is None or body(st) == body_is))
    return p


def error_reply(stanza_id: str, kind_: str | None = None) -> Callable:
    def p(st):
        return (attr(st, "type") == "error" and attr(st, "id") == stanza_id
                and (kind_ is None or kind(st) == kind_))
    return p


class JoinRefused(AssertionError):
    def __init__(self, room_nick: str, presence):
        self.presence = presence
        self.type, self.condition, self.text = error_of(presence)
        super().__init__(f"join {room_nick} refused: {self.condition} ({self.type}) {self.text!r}\n{show(presence)}")


@dataclass
class Joined:
    room: str
    nick: str
    self_presence: object
    occupants: list = field(default_factory=list)   # presences of others, before self-presence
    history: list = field(default_factory=list)     # messages between self-presence and subject
    subject: object = None
    stanzas: list = field(default_factory=list)     # everything from the room, in order

    @property
    def codes(self) -> set[int]:
        return status_codes(self.self_presence)


# ---- the client -----------------------------------------------------------------------------

class Client(slixmpp.ClientXMPP):
    """A slixmpp client on plain TCP to the private c2s port that records what it receives."""

    def __init__(self, jid: str, password: str, *, port: int, name: str | None = None,
                 host: str = "127.0.0.1"):
        super().__init__(jid, password)
        self.name = name or jid
        self._addr = (host, port)
        # Loopback only, no TLS on the private instance: plain TCP with SCRAM (or ANONYMOUS).
        self.enable_starttls = False
        self.enable_direct_tls = False
        self.enable_plaintext = True
        self.plugin["feature_mechanisms"].unencrypted_scram = True
        for plugin in ("xep_0030", "xep_0045", "xep_0199", "xep_0203"):
            self.register_plugin(plugin)
        self.log: list = []      # every stanza received, in order
        self.inbox: list = []    # the ones no expect() has taken yet
        self._arrived = asyncio.Event()
        self.add_filter("in", self._record)
        self.online = False

    def _record(self, st):
        if kind(st) in ("message", "presence", "iq"):
            self.log.append(st)
            self.inbox.append(st)
            self._arrived.set()
        return st

    def __repr__(self):
        return f"<Client {self.name} {self.boundjid}>"

    # ---- connection -----------------------------------------------------------------------
    async def start(self, timeout: float = 15, presence: bool = True, roster: bool = False) -> "Client":
        loop = asyncio.get_running_loop()
        done = loop.create_future()

        def ok(_):
            if not done.done():
                done.set_result(True)

        def fail(what):
            def f(*args):
                if not done.done():
                    done.set_exception(AssertionError(f"{self.name}: {what} {args!r}"))
            return f

        self.add_event_handler("session_start", ok)
        self.add_event_handler("failed_all_auth", fail("authentication failed"))
        self.add_event_handler("connection_failed", fail("connection failed"))
        self.connect(*self._addr)
        try:
            await asyncio.wait_for(done, timeout)
        except asyncio.TimeoutError:
            self.abort()
            raise AssertionError(f"{self.name}: no session within {timeout} s "
                                 f"(c2s {self._addr[0]}:{self._addr[1]})") from None
        finally:
            self.del_event_handler("session_start", ok)
        if roster:
            # As real clients do: the roster first, then presence (which the server then
            # broadcasts to the contacts, frontdesk's included).
            await asyncio.wait_for(self.get_roster(), timeout)
        if presence:
            self.send_presence()
        self.online = True
        return self

    async def stop(self, timeout: float = 5) -> None:
        if not self.online:
            return
        self.online = False
        try:
            await asyncio.wait_for(self.disconnect(wait=1.0), timeout)
        except (asyncio.TimeoutError, Exception):
            self.abort()

    # ---- waiting --------------------------------------------------------------------------
    async def expect(self, pred: Callable, timeout: float = 10, what: str = "a stanza"):
        """The first received stanza not yet taken that matches `pred` (taken from the inbox),
        waiting for it at most `timeout` seconds."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            self._arrived.clear()
            for i, st in enumerate(self.inbox):
                if pred(st):
                    del self.inbox[i]
                    return st
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise AssertionError(
                    f"{self.name} ({self.boundjid}): waited {timeout} s for {what}; "
                    f"last stanzas received:\n" + self.recent())
            try:
                await asyncio.wait_for(self._arrived.wait(), remaining)
            except asyncio.TimeoutError:
                pass

    async def expect_none(self, pred: Callable, within: float, what: str = "a stanza") -> None:
        """Fail if a matching stanza arrives within `within` seconds (or is already waiting)."""
        try:
            st = await self.expect(pred, timeout=within, what=what)
        except AssertionError:
            return
        raise AssertionError(f"{self.name}: did not expect {what}, got:\n{show(st)}")

    def recent(self, n: int = 15) -> str:
        return "\n".join(f"  {show(st)}" for st in self.log[-n:]) or "  (nothing)"

    # ---- MUC ------------------------------------------------------------------------------
    def send_join(self, room: str, nick: str, extra: str = "", history: str = "") -> None:
        """history: what goes inside the MUC <x/>, e.g. "<history maxstanzas='5'/>"."""
        self.send_raw(f"<presence to='{room}/{nick}'><x xmlns='{NS_MUC}'>{history}</x>{extra}</presence>")

    async def join(self, room: str, nick: str, timeout: float = 10, history: str = "") -> Joined:
        """Join `room` as `nick`: wait for the self-presence (status 110) and then the subject.
        Raises JoinRefused on an error presence."""
        start = len(self.log)
        self.send_join(room, nick, history=history)
        me = f"{room}/{nick}"

        def self_or_error(st):
            if kind(st) != "presence" or bare(attr(st, "from")) != room:
                return False
            if attr(st, "type") == "error":
                return True
            return attr(st, "from") == me and attr(st, "type") in ("", "available") and 110 in status_codes(st)

        pres = await self.expect(self_or_error, timeout, what=f"self-presence or error from {me}")
        if attr(pres, "type") == "error":
            raise JoinRefused(me, pres)

        def is_subject(st):
            return (kind(st) == "message" and attr(st, "from").startswith(room)
                    and bare(attr(st, "from")) == room and subject(st) is not None
                    and body(st) is None)

        subj = await self.expect(is_subject, timeout, what=f"the subject of {room}")
        subj_i = next(i for i in range(start, len(self.log)) if self.log[i] is subj)
        pres_i = next(i for i in range(start, len(self.log)) if self.log[i] is pres)
        # The room's bare JID also speaks one-to-one to staff (offers), and the visitor contact's
        # roster presence comes from room/frontdesk: those are not part of the MUC join. An
        # occupant's presence always carries the muc#user <x/> (XEP-0045).
        def muc(st):
            if bare(attr(st, "from")) != room:
                return False
            if kind(st) == "presence":
                return child(st, "http://jabber.org/protocol/muc#user", "x") is not None or attr(st, "type") == "error"
            return "/" in attr(st, "from") or attr(st, "type") in ("groupchat", "error")

        from_room = [st for st in self.log[start:subj_i + 1] if muc(st)]
        j = Joined(room=room, nick=nick, self_presence=pres, subject=subj, stanzas=from_room)
        for i in range(start, subj_i):
            st = self.log[i]
            if not muc(st) or st is pres:
                continue
            if kind(st) == "presence" and i < pres_i:
                j.occupants.append(st)
            elif kind(st) == "message" and i > pres_i:
                j.history.append(st)
        # The join took these: later expect()s look at what comes after the join.
        taken = {id(st) for st in j.occupants + j.history}
        self.inbox = [st for st in self.inbox if id(st) not in taken]
        return j

    async def try_join(self, room: str, nick: str, timeout: float = 10):
        """Join, returning either Joined or the error presence (JoinRefused)."""
        try:
            return await self.join(room, nick, timeout)
        except JoinRefused as e:
            return e

    async def say(self, room: str, text: str, timeout: float = 10, reflect: bool = True):
        """Send a groupchat message; return the room's reflection of it to us (or the id)."""
        mid = new_id("m")
        self.send_raw(f"<message type='groupchat' to='{room}' id='{mid}'>"
                      f"<body>{escape(text)}</body></message>")
        if not reflect:
            return mid
        return await self.expect(
            lambda st: groupchat_from(room, body_is=text)(st) and attr(st, "id") == mid,
            timeout, what=f"the reflection of my message {mid} {text!r} from {room}")

    async def leave(self, room: str, nick: str, timeout: float = 10):
        self.send_raw(f"<presence type='unavailable' to='{room}/{nick}'/>")
        return await self.expect(
            lambda st: kind(st) == "presence" and attr(st, "from") == f"{room}/{nick}"
            and attr(st, "type") == "unavailable",
            timeout, what=f"my unavailable self-presence from {room}/{nick}")

    # ---- IQ -------------------------------------------------------------------------------
    async def iq(self, to: str, payload: str, type_: str = "get", timeout: float = 10):
        """Send an IQ with `payload` (raw XML) and return the reply stanza (result or error)."""
        iid = new_id("iq")
        self.send_raw(f"<iq type='{type_}' to='{to}' id='{iid}'>{payload}</iq>")
        return await self.expect(
            lambda st: kind(st) == "iq" and attr(st, "id") == iid and attr(st, "type") in ("result", "error"),
            timeout, what=f"a reply to iq {iid} to {to}")


def escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


# ---- factories ------------------------------------------------------------------------------

class Clients:
    """Makes clients for one ejabberd and disconnects them all at the end."""

    def __init__(self, ejabberd, passwords: dict[str, str]):
        self.ej = ejabberd
        self.passwords = passwords
        self.made: list[Client] = []

    async def visitor(self, name: str = "visitor") -> Client:
        """An anonymous login on the anonymous vhost (a new random JID each time)."""
        c = Client(self.ej.anon_host, "", port=self.ej.c2s_port, name=name)
        self.made.append(c)
        return await c.start()

    async def staff(self, user: str, resource: str = "desk", roster: bool = True,
                    show: str | None = None) -> Client:
        """A staff account on the staff vhost with its password and a fixed resource; like a
        real client it fetches its roster before it sends presence (`show`: away, dnd...)."""
        jid = f"{user}@{self.ej.staff_host}/{resource}"
        c = Client(jid, self.passwords[user], port=self.ej.c2s_port, name=user)
        self.made.append(c)
        await c.start(roster=roster, presence=show is None)
        if show is not None:
            c.send_presence(pshow=show)
        return c

    async def close(self) -> None:
        await asyncio.gather(*(c.stop() for c in self.made), return_exceptions=True)


async def wait_component(client: Client, jid: str, timeout: float = 20, is_alive=None) -> float:
    """Poll disco#info to the component until it answers with a result. Returns seconds."""
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    last = None
    while loop.time() - t0 < timeout:
        if is_alive is not None and not is_alive():
            raise AssertionError("the component process exited while we waited for it to connect")
        try:
            last = await client.iq(jid, f"<query xmlns='{NS_DISCO_INFO}'/>", timeout=2)
            if attr(last, "type") == "result":
                return loop.time() - t0
        except AssertionError as e:
            last = e
        await asyncio.sleep(0.2)
    raise AssertionError(f"{jid} did not answer disco#info within {timeout} s; last reply: "
                         f"{show(last) if hasattr(last, 'xml') else last}")


async def poll(fn: Callable, pred: Callable, timeout: float = 10, what: str = "a condition",
               interval: float = 0.1):
    """Call fn() until pred(result) is true; return the result. Fails with the last result."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        value = fn()
        if pred(value):
            return value
        if loop.time() > deadline:
            raise AssertionError(f"waited {timeout} s for {what}; last value: {value!r}")
        await asyncio.sleep(interval)


@contextlib.asynccontextmanager
async def frontdesk_with_clients(server, workdir, **frontdesk_args):
    """`frontdesk run` on `server` (ejabberd or Prosody), ready once a visitor's probe gets an
    answer, with a Clients factory; stopped afterwards, failing the test if it exited badly."""
    fd = xmpp_env.Frontdesk(workdir, ejabberd=server, **frontdesk_args)
    fd.start()
    clients = Clients(server, server.passwords)
    try:
        probe = await clients.visitor("readiness-probe")
        await wait_component(probe, server.component_jid, timeout=20, is_alive=fd.running)
        yield fd, clients
    finally:
        await clients.close()
        alive = fd.running()
        code = fd.stop()
        assert alive and code == 0, f"frontdesk exited badly ({code})\n{fd.log_tail()}"
