"""A minimal Django view that renders frontdesk's chat widget for the current visitor.

settings.py:
    FRONTDESK = {
        "WEBSOCKET": "wss://example.com/ws",         # optional: tried first (ejabberd /ws, Prosody /xmpp-websocket)
        "BOSH": "https://example.com/bosh",          # the fallback (ejabberd /bosh, Prosody /http-bind)
        "DOMAIN": "anon.example.com",                # the anonymous vhost
        "COMPONENT": "chat.example.com",             # frontdesk's [component] jid
        "SITE": "acme",                              # the [[sites]] id
        "TOKEN_SECRET": os.environ["FRONTDESK_TOKEN_SECRET"],  # the site's token_secret
        "WIDGET_URL": "/static/frontdesk/",          # where frontdesk-widget.js/.css and strophe are served
    }
urls.py:
    path("chat/", views.chat, name="chat")

The visitor id is kept in the Django session, so a reload (or another page of the site) is the
same visitor and brings the conversation back. Nothing here talks to frontdesk or the XMPP
server: the browser does, over WebSocket or BOSH.
"""

from __future__ import annotations

import secrets

from django.conf import settings
from django.shortcuts import render

from .frontdesk_token import mint_token


def visitor_id(request) -> str:
    vid = request.session.get("frontdesk_visitor")
    if not vid:
        # Room names are <visitor>_<site>: lower-case letters and digits, never '_'.
        vid = secrets.token_hex(8)
        request.session["frontdesk_visitor"] = vid
    return vid


def chat(request):
    fd = settings.FRONTDESK
    vid = visitor_id(request)
    nick = request.user.get_full_name() if request.user.is_authenticated else ""
    options = {
        "bosh": fd["BOSH"],
        "domain": fd["DOMAIN"],
        "component": fd["COMPONENT"],
        "site": fd["SITE"],
        "visitor": vid,
        "token": mint_token(fd["TOKEN_SECRET"], fd["SITE"], vid, ttl=86400),
    }
    # A signed-in user's name; anonymous visitors are named by the widget (their pre-chat
    # name, else "Visitor" and the end of their id).
    if nick:
        options["nick"] = nick
    if fd.get("WEBSOCKET"):
        options["websocket"] = fd["WEBSOCKET"]
    return render(request, "frontdesk/chat.html", {
        "widget_url": fd["WIDGET_URL"],
        "options": options,
    })
