//! Scenario tests for stanzas the guard replaced because they were over a limit.

use super::tests::*;
use super::*;

#[test]
fn an_oversized_groupchat_is_refused_and_not_stored() {
    let mut s = Scenario::new();
    s.visitor_joins();
    s.stored.clear();
    s.sends(&format!("<message from='{V1}' to='{ROOM}' type='groupchat' id='big'><limit-exceeded xmlns='urn:xmpp:frontdesk:limits:0' limit='stanza-bytes'/></message>"));
    s.receives(&format!(
        "<message type='error' from='{ROOM}' to='{V1}' id='big'><error type='modify'><policy-violation xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></message>"
    ));
    s.receives_nothing();
    assert!(s.stored.is_empty(), "{:?}", s.stored);
    assert_eq!(s.state("v1_acme"), Some(SessionState::Inactive));
}

#[test]
fn oversized_errors_are_never_answered_and_an_oversized_goodbye_still_leaves() {
    let mut s = Scenario::new();
    s.visitor_joins();
    s.sends(&format!("<message from='{V1}' to='{ROOM}' type='error'><limit-exceeded xmlns='urn:xmpp:frontdesk:limits:0' limit='depth'/></message>"));
    s.receives_nothing();
    s.sends(&format!("<presence from='{V1}' to='{ROOM}/Ann' type='unavailable'><limit-exceeded xmlns='urn:xmpp:frontdesk:limits:0' limit='children'/></presence>"));
    s.eventually_receives(&format!(
        "<presence type='unavailable' from='{ROOM}/Ann' to='{V1}'/>"
    ));
    s.after_secs(10);
    assert_eq!(
        s.state("v1_acme"),
        None,
        "the room closed after the visitor left"
    );
}

#[test]
fn oversized_joins_and_iqs_get_policy_violation() {
    let mut s = Scenario::new();
    s.sends(&format!("<presence from='{V1}' to='{ROOM}/Ann'><limit-exceeded xmlns='urn:xmpp:frontdesk:limits:0' limit='token-length'/></presence>"));
    s.receives(&format!("<presence type='error' from='{ROOM}/Ann' to='{V1}'><error type='modify'><policy-violation xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></presence>"));
    assert_eq!(s.state("v1_acme"), None);
    s.sends(&format!("<iq type='set' id='i1' from='{V1}' to='{COMPONENT}'><limit-exceeded xmlns='urn:xmpp:frontdesk:limits:0' limit='depth'/></iq>"));
    s.receives(&format!("<iq type='error' id='i1' from='{COMPONENT}' to='{V1}'><error type='modify'><policy-violation xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>"));
    s.receives_nothing();
}

#[test]
fn a_visitor_writing_too_fast_waits() {
    let mut s = Scenario::new(); // 60 a minute, bursts of 10
    s.visitor_joins();
    for i in 0..10 {
        s.sends(&format!("<message from='{V1}' to='{ROOM}' type='groupchat' id='b{i}'><body>{i}</body></message>"));
    }
    s.drain();
    s.sends(&format!("<message from='{V1}' to='{ROOM}' type='groupchat' id='b10'><body>one too many</body></message>"));
    s.receives(&format!(
        "<message type='error' from='{ROOM}' to='{V1}' id='b10'><error type='wait'><resource-constraint xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></message>"
    ));
    assert_eq!(s.messages_stored().len(), 10);
    // A second later there is room for one more.
    s.after_secs(1);
    s.sends(&format!(
        "<message from='{V1}' to='{ROOM}' type='groupchat' id='b11'><body>later</body></message>"
    ));
    s.receives(&format!("<message from='{ROOM}/Ann' to='{V1}' type='groupchat' id='b11'><body>later</body></message>"));
    // Staff are not limited.
    s.alice_joins();
    for i in 0..15 {
        s.sends(&format!("<message from='{ALICE}' to='{ROOM}' type='groupchat' id='s{i}'><body>{i}</body></message>"));
    }
    assert!(s.drain().iter().all(|e| e.attr("type") != Some("error")));
}

#[test]
fn one_visitor_address_cannot_open_many_rooms_and_the_service_has_a_ceiling() {
    let mut c = config();
    c.limits.rooms_per_visitor = 2;
    c.limits.sessions = 3;
    let mut s = Scenario::with_config(c);
    for r in ["a1_acme", "a2_acme"] {
        s.sends(&format!("<presence from='{V1}' to='{r}@{COMPONENT}/Ann'><x xmlns='http://jabber.org/protocol/muc'/></presence>"));
    }
    s.drain();
    s.sends(&format!("<presence from='{V1}' to='a3_acme@{COMPONENT}/Ann'><x xmlns='http://jabber.org/protocol/muc'/></presence>"));
    s.receives(&format!(
        "<presence type='error' from='a3_acme@{COMPONENT}/Ann' to='{V1}'><error type='wait'><resource-constraint xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></presence>"
    ));
    // Another visitor fills the service; the next new room is refused for everyone.
    s.sends(&format!("<presence from='{V2}' to='b1_acme@{COMPONENT}/Bea'><x xmlns='http://jabber.org/protocol/muc'/></presence>"));
    s.drain();
    s.sends(&format!("<presence from='{V2}' to='b2_globex@{COMPONENT}/Bea'><x xmlns='http://jabber.org/protocol/muc'/></presence>"));
    s.receives(&format!(
        "<presence type='error' from='b2_globex@{COMPONENT}/Bea' to='{V2}'><error type='wait'><resource-constraint xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/><text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'>The chat service is busy right now; please try again in a few minutes.</text></error></presence>"
    ));
    // Staff can still join open rooms.
    s.sends(&format!("<presence from='{ALICE}' to='a1_acme@{COMPONENT}/Alice'><x xmlns='http://jabber.org/protocol/muc'/></presence>"));
    s.eventually_receives(&format!(
        "<message from='a1_acme@{COMPONENT}' to='{ALICE}' type='groupchat'><subject/></message>"
    ));
}

#[test]
fn a_message_the_store_refused_is_not_in_a_later_joiners_history() {
    let mut s = Scenario::new();
    s.visitor_joins();
    s.visitor_says("kept");
    s.visitor_says("lost on a full disk");
    let stanza_id = s
        .stored
        .iter()
        .rev()
        .find_map(|op| match op {
            StoreOp::AppendMessage(m) if m.body == "lost on a full disk" => {
                Some((m.session_id, m.stanza_id.clone()))
            }
            _ => None,
        })
        .expect("the message was handed to the store");
    // The shell tells the core the write failed; the visitor got the or_else error instead.
    s.feed(Input::NotStored {
        session_id: stanza_id.0,
        stanza_id: Some(stanza_id.1),
    });
    s.receives_nothing();
    s.sends(&format!("<presence from='{ALICE}' to='{ROOM}/Alice'><x xmlns='http://jabber.org/protocol/muc'/></presence>"));
    let history: Vec<String> = s
        .drain()
        .iter()
        .filter(|e| e.attr("to") == Some(ALICE) && e.name() == "message")
        .filter_map(|e| {
            e.get_child("body", "jabber:component:accept")
                .map(|b| b.text())
        })
        .collect();
    assert_eq!(history, vec!["kept".to_string()]);
}

/// The soak test's question asked of the core alone: after many visitors came, chatted with
/// staff, were limited and left, nothing about them is left in memory.
#[test]
fn nothing_is_left_behind_after_many_sessions_close() {
    let mut cfg = config();
    cfg.roster.mode = crate::config::RosterMode::Subscribe;
    cfg.roster.remove_after_secs = 5;
    let mut s = Scenario::with_config(cfg);
    s.sends(&format!("<presence from='{ALICE}' to='{COMPONENT}'/>"));
    s.drain();
    for i in 0..300 {
        let v = format!("anon{i}@anon.example.com/r");
        let room = format!("soak{i}_acme@{COMPONENT}");
        s.sends(&format!("<presence from='{v}' to='{room}/V{i}'><x xmlns='http://jabber.org/protocol/muc'/></presence>"));
        for n in 0..12 {
            // Over the burst: some of these are refused and the offender remembered.
            s.sends(&format!("<message from='{v}' to='{room}' type='groupchat' id='m{n}'><body>{n}</body></message>"));
        }
        if i == 0 {
            // Otherwise the emptiness checked below would prove nothing.
            assert!(s.core.open_rooms() != 0 && s.core.roster.has_items());
        }
        if i % 10 == 0 {
            s.sends(&format!("<presence from='{ALICE}' to='{room}/Alice'><x xmlns='http://jabber.org/protocol/muc'/></presence>"));
            s.sends(&format!(
                "<presence from='{ALICE}' to='{room}/Alice' type='unavailable'/>"
            ));
        }
        s.sends(&format!(
            "<presence from='{v}' to='{room}/V{i}' type='unavailable'/>"
        ));
        s.drain();
        s.staff_inbox.clear();
    }
    s.after_secs(10);
    s.after_secs(10);
    s.drain();
    let c = &s.core;
    assert!(c.rooms.is_empty(), "{} rooms left", c.rooms.len());
    assert!(c.pings.is_empty(), "{} pings left", c.pings.len());
    assert!(c.queries.is_empty());
    assert_eq!(c.staff.len(), 1, "only alice's presence is remembered");
    assert!(
        !c.roster.has_items(),
        "{} roster items left",
        c.roster.item_count()
    );
    assert!(s.sessions_written().len() >= 300);
}

#[test]
fn a_visitor_cannot_take_a_staff_account_name() {
    let mut s = Scenario::new();
    // Alice's account is alice_acme@example.com; full-width letters fold to the same name.
    s.sends(&format!("<presence from='{V1}' to='{ROOM}/\u{FF41}lice_ACME'><x xmlns='http://jabber.org/protocol/muc'/></presence>"));
    // (The address parser's resourceprep has already made it "alice_ACME".)
    s.receives(&format!("<presence type='error' from='{ROOM}/alice_ACME' to='{V1}'><error type='cancel'><conflict xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></presence>"));
    s.receives_nothing();
    assert_eq!(s.state("v1_acme"), None);
    // Staff of another site are not reserved here.
    s.sends(&format!("<presence from='{V1}' to='{ROOM}/carol_globex'><x xmlns='http://jabber.org/protocol/muc'/></presence>"));
    s.eventually_receives(&format!("<message from='{ROOM}' to='{V1}' type='groupchat'><subject>Chat with ACME Inc.</subject></message>"));
}

#[test]
fn a_session_the_store_could_not_open_is_closed_at_once() {
    let mut s = Scenario::new();
    s.visitor_joins();
    s.feed(Input::NotStored {
        session_id: 1,
        stanza_id: None,
    });
    s.receives(&format!(
        "<message from='{ROOM}' to='{V1}' type='groupchat'><body>{UNSAVED_TEXT}</body></message>"
    ));
    s.receives(&format!("<message from='{ROOM}' to='{V1}' type='groupchat'><body>The chat is now closed.</body></message>"));
    s.eventually_receives(&format!("<presence type='unavailable' from='{ROOM}/Ann' to='{V1}'><x xmlns='http://jabber.org/protocol/muc#user'><destroy/><status code='110'/></x></presence>"));
    s.after_secs(10);
    assert_eq!(s.state("v1_acme"), None, "the room is gone");
}

#[test]
fn typing_notifications_are_relayed_but_cannot_flood_staff() {
    let mut s = Scenario::new(); // 60 messages a minute, bursts of 10: typing gets 3x that
    s.visitor_joins();
    s.alice_joins();
    s.stored.clear();
    let composing = format!("<message from='{V1}' to='{ROOM}' type='groupchat'><composing xmlns='http://jabber.org/protocol/chatstates'/></message>");
    s.sends(&composing);
    s.receives(&format!("<message from='{ROOM}/Ann' to='{ALICE}' type='groupchat'><composing xmlns='http://jabber.org/protocol/chatstates'/></message>"));
    for _ in 0..100 {
        s.sends(&composing);
    }
    let relayed = s
        .drain()
        .iter()
        .filter(|e| e.attr("to") == Some(ALICE))
        .count();
    assert_eq!(
        relayed, 29,
        "30 in a burst (the first above included), then dropped silently"
    );
    assert!(s
        .stored
        .iter()
        .all(|op| !matches!(op, StoreOp::AppendMessage(_))));
    // A real message still goes through: typing has its own bucket.
    s.sends(&format!("<message from='{V1}' to='{ROOM}' type='groupchat' id='q'><body>still here</body></message>"));
    s.eventually_receives(&format!("<message from='{ROOM}/Ann' to='{ALICE}' type='groupchat'><body>still here</body></message>"));
    // And the bucket refills with time.
    s.after_secs(60);
    s.drain();
    s.sends(&composing);
    s.receives(&format!("<message from='{ROOM}/Ann' to='{ALICE}' type='groupchat'><composing xmlns='http://jabber.org/protocol/chatstates'/></message>"));
}

// ---- rates that hold across leaving and joining again (issue 17) --------------------------------

#[test]
fn leaving_and_joining_again_does_not_refill_the_message_rate() {
    let mut s = Scenario::new();
    s.visitor_joins();
    let burst = crate::config::Limits::default().message_burst;
    for i in 0..burst {
        s.sends(&format!("<message from='{V1}' to='{ROOM}' type='groupchat' id='m{i}'><body>{i}</body></message>"));
    }
    s.drain();
    s.sends(&format!(
        "<presence from='{V1}' to='{ROOM}/Ann' type='unavailable'/>"
    ));
    s.sends(&format!("<presence from='{V1}' to='{ROOM}/Ann'><x xmlns='http://jabber.org/protocol/muc'/></presence>"));
    s.drain();
    s.sends(&format!(
        "<message from='{V1}' to='{ROOM}' type='groupchat' id='again'><body>more</body></message>"
    ));
    s.receives(&format!("<message type='error' id='again' to='{V1}'><error type='wait'><resource-constraint xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></message>"));
}

#[test]
fn presence_floods_are_cut_to_the_rate_and_statuses_to_their_length() {
    let mut s = Scenario::new();
    s.visitor_joins();
    s.alice_joins();
    let long = "x".repeat(30_000);
    for i in 0..100 {
        s.sends(&format!(
            "<presence from='{V1}' to='{ROOM}/Ann'><status>{i}{long}</status></presence>"
        ));
    }
    let to_alice: Vec<_> = s
        .drain()
        .into_iter()
        .filter(|e| e.name() == "presence" && e.attr("to") == Some(ALICE))
        .collect();
    let l = crate::config::Limits::default();
    assert_eq!(
        to_alice.len(),
        l.presence_burst as usize,
        "only the burst reaches staff"
    );
    for p in &to_alice {
        let status = p
            .get_child("status", "jabber:component:accept")
            .map(|e| e.text())
            .unwrap_or_default();
        assert_eq!(status.chars().count(), l.status_chars);
    }
    // An unrelated room is unaffected.
    s.sends(&format!("<presence from='{V2}' to='v2_acme@{COMPONENT}/Bo'><x xmlns='http://jabber.org/protocol/muc'/></presence>"));
    s.eventually_receives(&format!(
        "<message from='v2_acme@{COMPONENT}' to='{V2}'><subject/></message>"
    ));
}

#[test]
fn a_join_flood_from_one_address_is_refused_past_the_burst() {
    let mut s = Scenario::new();
    let l = crate::config::Limits::default();
    let mut refused = 0;
    for i in 0..(l.join_burst + 5) {
        s.sends(&format!("<presence from='{V1}' to='{ROOM}/Ann{i}'><x xmlns='http://jabber.org/protocol/muc'/></presence>"));
        s.sends(&format!(
            "<presence from='{V1}' to='{ROOM}/Ann{i}' type='unavailable'/>"
        ));
        refused += s
            .drain()
            .iter()
            .filter(|e| show(e).contains("joining too often"))
            .count();
    }
    assert_eq!(refused, 5);
    // Staff are not limited.
    s.sends(&format!("<presence from='{V2}' to='{ROOM}/Bea'><x xmlns='http://jabber.org/protocol/muc'/></presence>"));
    for _ in 0..(l.join_burst + 5) {
        s.sends(&format!("<presence from='{ALICE}' to='{ROOM}/Alice'><x xmlns='http://jabber.org/protocol/muc'/></presence>"));
        s.sends(&format!(
            "<presence from='{ALICE}' to='{ROOM}/Alice' type='unavailable'/>"
        ));
    }
    assert!(!s
        .drain()
        .iter()
        .any(|e| show(e).contains("joining too often")));
}

#[test]
fn many_offenders_make_a_bounded_number_of_log_lines() {
    let mut o = limits::Offenders::default();
    let now = Timestamp::parse_rfc3339("2026-11-22T10:00:00Z").unwrap();
    let logged = (0..1000)
        .filter(|i| {
            o.should_log(
                &BareJid::new(&format!("anon{i}@anon.example.com")).unwrap(),
                now,
            )
        })
        .count();
    assert_eq!(logged, 20);
    // The next minute starts a new budget.
    let later = now.plus_millis(60_000);
    assert!(o.should_log(&BareJid::new("late@anon.example.com").unwrap(), later));
}

#[test]
fn a_rooms_history_in_memory_stays_within_its_bytes() {
    let mut s = Scenario::new();
    s.visitor_joins();
    s.alice_joins();
    let l = crate::config::Limits::default();
    let big = "y".repeat(l.body_chars);
    for i in 0..60 {
        s.now = s.now.plus_millis(60_000); // within the rate
        s.sends(&format!("<message from='{ALICE}' to='{ROOM}' type='groupchat' id='b{i}'><body>{big}</body></message>"));
        s.drain();
    }
    let room = s
        .core
        .rooms
        .get(&RoomName::parse("v1_acme").unwrap())
        .unwrap();
    assert!(
        room.history_bytes() <= l.history_bytes,
        "{}",
        room.history_bytes()
    );
    assert!(room.history_bytes() >= big.len(), "the newest is kept");
}

/// The count of a visitor's rooms comes from the rooms it was noted in: leaving one frees a
/// place, parked joins count, rejoining the same room does not, and once the rooms are gone
/// nothing of them is left behind in the index.
#[test]
fn a_visitors_rooms_are_counted_as_it_comes_and_goes() {
    let mut c = config();
    c.limits.rooms_per_visitor = 2;
    let mut s = Scenario::with_config(c);
    let join = |s: &mut Scenario, room: &str| {
        s.sends(&format!("<presence from='{V1}' to='{room}@{COMPONENT}/Ann'><x xmlns='http://jabber.org/protocol/muc'/></presence>"));
        s.drain().iter().all(|e| e.attr("type") != Some("error"))
    };
    assert!(join(&mut s, "a1_acme"));
    assert!(join(&mut s, "a2_acme"));
    assert!(join(&mut s, "a2_acme"), "a rejoin is not another room");
    assert!(!join(&mut s, "a3_acme"));
    s.sends(&format!(
        "<presence type='unavailable' from='{V1}' to='a1_acme@{COMPONENT}/Ann'/>"
    ));
    s.drain();
    assert!(join(&mut s, "a3_acme"), "leaving a1 made a place");
    assert!(!join(&mut s, "a4_acme"));
    for room in ["a2_acme", "a3_acme"] {
        s.sends(&format!(
            "<presence type='unavailable' from='{V1}' to='{room}@{COMPONENT}/Ann'/>"
        ));
    }
    s.drain();
    assert_eq!(
        s.core.rooms.noted(),
        (0, 0),
        "a visitor who left everywhere is not noted"
    );
    assert!(join(&mut s, "a4_acme"));
    s.after_secs(24 * 3600);
    s.sends(&format!(
        "<presence type='unavailable' from='{V1}' to='a4_acme@{COMPONENT}/Ann'/>"
    ));
    s.after_secs(24 * 3600);
    s.drain();
    assert_eq!(s.core.rooms.len(), 0, "every room closed");
    assert_eq!(s.core.rooms.noted(), (0, 0));
}
