//! Scenario tests of who is offered a waiting chat: capacity (`max_chats`), the routing modes
//! (`broadcast`, `round-robin`, `least-busy`) with their timeouts, `!pass`, and staff names.

use super::tests::*;
use super::*;
use crate::config::{DeskConfig, Routing, StaffProfile};

const ALICE_BARE: &str = "alice_acme@example.com";
const BOB_BARE: &str = "bob_acme@example.com";
const V3: &str = "anon3@anon.example.com/r3";

fn desk(routing: Routing, max_chats: u32) -> Scenario {
    let mut c = config();
    for site in c.sites.values_mut() {
        site.desk = DeskConfig {
            max_chats_per_staff: max_chats,
            routing,
            offer_timeout_secs: 60,
            ..DeskConfig::default()
        };
    }
    let mut s = Scenario::with_config(c);
    for who in [ALICE, BOB] {
        s.sends(&format!("<presence from='{who}' to='{COMPONENT}'/>"));
    }
    s.staff_inbox.clear();
    s
}

fn room(n: u32) -> String {
    format!("v{n}_acme@{COMPONENT}")
}

impl Scenario {
    /// A visitor `jid` joins room `n` as `nick` and writes `body`.
    fn writes(&mut self, jid: &str, n: u32, nick: &str, body: &str) {
        let room = room(n);
        self.sends(&format!("<presence from='{jid}' to='{room}/{nick}'><x xmlns='http://jabber.org/protocol/muc'/></presence>"));
        self.sends(&format!(
            "<message from='{jid}' to='{room}' type='groupchat'><body>{body}</body></message>"
        ));
        self.drain();
    }

    fn command(&mut self, from: &str, text: &str) {
        self.sends(&format!(
            "<message from='{from}' to='{COMPONENT}' type='chat'><body>{text}</body></message>"
        ));
    }

    fn offers_to(&mut self, staff: &str) -> Vec<String> {
        self.desk_told(staff)
            .into_iter()
            .filter(|t| t.contains("wants to chat"))
            .collect()
    }
}

// ---- capacity -----------------------------------------------------------------------------------

#[test]
fn staff_at_their_cap_get_no_offers_and_cannot_take_a_chat() {
    let mut s = desk(Routing::Broadcast, 1);
    s.writes(V1, 1, "Ann", "First");
    assert_eq!(s.offers_to(ALICE_BARE).len(), 1);
    s.command(ALICE, "!accept 1");
    assert!(s
        .desk_told(ALICE_BARE)
        .iter()
        .any(|t| t.starts_with("#1 is yours")));
    s.staff_inbox.clear();

    s.writes(V2, 2, "Bea", "Second");
    assert!(s.offers_to(ALICE_BARE).is_empty(), "alice is at her cap");
    assert_eq!(s.offers_to(BOB_BARE).len(), 1);
    assert!(
        s.told(ALICE_BARE, &room(2)).is_empty(),
        "no copy of bea's words either"
    );

    s.command(ALICE, "!accept 2");
    let told = s.desk_told(ALICE_BARE);
    assert_eq!(
        told,
        ["You have 1 chat, your limit (max_chats_per_staff of ACME Inc. is 1). Finish one first (!finish N)."]
    );
    // A one-to-one reply would claim it: refused the same way, and nothing reaches Bea.
    s.sends(&format!(
        "<message from='{ALICE}' to='{}' type='chat' id='r1'><body>I can help</body></message>",
        room(2)
    ));
    let err = s.drain();
    assert!(
        err.iter().any(|e| e.attr("type") == Some("error")
            && show(e).contains("resource-constraint")
            && show(e).contains("your limit")),
        "{:?}",
        err.iter().map(show).collect::<Vec<_>>()
    );
    assert_eq!(s.state("v2_acme"), Some(SessionState::Active));

    // Her chat ends: she is offered Bea's at once.
    s.command(ALICE, "!finish 1");
    s.drain();
    let offers = s.offers_to(ALICE_BARE);
    assert_eq!(offers.len(), 1, "{offers:?}");
    assert!(offers[0].contains("(#2)"), "{offers:?}");
}

#[test]
fn a_staff_entrys_own_cap_overrides_the_sites() {
    let mut s = desk(Routing::Broadcast, 1);
    let alice = BareJid::new(ALICE_BARE).unwrap();
    for site in s.core.config.sites.values_mut() {
        site.profiles.insert(
            alice.clone(),
            StaffProfile {
                name: None,
                avatar: None,
                max_chats: Some(2),
            },
        );
    }
    s.writes(V1, 1, "Ann", "First");
    s.command(ALICE, "!accept 1");
    s.writes(V2, 2, "Bea", "Second");
    s.command(ALICE, "!accept 2");
    assert!(s
        .desk_told(ALICE_BARE)
        .iter()
        .any(|t| t.starts_with("#2 is yours")));
    s.writes(V3, 3, "Cy", "Third");
    s.command(ALICE, "!accept 3");
    assert!(s
        .desk_told(ALICE_BARE)
        .contains(&"You have 2 chats, your limit (max_chats in your staff entry is 2). Finish one first (!finish N).".to_string()));
}

/// Three chats at once over one connection: each visitor's words and each reply stay in that
/// visitor's own conversation.
#[test]
fn three_chats_at_once_stay_apart() {
    let mut s = desk(Routing::Broadcast, 3);
    for (v, n, nick) in [(V1, 1, "Ann"), (V2, 2, "Bea"), (V3, 3, "Cy")] {
        s.writes(v, n, nick, &format!("hello from {nick}"));
        s.sends(&format!(
            "<message from='{ALICE}' to='{}' type='chat'><body>hi {nick}</body></message>",
            room(n)
        ));
    }
    for (v, n, nick) in [(V1, 1, "Ann"), (V2, 2, "Bea"), (V3, 3, "Cy")] {
        s.sends(&format!(
            "<message from='{v}' to='{}' type='groupchat'><body>more from {nick}</body></message>",
            room(n)
        ));
    }
    s.drain();
    for (n, nick) in [(1, "Ann"), (2, "Bea"), (3, "Cy")] {
        let got = s.told(ALICE_BARE, &room(n));
        assert_eq!(
            got,
            [format!("hello from {nick}"), format!("more from {nick}")],
            "room {n}"
        );
    }
    s.command(ALICE, "!status");
    let status = s.desk_told(ALICE_BARE).pop().unwrap();
    assert!(status.starts_with("Your chats (3)"), "{status}");
}

// ---- round-robin and least-busy -------------------------------------------------------------------

#[test]
fn round_robin_offers_one_at_a_time_in_turn_and_moves_on_when_the_offer_runs_out() {
    let mut s = desk(Routing::RoundRobin, 3);
    s.writes(V1, 1, "Ann", "First");
    assert_eq!(s.offers_to(ALICE_BARE).len(), 1, "alice's turn");
    assert!(s.offers_to(BOB_BARE).is_empty());
    assert!(
        s.told(BOB_BARE, &room(1)).is_empty(),
        "bob sees nothing of it"
    );

    s.writes(V2, 2, "Bea", "Second");
    assert_eq!(s.offers_to(BOB_BARE).len(), 1, "bob's turn");
    assert!(s.offers_to(ALICE_BARE).is_empty());

    // Ann writes again: only alice, who holds her offer, gets it.
    s.sends(&format!(
        "<message from='{V1}' to='{}' type='groupchat'><body>Hello?</body></message>",
        room(1)
    ));
    s.drain();
    assert_eq!(s.told(ALICE_BARE, &room(1)), ["First", "Hello?"]);
    assert!(s.told(BOB_BARE, &room(1)).is_empty());

    // 60 s without an answer: each offer moves to the other.
    s.after_secs(61);
    let alice = s.desk_told(ALICE_BARE);
    assert!(
        alice
            .iter()
            .any(|t| t.starts_with("#1 went to the next person: no answer in 60 s.")),
        "{alice:?}"
    );
    assert!(
        alice.iter().any(|t| t.contains("wants to chat (#2)")),
        "{alice:?}"
    );
    let bob = s.desk_told(BOB_BARE);
    assert!(
        bob.iter().any(|t| t.contains("wants to chat (#1)")),
        "{bob:?}"
    );
    assert_eq!(
        s.told(BOB_BARE, &room(1)),
        ["First", "Hello?"],
        "the offer replays what Ann wrote"
    );
}

#[test]
fn pass_hands_the_offer_on_and_a_new_round_starts_after_the_timeout() {
    let mut s = desk(Routing::RoundRobin, 3);
    s.writes(V1, 1, "Ann", "First");
    s.staff_inbox.clear();
    s.command(ALICE, "!pass 1");
    assert_eq!(
        s.desk_told(ALICE_BARE),
        ["#1 passed: it is offered to the next person."]
    );
    assert_eq!(s.offers_to(BOB_BARE).len(), 1);
    s.command(BOB, "!pass 1");
    let bob = s.desk_told(BOB_BARE);
    assert_eq!(
        bob,
        ["#1 passed: nobody else can take it now; it waits and is offered again."]
    );
    assert_eq!(
        s.state("v1_acme"),
        Some(SessionState::Active),
        "the chat stays open"
    );
    s.after_secs(30);
    assert!(s.desk_told(ALICE_BARE).is_empty(), "not before the timeout");
    s.after_secs(31);
    let alice = s.desk_told(ALICE_BARE);
    assert!(
        alice
            .iter()
            .any(|t| t.starts_with("Still waiting (1 min): visitor Ann on ACME Inc. (#1).")),
        "{alice:?}"
    );
    // Anyone can still take it.
    s.command(BOB, "!accept 1");
    assert!(s
        .desk_told(BOB_BARE)
        .iter()
        .any(|t| t.starts_with("#1 is yours")));
}

#[test]
fn an_offer_moves_on_at_once_when_its_holder_goes_away() {
    let mut s = desk(Routing::RoundRobin, 3);
    s.writes(V1, 1, "Ann", "First");
    assert_eq!(s.offers_to(ALICE_BARE).len(), 1);
    s.sends(&format!(
        "<presence from='{ALICE}' to='{COMPONENT}'><show>away</show></presence>"
    ));
    s.after_secs(1);
    assert_eq!(s.offers_to(BOB_BARE).len(), 1, "bob has it within a tick");
}

#[test]
fn least_busy_offers_to_whoever_has_fewest_chats() {
    let mut s = desk(Routing::LeastBusy, 3);
    s.writes(V1, 1, "Ann", "First");
    assert_eq!(s.offers_to(ALICE_BARE).len(), 1);
    s.command(ALICE, "!accept 1");
    s.staff_inbox.clear();
    // Turn order would give it to bob anyway; make alice next in turn by having bob take one.
    s.writes(V2, 2, "Bea", "Second");
    assert_eq!(s.offers_to(BOB_BARE).len(), 1, "bob has none");
    s.command(BOB, "!accept 2");
    s.command(ALICE, "!finish 1");
    s.drain();
    s.staff_inbox.clear();
    // Alice 0 chats, bob 1: alice, though it would be bob's turn after her.
    s.writes(V3, 3, "Cy", "Third");
    assert_eq!(s.offers_to(ALICE_BARE).len(), 1);
    assert!(s.offers_to(BOB_BARE).is_empty());
}

#[test]
fn broadcast_announces_a_waiting_chat_again_after_the_timeout() {
    let mut s = desk(Routing::Broadcast, 3);
    s.writes(V1, 1, "Ann", "First");
    assert_eq!(s.offers_to(ALICE_BARE).len(), 1);
    assert_eq!(s.offers_to(BOB_BARE).len(), 1);
    s.after_secs(30);
    assert!(s.desk_told(ALICE_BARE).is_empty());
    s.after_secs(31);
    for staff in [ALICE_BARE, BOB_BARE] {
        let told = s.desk_told(staff);
        assert_eq!(told.len(), 1, "{told:?}");
        assert!(told[0].starts_with("Still waiting (1 min)"), "{told:?}");
    }
    // !pass in broadcast: no more reminders for the one who passed.
    s.command(ALICE, "!pass 1");
    assert_eq!(
        s.desk_told(ALICE_BARE),
        ["#1 passed: you get no more reminders of it (!accept 1 still takes it)."]
    );
    s.after_secs(61);
    assert!(s.desk_told(ALICE_BARE).is_empty());
    assert_eq!(s.desk_told(BOB_BARE).len(), 1);
}

#[test]
fn pass_is_only_for_waiting_chats_of_ones_own_sites() {
    let mut s = desk(Routing::RoundRobin, 3);
    s.writes(V1, 1, "Ann", "First");
    s.command(CAROL, "!pass 1");
    assert_eq!(
        s.desk_told("carol_globex@example.com"),
        ["There is no open chat #1 on your sites."]
    );
    s.command(ALICE, "!accept 1");
    s.command(BOB, "!pass 1");
    assert_eq!(
        s.desk_told(BOB_BARE),
        ["#1 is not waiting: alice_acme has it."]
    );
    s.command(BOB, "!pass 99");
    assert_eq!(
        s.desk_told(BOB_BARE),
        ["There is no open chat #99 on your sites."]
    );
}

// ---- names ----------------------------------------------------------------------------------------

#[test]
fn a_staff_members_display_name_is_their_nick_for_the_visitor() {
    let mut s = desk(Routing::Broadcast, 3);
    let alice = BareJid::new(ALICE_BARE).unwrap();
    for site in s.core.config.sites.values_mut() {
        site.profiles.insert(
            alice.clone(),
            StaffProfile {
                name: Some("Alice".into()),
                avatar: None,
                max_chats: None,
            },
        );
    }
    s.writes(V1, 1, "Ann", "First");
    s.sends(&format!(
        "<message from='{ALICE}' to='{}' type='chat'><body>Hi Ann</body></message>",
        room(1)
    ));
    let got = s.drain();
    let shown: Vec<String> = got.iter().map(show).collect();
    assert!(
        shown
            .iter()
            .any(|e| e.contains(&format!("from='{}/Alice'", room(1))) && e.contains("Hi Ann")),
        "{shown:?}"
    );
    assert!(s
        .stored
        .iter()
        .any(|op| matches!(op, crate::store::StoreOp::AppendMessage(m) if m.body == "Alice joined the chat")));
}

// ---- read markers (XEP-0333) with one-to-one staff --------------------------------------------------

#[test]
fn markers_reach_one_to_one_staff_and_come_back_to_the_visitor() {
    let m = "urn:xmpp:chat-markers:0";
    let mut s = desk(Routing::Broadcast, 3);
    s.writes(V1, 1, "Ann", "First");
    s.sends(&format!(
        "<message from='{ALICE}' to='{}' type='chat'><body>Hi Ann</body></message>",
        room(1)
    ));
    s.drain();
    s.staff_inbox.clear();
    // The copy of the visitor's message is named by its stanza-id, which the widget knows.
    s.sends(&format!(
        "<message from='{V1}' to='{}' type='groupchat' id='own'><body>Second</body><markable xmlns='{m}'/></message>",
        room(1)
    ));
    s.drain();
    let copy = s
        .staff_inbox
        .iter()
        .find(|e| e.attr("type") == Some("chat") && show(e).contains("Second"))
        .cloned()
        .expect("the copy to alice");
    assert!(copy.has_child("markable", m), "{}", show(&copy));
    let id = copy.attr("id").unwrap_or_default().to_string();
    assert!(id.starts_with("1-"), "{id}");
    s.sends(&format!(
        "<message from='{ALICE}' to='{}' type='chat'><displayed xmlns='{m}' id='{id}'/></message>",
        room(1)
    ));
    s.receives(&format!(
        "<message from='{}/alice_acme' to='{V1}' type='groupchat'><displayed xmlns='{m}' id='{id}'/></message>",
        room(1)
    ));
    s.staff_inbox.clear();
    s.sends(&format!(
        "<message from='{V1}' to='{}' type='groupchat'><displayed xmlns='{m}' id='1-2'/></message>",
        room(1)
    ));
    s.drain();
    assert!(
        s.staff_inbox.iter().any(|e| e.attr("type") == Some("chat")
            && e.attr("to") == Some(ALICE_BARE)
            && e.get_child("displayed", m).and_then(|d| d.attr("id")) == Some("1-2")),
        "{:?}",
        s.staff_inbox.iter().map(show).collect::<Vec<_>>()
    );
}

// ---- canned replies and transfers -------------------------------------------------------------------

fn with_canned() -> Scenario {
    let mut s = desk(Routing::Broadcast, 3);
    if let Some(site) = s
        .core
        .config
        .sites
        .get_mut(&crate::address::SiteId::new("acme").unwrap())
    {
        site.desk.canned = vec![
            crate::config::Canned {
                key: "hello".into(),
                text: "Hi! I'm looking into it right now.".into(),
            },
            crate::config::Canned {
                key: "bye".into(),
                text: "Thanks for writing!".into(),
            },
        ];
    }
    s
}

/// Alice answers visitor `n` one-to-one (which claims the chat).
fn alice_takes(s: &mut Scenario, n: u32) {
    s.sends(&format!(
        "<message from='{ALICE}' to='{}' type='chat'><body>Hello</body></message>",
        room(n)
    ));
    s.drain();
    s.staff_inbox.clear();
}

#[test]
fn say_sends_a_canned_reply_into_ones_own_chat() {
    let mut s = with_canned();
    s.writes(V1, 1, "Ann", "Where is my parcel?");
    alice_takes(&mut s, 1);
    s.command(ALICE, "!say HELLO");
    let got: Vec<String> = s.drain().iter().map(show).collect();
    assert!(
        got.iter()
            .any(|e| e.contains(&format!("from='{}/alice_acme'", room(1)))
                && e.contains(&format!("to='{V1}'"))
                && e.contains("Hi! I'm looking into it right now.")),
        "{got:?}"
    );
    assert_eq!(
        s.desk_told(ALICE_BARE),
        ["Sent to Ann (#1): Hi! I'm looking into it right now."]
    );
    assert!(s
        .stored
        .iter()
        .any(|op| matches!(op, crate::store::StoreOp::AppendMessage(m)
        if m.body == "Hi! I'm looking into it right now." && m.role == crate::store::Role::Staff)));

    s.command(ALICE, "!say nope");
    assert_eq!(
        s.desk_told(ALICE_BARE),
        ["No canned reply \"nope\" on ACME Inc.; !canned lists them."]
    );
    s.command(ALICE, "!canned");
    let list = s.desk_told(ALICE_BARE).pop().unwrap();
    assert_eq!(list, "ACME Inc.:\n  hello — Hi! I'm looking into it right now.\n  bye — Thanks for writing!\nSend one with !say KEY (or !say N KEY).");

    // A second chat: which one must be said; another's chat is refused.
    s.writes(V2, 2, "Bea", "Hi");
    alice_takes(&mut s, 2);
    s.command(ALICE, "!say bye");
    assert_eq!(
        s.desk_told(ALICE_BARE),
        ["You have 2 chats: say which, e.g. !say 1 …"]
    );
    s.writes(V3, 3, "Cy", "Hi");
    s.staff_inbox.clear();
    s.command(ALICE, "!say 3 bye");
    assert_eq!(
        s.desk_told(ALICE_BARE),
        ["#3 is not your chat: !accept 3 first."]
    );
    s.command(CAROL, "!say 1 bye");
    assert_eq!(
        s.desk_told("carol_globex@example.com"),
        ["There is no open chat #1 on your sites."]
    );
    s.command(ALICE, "!say");
    assert!(s.desk_told(ALICE_BARE)[0].starts_with("!say needs the key of a canned reply"));
}

#[test]
fn transfer_hands_a_chat_to_a_colleague_and_the_visitor_sees_it() {
    let mut s = with_canned();
    s.writes(V1, 1, "Ann", "Where is my parcel?");
    alice_takes(&mut s, 1);
    for (who, why) in [
        ("carol_globex@example.com", "\"carol_globex@example.com\" is not staff of ACME Inc.: name them by address, local part or name."),
        ("alice_acme", "That is you."),
        ("nobody", "\"nobody\" is not staff of ACME Inc.: name them by address, local part or name."),
    ] {
        s.command(ALICE, &format!("!transfer 1 {who}"));
        assert_eq!(s.desk_told(ALICE_BARE), [why]);
    }
    s.command(BOB, "!transfer 1 alice");
    assert_eq!(
        s.desk_told(BOB_BARE),
        ["#1 is handled by alice_acme; only they can transfer it."]
    );

    s.command(ALICE, "!transfer 1 BOB_ACME");
    assert_eq!(
        s.desk_told(ALICE_BARE),
        ["#1 is now bob_acme@example.com's."]
    );
    let seen: Vec<String> = s.drain().iter().map(show).collect();
    assert!(
        seen.iter()
            .any(|e| e.contains(&format!("from='{}/alice_acme'", room(1)))
                && e.contains("unavailable")),
        "{seen:?}"
    );
    assert!(
        seen.iter()
            .any(|e| e.contains(&format!("from='{}/bob_acme'", room(1)))
                && !e.contains("unavailable")),
        "{seen:?}"
    );
    assert_eq!(s.told(BOB_BARE, &room(1)), ["Where is my parcel?"]);
    assert!(s.desk_told(BOB_BARE)[0]
        .starts_with("alice_acme@example.com handed you chat #1 with Ann on ACME Inc."));
    assert_eq!(
        s.sessions_written().last().map(|r| r.staff.clone()),
        Some(Some(BOB_BARE.to_string()))
    );
    // Bob's replies reach Ann; alice's are refused now.
    s.sends(&format!(
        "<message from='{BOB}' to='{}' type='chat'><body>Bob here</body></message>",
        room(1)
    ));
    assert!(s
        .drain()
        .iter()
        .any(|e| show(e).contains("Bob here") && e.attr("to") == Some(V1)));
    s.sends(&format!(
        "<message from='{ALICE}' to='{}' type='chat'><body>me too</body></message>",
        room(1)
    ));
    assert!(s
        .drain()
        .iter()
        .any(|e| e.attr("type") == Some("error") && e.attr("to") == Some(ALICE)));

    // Bob gives it back to the queue: offered to alice, not to bob.
    s.staff_inbox.clear();
    s.command(BOB, "!transfer 1");
    assert_eq!(
        s.desk_told(BOB_BARE),
        ["#1 is back in the queue: it is offered to the others."]
    );
    assert_eq!(s.state("v1_acme"), Some(SessionState::Active));
    assert_eq!(s.offers_to(ALICE_BARE).len(), 1);
    assert!(s.offers_to(BOB_BARE).is_empty());
}

#[test]
fn transfer_to_someone_away_or_at_their_cap_is_refused() {
    let mut s = desk(Routing::Broadcast, 1);
    s.writes(V1, 1, "Ann", "One");
    alice_takes(&mut s, 1);
    s.writes(V2, 2, "Bea", "Two");
    s.sends(&format!(
        "<message from='{BOB}' to='{}' type='chat'><body>Hi Bea</body></message>",
        room(2)
    ));
    s.drain();
    s.staff_inbox.clear();
    s.command(ALICE, "!transfer 1 bob_acme");
    assert_eq!(
        s.desk_told(ALICE_BARE),
        ["bob_acme@example.com has as many chats as they may have."]
    );
    s.command(BOB, "!finish 2");
    s.sends(&format!(
        "<presence from='{BOB}' to='{COMPONENT}'><show>away</show></presence>"
    ));
    s.staff_inbox.clear();
    s.command(ALICE, "!transfer 1 bob_acme");
    assert_eq!(
        s.desk_told(ALICE_BARE),
        ["bob_acme@example.com is not available now."]
    );
    assert_eq!(s.state("v1_acme"), Some(SessionState::Chatting));
}

#[test]
fn the_say_form_lists_the_canned_replies() {
    let mut s = with_canned();
    s.writes(V1, 1, "Ann", "Where is my parcel?");
    alice_takes(&mut s, 1);
    s.sends(&format!("<iq type='set' from='{ALICE}' to='{COMPONENT}' id='a1'><command xmlns='http://jabber.org/protocol/commands' node='say' action='execute'/></iq>"));
    let form = show(&s.inbox.pop_front().unwrap());
    assert!(
        form.contains("var='text'")
            && form.contains("<value>hello</value>")
            && form.contains("<value>bye</value>"),
        "{form}"
    );
    s.sends(&format!("<iq type='set' from='{ALICE}' to='{COMPONENT}' id='a2'><command xmlns='http://jabber.org/protocol/commands' node='say' sessionid='say'><x xmlns='jabber:x:data' type='submit'><field var='session'><value>1</value></field><field var='text'><value>bye</value></field></x></command></iq>"));
    let all: Vec<String> = s.drain().iter().map(show).collect();
    assert!(
        all.iter()
            .any(|e| e.contains("Thanks for writing!") && e.contains(&format!("to='{V1}'"))),
        "{all:?}"
    );
    assert!(
        all.iter()
            .any(|e| e.contains("id='a2'") && e.contains("Sent to Ann (#1): Thanks for writing!")),
        "{all:?}"
    );
}

// ---- queue position -----------------------------------------------------------------------------

/// The notices (bodies of groupchat messages from the room's bare JID) visitor `to` got.
fn notices(s: &mut Scenario, to: &str) -> Vec<String> {
    s.drain()
        .into_iter()
        .filter(|e| {
            e.name() == "message"
                && e.attr("to") == Some(to)
                && e.attr("from").is_some_and(|f| !f.contains('/'))
        })
        .map(|e| {
            e.get_child("body", "jabber:component:accept")
                .map(|b| b.text())
                .unwrap_or_default()
        })
        .collect()
}

#[test]
fn waiting_visitors_hear_their_place_in_line_when_it_changes() {
    let mut s = desk(Routing::Broadcast, 3);
    s.writes(V1, 1, "Ann", "First");
    s.after_secs(2);
    s.writes(V2, 2, "Bea", "Second");
    s.after_secs(5);
    assert!(
        notices(&mut s, V1).is_empty(),
        "not before the chat waited 10 s"
    );
    s.after_secs(4); // Ann has waited 11 s, Bea 9 s
    assert_eq!(notices(&mut s, V1), ["You are next in line."]);
    s.after_secs(2);
    assert_eq!(notices(&mut s, V2), ["You are number 2 in line."]);
    s.after_secs(30);
    assert!(
        notices(&mut s, V1).is_empty() && notices(&mut s, V2).is_empty(),
        "told once while it holds"
    );
    // Ann's chat is taken: Bea moves up, told at once (her last notice was 30 s ago).
    s.command(ALICE, "!accept 1");
    s.after_secs(1);
    assert_eq!(notices(&mut s, V2), ["You are next in line."]);
}

#[test]
fn a_place_that_changes_again_within_10_s_is_told_later() {
    let mut s = desk(Routing::Broadcast, 3);
    s.writes(V1, 1, "Ann", "First");
    s.writes(V2, 2, "Bea", "Second");
    s.writes(V3, 3, "Cy", "Third");
    s.after_secs(11);
    assert_eq!(notices(&mut s, V3), ["You are number 3 in line."]);
    s.command(ALICE, "!accept 1");
    s.after_secs(1);
    assert!(notices(&mut s, V3).is_empty(), "told 1 s ago");
    s.after_secs(9);
    assert_eq!(notices(&mut s, V3), ["You are number 2 in line."]);
}

#[test]
fn the_usual_answer_time_is_told_once_enough_chats_were_answered() {
    let mut s = desk(Routing::Broadcast, 100);
    // Six chats answered after 90 s each: the usual time is 2 min (rounded up).
    for i in 0..6u32 {
        let v = format!("anon{}@anon.example.com/r", 10 + i);
        s.writes(&v, 10 + i, "V", "Hi");
        s.after_secs(90);
        s.command(ALICE, &format!("!accept {}", i + 1));
        s.drain();
    }
    s.writes(V1, 1, "Ann", "First");
    s.after_secs(11);
    assert_eq!(
        notices(&mut s, V1),
        ["You are next in line. Chats here are usually answered within about 2 min."]
    );
}

// ---- business hours -------------------------------------------------------------------------------

fn with_hours(entries: &[&str]) -> Scenario {
    let mut s = desk(Routing::Broadcast, 3);
    let hours = crate::config::hours::OpeningHours {
        tz: "Europe/Oslo".parse().unwrap(),
        openings: entries
            .iter()
            .flat_map(|e| crate::config::hours::parse_entry(e).unwrap())
            .collect(),
    };
    for site in s.core.config.sites.values_mut() {
        site.desk.hours = Some(hours.clone());
    }
    s
}

#[test]
fn outside_hours_the_visitor_is_told_when_the_desk_opens_and_the_chat_is_still_offered() {
    // The scenario's clock: Sunday 2026-11-22 10:00 UTC, 11:00 in Oslo.
    let mut s = with_hours(&["mon-fri 09:00-17:00"]);
    let room1 = room(1);
    s.sends(&format!("<presence from='{V1}' to='{room1}/Ann'><x xmlns='http://jabber.org/protocol/muc'/></presence>"));
    s.drain();
    s.sends(&format!(
        "<message from='{V1}' to='{room1}' type='groupchat'><body>Hello?</body></message>"
    ));
    let told = notices(&mut s, V1);
    assert_eq!(told.len(), 1, "{told:?}");
    assert!(
        told[0].starts_with("We are closed right now and open again tomorrow at 09:00"),
        "{told:?}"
    );
    s.sends(&format!(
        "<message from='{V1}' to='{room1}' type='groupchat'><body>Anyone?</body></message>"
    ));
    assert!(notices(&mut s, V1).is_empty(), "told once");
    assert_eq!(
        s.offers_to(ALICE_BARE).len(),
        1,
        "offered to whoever is available anyway"
    );
}

#[test]
fn the_closed_notice_names_the_next_opening_and_replaces_nobody_available() {
    let mut s = with_hours(&["mon-fri 09:00-17:00"]);
    for who in [ALICE, BOB] {
        s.sends(&format!(
            "<presence from='{who}' to='{COMPONENT}' type='unavailable'/>"
        ));
    }
    let room1 = room(1);
    s.sends(&format!("<presence from='{V1}' to='{room1}/Ann'><x xmlns='http://jabber.org/protocol/muc'/></presence>"));
    s.drain();
    s.sends(&format!(
        "<message from='{V1}' to='{room1}' type='groupchat'><body>Hello?</body></message>"
    ));
    assert_eq!(
        notices(&mut s, V1),
        ["We are closed right now and open again tomorrow at 09:00 (Europe/Oslo time). Leave your email address here and we will write back; if someone is around, they may answer sooner."]
    );
}

#[test]
fn within_hours_nothing_is_said() {
    let mut s = with_hours(&["sun 10:00-12:00"]);
    s.writes(V1, 1, "Ann", "Hello?");
    s.sends(&format!(
        "<message from='{V1}' to='{}' type='groupchat'><body>Anyone?</body></message>",
        room(1)
    ));
    assert!(notices(&mut s, V1).is_empty());
}
