//! Scenario tests of notes, tags and missed chats, with a real store behind the core: every
//! write the core asks for is applied to an in-memory database, and every read it asks for is
//! answered from it by the shell's own `reads::answer`.

use super::tests::*;
use super::*;
use crate::store::{stats, Store};

const ALICE_BARE: &str = "alice_acme@example.com";

/// A scenario and the database its writes go to.
struct Desk {
    s: Scenario,
    store: Store,
}

impl Desk {
    fn new() -> Desk {
        Desk {
            s: Scenario::new(),
            store: Store::open_in_memory().unwrap(),
        }
    }

    /// Commits what the core wrote, and answers its reads (which may write more).
    fn sync(&mut self) {
        loop {
            let ops = std::mem::take(&mut self.s.stored);
            self.store.apply(&ops).unwrap();
            let jobs = std::mem::take(&mut self.s.jobs);
            if jobs.is_empty() {
                return;
            }
            for job in jobs {
                if let Output::Query(q) = job {
                    let id = crate::shell::reads::id(&q);
                    let result =
                        crate::shell::reads::answer(&self.store, &q).map_err(|e| e.to_string());
                    self.s.feed(Input::QueryDone { id, result });
                }
            }
        }
    }

    /// `from` sends `text` to the front desk; the desk's answer.
    #[track_caller]
    fn command(&mut self, from: &str, text: &str) -> String {
        let body = text.replace('&', "&amp;").replace('<', "&lt;");
        self.s.sends(&format!(
            "<message from='{from}' to='{COMPONENT}' type='chat'><body>{body}</body></message>"
        ));
        self.sync();
        let bare = from.split('/').next().unwrap_or(from);
        let i = self
            .s
            .staff_inbox
            .iter()
            .rposition(|e| e.attr("from") == Some(COMPONENT) && e.attr("to") == Some(bare))
            .unwrap_or_else(|| panic!("the desk did not answer {text:?}"));
        let answer = self.s.staff_inbox.remove(i).unwrap();
        answer
            .get_child("body", "jabber:component:accept")
            .map(|b| b.text())
            .unwrap_or_default()
    }

    /// A visitor who wrote and left: the chat closes 5 s later.
    fn visitor_writes_and_leaves(&mut self, body: &str) {
        self.s.visitor_joins();
        self.s.visitor_says(body);
        self.s.sends(&format!(
            "<presence type='unavailable' from='{V1}' to='{ROOM}/Ann'/>"
        ));
        self.s.after_secs(6);
        self.s.drain();
        self.sync();
        assert_eq!(self.s.state("v1_acme"), None, "the chat should be closed");
    }

    fn notes(&self, session: i64) -> Vec<String> {
        self.store
            .transcript(session)
            .unwrap()
            .into_iter()
            .filter(|m| m.role == session::Role::Note)
            .map(|m| m.body)
            .collect()
    }
}

#[test]
fn a_note_is_kept_in_the_transcript_for_staff_and_never_reaches_the_visitor() {
    let mut d = Desk::new();
    d.s.visitor_joins();
    d.s.visitor_says("Hi");
    d.sync();
    let answer = d.command(ALICE, "!note 1 VIP customer,\nwants a call back <soon>");
    assert_eq!(answer, "Note added to #1.");
    d.s.receives_nothing(); // nothing to the visitor (or anyone in the room)
    assert_eq!(d.notes(1), ["VIP customer,\nwants a call back <soon>"]);
    let row = d.store.transcript(1).unwrap().pop().unwrap();
    assert_eq!(
        (
            row.nick.as_str(),
            row.from_jid.as_str(),
            row.stanza_id.as_str()
        ),
        (ALICE_BARE, ALICE, "1-3"), // the room's own sequence: 1-1 join, 1-2 "Hi"
        "{row:?}"
    );
    // The room's history (what a joining visitor is replayed, and what a restart resumes)
    // leaves notes out.
    let snap = d.store.snapshot(20).unwrap();
    assert!(
        snap.messages.iter().all(|m| m.role != session::Role::Note),
        "{snap:?}"
    );
    // Staff read it in !transcript, marked as a note, each line of it marked.
    let t = d.command(ALICE, "!transcript 1");
    assert!(
        t.ends_with(&format!(
            "] {ALICE_BARE} (note): VIP customer,\n    │ wants a call back <soon>"
        )),
        "{t}"
    );
    // The visitor writes again: still nothing of the note anywhere on the MUC side.
    d.s.visitor_says("Hello?");
    let all: Vec<String> = d.s.drain().iter().map(show).collect();
    assert!(all.iter().all(|x| !x.contains("VIP")), "{all:?}");
}

#[test]
fn notes_that_are_refused_say_why_and_store_nothing() {
    let mut d = Desk::new();
    d.s.visitor_joins();
    d.s.visitor_says("Hi");
    d.sync();
    assert_eq!(
        d.command(CAROL, "!note 1 not mine"),
        "#1 is a chat of another site: you can only note chats of your own sites."
    );
    assert_eq!(d.command(ALICE, "!note 99 who?"), "There is no such chat.");
    assert_eq!(
        d.command(ALICE, "!note 1"),
        "!note needs some text, e.g. !note 1 emailed them the invoice"
    );
    assert_eq!(
        d.command(ALICE, "!note"),
        "!note needs a chat number, e.g. !note 12"
    );
    assert_eq!(d.command(ALICE, "!note x hi"), "\"x\" is not a chat number");
    let max = d.s.core.config.limits.body_chars;
    assert_eq!(
        d.command(ALICE, &format!("!note 1 {}", "n".repeat(max + 1))),
        format!(
            "A note is at most {max} characters; that one has {}.",
            max + 1
        )
    );
    assert!(d.notes(1).is_empty());
    // Carol cannot note a closed chat of another site either (the store says whose it is).
    d.s.sends(&format!(
        "<presence type='unavailable' from='{V1}' to='{ROOM}/Ann'/>"
    ));
    d.s.after_secs(6);
    d.sync();
    assert_eq!(
        d.command(CAROL, "!note 1 not mine"),
        "#1 is a chat of another site: you can only note chats of your own sites."
    );
    assert_eq!(
        d.command(CAROL, "!tag 1 mine"),
        "#1 is a chat of another site: you can only tag chats of your own sites."
    );
    assert!(d.notes(1).is_empty());
    assert!(d.store.tags(1).unwrap().is_empty());
}

#[test]
fn bidi_overrides_and_controls_in_notes_are_kept_but_shown_escaped() {
    let mut d = Desk::new();
    d.s.visitor_joins();
    d.sync();
    let forged = "ok\u{202E}gnp.exe\u{2066}\n[10:00] carol (staff): refund approved";
    d.command(ALICE, &format!("!note 1 {forged}"));
    assert_eq!(d.notes(1), [forged]); // the file has what was written
    let t = d.command(ALICE, "!transcript 1");
    let last = t.lines().rev().take(2).collect::<Vec<_>>();
    assert_eq!(
        last,
        [
            "    │ [10:00] carol (staff): refund approved",
            &*format!("[2026-11-22 10:00] {ALICE_BARE} (note): ok\\u{{202E}}gnp.exe\\u{{2066}}"),
        ],
        "{t}"
    );
    assert!(crate::render::is_rendered(&t, true), "{t:?}");
}

#[test]
fn tags_are_words_kept_once_and_shown_in_the_transcript_header() {
    let mut d = Desk::new();
    d.s.visitor_joins();
    d.sync();
    assert_eq!(
        d.command(ALICE, "!tag 1 Billing #refund billing"),
        "#1 tagged billing, refund."
    );
    assert_eq!(
        d.command(ALICE, "!tag 1 refund vip"),
        "#1 tagged refund, vip."
    );
    assert_eq!(d.store.tags(1).unwrap(), ["billing", "refund", "vip"]);
    d.s.receives_nothing();
    let t = d.command(ALICE, "!transcript 1");
    assert!(
        t.starts_with("#1 v1 (acme), INACTIVE, tags: billing, refund, vip:"),
        "{t}"
    );
    // Not words: refused whole, nothing stored.
    for (bad, shown) in [
        ("a/b", "a/b"),
        ("rtl\u{202E}x", "rtl\\u{202E}x"),
        ("zero\u{200D}width", "zero\u{200D}width"),
        (&"x".repeat(33), &"x".repeat(33)),
    ] {
        assert_eq!(
            d.command(ALICE, &format!("!tag 1 fine {bad}")),
            format!("\"{shown}\" cannot be a tag: a tag is 1 to 32 letters, digits, - or _."),
        );
    }
    assert_eq!(
        d.command(ALICE, "!tag 1"),
        "!tag needs one or more words, e.g. !tag 12 billing refund"
    );
    assert_eq!(
        d.command(ALICE, "!tag 1 a b c d e f g h i j k"),
        "At most 10 tags at a time; that was 11."
    );
    assert_eq!(
        d.command(CAROL, "!tag 1 mine"),
        "#1 is a chat of another site: you can only tag chats of your own sites."
    );
    assert_eq!(d.store.tags(1).unwrap(), ["billing", "refund", "vip"]);
}

#[test]
fn a_chat_closed_unanswered_is_missed_until_followed_up_with_notes_and_tags() {
    let mut d = Desk::new();
    d.visitor_writes_and_leaves("Where is my order 1234?");
    let missed = d.command(ALICE, "!missed");
    assert_eq!(
        missed,
        "1 missed chat(s) on your sites in the last 7 days (closed with no staff reply):\n\
         #1 visitor v1 on ACME Inc. — 2026-11-22 10:00 UTC, closed 0 s ago — \"Where is my order 1234?\""
    );
    assert_eq!(
        d.command(CAROL, "!missed 30"),
        "No missed chats on your sites in the last 30 days."
    );
    // A closed chat takes notes and tags (the store says whose it is).
    assert_eq!(
        d.command(ALICE, "!note 1 emailed them"),
        "Note added to #1."
    );
    assert_eq!(
        d.command(ALICE, "!tag 1 followed-up"),
        "#1 tagged followed-up."
    );
    assert_eq!(d.notes(1), ["emailed them"]);
    assert_eq!(d.store.tags(1).unwrap(), ["followed-up"]);
    let note = d.store.transcript(1).unwrap().pop().unwrap();
    assert!(note.stanza_id.starts_with("1-note-"), "{note:?}");
    // A note is not a reply: the chat is still missed.
    assert_eq!(stats::missed_ids(d.store.conn()).unwrap(), [1].into());
    // Older than the window: not listed.
    d.s.after_secs(2 * 86_400);
    assert_eq!(
        d.command(ALICE, "!missed 1"),
        "No missed chats on your sites in the last day."
    );
    for bad in ["0", "367", "week"] {
        assert_eq!(
            d.command(ALICE, &format!("!missed {bad}")),
            format!("\"{bad}\" is not a number of days from 1 to 366")
        );
    }
}

#[test]
fn a_chat_staff_answered_is_not_missed_and_admins_see_every_site() {
    let mut c = config();
    c.admins = [BareJid::new("root@example.com").unwrap()].into();
    let mut d = Desk {
        s: Scenario::with_config(c),
        store: Store::open_in_memory().unwrap(),
    };
    d.s.visitor_joins();
    d.s.visitor_says("Hi");
    d.s.alice_joins();
    d.s.sends(&format!(
        "<message from='{ALICE}' to='{ROOM}' type='groupchat'><body>Hello!</body></message>"
    ));
    for who in [V1, ALICE] {
        let nick = if who == V1 { "Ann" } else { "Alice" };
        d.s.sends(&format!(
            "<presence type='unavailable' from='{who}' to='{ROOM}/{nick}'/>"
        ));
    }
    d.s.after_secs(6);
    d.s.drain();
    d.sync();
    assert_eq!(d.s.state("v1_acme"), None);
    assert_eq!(
        d.command(ALICE, "!missed"),
        "No missed chats on your sites in the last 7 days."
    );
    // A second chat, unanswered: the admin (staff of no site) sees it.
    d.visitor_writes_and_leaves("anyone?");
    let all = d.command("root@example.com/x", "!missed");
    assert!(
        all.starts_with("1 missed chat(s)") && all.contains("#2 visitor v1"),
        "{all}"
    );
    assert_eq!(
        d.command("root@example.com/x", "!note 2 seen"),
        "Note added to #2."
    );
}

#[test]
fn notes_tags_and_missed_as_ad_hoc_commands() {
    let mut d = Desk::new();
    d.visitor_writes_and_leaves("Hello?");
    let cmd = "http://jabber.org/protocol/commands";
    // The note form asks for a chat (a list of the open ones: none here, or a typed number)
    // and the text.
    d.s.sends(&format!("<iq type='set' from='{ALICE}' to='{COMPONENT}' id='n1'><command xmlns='{cmd}' node='note' action='execute'/></iq>"));
    d.s.receives("<iq type='result' id='n1'><command xmlns='http://jabber.org/protocol/commands' node='note' status='executing'><x xmlns='jabber:x:data' type='form'><field var='session' type='list-single'/><field var='number'/><field var='text' label='Note'><required/></field></x></command></iq>");
    d.s.sends(&format!("<iq type='set' from='{ALICE}' to='{COMPONENT}' id='n2'><command xmlns='{cmd}' node='note' sessionid='note' action='complete'><x xmlns='jabber:x:data' type='submit'><field var='session'><value>1</value></field><field var='text'><value>left a voicemail</value></field></x></command></iq>"));
    d.sync();
    d.s.receives("<iq type='result' id='n2'><command xmlns='http://jabber.org/protocol/commands' node='note' status='completed'><note type='info'>Note added to #1.</note></command></iq>");
    assert_eq!(d.notes(1), ["left a voicemail"]);
    // An empty note from the form is refused as from !note.
    d.s.sends(&format!("<iq type='set' from='{ALICE}' to='{COMPONENT}' id='n3'><command xmlns='{cmd}' node='note' sessionid='note' action='complete'><x xmlns='jabber:x:data' type='submit'><field var='session'><value>1</value></field></x></command></iq>"));
    d.s.receives("<iq type='result' id='n3'><command xmlns='http://jabber.org/protocol/commands' node='note' status='completed'><note type='info'>!note needs some text, e.g. !note 1 emailed them the invoice</note></command></iq>");
    d.s.sends(&format!("<iq type='set' from='{ALICE}' to='{COMPONENT}' id='t1'><command xmlns='{cmd}' node='tag' sessionid='tag' action='complete'><x xmlns='jabber:x:data' type='submit'><field var='session'><value>#1</value></field><field var='text'><value>callback</value></field></x></command></iq>"));
    d.sync();
    d.s.receives("<iq type='result' id='t1'><command xmlns='http://jabber.org/protocol/commands' node='tag' status='completed'><note type='info'>#1 tagged callback.</note></command></iq>");
    // missed: a form with the days (7 unless changed), then the list.
    d.s.sends(&format!("<iq type='set' from='{ALICE}' to='{COMPONENT}' id='m1'><command xmlns='{cmd}' node='missed' action='execute'/></iq>"));
    d.s.receives("<iq type='result' id='m1'><command xmlns='http://jabber.org/protocol/commands' node='missed' status='executing'><x xmlns='jabber:x:data' type='form'><field var='days'><value>7</value></field></x></command></iq>");
    d.s.sends(&format!("<iq type='set' from='{ALICE}' to='{COMPONENT}' id='m2'><command xmlns='{cmd}' node='missed' sessionid='missed' action='complete'><x xmlns='jabber:x:data' type='submit'><field var='days'><value>7</value></field></x></command></iq>"));
    d.sync();
    let r = d.s.inbox.pop_front().unwrap();
    assert!(
        show(&r).contains("#1 visitor v1 on ACME Inc."),
        "{}",
        show(&r)
    );
}

/// A globex visitor (V2) in room v2_globex, who wrote.
const GLOBEX_ROOM: &str = "v2_globex@chat.example.com";

impl Desk {
    /// `from` runs ad-hoc command `node` with a submitted form of `fields`; the note it
    /// completes with.
    #[track_caller]
    fn adhoc(&mut self, from: &str, node: &str, fields: &[(&str, &str)]) -> String {
        let fields: String = fields
            .iter()
            .map(|(var, value)| {
                let value = value.replace('&', "&amp;").replace('<', "&lt;");
                format!("<field var='{var}'><value>{value}</value></field>")
            })
            .collect();
        self.s.sends(&format!("<iq type='set' from='{from}' to='{COMPONENT}' id='a1'><command xmlns='{NS_CMD}' node='{node}' sessionid='{node}' action='complete'><x xmlns='jabber:x:data' type='submit'>{fields}</x></command></iq>"));
        self.sync();
        let r = self.s.inbox.pop_front().expect("an answer");
        assert_eq!(r.attr("type"), Some("result"), "{}", show(&r));
        r.get_child("command", NS_CMD)
            .and_then(|c| c.get_child("note", NS_CMD))
            .map(|n| n.text())
            .unwrap_or_else(|| panic!("no note in {}", show(&r)))
    }

    /// The (value, label) options of the `session` list in `from`'s form for `node`, and
    /// the form's field vars in order.
    #[track_caller]
    fn adhoc_form(&mut self, from: &str, node: &str) -> (Vec<(String, String)>, Vec<String>) {
        self.s.sends(&format!("<iq type='set' from='{from}' to='{COMPONENT}' id='f1'><command xmlns='{NS_CMD}' node='{node}' action='execute'/></iq>"));
        let r = self.s.inbox.pop_front().expect("a form");
        let x = r
            .get_child("command", NS_CMD)
            .and_then(|c| c.get_child("x", "jabber:x:data"))
            .unwrap_or_else(|| panic!("no form in {}", show(&r)));
        let fields: Vec<&minidom::Element> = x.children().filter(|f| f.name() == "field").collect();
        let vars = fields
            .iter()
            .map(|f| f.attr("var").unwrap_or("").to_string())
            .collect();
        let list = fields
            .iter()
            .find(|f| f.attr("var") == Some("session"))
            .map(|f| {
                assert_eq!(f.attr("type"), Some("list-single"), "{}", show(&r));
                f.children()
                    .filter(|o| o.name() == "option")
                    .map(|o| {
                        let value = o.children().next().map(|v| v.text()).unwrap_or_default();
                        (value, o.attr("label").unwrap_or("").to_string())
                    })
                    .collect()
            })
            .unwrap_or_default();
        (list, vars)
    }

    fn globex_visitor_writes(&mut self) {
        self.s.sends(&format!("<presence from='{V2}' to='{GLOBEX_ROOM}/Gus'><x xmlns='http://jabber.org/protocol/muc'/></presence>"));
        self.s.sends(&format!("<message from='{V2}' to='{GLOBEX_ROOM}' type='groupchat' id='g1'><body>Hi globex</body></message>"));
        self.s.drain();
        self.sync();
    }
}

const NS_CMD: &str = "http://jabber.org/protocol/commands";

#[test]
fn untag_takes_tags_off_and_says_which_the_chat_did_not_have() {
    let mut d = Desk::new();
    d.s.visitor_joins();
    d.sync();
    d.command(ALICE, "!tag 1 billing refund vip");
    assert_eq!(
        d.command(ALICE, "!untag 1 refund"),
        "#1: removed refund. Tags now: billing, vip."
    );
    assert_eq!(d.store.tags(1).unwrap(), ["billing", "vip"]);
    // Case and # as !tag takes them; some there, some not.
    assert_eq!(
        d.command(ALICE, "!untag 1 #VIP refund nope"),
        "#1: removed vip. It had no refund, nope. Tags now: billing."
    );
    assert_eq!(d.store.tags(1).unwrap(), ["billing"]);
    // None of them there: said so, and nothing written.
    let before = d.s.stored.len();
    assert_eq!(
        d.command(ALICE, "!untag 1 nope"),
        "#1 has no tag nope (its tags: billing)."
    );
    assert_eq!(d.s.stored.len(), before);
    assert_eq!(
        d.command(ALICE, "!untag 1 billing"),
        "#1: removed billing. It has no tags now."
    );
    assert_eq!(
        d.command(ALICE, "!untag 1 billing"),
        "#1 has no tag billing (it has no tags)."
    );
    assert!(d.store.tags(1).unwrap().is_empty());
    d.s.receives_nothing(); // the visitor hears nothing of it
    let t = d.command(ALICE, "!transcript 1");
    assert!(t.starts_with("#1 v1 (acme), INACTIVE:"), "{t}");
}

#[test]
fn untag_refusals_say_why_and_touch_nothing() {
    let mut d = Desk::new();
    d.s.visitor_joins();
    d.sync();
    d.command(ALICE, "!tag 1 billing");
    assert_eq!(
        d.command(ALICE, "!untag 1"),
        "!untag needs one or more tags, e.g. !untag 12 refund"
    );
    assert_eq!(
        d.command(ALICE, "!untag"),
        "!untag needs a chat number, e.g. !untag 12"
    );
    assert_eq!(
        d.command(ALICE, "!untag 99 billing"),
        "There is no such chat."
    );
    // Control and bidi characters are not tags: refused whole, shown escaped.
    for (bad, shown) in [
        ("bill\u{202E}ing", "bill\\u{202E}ing"),
        ("bill\u{9f}ing", "bill\\u{009F}ing"),
        ("\u{2066}billing", "\\u{2066}billing"),
        ("a/b", "a/b"),
    ] {
        assert_eq!(
            d.command(ALICE, &format!("!untag 1 billing {bad}")),
            format!("\"{shown}\" cannot be a tag: a tag is 1 to 32 letters, digits, - or _."),
        );
    }
    // Another site's staff, on the open chat and (asking the store) on the closed one.
    let other = "#1 is a chat of another site: you can only untag chats of your own sites.";
    assert_eq!(d.command(CAROL, "!untag 1 billing"), other);
    d.s.sends(&format!(
        "<presence type='unavailable' from='{V1}' to='{ROOM}/Ann'/>"
    ));
    d.s.after_secs(6);
    d.sync();
    assert_eq!(d.command(CAROL, "!untag 1 billing"), other);
    assert_eq!(d.store.tags(1).unwrap(), ["billing"]);
    // `!tag N -word` reads as a removal: told how, nothing added.
    assert_eq!(
        d.command(ALICE, "!tag 1 -billing"),
        "\"-billing\" cannot be a tag: to take a tag off a chat, use !untag N billing."
    );
    assert_eq!(d.store.tags(1).unwrap(), ["billing"]);
    // The closed chat's own staff can.
    assert_eq!(
        d.command(ALICE, "!untag 1 billing"),
        "#1: removed billing. It has no tags now."
    );
}

#[test]
fn missed_lists_each_chats_tags_rendered() {
    let mut d = Desk::new();
    d.visitor_writes_and_leaves("Call me back");
    d.command(ALICE, "!tag 1 vip callback");
    let line = |d: &mut Desk| {
        d.command(ALICE, "!missed")
            .lines()
            .nth(1)
            .unwrap_or("")
            .to_string()
    };
    assert!(
        line(&mut d).ends_with("\"Call me back\" — tags: callback, vip"),
        "{}",
        line(&mut d)
    );
    d.command(ALICE, "!untag 1 vip");
    assert!(
        line(&mut d).ends_with("— tags: callback"),
        "{}",
        line(&mut d)
    );
    // A tag another program wrote into the file, with a bidi override: shown escaped.
    let by = BareJid::new(ALICE_BARE).unwrap();
    crate::store::tags::insert(
        d.store.conn(),
        1,
        "x\u{202E}y",
        &by,
        crate::time::Timestamp::from_secs(0),
    )
    .unwrap();
    let shown = line(&mut d);
    assert!(shown.ends_with("— tags: callback, x\\u{202E}y"), "{shown}");
    assert!(crate::render::is_rendered(&shown, false), "{shown:?}");
    // Without tags: no tags part.
    d.command(ALICE, "!untag 1 callback");
    d.store.conn().execute("DELETE FROM tags", []).unwrap();
    assert!(
        line(&mut d).ends_with("\"Call me back\""),
        "{}",
        line(&mut d)
    );
}

#[test]
fn the_note_and_tag_forms_list_ones_chats_and_still_take_a_typed_number() {
    let mut d = Desk::new();
    d.s.visitor_joins();
    d.s.visitor_says("Hi");
    d.s.alice_joins(); // #1 is alice's
    d.s.sends(&format!("<presence from='{V2}' to='v2_acme@chat.example.com/Bo'><x xmlns='http://jabber.org/protocol/muc'/></presence>"));
    d.s.drain();
    d.sync(); // #2 waits
    d.globex_visitor_writes(); // #3 is globex's
    for node in ["note", "tag", "untag"] {
        let (options, vars) = d.adhoc_form(ALICE, node);
        assert_eq!(vars, ["session", "number", "text"], "{node}");
        assert_eq!(
            options,
            [
                ("1".to_string(), "#1 Ann (yours)".to_string()),
                ("2".to_string(), "#2 Bo (INACTIVE)".to_string())
            ],
            "{node}"
        );
    }
    let (carols, _) = d.adhoc_form(CAROL, "note");
    assert_eq!(carols, [("3".to_string(), "#3 Gus (ACTIVE)".to_string())]);
    // Chosen from the list; a typed number wins over it.
    assert_eq!(
        d.adhoc(
            ALICE,
            "note",
            &[("session", "2"), ("text", "from the list")]
        ),
        "Note added to #2."
    );
    assert_eq!(
        d.adhoc(
            ALICE,
            "tag",
            &[("session", "2"), ("number", "#1"), ("text", "typed")]
        ),
        "#1 tagged typed."
    );
    assert_eq!(d.notes(2), ["from the list"]);
    assert_eq!(d.store.tags(1).unwrap(), ["typed"]);
    assert_eq!(
        d.adhoc(ALICE, "untag", &[("session", "1"), ("text", "typed")]),
        "#1: removed typed. It has no tags now."
    );
    assert!(d.store.tags(1).unwrap().is_empty());
}

#[test]
fn forged_and_foreign_chat_numbers_in_the_forms_are_refused() {
    let mut d = Desk::new();
    d.s.visitor_joins();
    d.sync();
    d.globex_visitor_writes(); // #2 is globex's
    let other = |what: &str| {
        format!("#2 is a chat of another site: you can only {what} chats of your own sites.")
    };
    // Another site's chat, in the list's field (not one of its options) or typed.
    assert_eq!(
        d.adhoc(ALICE, "note", &[("session", "2"), ("text", "mine")]),
        other("note")
    );
    assert_eq!(
        d.adhoc(ALICE, "tag", &[("number", "2"), ("text", "mine")]),
        other("tag")
    );
    assert_eq!(
        d.adhoc(ALICE, "untag", &[("number", "#2"), ("text", "x")]),
        other("untag")
    );
    // A value that is not one chat number: not split into a number and words.
    for (field, forged) in [
        ("session", "1 billing"),
        ("session", "1\u{202E}"),
        ("number", "99999999999999999999"),
        ("session", "one"),
    ] {
        let shown = crate::render::short(forged, 40);
        assert_eq!(
            d.adhoc(ALICE, "tag", &[(field, forged), ("text", "x")]),
            format!("{:?} is not a chat number", forged),
            "{shown}"
        );
    }
    assert_eq!(
        d.adhoc(ALICE, "note", &[("text", "no chat")]),
        "!note needs a chat number, e.g. !note 12"
    );
    assert!(d.notes(2).is_empty() && d.notes(1).is_empty());
    assert!(d.store.tags(1).unwrap().is_empty() && d.store.tags(2).unwrap().is_empty());
}

impl Desk {
    /// `from` sends each of `texts` to the front desk before any read is answered.
    fn send_all(&mut self, from: &str, texts: &[&str]) {
        for text in texts {
            self.s.sends(&format!(
                "<message from='{from}' to='{COMPONENT}' type='chat'><body>{text}</body></message>"
            ));
        }
    }

    /// The desk's answers to `to` so far, oldest first (taken from the inbox).
    fn answers_to(&mut self, to: &str) -> Vec<String> {
        let mut got = Vec::new();
        self.s.staff_inbox.retain(|e| {
            let ours = e.attr("from") == Some(COMPONENT) && e.attr("to") == Some(to);
            if ours {
                got.push(
                    e.get_child("body", "jabber:component:accept")
                        .map(|b| b.text())
                        .unwrap_or_default(),
                );
            }
            !ours
        });
        got
    }
}

#[test]
fn commands_sent_back_to_back_are_answered_in_order_each_seeing_what_the_one_before_wrote() {
    let mut d = Desk::new();
    d.visitor_writes_and_leaves("Hello?");
    d.s.staff_inbox.clear();
    // The chat is closed, so `!tag` asks the store for its site before writing, and `!untag`
    // reads its tags: the second read must come after the first command's write.
    d.send_all(ALICE, &["!tag 1 vip", "!untag 1 vip", "!help"]);
    assert!(
        d.answers_to(ALICE_BARE).is_empty(),
        "answered before the store was read"
    );
    d.sync();
    let answers = d.answers_to(ALICE_BARE);
    assert_eq!(answers.len(), 3, "{answers:?}");
    assert_eq!(answers[0], "#1 tagged vip.");
    assert_eq!(answers[1], "#1: removed vip. It has no tags now.");
    assert_eq!(answers[2], *commands::HELP);
    assert!(d.store.tags(1).unwrap().is_empty());
    // Another staff member is not held back by alice's read.
    d.send_all(ALICE, &["!transcript 1"]);
    d.send_all(BOB, &["!help"]);
    let bob = BOB.split('/').next().unwrap();
    assert_eq!(d.answers_to(bob), [commands::HELP.as_str()]);
    d.sync();
    assert!(d.s.core.queries.is_empty());
}

#[test]
fn commands_waiting_behind_a_read_are_bounded_and_a_lost_read_stops_holding_them() {
    let mut d = Desk::new();
    d.visitor_writes_and_leaves("Hello?");
    d.s.staff_inbox.clear();
    let mut texts = vec!["!transcript 1"];
    texts.extend(std::iter::repeat_n("!status", commands::PARKED_MAX + 1));
    d.send_all(ALICE, &texts);
    // The one over the bound is refused at once; the others wait, in order.
    let refused = d.answers_to(ALICE_BARE);
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert!(
        refused[0].starts_with("Not done: your commands before it are still waiting"),
        "{refused:?}"
    );
    d.sync();
    let answers = d.answers_to(ALICE_BARE);
    assert_eq!(answers.len(), 1 + commands::PARKED_MAX, "{answers:?}");
    assert!(
        answers[0].contains("Hello?"),
        "the transcript first: {answers:?}"
    );
    let status = d.command(ALICE, "!status");
    assert!(answers[1..].iter().all(|a| *a == status), "{answers:?}");

    // A read that never comes back (the store thread stuck): after 10 s it no longer holds
    // the staff member's commands, and the one kept behind it runs on the next tick.
    d.send_all(ALICE, &["!transcript 1", "!help"]);
    d.s.jobs.clear();
    assert!(d.answers_to(ALICE_BARE).is_empty());
    d.s.after_secs(5);
    assert!(
        d.answers_to(ALICE_BARE).is_empty(),
        "ran while the read could still come"
    );
    d.s.after_secs(6);
    assert_eq!(d.answers_to(ALICE_BARE), [commands::HELP.as_str()]);
    d.send_all(ALICE, &["!help"]);
    assert_eq!(d.answers_to(ALICE_BARE), [commands::HELP.as_str()]);
    assert!(d.s.core.queries.parked_staff().is_empty());
}
