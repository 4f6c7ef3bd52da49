/*
 * frontdesk-widget.js: an embeddable live-chat widget for frontdesk (no build step).
 *
 * The visitor logs in anonymously over the XMPP server's WebSocket (RFC 7395) or BOSH with
 * Strophe.js and joins their room <visitor>_<site>@<component>; staff answer from their Jabber
 * clients. A launcher button in a corner opens the chat panel.
 *
 *   <script src="frontdesk-widget.js" data-websocket="wss://example.com/ws"
 *           data-bosh="https://example.com/bosh" data-domain="anon.example.com"
 *           data-component="chat.example.com" data-site="acme" data-visitor="4f2a9c"
 *           data-token="1767225600.27449e83..."></script>
 *
 * or FrontdeskWidget.mount(options) / FrontdeskWidget.mount(element, options). With the
 * script tag, strophe.umd.min.js (or data-strophe) and frontdesk-widget.css next to the script
 * are loaded unless the page has them (data-css="false" leaves the CSS to the page).
 *
 * Security: nothing from a message or a presence is inserted as HTML; links are built as
 * elements (http, https and mailto only). The widget's state is on its root element as
 * data-state (connecting, prechat, waiting, chatting, closed, refused, unreachable,
 * reconnecting, replaced, misconfigured), for styling and for tests.
 *
 * Pre-chat form: when the room's disco#info lists the site's `prechat` fields, the widget asks
 * them before it joins and sends the answers with the join. They are kept in sessionStorage,
 * so a reload in the same tab joins again with them instead of asking again.
 */
(function (global) {
  "use strict";

  var NS_MUC = "http://jabber.org/protocol/muc";
  var NS_MUC_USER = "http://jabber.org/protocol/muc#user";
  var NS_CHATSTATES = "http://jabber.org/protocol/chatstates";
  var NS_MARKERS = "urn:xmpp:chat-markers:0";
  var NS_DELAY = "urn:xmpp:delay";
  var NS_SID = "urn:xmpp:sid:0";
  var NS_STANZAS = "urn:ietf:params:xml:ns:xmpp-stanzas";
  var NS_WIDGET = "urn:frontdesk:widget:0";
  var NS_VISITOR = "urn:frontdesk:visitor:0";
  var NS_DISCO_INFO = "http://jabber.org/protocol/disco#info";
  var NS_DATA = "jabber:x:data";

  // Strophe over BOSH to an unreachable server can stay silent for a long time: our own timer.
  var CONNECT_TIMEOUT_MS = 8000;
  var PAUSED_AFTER_MS = 4000;
  var RETRY_MAX_MS = 30000;
  // BOSH hides a vanished server: Strophe keeps retrying its requests quietly for minutes. A
  // ping to our own server every 15 s that goes unanswered for 10 s means the link is gone.
  var PING_EVERY_MS = 15000;
  var PING_TIMEOUT_MS = 10000;
  var VISITOR_ID = /^[a-z0-9.-]{1,64}$/;
  // The pre-chat fields frontdesk knows, with their input and length (as frontdesk cuts them).
  var FIELDS = {
    name: { type: "text", max: 100, auto: "name" },
    email: { type: "email", max: 254, auto: "email" },
    phone: { type: "tel", max: 32, auto: "tel" },
    company: { type: "text", max: 100, auto: "organization" },
    question: { type: "textarea", max: 500 },
  };

  var STRINGS = {
    en: {
      title: "Chat with us", greeting: "Ask us anything. We usually answer within minutes.",
      open: "Open the chat", minimize: "Minimize the chat", unread: "{n} unread",
      online: "We are online.", offline: "We will answer as soon as we can.",
      connecting: "Connecting…", waiting: "Waiting for someone to answer. Write your question below.",
      chatting: "You are chatting with {who}.", closed: "The chat is closed.",
      unreachable: "The chat server cannot be reached. Trying again…",
      reconnecting: "Connection lost. Reconnecting…", replaced: "This chat continues in another window.",
      refused: "This chat could not be opened.", typing: "{who} is typing…",
      joined: "{who} joined the chat.", left: "{who} left the chat.", you: "You",
      notSent: "Not delivered: {why}", tryAgain: "please try again.", newChat: "Start a new chat",
      placeholder: "Write a message…", message: "Message", send: "Send", end: "End chat",
      seen: "Seen", today: "Today", newMessage: "New message", misconfigured: "The chat is not set up correctly: {why}",
      missing: "missing option(s) {what}", badVisitor: "the visitor id \"{id}\" may only have a-z, 0-9, \"-\" and \".\"",
      badPosition: "position must be bottom-right or bottom-left, not \"{what}\"",
      badColor: "color \"{what}\" is not a CSS colour",
      prechat: "Before we start, please tell us a little about you.", requiredNote: "Fields marked * are required.",
      name: "Your name", email: "Email address", phone: "Phone number", company: "Company", question: "Your question",
      start: "Start the chat", needed: "{field} is required: please fill it in.",
      badEmail: "{field} must look like name@example.com.",
      badPhone: "{field} may only have digits, spaces and + - ( ) . / (at least 3 digits).",
    },
    fr: {
      title: "Discutons", greeting: "Posez-nous vos questions. Nous répondons d'habitude en quelques minutes.",
      open: "Ouvrir la discussion", minimize: "Réduire la discussion", unread: "{n} non lu(s)",
      online: "Nous sommes en ligne.", offline: "Nous vous répondrons dès que possible.",
      connecting: "Connexion…", waiting: "En attente d'une réponse. Écrivez votre question ci-dessous.",
      chatting: "Vous discutez avec {who}.", closed: "La discussion est terminée.",
      unreachable: "Le serveur de discussion est injoignable. Nouvel essai…",
      reconnecting: "Connexion perdue. Reconnexion…", replaced: "Cette discussion continue dans une autre fenêtre.",
      refused: "Cette discussion n'a pas pu être ouverte.", typing: "{who} écrit…",
      joined: "{who} a rejoint la discussion.", left: "{who} a quitté la discussion.", you: "Vous",
      notSent: "Non remis : {why}", tryAgain: "veuillez réessayer.", newChat: "Nouvelle discussion",
      placeholder: "Écrivez un message…", message: "Message", send: "Envoyer", end: "Terminer",
      seen: "Vu", today: "Aujourd'hui", newMessage: "Nouveau message", misconfigured: "La discussion est mal configurée : {why}",
      missing: "option(s) manquante(s) {what}", badVisitor: "l'identifiant \"{id}\" ne peut contenir que a-z, 0-9, \"-\" et \".\"",
      badPosition: "position doit être bottom-right ou bottom-left, pas \"{what}\"",
      badColor: "color \"{what}\" n'est pas une couleur CSS",
      prechat: "Avant de commencer, dites-nous qui vous êtes.", requiredNote: "Les champs marqués * sont obligatoires.",
      name: "Votre nom", email: "Adresse e-mail", phone: "Téléphone", company: "Entreprise", question: "Votre question",
      start: "Commencer la discussion", needed: "« {field} » est obligatoire : veuillez le remplir.",
      badEmail: "« {field} » doit ressembler à nom@exemple.fr.",
      badPhone: "« {field} » ne peut contenir que des chiffres, des espaces et + - ( ) . / (au moins 3 chiffres).",
    },
  };

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }

  function button(cls, text, label) {
    var b = el("button", cls, text);
    b.type = "button";
    if (label) b.setAttribute("aria-label", label);
    return b;
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

  function isHttpUrl(u) {
    try { return /^https?:$/.test(new URL(u).protocol); } catch (e) { return false; }
  }

  /** Appends `text` to `parent` as text nodes and links: http(s) and mailto only, never HTML. */
  function linkify(parent, text) {
    var re = /\b(?:https?:\/\/|mailto:)[^\s<>"]+/gi, last = 0, m;
    while ((m = re.exec(text))) {
      var url = m[0].replace(/[.,;:!?)\]']+$/, "");
      if (!url.length) continue;
      parent.appendChild(document.createTextNode(text.slice(last, m.index)));
      var a = el("a", "fd-link", url);
      a.href = url;
      a.target = "_blank";
      a.rel = "noopener noreferrer";
      parent.appendChild(a);
      last = m.index + url.length;
      re.lastIndex = last;
    }
    parent.appendChild(document.createTextNode(text.slice(last)));
  }

  function fill(s, vars) {
    return s.replace(/\{(\w+)\}/g, function (_, k) { return vars && k in vars ? vars[k] : ""; });
  }

  function pickStrings(o) {
    var want = (o.lang || (global.navigator && global.navigator.language) || "en").toLowerCase().split("-")[0];
    var base = STRINGS[want] || STRINGS.en, t = {};
    Object.keys(STRINGS.en).forEach(function (k) { t[k] = base[k] || STRINGS.en[k]; });
    Object.keys(o.texts || {}).forEach(function (k) { if (typeof o.texts[k] === "string") t[k] = o.texts[k]; });
    t.lang = STRINGS[want] ? want : "en";
    return t;
  }

  /** What is wrong with `o`, or null; lower-cases an upper-case visitor id (with a warning). */
  function validate(o, t) {
    var missing = ["domain", "component", "site", "visitor"].filter(function (k) { return !o[k]; });
    if (!o.bosh && !o.websocket) missing.push("bosh or websocket");
    if (missing.length) return fill(t.missing, { what: missing.join(", ") });
    var v = String(o.visitor);
    if (v !== v.toLowerCase()) {
      // XMPP lower-cases the room's address, so the upper-case one would never be answered.
      global.console.warn("frontdesk widget: the visitor id \"" + v + "\" was lower-cased; render ids in lower case");
      o.visitor = v = v.toLowerCase();
    }
    if (!VISITOR_ID.test(v)) return fill(t.badVisitor, { id: v });
    if (o.position && ["bottom-right", "bottom-left"].indexOf(o.position) < 0) return fill(t.badPosition, { what: o.position });
    if (o.color && !(global.CSS && global.CSS.supports("color", o.color))) return fill(t.badColor, { what: o.color });
    return null;
  }

  function Widget(root, o, t) {
    this.root = root;
    this.o = o;
    this.t = t;
    this.room = o.visitor + "_" + o.site + "@" + o.component;
    this.nick = this.me = null;  // chosen at each join (chooseNick)
    this.key = "frontdesk:" + this.room;
    this.seen = {};          // stanza-ids already shown (history comes again on a rejoin)
    this.lines = {};         // stanza-id or own message id -> the visitor's <li>
    this.staff = {};         // nick -> avatar URL or "" for staff in the room
    this.typing = {};        // nick -> true
    this.unread = 0;
    this.retryMs = 1000;
    this.done = false;       // closed, refused, or replaced: no automatic reconnect
    this.build();
    var remembered = this.stored();
    this.setOpen(remembered ? remembered === "1" : o.open === true, false);
    this.connect(0);
    var self = this;
    global.addEventListener("pagehide", function () { self.leaveNow(); });
    global.document.addEventListener("visibilitychange", function () {
      if (self.open && !global.document.hidden) self.setUnread(0);
      self.maybeRead();
    });
  }

  Widget.prototype.stored = function () {
    try { return global.localStorage.getItem(this.key + ":open"); } catch (e) { return null; }
  };

  // ---- the page's parts ----------------------------------------------------------------

  Widget.prototype.build = function () {
    var self = this, t = this.t, r = this.root;
    r.classList.add("frontdesk");
    r.setAttribute("role", "region");
    r.setAttribute("lang", t.lang);
    r.setAttribute("aria-label", this.o.title || t.title);
    r.setAttribute("data-position", this.o.position === "bottom-left" ? "bottom-left" : "bottom-right");
    if (this.o.color) r.style.setProperty("--fd-accent", this.o.color);
    this.launcher = button("fd-launcher", "", t.open);
    this.launcher.appendChild(el("span", "fd-launcher-icon")).setAttribute("aria-hidden", "true");
    this.badge = el("span", "fd-badge");
    this.badge.hidden = true;
    this.launcher.appendChild(this.badge);
    this.panel = el("div", "fd-panel");
    this.panel.id = "fd-panel-" + Math.random().toString(36).slice(2);
    this.panel.setAttribute("role", "dialog");
    this.launcher.setAttribute("aria-controls", this.panel.id);
    this.buildHeader();
    this.buildBody();
    r.appendChild(this.panel);
    r.appendChild(this.launcher);
    this.launcher.addEventListener("click", function () { self.setOpen(!self.open, true); });
    this.panel.addEventListener("keydown", function (ev) {
      if (ev.key === "Escape") { self.setOpen(false, true); self.launcher.focus(); }
    });
    this.setState("connecting", t.connecting);
  };

  Widget.prototype.buildHeader = function () {
    var self = this, t = this.t, o = this.o;
    var head = el("div", "fd-header");
    this.avatar = el("img", "fd-avatar fd-head-avatar");
    this.avatar.alt = "";
    this.avatar.hidden = true;
    var titles = el("div", "fd-titles");
    this.title = el("h2", "fd-title", o.title || t.title);
    this.title.id = this.panel.id + "-title";
    this.panel.setAttribute("aria-labelledby", this.title.id);
    titles.appendChild(this.title);
    titles.appendChild(el("p", "fd-greeting", o.greeting || t.greeting));
    this.avail = el("p", "fd-avail");
    titles.appendChild(this.avail);
    this.end = button("fd-end", t.end);
    this.end.hidden = true;
    var min = button("fd-min", "–", t.minimize);
    head.appendChild(this.avatar);
    head.appendChild(titles);
    head.appendChild(this.end);
    head.appendChild(min);
    this.panel.appendChild(head);
    min.addEventListener("click", function () { self.setOpen(false, true); self.launcher.focus(); });
    this.end.addEventListener("click", function () { self.endChat(); });
  };

  Widget.prototype.buildBody = function () {
    var self = this, t = this.t;
    this.statusLine = el("div", "fd-status");
    this.statusLine.setAttribute("role", "status");
    this.log = el("div", "fd-log");
    this.log.setAttribute("role", "log");
    this.log.setAttribute("aria-live", "polite");
    this.log.setAttribute("tabindex", "0");
    this.log.setAttribute("aria-label", t.title);
    this.typingLine = el("div", "fd-typing");
    this.typingLine.setAttribute("aria-live", "polite");
    this.form = el("form", "fd-form");
    this.input = el("input", "fd-input");
    this.input.type = "text";
    this.input.maxLength = 4000;
    this.input.placeholder = t.placeholder;
    this.input.setAttribute("aria-label", t.message);
    this.input.setAttribute("enterkeyhint", "send");
    this.sendButton = el("button", "fd-send", t.send);
    this.sendButton.type = "submit";
    this.again = button("fd-again", t.newChat);
    this.again.hidden = true;
    this.form.appendChild(this.input);
    this.form.appendChild(this.sendButton);
    [this.statusLine, this.log, this.typingLine, this.again, this.form].forEach(function (e) { self.panel.appendChild(e); });
    this.form.addEventListener("submit", function (ev) { ev.preventDefault(); self.send(); });
    this.input.addEventListener("input", function () { self.typed(); });
    this.input.addEventListener("focus", function () { self.fitViewport(); });
    this.again.addEventListener("click", function () { self.newChat(); });
    if (global.visualViewport) {
      global.visualViewport.addEventListener("resize", function () { self.fitViewport(); });
    }
  };

  /** On a phone the on-screen keyboard shrinks the visual viewport: the panel follows it. */
  Widget.prototype.fitViewport = function () {
    var vv = global.visualViewport;
    var small = global.matchMedia && global.matchMedia("(max-width: 599px)").matches;
    this.panel.style.height = small && vv ? vv.height + "px" : "";
  };

  Widget.prototype.setOpen = function (open, remember) {
    this.open = open;
    this.root.setAttribute("data-open", open ? "true" : "false");
    this.panel.hidden = !open;
    this.launcher.setAttribute("aria-expanded", open ? "true" : "false");
    if (remember) {
      try { global.localStorage.setItem(this.key + ":open", open ? "1" : "0"); } catch (e) { /* private mode */ }
    }
    if (open) {
      this.setUnread(0);
      this.fitViewport();
      this.scrollDown();
      if (remember) this.focusTarget().focus();
      this.maybeRead();
    }
  };

  /** Where the keyboard goes when the panel opens: the form's first field, the message
   * input, or the first button there is. */
  Widget.prototype.focusTarget = function () {
    if (this.state === "prechat") return this.prechatForm.querySelector("input, textarea");
    return this.input.disabled ? this.panel.querySelector("button:not([hidden])") : this.input;
  };

  Widget.prototype.setState = function (state, text) {
    this.state = state;
    this.root.setAttribute("data-state", state);
    this.statusLine.textContent = text;
    var live = state === "waiting" || state === "chatting";
    if (this.prechatForm) this.prechatForm.hidden = state !== "prechat";
    this.log.hidden = this.typingLine.hidden = this.form.hidden = state === "prechat";
    this.input.disabled = !live;
    this.sendButton.disabled = !live;
    this.end.hidden = !live;
  };

  Widget.prototype.setAvailable = function (on) {
    this.root.setAttribute("data-available", on ? "true" : "false");
    this.avail.textContent = on ? this.t.online : this.t.offline;
  };

  Widget.prototype.scrollDown = function () {
    this.log.scrollTop = this.log.scrollHeight;
  };

  // ---- the conversation ----------------------------------------------------------------

  Widget.prototype.dayOf = function (d) {
    var s = d.toLocaleDateString(this.t.lang, { weekday: "long", day: "numeric", month: "long" });
    return d.toDateString() === new Date().toDateString() ? this.t.today : s;
  };

  /** A line in the log: kind is mine, theirs, system or error; `at` a Date. */
  Widget.prototype.line = function (kind, who, text, opts) {
    opts = opts || {};
    if (opts.sid) {
      if (this.seen[opts.sid]) return null;
      this.seen[opts.sid] = true;
    }
    var at = opts.at || new Date();
    var day = at.toDateString();
    if (day !== this.lastDay) {
      this.lastDay = day;
      var sep = el("div", "fd-day", this.dayOf(at));
      sep.setAttribute("role", "separator");
      this.log.appendChild(sep);
    }
    var li = el("div", "fd-line fd-" + kind);
    if (opts.avatar) {
      var img = el("img", "fd-avatar");
      img.alt = "";
      img.src = opts.avatar;
      li.appendChild(img);
    }
    var bubble = el("div", "fd-bubble");
    if (who) bubble.appendChild(el("span", "fd-who", who));
    var body = el("span", "fd-text");
    if (kind === "mine" || kind === "theirs") linkify(body, text); else body.textContent = text;
    bubble.appendChild(body);
    var time = el("time", "fd-time", at.toLocaleTimeString(this.t.lang, { hour: "2-digit", minute: "2-digit" }));
    time.dateTime = at.toISOString();
    bubble.appendChild(time);
    li.appendChild(bubble);
    this.log.appendChild(li);
    this.scrollDown();
    return li;
  };

  Widget.prototype.system = function (text, opts) {
    return this.line("system", "", text, opts);
  };

  // ---- connection ----------------------------------------------------------------------

  /** Transports in order: WebSocket first when configured, BOSH as the fallback. */
  Widget.prototype.transports = function () {
    return [this.o.websocket, this.o.bosh].filter(Boolean);
  };

  Widget.prototype.connect = function (attempt) {
    var self = this, S = global.Strophe;
    clearTimeout(this.retryTimer);
    if (this.conn) {
      try { this.conn.reset(); } catch (e) { /* a fresh one follows */ }
    }
    var url = this.transports()[attempt];
    var conn = new S.Connection(url);
    this.conn = conn;
    this.connected = false;
    var failed = function () {
      if (self.conn !== conn || self.connected) return;
      clearTimeout(self.connectTimer);
      if (attempt + 1 < self.transports().length) self.connect(attempt + 1); else self.unreachable();
    };
    clearTimeout(this.connectTimer);
    this.connectTimer = setTimeout(failed, CONNECT_TIMEOUT_MS);
    conn.connect(this.o.domain, null, function (status) {
      if (self.conn !== conn) return;
      if (status === S.Status.CONNECTED) {
        clearTimeout(self.connectTimer);
        self.connected = true;
        self.transport = /^wss?:/.test(url) ? "websocket" : "bosh";
        self.root.setAttribute("data-transport", self.transport);
        self.retryMs = 1000;
        self.handlers(conn);
        self.start();
      } else if (status === S.Status.CONNFAIL || status === S.Status.ERROR || status === S.Status.AUTHFAIL) {
        if (self.connected) self.lost(); else failed();
      } else if (status === S.Status.DISCONNECTED) {
        if (!self.connected) failed();
        else if (!self.done) self.lost();
      }
    });
  };

  Widget.prototype.unreachable = function () {
    this.setState("unreachable", this.t.unreachable);
    this.retry();
  };

  Widget.prototype.lost = function () {
    this.joined = false;
    this.connected = false;
    this.conn = null;
    this.setState("reconnecting", this.t.reconnecting);
    this.retry();
  };

  Widget.prototype.retry = function () {
    var self = this;
    clearTimeout(this.retryTimer);
    clearTimeout(this.connectTimer);
    var wait = this.retryMs;
    this.retryMs = Math.min(this.retryMs * 2, RETRY_MAX_MS);
    this.retryTimer = setTimeout(function () { self.connect(0); }, wait);
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
    // XEP-0199: answer the room's pings, so that frontdesk knows this page is still here.
    conn.addHandler(function (iq) {
      conn.send(global.$iq({ type: "result", to: iq.getAttribute("from"), id: iq.getAttribute("id") }));
      return true;
    }, "urn:xmpp:ping", "iq", "get");
  };

  /** The form frontdesk puts in the room's disco#info: whether any staff of the site is
   * available, and the fields the site asks before the chat. Then the pre-chat form, or the
   * join (also when there is no answer: then there is nothing to ask). */
  Widget.prototype.start = function () {
    var self = this, conn = this.conn;
    this.setState("connecting", this.t.connecting);
    var iq = global.$iq({ type: "get", to: this.room }).c("query", { xmlns: NS_DISCO_INFO });
    conn.sendIQ(iq.tree(), function (res) {
      if (self.conn !== conn) return;
      var f = formValues(res);
      if (f["staff-available"]) self.setAvailable(/^(true|1)$/.test(f["staff-available"][0]));
      self.asked = (f.prechat || []).filter(function (n) { return FIELDS[n]; });
      self.required = f["prechat-required"] || [];
      if (self.answered()) self.join(); else self.askPrechat();
    }, function () { if (self.conn === conn) self.join(); }, 10000);
  };

  function formValues(res) {
    var out = {}, fields = res.getElementsByTagNameNS(NS_DATA, "field");
    for (var i = 0; i < fields.length; i++) {
      var vs = fields[i].getElementsByTagNameNS(NS_DATA, "value"), list = [];
      for (var j = 0; j < vs.length; j++) list.push(vs[j].textContent);
      out[fields[i].getAttribute("var")] = list;
    }
    return out;
  }

  /** Leaves the room as the page goes away, so that a reload is let in at once. Over BOSH in
   * beacons (requests a page makes while it unloads are cancelled, beacons are not), using
   * Strophe's sid and rids; over WebSocket the frame goes out before the socket closes. */
  Widget.prototype.leaveNow = function () {
    var conn = this.conn;
    if (!conn || !this.joined) return;
    var unavailable = global.$pres({ type: "unavailable", to: this.me });
    this.joined = false;
    if (this.transport === "websocket") {
      try { conn.send(unavailable.tree()); conn.flush(); } catch (e) { /* the page is going anyway */ }
      return;
    }
    var proto = conn._proto;
    if (!proto || !proto.sid || typeof proto.rid !== "number" || !global.navigator.sendBeacon) return;
    // A request in flight that the unloading page cancels may never reach the server, which
    // takes rids in order and would wait for it: the terminate goes with its rid too.
    var rids = (proto._requests || []).map(function (r) { return r.rid; }).concat([proto.rid]);
    for (var i = 0; i < rids.length; i++) {
      var body = global.$build("body", { xmlns: "http://jabber.org/protocol/httpbind", type: "terminate",
                                         sid: proto.sid, rid: rids[i] })
        .c("presence", { xmlns: "jabber:client", type: "unavailable", to: this.me });
      // text/plain keeps it a simple cross-origin request (a beacon cannot be preflighted).
      global.navigator.sendBeacon(this.o.bosh, new Blob([global.Strophe.serialize(body.tree())], { type: "text/plain;charset=UTF-8" }));
    }
  };

  Widget.prototype.join = function () {
    this.setState("connecting", this.t.connecting);
    this.joined = false;
    this.staff = {};
    this.nick = this.chooseNick();
    this.me = this.room + "/" + this.nick;
    var x = global.$pres({ to: this.me }).c("x", { xmlns: NS_MUC });
    if (this.o.token) x.c("password").t(this.o.token).up();
    this.aboutVisitor(x.up());
    this.conn.send(x.tree());
  };

  /** The name staff see (in their roster, offers and the room): the page's `nick`; else the
   * name given in the pre-chat form, unless it was refused (a staff member's name, say); else
   * "Visitor" and the end of the visitor id, so that staff can tell visitors apart. */
  Widget.prototype.chooseNick = function () {
    if (this.o.nick) return String(this.o.nick);
    var name = (this.asked || []).indexOf("name") >= 0 ? cleanName((this.answers() || {}).name) : "";
    return name && !this.nameRefused ? name : this.defaultNick();
  };

  Widget.prototype.defaultNick = function () {
    var id = String(this.o.visitor);
    return "Visitor " + (id.length > 4 ? id.slice(-4) : id);
  };

  /** A pre-chat name as a nick: folded (NFKC) as the server folds a nick, without the
   * characters it would drop or that hide text, on one line, at most 40 characters. */
  function cleanName(v) {
    var s = String(v || "");
    if (s.normalize) s = s.normalize("NFKC");
    s = s.replace(/[\u0000-\u001f\u007f-\u009f\u00ad\u034f\u180b-\u180e\u200b-\u200f\u202a-\u202e\u2060-\u206f\ufe00-\ufe0f\ufeff]/g, "");
    s = s.replace(/\s+/g, " ").trim();
    return Array.from(s).slice(0, 40).join("");
  }

  /** For staff (urn:frontdesk:visitor:0, see web-integration.md): where the visitor is
   * (`context: false` leaves it out) and their pre-chat answers. */
  Widget.prototype.aboutVisitor = function (pres) {
    var cut = function (v) { return String(v || "").slice(0, 500); };
    var d = global.document, answers = this.answers() || {}, asked = this.asked || [];
    if (this.o.context === false && !asked.length) return;
    pres.c("visitor", { xmlns: NS_VISITOR });
    if (this.o.context !== false) {
      pres.c("page", { url: cut(global.location.href), referrer: cut(d.referrer), title: cut(d.title),
                       lang: cut(global.navigator.language) }).up();
    }
    asked.forEach(function (n) { if (answers[n]) pres.c("field", { "var": n }).t(answers[n]).up(); });
    pres.up();
  };

  // ---- the pre-chat form ---------------------------------------------------------------

  Widget.prototype.answers = function () {
    try { return JSON.parse(global.sessionStorage.getItem(this.key + ":prechat")) || this.pending || null; } catch (e) { return this.pending || null; }
  };

  /** Nothing to ask, or this tab answered every required field already. */
  Widget.prototype.answered = function () {
    var a = this.answers();
    if (!this.asked.length) return true;
    return !!a && this.required.every(function (n) { return !FIELDS[n] || a[n]; });
  };

  Widget.prototype.askPrechat = function () {
    var self = this, t = this.t, f = this.prechatForm;
    if (!f) {
      f = this.prechatForm = el("form", "fd-prechat");
      f.noValidate = true;
      f.setAttribute("aria-label", t.prechat);
      if (this.required.length) f.appendChild(el("p", "fd-prechat-intro", t.requiredNote));
      this.asked.forEach(function (n) { f.appendChild(self.prechatField(n)); });
      var go = el("button", "fd-start", t.start);
      go.type = "submit";
      f.appendChild(go);
      f.addEventListener("submit", function (ev) { ev.preventDefault(); self.submitPrechat(); });
      this.panel.insertBefore(f, this.again);
    }
    this.setState("prechat", t.prechat);
    if (this.open) this.focusTarget().focus();
  };

  Widget.prototype.prechatField = function (n) {
    var spec = FIELDS[n], id = this.panel.id + "-" + n, need = this.required.indexOf(n) >= 0;
    var box = el("div", "fd-field");
    var label = el("label", "", this.t[n]);
    label.htmlFor = id;
    if (need) label.appendChild(el("span", "fd-needed", " *")).setAttribute("aria-hidden", "true");
    var input = el(spec.type === "textarea" ? "textarea" : "input", "fd-field-input");
    if (spec.type !== "textarea") input.type = spec.type;
    input.id = id;
    input.name = n;
    input.maxLength = spec.max;
    input.required = need;
    if (spec.auto) input.autocomplete = spec.auto;
    var answers = this.answers() || {};
    if (answers[n]) input.value = answers[n];
    var err = el("p", "fd-field-error");
    err.id = id + "-error";
    err.hidden = true;
    input.setAttribute("aria-describedby", err.id);
    box.appendChild(label);
    box.appendChild(input);
    box.appendChild(err);
    return box;
  };

  /** What is wrong with answer `v` to field `n`, or "". */
  Widget.prototype.problemWith = function (n, v) {
    var t = this.t, what = { field: t[n] };
    if (!v) return this.required.indexOf(n) >= 0 ? fill(t.needed, what) : "";
    if (n === "email" && !/^[^\s@<>",;]+@[^\s@<>",;.]([^\s@<>",;]*[^\s@<>",;.])?$/.test(v)) return fill(t.badEmail, what);
    if (n === "phone" && !(/^[0-9 +\-().\/]+$/.test(v) && (v.match(/[0-9]/g) || []).length >= 3)) return fill(t.badPhone, what);
    return "";
  };

  /** Checks every answer; the first wrong field gets the focus and says what to fix. */
  Widget.prototype.submitPrechat = function () {
    var self = this, answers = {}, first = null;
    this.asked.forEach(function (n) {
      var input = self.prechatForm.elements[n], v = input.value.trim();
      var why = self.problemWith(n, v), err = global.document.getElementById(input.id + "-error");
      err.textContent = why;
      err.hidden = !why;
      if (why) input.setAttribute("aria-invalid", "true"); else input.removeAttribute("aria-invalid");
      if (why && !first) first = input;
      if (v) answers[n] = v;
    });
    if (first) return first.focus();
    try { global.sessionStorage.setItem(this.key + ":prechat", JSON.stringify(answers)); } catch (e) { /* private mode */ }
    this.pending = answers;
    this.focusAfterJoin = true;
    this.join();
  };

  Widget.prototype.newChat = function () {
    this.again.hidden = true;
    this.done = false;
    if (this.conn && this.connected) this.start(); else this.connect(0);
    this.input.focus();
  };

  /** The visitor ends the chat: frontdesk closes it as staff's !finish would. */
  Widget.prototype.endChat = function () {
    if (!this.conn || !this.joined) return;
    this.ending = true;
    this.conn.send(global.$pres({ type: "unavailable", to: this.me }).c("end-chat", { xmlns: NS_WIDGET }).tree());
  };

  // ---- what arrives --------------------------------------------------------------------

  function mucUser(p) {
    var x = child(p, "x", NS_MUC_USER), codes = [];
    if (x) {
      var st = x.getElementsByTagNameNS(NS_MUC_USER, "status");
      for (var i = 0; i < st.length; i++) codes.push(st[i].getAttribute("code"));
    }
    return { x: x, codes: codes, item: x ? child(x, "item", NS_MUC_USER) : null };
  }

  Widget.prototype.onPresence = function (p) {
    var from = p.getAttribute("from") || "";
    var slash = from.indexOf("/");
    if ((slash < 0 ? from : from.slice(0, slash)) !== this.room) return;
    var nick = slash < 0 ? "" : from.slice(slash + 1);
    var type = p.getAttribute("type");
    var u = mucUser(p);
    var mine = u.codes.indexOf("110") >= 0;
    if (type === "error") return this.onJoinError(p, nick);
    if (type === "unavailable") return mine || nick === this.nick ? this.onSelfGone(u) : this.onStaffGone(nick);
    if (mine) {
      // Status 110 is what marks our own presence (XEP-0045): the nick as the server wrote it
      // (folded as a JID resource) is the one to answer to from now on.
      this.nick = nick;
      this.me = from;
      this.joined = true;
      this.refreshState();
      // The form the focus was in is gone: the message input takes it.
      if (this.focusAfterJoin) { this.focusAfterJoin = false; this.input.focus(); }
      this.maybeRead();
      return;
    }
    var isStaff = u.item && (u.item.getAttribute("affiliation") === "admin" || u.item.getAttribute("role") === "moderator");
    if (isStaff && !(nick in this.staff)) {
      var prof = child(p, "profile", NS_WIDGET);
      var avatar = prof && isHttpUrl(prof.getAttribute("avatar")) ? prof.getAttribute("avatar") : "";
      this.staff[nick] = avatar;
      if (avatar) { this.avatar.src = avatar; this.avatar.hidden = false; }
      if (this.joined) this.system(fill(this.t.joined, { who: nick }));
      this.refreshState();
    }
  };

  Widget.prototype.onJoinError = function (p, nick) {
    // Before the join is answered, an error from the room answers it (the server may write the
    // nick differently from how it was sent).
    if (nick !== this.nick && this.joined) return;
    // A pre-chat name that was not taken: the visitor still gets in, under the default name.
    if (!this.o.nick && !this.nameRefused && this.nick !== this.defaultNick()) {
      this.nameRefused = true;
      return this.join();
    }
    var err = directChild(p, "error");
    var text = err ? child(err, "text", NS_STANZAS) : null;
    this.done = true;
    this.setState("refused", text && text.textContent ? text.textContent : this.t.refused);
  };

  Widget.prototype.onSelfGone = function (u) {
    var destroy = u.x ? child(u.x, "destroy", NS_MUC_USER) : null;
    var reason = u.item ? child(u.item, "reason", NS_MUC_USER) : null;
    if (destroy || this.ending) {
      this.closed();
    } else if (reason && /another|new connection/i.test(reason.textContent)) {
      this.done = true;
      this.setState("replaced", this.t.replaced);
      this.conn.disconnect();
    }
  };

  Widget.prototype.onStaffGone = function (nick) {
    if (!(nick in this.staff)) return;
    delete this.staff[nick];
    this.setTyping(nick, false);
    this.system(fill(this.t.left, { who: nick }));
    this.refreshState();
  };

  Widget.prototype.refreshState = function () {
    var names = Object.keys(this.staff);
    if (names.length) this.setState("chatting", fill(this.t.chatting, { who: names.join(", ") }));
    else this.setState("waiting", this.t.waiting);
  };

  Widget.prototype.closed = function () {
    this.done = true;
    this.ending = false;
    this.joined = false;
    this.staff = {};
    this.typing = {};
    this.typingLine.textContent = "";
    this.setState("closed", this.t.closed);
    this.again.hidden = false;
    // The closing line stays in view, above the button that starts a new chat.
    this.scrollDown();
  };

  function delayOf(m) {
    var d = child(m, "delay", NS_DELAY);
    var at = d ? new Date(d.getAttribute("stamp")) : null;
    return at && !isNaN(at.getTime()) ? at : null;
  }

  Widget.prototype.onMessage = function (m) {
    var from = m.getAttribute("from") || "";
    var slash = from.indexOf("/");
    if ((slash < 0 ? from : from.slice(0, slash)) !== this.room) return;
    var nick = slash < 0 ? "" : from.slice(slash + 1);
    var type = m.getAttribute("type");
    if (type === "error") {
      var err = directChild(m, "error");
      var t = err ? child(err, "text", NS_STANZAS) : null;
      this.line("error", "", fill(this.t.notSent, { why: t && t.textContent ? t.textContent : this.t.tryAgain }));
      return;
    }
    if (type !== "groupchat") return;
    var body = directChild(m, "body");
    if (!body) return this.onSignal(m, nick);
    var sid = child(m, "stanza-id", NS_SID);
    this.onBody(m, nick, body.textContent, sid ? sid.getAttribute("id") : null);
  };

  Widget.prototype.onBody = function (m, nick, text, sid) {
    var at = delayOf(m);
    var opts = { sid: sid, at: at || new Date() };
    if (!nick) {
      // The room itself speaks: notices such as "The chat is now closed."
      if (this.system(text, opts) && !at) this.notify();
      if (/chat is now closed|could not be saved/i.test(text)) this.closed();
      return;
    }
    this.setTyping(nick, false);
    if (nick === this.nick) {
      var li = this.line("mine", this.t.you, text, opts);
      if (li && sid) this.lines[sid] = li;
      if (li && m.getAttribute("id")) this.lines[m.getAttribute("id")] = li;
      return;
    }
    opts.avatar = this.staff[nick] || "";
    if (this.line("theirs", nick, text, opts)) {
      this.lastTheirs = sid;
      if (!at) this.notify();
      this.maybeRead();
    }
  };

  /** A message without a body: a chat state, or a XEP-0333 marker from staff. */
  Widget.prototype.onSignal = function (m, nick) {
    if (!nick || nick === this.nick) return;
    var shown = child(m, "displayed", NS_MARKERS);
    if (shown) return this.markSeen(shown.getAttribute("id"));
    if (child(m, "composing", NS_CHATSTATES)) this.setTyping(nick, true);
    else if (child(m, "paused", NS_CHATSTATES) || child(m, "active", NS_CHATSTATES) ||
             child(m, "inactive", NS_CHATSTATES) || child(m, "gone", NS_CHATSTATES)) this.setTyping(nick, false);
  };

  Widget.prototype.markSeen = function (id) {
    var li = id && this.lines[id];
    if (!li) return;
    if (this.seenMark && this.seenMark.parentNode) {
      // A marker for an older message does not move "Seen" back.
      if (this.seenMark.parentNode.compareDocumentPosition(li) & Node.DOCUMENT_POSITION_PRECEDING) return;
      this.seenMark.parentNode.removeChild(this.seenMark);
    }
    this.seenMark = this.seenMark || el("span", "fd-seen", this.t.seen);
    li.appendChild(this.seenMark);
    this.scrollDown();
  };

  /** Staff's newest message was seen: the panel is open on a visible page. */
  Widget.prototype.maybeRead = function () {
    if (!this.open || global.document.hidden || !this.joined || !this.lastTheirs ||
        this.lastTheirs === this.readSent) return;
    this.readSent = this.lastTheirs;
    this.conn.send(global.$msg({ to: this.room, type: "groupchat" })
      .c("displayed", { xmlns: NS_MARKERS, id: this.lastTheirs }).tree());
  };

  /** A new message while the panel is closed or the tab hidden: badge, title, sound. */
  Widget.prototype.notify = function () {
    if (this.open && !global.document.hidden) return;
    this.setUnread(this.unread + 1);
    if (this.o.sound) this.beep();
  };

  Widget.prototype.setUnread = function (n) {
    var self = this, doc = global.document;
    this.unread = n;
    this.badge.hidden = n === 0;
    this.badge.textContent = n ? String(n) : "";
    this.launcher.setAttribute("aria-label", n ? this.t.open + " (" + fill(this.t.unread, { n: n }) + ")" : this.t.open);
    clearInterval(this.flashTimer);
    if (this.pageTitle !== undefined) { doc.title = this.pageTitle; }
    if (!n) { this.pageTitle = undefined; return; }
    this.pageTitle = doc.title;
    var on = false;
    this.flashTimer = setInterval(function () {
      on = !on;
      doc.title = on ? "(" + self.unread + ") " + self.t.newMessage : self.pageTitle;
    }, 1000);
  };

  Widget.prototype.beep = function () {
    try {
      var A = global.AudioContext || global.webkitAudioContext;
      var ctx = this.audio = this.audio || new A();
      var osc = ctx.createOscillator(), gain = ctx.createGain();
      gain.gain.value = 0.05;
      osc.frequency.value = 880;
      osc.connect(gain).connect(ctx.destination);
      osc.start();
      osc.stop(ctx.currentTime + 0.15);
    } catch (e) { /* no sound, no harm */ }
  };

  Widget.prototype.setTyping = function (nick, on) {
    if (on) this.typing[nick] = true; else delete this.typing[nick];
    var names = Object.keys(this.typing);
    this.typingLine.textContent = names.length ? fill(this.t.typing, { who: names.join(", ") }) : "";
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
    var id = this.conn.getUniqueId("m");
    // Shown when the room reflects it: then it is stored and staff have it.
    this.conn.send(global.$msg({ to: this.room, type: "groupchat", id: id })
      .c("body").t(text).up()
      .c("active", { xmlns: NS_CHATSTATES }).up()
      .c("markable", { xmlns: NS_MARKERS }).up()
      .c("origin-id", { xmlns: NS_SID, id: id }).tree());
    this.input.value = "";
    this.input.focus();
  };

  // ---- mounting ------------------------------------------------------------------------

  function quietStrophe(debug) {
    var S = global.Strophe;
    if (!S || debug || !S.setLogLevel) return;
    var levels = S.LogLevel || S.LOG_LEVELS;
    if (levels) S.setLogLevel(levels.FATAL);
  }

  function mount(root, options) {
    if (!(root instanceof global.Element)) {
      options = root;
      root = document.createElement("div");
      document.body.appendChild(root);
    }
    var o = {};
    Object.keys(options || {}).forEach(function (k) { o[k] = options[k]; });
    var t = pickStrings(o);
    var why = validate(o, t);
    if (!why && !global.Strophe) why = "Strophe.js is not loaded";
    if (why) {
      global.console.error("frontdesk widget: " + why);
      root.classList.add("frontdesk");
      root.setAttribute("data-state", "misconfigured");
      root.setAttribute("data-open", "true");
      var p = el("div", "fd-panel");
      var s = el("div", "fd-status", fill(t.misconfigured, { why: why }));
      s.setAttribute("role", "alert");
      p.appendChild(s);
      root.appendChild(p);
      return null;
    }
    quietStrophe(o.debug === true);
    return new Widget(root, o, t);
  }

  /** Options from the script tag's data- attributes (data-visitor, data-sound="true", …). */
  function fromScriptTag(script) {
    var o = {}, d = script.dataset;
    Object.keys(d).forEach(function (k) {
      o[k] = d[k] === "true" ? true : d[k] === "false" ? false : d[k];
    });
    return o;
  }

  global.FrontdeskWidget = { mount: mount, strings: STRINGS };

  var script = document.currentScript;
  if (script && (script.dataset.site || script.dataset.visitor)) {
    if (script.dataset.css !== "false" && !document.querySelector("link[href*='frontdesk-widget']")) {
      var link = document.createElement("link");
      link.rel = "stylesheet";
      link.href = script.src.replace(/\.js(\?.*)?$/, ".css");
      document.head.appendChild(link);
    }
    var start = function () { global.frontdeskWidget = mount(fromScriptTag(script)); };
    var ready = function () {
      if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
      else start();
    };
    if (global.Strophe) {
      ready();
    } else {
      // Strophe.js from data-strophe, else next to this script; if it fails, mount says so.
      var lib = document.createElement("script");
      lib.src = script.dataset.strophe || script.src.replace(/[^/]*$/, "strophe.umd.min.js");
      lib.onload = lib.onerror = ready;
      document.head.appendChild(lib);
    }
  }
})(window);
