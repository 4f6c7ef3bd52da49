//! Scenario tests of a reloaded config (`Input::Reconfigure`) and of the monitoring counters.

use super::tests::*;
use super::*;
use crate::config::RosterMode;

const DAVE: &str = "dave_acme@example.com/home";
const DAVE_BARE: &str = "dave_acme@example.com";
const BOB_BARE: &str = "bob_acme@example.com";

fn connected() -> Scenario {
    let mut c = config();
    c.roster.mode = RosterMode::Subscribe;
    let mut s = Scenario::with_config(c);
    s.feed(Input::Connected);
    s.staff_inbox.clear();
    s
}

fn reload(s: &mut Scenario, edit: impl FnOnce(&mut CoreConfig)) {
    let mut c = s.core.config.clone();
    edit(&mut c);
    s.feed(Input::Reconfigure(Box::new(c)));
}

fn acme() -> SiteId {
    SiteId::new("acme").unwrap()
}

fn online(s: &mut Scenario, full: &str) {
    s.sends(&format!("<presence from='{full}' to='{COMPONENT}'/>"));
}

/// Did `to` get a message whose body contains `text`?
fn got_text(s: &Scenario, to: &str, text: &str) -> bool {
    s.staff_inbox
        .iter()
        .any(|e| e.name() == "message" && e.attr("to") == Some(to) && body(e).contains(text))
}

fn body(e: &minidom::Element) -> String {
    e.children()
        .find(|c| c.name() == "body")
        .map(|b| b.text())
        .unwrap_or_default()
}

#[test]
fn a_staff_member_added_by_reload_gets_the_desk_and_the_waiting_chat() {
    let mut s = connected();
    s.visitor_joins();
    s.visitor_says("Hello?");
    s.staff_inbox.clear();
    reload(&mut s, |c| {
        c.sites
            .get_mut(&acme())
            .unwrap()
            .staff
            .insert(BareJid::new(DAVE_BARE).unwrap());
    });
    // Dave is asked for his presence and gets the front desk and the visitor in his roster.
    assert!(s
        .staff_inbox
        .iter()
        .any(|e| e.attr("type") == Some("probe") && e.attr("to") == Some(DAVE_BARE)));
    assert!(s
        .staff_inbox
        .iter()
        .any(|e| e.attr("type") == Some("subscribe")
            && e.attr("to") == Some(DAVE_BARE)
            && e.attr("from") == Some(ROOM)));
    // The chat goes on: nothing reached the visitor, and its state is the same.
    s.receives_nothing();
    assert_eq!(s.state("v1_acme"), Some(SessionState::Active));
    // Once online he is offered the chat that waits.
    online(&mut s, DAVE);
    assert!(got_text(&s, DAVE_BARE, "wants to chat (#1)"));
    assert_eq!(s.core.counters().offers.get(&acme()), Some(&1));
}

#[test]
fn a_staff_member_removed_by_reload_gives_the_chat_back_to_the_queue() {
    let mut s = connected();
    online(&mut s, ALICE);
    online(&mut s, BOB);
    s.visitor_joins();
    s.visitor_says("Hello?");
    s.sends(&format!(
        "<message from='{BOB}' to='{ROOM}' type='chat' id='b1'><body>Bob here.</body></message>"
    ));
    assert_eq!(s.state("v1_acme"), Some(SessionState::Chatting));
    s.drain();
    s.staff_inbox.clear();
    reload(&mut s, |c| {
        c.sites
            .get_mut(&acme())
            .unwrap()
            .staff
            .remove(&BareJid::new(BOB_BARE).unwrap());
    });
    // The visitor sees Bob leave; the chat waits again and Alice is offered it.
    s.eventually_receives(&format!(
        "<presence from='{ROOM}/bob_acme' to='{V1}' type='unavailable'/>"
    ));
    assert_eq!(s.state("v1_acme"), Some(SessionState::Active));
    assert!(got_text(&s, "alice_acme@example.com", "wants to chat (#1)"));
    // Bob is staff nowhere now: the front desk leaves his roster.
    assert!(s
        .staff_inbox
        .iter()
        .any(|e| e.attr("type") == Some("unsubscribed")
            && e.attr("to") == Some(BOB_BARE)
            && e.attr("from") == Some(COMPONENT)));
    // And his replies are no longer taken as staff's.
    s.sends(&format!(
        "<message from='{BOB}' to='{ROOM}' type='chat' id='b2'><body>Still me.</body></message>"
    ));
    assert!(!s
        .messages_stored()
        .iter()
        .any(|(_, _, body)| body == "Still me."));
}

#[test]
fn a_site_removed_by_reload_closes_its_chats_and_the_others_go_on() {
    let mut s = connected();
    s.visitor_joins();
    s.visitor_says("Hello?");
    s.sends(&format!("<presence from='{V2}' to='v2_globex@{COMPONENT}/Gil'><x xmlns='http://jabber.org/protocol/muc'/></presence>"));
    s.drain();
    reload(&mut s, |c| {
        c.sites.remove(&acme());
    });
    assert_eq!(s.state("v1_acme"), None);
    let told: Vec<_> = s.drain();
    assert!(told
        .iter()
        .any(|e| e.attr("to") == Some(V1) && body(e) == reconfigure::SITE_REMOVED_TEXT));
    assert!(s
        .sessions_written()
        .iter()
        .any(|r| r.state == SessionState::Closed));
    assert!(
        s.state("v2_globex").is_some(),
        "the other site's chat goes on"
    );
    // Joining the removed site is refused from now on.
    s.sends(&format!("<presence from='{V1}' to='{ROOM}/Ann'><x xmlns='http://jabber.org/protocol/muc'/></presence>"));
    s.receives(&format!(
        "<presence type='error' from='{ROOM}/Ann' to='{V1}'/>"
    ));
}

#[test]
fn new_limits_apply_from_the_reload_on() {
    let mut s = connected();
    s.visitor_joins();
    reload(&mut s, |c| c.limits.body_chars = 5);
    s.sends(&format!(
        "<message from='{V1}' to='{ROOM}' type='groupchat' id='long'><body>too long</body></message>"
    ));
    s.receives(&format!(
        "<message type='error' from='{ROOM}' to='{V1}' id='long'/>"
    ));
}

#[test]
fn counters_and_gauges_follow_the_chat() {
    let mut s = connected();
    online(&mut s, ALICE);
    s.visitor_joins();
    let g = s.core.gauges();
    assert_eq!(g.sessions.get(&(acme(), "INACTIVE")), Some(&1));
    assert_eq!(g.sessions.get(&(acme(), "ACTIVE")), Some(&0));
    assert_eq!(g.staff_available.get(&acme()), Some(&1));
    assert_eq!(
        g.staff_available.get(&SiteId::new("globex").unwrap()),
        Some(&0)
    );
    s.visitor_says("Hello?");
    s.sends(&format!(
        "<message from='{ALICE}' to='{ROOM}' type='chat' id='a1'><body>Hi</body></message>"
    ));
    // Carol is not staff of acme: refused.
    s.sends(&format!(
        "<presence from='{CAROL}' to='{ROOM}/Carol'><x xmlns='http://jabber.org/protocol/muc'/></presence>"
    ));
    let c = s.core.counters();
    assert_eq!(c.joins.get(&acme()), Some(&1));
    assert_eq!(c.offers.get(&acme()), Some(&1));
    assert_eq!(c.claims.get(&acme()), Some(&1));
    assert_eq!(c.refusals.get("forbidden"), Some(&1), "{:?}", c.refusals);
    assert!(c.roster.get(&("subscribe", "done")).is_some_and(|n| *n > 0));
    let g = s.core.gauges();
    assert_eq!(g.sessions.get(&(acme(), "CHATTING")), Some(&1));
}

#[test]
fn a_reload_to_visitors_waiting_takes_browsing_visitors_out_of_rosters_until_they_write() {
    let mut s = connected();
    // The subscription requests about the visitor contact to each staff member, by type.
    let requests = |s: &mut Scenario| -> Vec<(String, String)> {
        s.staff_inbox
            .drain(..)
            .filter(|e| e.name() == "presence" && e.attr("from") == Some(ROOM))
            .filter_map(|e| Some((e.attr("to")?.to_string(), e.attr("type")?.to_string())))
            .filter(|(_, t)| t.contains("subscribe"))
            .collect()
    };
    s.visitor_joins();
    let alice = BareJid::new("alice_acme@example.com").unwrap();
    let room = BareJid::new(ROOM).unwrap();
    assert!(requests(&mut s)
        .iter()
        .any(|(to, t)| to == "alice_acme@example.com" && t == "subscribe"));
    assert!(s.core.roster.has_item(&alice, &room));
    reload(&mut s, |c| {
        c.roster.visitors = crate::config::RosterVisitors::Waiting
    });
    s.after_secs(61);
    let removed = requests(&mut s);
    assert!(
        removed
            .iter()
            .any(|(to, t)| to == "alice_acme@example.com" && t == "unsubscribe"),
        "{removed:?}"
    );
    assert!(!s.core.roster.has_item(&alice, &room));
    // Writing brings the contact back.
    s.visitor_says("Still there?");
    let back = requests(&mut s);
    assert!(
        back.iter()
            .any(|(to, t)| to == BOB_BARE && t == "subscribe"),
        "{back:?}"
    );
    assert!(s.core.roster.has_item(&alice, &room));
}
