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
