/*
 * frontdesk-widget.js: an embeddable live-chat widget for frontdesk.
 *
 * The page's visitor logs in anonymously over the XMPP server's own BOSH with Strophe.js and
 * joins their room <visitor>_<site>@<component>; staff answer from their Jabber clients.
 * Nothing here touches the web app's server, and nothing polls.
 *
 *   <link rel="stylesheet" href="frontdesk-widget.css">
 *   <script src="node_modules/strophe.js/dist/strophe.umd.min.js"></script>
 *   <script src="frontdesk-widget.js"></script>
 *   <div id="chat"></div>
 *   <script>
 *     FrontdeskWidget.mount(document.getElementById("chat"), {
 *       bosh: "https://example.com/bosh", domain: "anon.example.com",
 *       component: "chat.example.com", site: "acme", visitor: "4f2a9c",
 *       nick: "Ann", token: "1767225600.27449e83..." });
 *   </script>
 *
 * Security: nothing from a message or a presence is ever inserted as HTML (textContent only).
 * The widget's state is on the root element as data-state (connecting, waiting, chatting,
 * closed, refused, unreachable, replaced), for styling and for tests.
 */
(function (global) {
  "use strict";

  var NS_MUC = "http://jabber.org/protocol/muc";
  var NS_MUC_USER = "http://jabber.org/protocol/muc#user";
  var NS_CHATSTATES = "http://jabber.org/protocol/chatstates";
  var NS_DELAY = "urn:xmpp:delay";
  var NS_SID = "urn:xmpp:sid:0";
  var NS_STANZAS = "urn:ietf:params:xml:ns:xmpp-stanzas";

  // Strophe over BOSH to an unreachable server can stay silent for a long time: our own timer.
  var CONNECT_TIMEOUT_MS = 8000;
  var PAUSED_AFTER_MS = 4000;
  var RETRY_MAX_MS = 30000;
  // BOSH hides a vanished server: Strophe keeps retrying its requests quietly for minutes. A
  // ping to our own server every 15 s that goes unanswered for 10 s means the link is gone.
  var PING_EVERY_MS = 15000;
  var PING_TIMEOUT_MS = 10000;

  var TEXT = {
    connecting: "Connecting…",
    waiting: "Waiting for someone to answer. Write your question below.",
    chatting: function (who) { return "You are chatting with " + who + "."; },
    closed: "The chat is closed.",
    unreachable: "The chat server cannot be reached. Trying again…",
    reconnecting: "Connection lost. Reconnecting…",
    replaced: "This chat continues in another window.",
    typing: function (who) { return who + " is typing…"; },
    notSent: "Not delivered: ",
    newChat: "Start a new chat",
    placeholder: "Type a message and press Enter",
  };

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }

  function child(stanza, name, ns) {
    var list = stanza.getElementsByTagNameNS(ns, name);
    return list.length ? list[0] : null;
  }

  function directChild(stanza, name) {
    for (var i = 0; i < stanza.childNodes.length; i++) {
      var c = stanza.childNodes[i];
      if (c.nodeType === 1 && c.localName === name) return c;
    }
    return null;
  }

  function Widget(root, o) {
    this.root = root;
    this.o = o;
    this.room = o.visitor + "_" + o.site + "@" + o.component;
    this.nick = o.nick || "Visitor";
    this.me = this.room + "/" + this.nick;
    this.seen = {};          // stanza-ids already shown (history comes again on a rejoin)
    this.staff = {};         // nick -> true for staff in the room
    this.typing = {};        // nick -> true
    this.retryMs = 1000;
    this.composing = false;
    this.pausedTimer = null;
    this.connectTimer = null;
    this.retryTimer = null;
    this.conn = null;
    this.done = false;       // closed by staff, refused, or replaced: no automatic reconnect
    this.build();
    this.connect();
    var self = this;
    // Leave when the page goes away, so that a reload (a new anonymous address) is let into the
    // room at once instead of after frontdesk's ping to the old address times out.
    global.addEventListener("pagehide", function () { self.leaveNow(); });
  }

  Widget.prototype.build = function () {
    var self = this;
    this.root.classList.add("frontdesk");
    this.statusLine = el("div", "fd-status");
    this.statusLine.setAttribute("role", "status");
    this.log = el("ol", "fd-log");
    this.log.setAttribute("aria-live", "polite");
    this.typingLine = el("div", "fd-typing");
    this.form = el("form", "fd-form");
    this.input = el("input", "fd-input");
    this.input.type = "text";
    this.input.maxLength = 4000;
    this.input.placeholder = TEXT.placeholder;
    this.input.setAttribute("aria-label", "Message");
    this.again = el("button", "fd-again", TEXT.newChat);
    this.again.type = "button";
    this.again.hidden = true;
    this.form.appendChild(this.input);
    this.root.appendChild(this.statusLine);
    this.root.appendChild(this.log);
    this.root.appendChild(this.typingLine);
    this.root.appendChild(this.form);
    this.root.appendChild(this.again);
    this.form.addEventListener("submit", function (ev) {
      ev.preventDefault();
      self.send();
    });
    this.input.addEventListener("input", function () { self.typed(); });
    this.again.addEventListener("click", function () {
      self.again.hidden = true;
      self.done = false;
      self.join();
    });
    this.setState("connecting", TEXT.connecting);
  };

  Widget.prototype.setState = function (state, text) {
    this.state = state;
    this.root.setAttribute("data-state", state);
    this.statusLine.textContent = text;
    this.input.disabled = !(state === "waiting" || state === "chatting");
  };

  Widget.prototype.line = function (kind, who, text, id) {
    if (id) {
      if (this.seen[id]) return;
      this.seen[id] = true;
    }
    var li = el("li", "fd-line fd-" + kind);
    if (who) li.appendChild(el("span", "fd-who", who));
    li.appendChild(el("span", "fd-text", text));
    this.log.appendChild(li);
    this.log.scrollTop = this.log.scrollHeight;
  };

  // ---- connection ----------------------------------------------------------------------

  Widget.prototype.connect = function () {
    var self = this;
    clearTimeout(this.retryTimer);
    if (this.conn) {
      try { this.conn.reset(); } catch (e) { /* a fresh one follows */ }
    }
    var conn = new global.Strophe.Connection(this.o.bosh);
    this.conn = conn;
    clearTimeout(this.connectTimer);
    this.connectTimer = setTimeout(function () {
      if (self.conn === conn && !conn.connected) self.unreachable();
    }, CONNECT_TIMEOUT_MS);
    conn.connect(this.o.domain, null, function (status, condition) {
      if (self.conn !== conn) return;
      var S = global.Strophe.Status;
      if (status === S.CONNECTED) {
        clearTimeout(self.connectTimer);
        self.retryMs = 1000;
        self.handlers(conn);
        self.join();
      } else if (status === S.CONNFAIL || status === S.AUTHFAIL || status === S.ERROR) {
        self.unreachable(condition);
      } else if (status === S.DISCONNECTED) {
        if (!self.done) self.lost();
      }
    });
  };

  Widget.prototype.unreachable = function () {
    this.setState("unreachable", TEXT.unreachable);
    this.retry();
  };

  Widget.prototype.lost = function () {
    this.joined = false;
    this.conn = null;
    this.setState("reconnecting", TEXT.reconnecting);
    this.retry();
  };

  Widget.prototype.retry = function () {
    var self = this;
    clearTimeout(this.retryTimer);
    clearTimeout(this.connectTimer);
    var wait = this.retryMs;
    this.retryMs = Math.min(this.retryMs * 2, RETRY_MAX_MS);
    this.retryTimer = setTimeout(function () { self.connect(); }, wait);
  };

  Widget.prototype.watch = function (conn) {
    var self = this;
    clearInterval(this.pingTimer);
    this.pingTimer = setInterval(function () {
      if (self.conn !== conn) return;
      var ping = global.$iq({ type: "get", to: self.o.domain }).c("ping", { xmlns: "urn:xmpp:ping" });
      conn.sendIQ(ping.tree(), function () {}, function (answer) {
        // An error answer still proves the link; no answer at all does not.
        if (answer === null && self.conn === conn && !self.done) {
          clearInterval(self.pingTimer);
          try { conn.reset(); } catch (e) { /* replaced below */ }
          self.lost();
        }
      }, PING_TIMEOUT_MS);
    }, PING_EVERY_MS);
  };

  Widget.prototype.handlers = function (conn) {
    var self = this;
    this.watch(conn);
    conn.addHandler(function (p) { self.onPresence(p); return true; }, null, "presence");
    conn.addHandler(function (m) { self.onMessage(m); return true; }, null, "message");
    // XEP-0199: answer the room's pings, so that frontdesk knows this page is still here (an
    // unanswered ping keeps the room for us, but an answer settles it at once).
    conn.addHandler(function (iq) {
      conn.send(global.$iq({ type: "result", to: iq.getAttribute("from"), id: iq.getAttribute("id") }));
      return true;
    }, "urn:xmpp:ping", "iq", "get");
  };

  /** Leaves the room and ends the BOSH session in one beacon: requests a page makes while it
   * unloads are cancelled, beacons are not. Uses Strophe's BOSH sid and next rid. */
  Widget.prototype.leaveNow = function () {
    var conn = this.conn;
    var proto = conn && conn._proto;
    if (!conn || !this.joined || !proto || !proto.sid || typeof proto.rid !== "number" ||
        !global.navigator || !global.navigator.sendBeacon) return;
    var body = global.$build("body", { xmlns: "http://jabber.org/protocol/httpbind", type: "terminate",
                                       sid: proto.sid, rid: proto.rid })
      .c("presence", { xmlns: "jabber:client", type: "unavailable", to: this.me });
    // text/plain keeps it a simple cross-origin request (a beacon cannot be preflighted).
    global.navigator.sendBeacon(this.o.bosh, new Blob([global.Strophe.serialize(body.tree())], { type: "text/plain;charset=UTF-8" }));
    this.joined = false;
  };

  Widget.prototype.join = function () {
    this.setState("connecting", TEXT.connecting);
    this.joined = false;
    this.staff = {};
    var x = global.$pres({ to: this.me }).c("x", { xmlns: NS_MUC });
    if (this.o.token) x.c("password").t(this.o.token).up();
    this.conn.send(x.tree());
  };

  // ---- what arrives --------------------------------------------------------------------

  Widget.prototype.onPresence = function (p) {
    var from = p.getAttribute("from") || "";
    var slash = from.indexOf("/");
    if ((slash < 0 ? from : from.slice(0, slash)) !== this.room) return;
    var nick = slash < 0 ? "" : from.slice(slash + 1);
    var type = p.getAttribute("type");
    var x = child(p, "x", NS_MUC_USER);
    var codes = [];
    if (x) {
      var st = x.getElementsByTagNameNS(NS_MUC_USER, "status");
      for (var i = 0; i < st.length; i++) codes.push(st[i].getAttribute("code"));
    }
    var item = x ? child(x, "item", NS_MUC_USER) : null;
    var isStaff = item && (item.getAttribute("affiliation") === "admin" || item.getAttribute("role") === "moderator");

    if (type === "error") {
      if (nick !== this.nick) return;
      var err = directChild(p, "error");
      var text = err ? child(err, "text", NS_STANZAS) : null;
      this.done = true;
      this.setState("refused", text && text.textContent ? text.textContent : "This chat could not be opened.");
      return;
    }
    if (type === "unavailable") {
      if (nick === this.nick) {
        var destroy = x ? child(x, "destroy", NS_MUC_USER) : null;
        var reason = item ? child(item, "reason", NS_MUC_USER) : null;
        if (destroy) {
          this.closed();
        } else if (reason && /another|new connection/i.test(reason.textContent)) {
          this.done = true;
          this.setState("replaced", TEXT.replaced);
          this.conn.disconnect();
        }
        return;
      }
      if (this.staff[nick]) {
        delete this.staff[nick];
        this.setTyping(nick, false);
        this.line("system", "", nick + " left the chat.");
        this.refreshState();
      }
      return;
    }
    if (nick === this.nick && codes.indexOf("110") >= 0) {
      this.joined = true;
      this.refreshState();
      return;
    }
    if (isStaff && !this.staff[nick]) {
      this.staff[nick] = true;
      if (this.joined) this.line("system", "", nick + " joined the chat.");
      this.refreshState();
    }
  };

  Widget.prototype.refreshState = function () {
    var names = Object.keys(this.staff);
    if (names.length) this.setState("chatting", TEXT.chatting(names.join(", ")));
    else this.setState("waiting", TEXT.waiting);
  };

  Widget.prototype.closed = function () {
    this.done = true;
    this.joined = false;
    this.staff = {};
    this.typing = {};
    this.typingLine.textContent = "";
    this.setState("closed", TEXT.closed);
    this.again.hidden = false;
  };

  Widget.prototype.onMessage = function (m) {
    var from = m.getAttribute("from") || "";
    var slash = from.indexOf("/");
    var bareFrom = slash < 0 ? from : from.slice(0, slash);
    if (bareFrom !== this.room) return;
    var nick = slash < 0 ? "" : from.slice(slash + 1);
    var type = m.getAttribute("type");
    if (type === "error") {
      var err = directChild(m, "error");
      var t = err ? child(err, "text", NS_STANZAS) : null;
      this.line("error", "", TEXT.notSent + (t && t.textContent ? t.textContent : "please try again."));
      return;
    }
    if (type !== "groupchat") return;
    var body = directChild(m, "body");
    var sid = child(m, "stanza-id", NS_SID);
    var id = sid ? sid.getAttribute("id") : null;
    if (!body) {
      if (nick && nick !== this.nick) {
        if (child(m, "composing", NS_CHATSTATES)) this.setTyping(nick, true);
        else if (child(m, "paused", NS_CHATSTATES) || child(m, "active", NS_CHATSTATES) ||
                 child(m, "inactive", NS_CHATSTATES) || child(m, "gone", NS_CHATSTATES)) this.setTyping(nick, false);
      }
      return;
    }
    var text = body.textContent;
    if (!nick) {
      // The room itself speaks: notices such as "The chat is now closed."
      this.line("system", "", text, id);
      if (/chat is now closed|could not be saved/i.test(text)) this.closed();
      return;
    }
    this.setTyping(nick, false);
    var kind = nick === this.nick ? "mine" : "theirs";
    if (child(m, "delay", NS_DELAY)) kind += " fd-history";
    this.line(kind, nick === this.nick ? "You" : nick, text, id);
  };

  Widget.prototype.setTyping = function (nick, on) {
    if (on) this.typing[nick] = true; else delete this.typing[nick];
    var names = Object.keys(this.typing);
    this.typingLine.textContent = names.length ? TEXT.typing(names.join(", ")) : "";
  };

  // ---- what the visitor does -----------------------------------------------------------

  Widget.prototype.chatState = function (state) {
    if (!this.conn || !this.joined) return;
    this.conn.send(global.$msg({ to: this.room, type: "groupchat" }).c(state, { xmlns: NS_CHATSTATES }).tree());
  };

  Widget.prototype.typed = function () {
    var self = this;
    if (!this.composing && this.input.value) {
      this.composing = true;
      this.chatState("composing");
    }
    clearTimeout(this.pausedTimer);
    this.pausedTimer = setTimeout(function () {
      if (self.composing) {
        self.composing = false;
        self.chatState("paused");
      }
    }, PAUSED_AFTER_MS);
  };

  Widget.prototype.send = function () {
    var text = this.input.value.trim();
    if (!text || !this.joined) return;
    clearTimeout(this.pausedTimer);
    this.composing = false;
    // Shown when the room reflects it: then it is stored and staff have it.
    this.conn.send(global.$msg({ to: this.room, type: "groupchat", id: this.conn.getUniqueId("m") })
      .c("body").t(text).up()
      .c("active", { xmlns: NS_CHATSTATES }).tree());
    this.input.value = "";
  };

  global.FrontdeskWidget = {
    mount: function (root, options) {
      var missing = ["bosh", "domain", "component", "site", "visitor"].filter(function (k) { return !options[k]; });
      if (missing.length) {
        root.textContent = "frontdesk widget: missing option(s) " + missing.join(", ");
        root.setAttribute("data-state", "misconfigured");
        return null;
      }
      return new Widget(root, options);
    },
  };
})(window);
