#!/usr/bin/env python3
"""Writes the seed corpus of the core_stanzas fuzz target (see src/fuzz.rs for the format):
records separated by NUL, each = sender byte, time byte (seconds + 1; 0xFF = link down/up),
stanza. Run from the repository root: python3 fuzz/make_seeds.py"""
import hashlib
import hmac
from pathlib import Path

V1, V2, ALICE, BOB, CAROL, MAL, SRV = range(7)
R = "v1_acme@chat.example.com"
R2 = "v2_acme@chat.example.com"
G = "v1_globex@chat.example.com"
MUC = "<x xmlns='http://jabber.org/protocol/muc'/>"
LINK = "link"


def token(visitor, site, expires=1_900_000_000, secret=b"fuzzing-token-secret"):
    mac = hmac.new(secret, f"{visitor}_{site}|{expires}".encode(), hashlib.sha256).hexdigest()
    return f"{expires}.{mac}"


def rec(who, dt, xml):
    return bytes([who + 1, 0xFF if dt == LINK else dt + 1]) + xml.encode()


SEEDS = {
    "01-join-chat-claim": [
        rec(V1, 0, f"<presence to='{R}/Ann'>{MUC}</presence>"),
        rec(V1, 1, f"<message type='groupchat' to='{R}' id='m1'><body>Hello?</body></message>"),
        rec(ALICE, 1, f"<presence to='{R}/Alice'>{MUC}</presence>"),
        rec(ALICE, 1, f"<message type='groupchat' to='{R}' id='m2'><body>Hi Ann</body></message>"),
        rec(BOB, 0, f"<presence to='{R}/Bob'>{MUC}</presence>"),
        rec(V1, 5, f"<presence type='unavailable' to='{R}/Ann'/>"),
        rec(ALICE, 9, f"<presence type='unavailable' to='{R}/Alice'/>"),
    ],
    "02-staff-desk": [
        rec(ALICE, 0, "<presence to='chat.example.com'/>"),
        rec(BOB, 0, "<presence to='chat.example.com'><show>away</show></presence>"),
        rec(V1, 0, f"<presence to='{R}/Ann'>{MUC}</presence>"),
        rec(V1, 1, f"<message type='groupchat' to='{R}'><body>anyone?</body></message>"),
        rec(ALICE, 1, "<message type='chat' to='chat.example.com'><body>!waiting</body></message>"),
        rec(ALICE, 1, "<message type='chat' to='chat.example.com'><body>!accept 1</body></message>"),
        rec(ALICE, 1, f"<message type='chat' to='{R}'><body>hello from the desk</body></message>"),
        rec(ALICE, 1, "<message type='chat' to='chat.example.com'><body>!finish 1</body></message>"),
        rec(ALICE, 1, "<message type='chat' to='chat.example.com'><body>!transcript 1</body></message>"),
    ],
    "03-adhoc-and-iqs": [
        rec(ALICE, 0, "<iq type='get' id='d1' to='chat.example.com'><query xmlns='http://jabber.org/protocol/disco#items' node='http://jabber.org/protocol/commands'/></iq>"),
        rec(ALICE, 0, "<iq type='set' id='c1' to='chat.example.com'><command xmlns='http://jabber.org/protocol/commands' node='waiting' action='execute'/></iq>"),
        rec(V1, 0, "<iq type='get' id='p1' to='chat.example.com'><ping xmlns='urn:xmpp:ping'/></iq>"),
        rec(V1, 0, f"<iq type='get' id='i1' to='{R}'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>"),
        rec(MAL, 0, f"<iq type='error' id='e1' to='{R}/Ann'><error type='cancel'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>"),
        rec(SRV, 0, "<message to='chat.example.com'><privilege xmlns='urn:xmpp:privilege:2'><perm access='roster' type='both'/></privilege></message>"),
    ],
    "04-hostile": [
        rec(V1, 0, f"<presence to='{R}/A&#x200B;nn'>{MUC}</presence>"),
        rec(V1, 0, f"<presence to='{R}/alice'>{MUC}</presence>"),
        rec(V1, 0, f"<message type='groupchat' to='{R}' id='{'A' * 2000}'><body>long id</body></message>"),
        rec(V1, 0, f"<message type='groupchat' to='{R}'><body>x</body>" + "<a xmlns='urn:x'>" * 12 + "</a>" * 12 + "</message>"),
        rec(V1, 0, f"<message type='groupchat' to='{R}'><body>{'y' * 300}</body></message>"),
        rec(V2, 0, f"<presence to='{R}/Eve'>{MUC}</presence>"),
        rec(CAROL, 0, f"<presence to='{R}/Carol'>{MUC}</presence>"),
        rec(V1, 0, f"<message type='chat' to='{R}/Alice'><body>private</body></message>"),
        rec(V1, 0, f"<presence to='{G}/Ann'>{MUC}</presence>"),
        rec(V1, 0, f"<presence to='{R2}/Ann'>{MUC}</presence>"),
    ],
    "06-tokens": [
        rec(V1, 0, f"<presence to='{G}/Ann'><x xmlns='http://jabber.org/protocol/muc'><password>{token('v1', 'globex')}</password></x></presence>"),
        rec(V1, 1, f"<message type='groupchat' to='{G}'><body>hi with a token</body></message>"),
        rec(V2, 0, f"<presence to='{G}/Ann'><x xmlns='http://jabber.org/protocol/muc'><password>{token('v1', 'globex')}</password></x></presence>"),
        rec(MAL, 0, f"<presence to='{G}/Eve'><x xmlns='http://jabber.org/protocol/muc'><password>{token('v2', 'globex')}</password></x></presence>"),
        rec(MAL, 0, f"<presence to='{G}/Eve'><x xmlns='http://jabber.org/protocol/muc'><password>1.{'0' * 64}</password></x></presence>"),
        rec(CAROL, 0, f"<presence to='{G}/Carol'>{MUC}</presence>"),
    ],
    "05-reload-and-link-loss": [
        rec(V1, 0, f"<presence to='{R}/Ann'>{MUC}</presence>"),
        rec(ALICE, 0, f"<presence to='{R}/Alice'>{MUC}</presence>"),
        rec(V2, 0, f"<presence to='{R}/Ann'><x xmlns='http://jabber.org/protocol/muc'><history maxstanzas='5'/></x></presence>"),
        rec(V1, 1, "<iq type='error' id='fd-ping-1' to='chat.example.com'><error type='cancel'><service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>"),
        rec(V1, LINK, ""),
        rec(V1, LINK, ""),
        rec(V2, 130, f"<message type='groupchat' to='{R}'><body>back</body><composing xmlns='http://jabber.org/protocol/chatstates'/></message>"),
    ],
}

if __name__ == "__main__":
    out = Path(__file__).resolve().parent / "corpus" / "core_stanzas"
    out.mkdir(parents=True, exist_ok=True)
    for name, records in SEEDS.items():
        (out / name).write_bytes(b"\0".join(records))
