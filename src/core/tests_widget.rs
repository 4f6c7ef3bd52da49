//! Scenario tests of what the web widget gets beyond XEP-0045 (`widget.rs`): the site's
//! availability in the room's disco#info, staff avatars, the visitor's "End chat", and
//! XEP-0333 markers relayed like chat states.

use super::tests::*;
use super::*;
use crate::config::StaffProfile;

const MARKERS: &str = "urn:xmpp:chat-markers:0";

fn disco_says(s: &mut Scenario, id: &str, available: bool) {
    s.sends(&format!("<iq type='get' from='{V1}' to='{ROOM}' id='{id}'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>"));
    s.receives(&format!(
        "<iq type='result' from='{ROOM}' to='{V1}' id='{id}'><query xmlns='http://jabber.org/protocol/disco#info'>
        <x xmlns='jabber:x:data' type='result'>
        <field var='FORM_TYPE' type='hidden'><value>urn:frontdesk:widget:0</value></field>
        <field var='staff-available' type='boolean'><value>{available}</value></field></x></query></iq>"
    ));
}

#[test]
fn the_rooms_disco_info_says_whether_staff_are_available_and_nothing_more() {
    let mut s = Scenario::new();
    disco_says(&mut s, "d1", false);
    s.sends(&format!("<presence from='{ALICE}' to='{COMPONENT}'/>"));
    s.drain();
    disco_says(&mut s, "d2", true);
    s.sends(&format!(
        "<iq type='get' from='{V1}' to='{ROOM}' id='d3'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>"
    ));
    let answer = show(&s.drain()[0]);
    assert!(!answer.contains("alice"), "{answer}");
    s.sends(&format!(
        "<presence from='{ALICE}' to='{COMPONENT}'><show>away</show></presence>"
    ));
    s.drain();
    disco_says(&mut s, "d4", false);
}

#[test]
fn a_staff_members_avatar_goes_with_their_presence_to_the_visitor() {
    let mut s = Scenario::new();
    let alice = BareJid::new("alice_acme@example.com").unwrap();
    for site in s.core.config.sites.values_mut() {
        site.profiles.insert(
            alice.clone(),
            StaffProfile {
                name: Some("Alice".into()),
                avatar: Some("https://example.com/alice.png".into()),
                max_chats: None,
            },
        );
    }
    s.visitor_joins();
    s.sends(&format!("<presence from='{ALICE}' to='{ROOM}/Alice'><x xmlns='http://jabber.org/protocol/muc'/></presence>"));
    let got = s.drain();
    let to_visitor: Vec<String> = got
        .iter()
        .filter(|e| e.name() == "presence" && e.attr("to") == Some(V1))
        .map(show)
        .collect();
    assert_eq!(to_visitor.len(), 1, "{to_visitor:?}");
    assert!(
        to_visitor[0].contains("urn:frontdesk:widget:0")
            && to_visitor[0].contains("avatar='https://example.com/alice.png'"),
        "{to_visitor:?}"
    );
    // The visitor's own presence carries none.
    assert!(!got
        .iter()
        .filter(|e| e.attr("from") == Some(&format!("{ROOM}/Ann")))
        .any(|e| show(e).contains("profile")));
    // A visitor who joins later sees it too.
    s.sends(&format!(
        "<presence from='{V1}' to='{ROOM}/Ann' type='unavailable'/>"
    ));
    s.drain();
    s.sends(&format!("<presence from='{V2}' to='{ROOM}/Ann'><x xmlns='http://jabber.org/protocol/muc'/></presence>"));
    let again = s.drain();
    assert!(again
        .iter()
        .any(|e| e.attr("from") == Some(&format!("{ROOM}/Alice"))
            && e.attr("to") == Some(V2)
            && show(e).contains("https://example.com/alice.png")));
}

#[test]
fn end_chat_from_the_visitor_closes_the_session_for_everyone() {
    let mut s = Scenario::new();
    s.visitor_joins();
    s.visitor_says("Thanks, bye");
    s.alice_joins();
    s.sends(&format!("<presence from='{V1}' to='{ROOM}/Ann' type='unavailable'><end-chat xmlns='urn:frontdesk:widget:0'/></presence>"));
    s.eventually_receives(&format!("<message from='{ROOM}' to='{ALICE}' type='groupchat'><body>Ann ended the chat.</body></message>"));
    s.eventually_receives(&format!("<message from='{ROOM}' to='{V1}' type='groupchat'><body>The chat is now closed.</body></message>"));
    s.eventually_receives(&format!("<presence from='{ROOM}/Ann' to='{V1}' type='unavailable'><x xmlns='http://jabber.org/protocol/muc#user'><destroy/></x></presence>"));
    s.drain();
    assert_eq!(s.state("v1_acme"), None);
    assert_eq!(s.last_session_row().state, SessionState::Closed);
}

#[test]
fn a_plain_leave_or_staffs_end_chat_does_not_close() {
    let mut s = Scenario::new();
    s.visitor_joins();
    s.visitor_says("Hello");
    s.alice_joins();
    // Staff cannot end the chat this way (they have !finish).
    s.sends(&format!("<presence from='{ALICE}' to='{ROOM}/Alice' type='unavailable'><end-chat xmlns='urn:frontdesk:widget:0'/></presence>"));
    s.drain();
    assert_eq!(s.state("v1_acme"), Some(SessionState::Active));
    s.sends(&format!(
        "<presence from='{V1}' to='{ROOM}/Ann' type='unavailable'/>"
    ));
    s.drain();
    assert!(!s
        .messages_stored()
        .iter()
        .any(|(_, _, b)| b.contains("ended the chat")));
}

#[test]
fn displayed_markers_are_relayed_both_ways_and_not_stored() {
    let mut s = Scenario::new();
    s.visitor_joins();
    s.alice_joins();
    s.stored.clear();
    s.sends(&format!("<message from='{V1}' to='{ROOM}' type='groupchat'><displayed xmlns='{MARKERS}' id='1-2'/></message>"));
    s.receives(&format!("<message from='{ROOM}/Ann' to='{ALICE}' type='groupchat'><displayed xmlns='{MARKERS}' id='1-2'/></message>"));
    s.receives_nothing();
    s.sends(&format!("<message from='{ALICE}' to='{ROOM}' type='groupchat'><displayed xmlns='{MARKERS}' id='1-1'/></message>"));
    s.receives(&format!("<message from='{ROOM}/Alice' to='{V1}' type='groupchat'><displayed xmlns='{MARKERS}' id='1-1'/></message>"));
    s.receives_nothing();
    assert!(s.stored.is_empty());
    // Anything else without a body is still dropped.
    s.sends(&format!(
        "<message from='{V1}' to='{ROOM}' type='groupchat'><x xmlns='urn:example'/></message>"
    ));
    s.receives_nothing();
}
