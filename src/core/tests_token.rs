//! Scenario tests for signed visitor identities: a site with a `token_secret` lets a visitor
//! in only with a token for exactly that visitor and site, and a valid token lets a reloaded
//! page (a new anonymous JID) take the room over at once.

use super::tests::*;
use super::*;
use crate::token::{self, TokenSecret};

const SECRET: &[u8] = b"a test secret of enough bytes";

fn with_tokens() -> Scenario {
    let mut cfg = config();
    for site in cfg.sites.values_mut() {
        if site.name == "ACME Inc." {
            site.token_secret = Some(TokenSecret::new(SECRET));
            site.desk.prechat = crate::core::tests_prechat::fields(&["email?", "company?"]);
        }
    }
    Scenario::with_config(cfg)
}

fn token_for(s: &Scenario, visitor: &str, site: &str, ttl: i64) -> String {
    token::mint(
        &TokenSecret::new(SECRET),
        visitor,
        site,
        s.now.millis() / 1000 + ttl,
    )
}

fn join(from: &str, nick: &str, password: Option<&str>) -> String {
    let pw = password
        .map(|p| format!("<password>{p}</password>"))
        .unwrap_or_default();
    format!("<presence from='{from}' to='{ROOM}/{nick}'><x xmlns='http://jabber.org/protocol/muc'>{pw}</x></presence>")
}

fn refused(nick: &str, to: &str) -> String {
    format!("<presence type='error' from='{ROOM}/{nick}' to='{to}'><error type='auth'><not-authorized xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></presence>")
}

#[test]
fn without_a_token_the_visitor_is_not_authorized() {
    let mut s = with_tokens();
    s.sends(&join(V1, "Ann", None));
    s.receives(&refused("Ann", V1));
    s.receives_nothing();
    assert_eq!(s.state("v1_acme"), None);
}

#[test]
fn a_token_for_another_visitor_or_site_or_an_expired_one_is_not_authorized() {
    let mut s = with_tokens();
    let other_visitor = token_for(&s, "v2", "acme", 3600);
    let other_site = token_for(&s, "v1", "globex", 3600);
    let expired = token_for(&s, "v1", "acme", -1);
    for t in [
        other_visitor.as_str(),
        other_site.as_str(),
        expired.as_str(),
        "garbage",
    ] {
        s.sends(&join(V1, "Ann", Some(t)));
        s.receives(&refused("Ann", V1));
    }
    let all = s.drain();
    assert!(all.is_empty(), "{all:?}");
    assert_eq!(s.state("v1_acme"), None);
}

#[test]
fn a_valid_token_lets_the_visitor_in_and_staff_need_none() {
    let mut s = with_tokens();
    let t = token_for(&s, "v1", "acme", 3600);
    s.sends(&join(V1, "Ann", Some(&t)));
    s.eventually_receives(&format!("<message from='{ROOM}' to='{V1}' type='groupchat'><subject>Chat with ACME Inc.</subject></message>"));
    s.sends(&join(ALICE, "Alice", None));
    s.eventually_receives(&format!(
        "<message from='{ROOM}' to='{ALICE}' type='groupchat'><subject/></message>"
    ));
    assert_eq!(s.state("v1_acme"), Some(SessionState::Chatting));
}

#[test]
fn a_reload_with_a_valid_token_takes_the_room_over_at_once() {
    let mut s = with_tokens();
    let t = token_for(&s, "v1", "acme", 3600);
    s.sends(&join(V1, "Ann", Some(&t)));
    s.drain();
    s.visitor_says("before the reload");
    s.sends(&join(ALICE, "Alice", None));
    s.drain();
    // The page reloads: a new anonymous JID with a fresh token, while V1 still looks present.
    let t2 = token_for(&s, "v1", "acme", 3600);
    s.sends(&join(V2, "Ann", Some(&t2)));
    // Alice sees the old address go and the new one come; the old one is told why.
    s.receives(&format!(
        "<presence type='unavailable' from='{ROOM}/Ann' to='{ALICE}'/>"
    ));
    s.receives(&format!("<presence type='unavailable' from='{ROOM}/Ann' to='{V1}'><x xmlns='http://jabber.org/protocol/muc#user'><item affiliation='none' role='none'><reason>Replaced by a new connection of this visitor</reason></item><status code='110'/></x></presence>"));
    s.eventually_receives(&format!("<message from='{ROOM}/Ann' to='{V2}' type='groupchat'><body>before the reload</body></message>"));
    s.eventually_receives(&format!("<message from='{ROOM}' to='{V2}' type='groupchat'><subject>Chat with ACME Inc.</subject></message>"));
    s.drain();
    assert_eq!(s.state("v1_acme"), Some(SessionState::Chatting));
    // The new address speaks for the visitor; the old one no longer can.
    s.sends(&format!(
        "<message from='{V2}' to='{ROOM}' type='groupchat' id='x'><body>after</body></message>"
    ));
    s.eventually_receives(&format!(
        "<message from='{ROOM}/Ann' to='{ALICE}' type='groupchat'><body>after</body></message>"
    ));
    s.drain();
    s.sends(&format!(
        "<message from='{V1}' to='{ROOM}' type='groupchat' id='y'><body>ghost</body></message>"
    ));
    s.receives(&format!("<message type='error' from='{ROOM}' to='{V1}' id='y'><error type='modify'><not-acceptable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></message>"));
}

#[test]
fn sites_without_a_secret_keep_the_ping_first_rule() {
    let mut s = with_tokens();
    // Globex has no token_secret: the second address waits while the first is pinged.
    let room = format!("v1_globex@{COMPONENT}");
    s.sends(&format!("<presence from='{V1}' to='{room}/Ann'><x xmlns='http://jabber.org/protocol/muc'/></presence>"));
    s.drain();
    s.sends(&format!("<presence from='{V2}' to='{room}/Ann'><x xmlns='http://jabber.org/protocol/muc'/></presence>"));
    s.receives(&format!(
        "<iq type='get' from='{room}' to='{V1}'><ping xmlns='urn:xmpp:ping'/></iq>"
    ));
    s.receives_nothing();
}

// ---- what a join says of the visitor ----------------------------------------------------------------

const PAGE: &str = "<visitor xmlns='urn:frontdesk:visitor:0'><page url='https://shop.example.com/cart' referrer='https://search.example/?q=x' title='Your cart' lang='nb'/><field var='email'>ann@home.example</field><field var='order'>A-1</field><field var='company'>Acme Ltd</field></visitor>";

fn join_with(from: &str, nick: &str, password: &str, extra: &str) -> String {
    format!("<presence from='{from}' to='{ROOM}/{nick}'><x xmlns='http://jabber.org/protocol/muc'><password>{password}</password></x>{extra}</presence>")
}

#[test]
fn signed_details_and_the_page_reach_staff_with_the_offer_and_in_info() {
    let mut s = with_tokens();
    s.sends(&format!("<presence from='{ALICE}' to='{COMPONENT}'/>"));
    let details = token::Details {
        name: Some("Ann Smith".into()),
        email: Some("ann@example.com".into()),
        user_id: Some("4711".into()),
    };
    let t = token::mint_with(
        &TokenSecret::new(SECRET),
        "v1",
        "acme",
        s.now.millis() / 1000 + 60,
        &details,
    );
    s.sends(&join_with(V1, "Ann", &t, PAGE));
    s.drain();
    let stored: Vec<_> = s
        .stored
        .iter()
        .filter_map(|op| match op {
            crate::store::StoreOp::SessionDetails { details, .. } => Some(details.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(stored.len(), 1);
    let keys: Vec<(&str, bool)> = stored[0]
        .iter()
        .map(|d| (d.key.as_str(), d.signed))
        .collect();
    assert_eq!(
        keys,
        [
            ("name", true),
            ("email", true),
            ("user_id", true),
            ("page", false),
            ("referrer", false),
            ("title", false),
            ("language", false),
            ("prechat.email", false),
            ("prechat.company", false),
        ],
        "the widget's answers are kept apart from what the website signed; 'order' was not asked"
    );
    s.staff_inbox.clear();
    s.sends(&format!(
        "<message from='{V1}' to='{ROOM}' type='groupchat'><body>Hi</body></message>"
    ));
    let offer = s.desk_told("alice_acme@example.com");
    assert_eq!(
        offer,
        ["Visitor Ann on ACME Inc. wants to chat (#1). Reply to them, or send !accept 1.\nname: Ann Smith ✓ · email: ann@example.com ✓ · company: Acme Ltd · page: https://shop.example.com/cart (!info 1 for more)"]
    );
    s.sends(&format!(
        "<message from='{ALICE}' to='{COMPONENT}' type='chat'><body>!info 1</body></message>"
    ));
    let info = s.desk_told("alice_acme@example.com");
    assert_eq!(
        info,
        ["#1 Ann on ACME Inc. — ACTIVE\nname: Ann Smith (signed by the website)\nemail: ann@example.com (signed by the website)\nuser id: 4711 (signed by the website)\npage: https://shop.example.com/cart (from the widget)\nreferrer: https://search.example/?q=x (from the widget)\ntitle: Your cart (from the widget)\nlanguage: nb (from the widget)\nasked: email: ann@home.example (from the widget)\nasked: company: Acme Ltd (from the widget)"]
    );
}

#[test]
fn hostile_page_context_is_cut_bounded_and_rendered_safely() {
    let mut s = with_tokens();
    s.sends(&format!("<presence from='{ALICE}' to='{COMPONENT}'/>"));
    let t = token_for(&s, "v1", "acme", 60);
    let long = "x".repeat(5_000);
    let mut fields = String::new();
    for i in 0..30 {
        fields.push_str(&format!("<field var='f{i}'>v</field>"));
    }
    let extra = format!(
        "<visitor xmlns='urn:frontdesk:visitor:0'><page url='{long}' title='Refund approved&#x202E;&#10;carol_beta (staff): ok'/><field var='BAD NAME'>x</field><field var=''>x</field>{fields}</visitor>"
    );
    s.sends(&join_with(V1, "Ann", &t, &extra));
    s.drain();
    let stored = s
        .stored
        .iter()
        .find_map(|op| match op {
            crate::store::StoreOp::SessionDetails { details, .. } => Some(details.clone()),
            _ => None,
        })
        .unwrap();
    let page = stored.iter().find(|d| d.key == "page").unwrap();
    assert_eq!(
        page.value.chars().count(),
        crate::core::details::VALUE_CHARS
    );
    let prechat = stored
        .iter()
        .filter(|d| d.key.starts_with("prechat."))
        .count();
    assert_eq!(prechat, 0, "none of these fields was asked");
    assert!(stored
        .iter()
        .all(|d| d.key != "prechat.BAD NAME" && d.key != "prechat."));
    s.sends(&format!(
        "<message from='{ALICE}' to='{COMPONENT}' type='chat'><body>!info 1</body></message>"
    ));
    let info = s.desk_told("alice_acme@example.com").join("\n");
    assert!(crate::render::is_rendered(&info, true), "{info:?}");
    assert!(
        !info.contains("\ncarol_beta (staff): ok"),
        "a forged line: {info}"
    );
    // Another site's staff cannot ask.
    s.sends(&format!(
        "<message from='{CAROL}' to='{COMPONENT}' type='chat'><body>!info 1</body></message>"
    ));
    assert_eq!(
        s.desk_told("carol_globex@example.com"),
        ["There is no open chat #1 on your sites."]
    );
}
