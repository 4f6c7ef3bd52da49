//! The core is deterministic: the same inputs give the same outputs, byte for byte, whatever
//! order its state was built in. Cores built in one process get different hash seeds, so a
//! `HashMap` iterated on an output path shows up here as a difference.

use super::tests::{config, to_element, COMPONENT};
use super::*;
use crate::core::session::{OccupantRecord, Role, SessionRecord};

const ROOMS: i64 = 24;

fn snapshot(reversed: bool) -> Snapshot {
    let t = Timestamp::parse_rfc3339("2026-11-22T09:00:00Z").unwrap();
    let mut sessions = Vec::new();
    let mut occupants = Vec::new();
    for i in 1..=ROOMS {
        let state = if i % 2 == 0 {
            SessionState::Active
        } else {
            SessionState::Inactive
        };
        sessions.push(SessionRecord {
            id: i,
            room: BareJid::new(&format!("v{i}_acme@{COMPONENT}")).unwrap(),
            site: SiteId::new("acme").unwrap(),
            visitor: format!("v{i}"),
            state,
            staff: None,
            visitor_jid: Some(FullJid::new(&format!("anon{i}@anon.example.com/r")).unwrap()),
            created_at: t,
            updated_at: t,
            closed_at: None,
        });
        // Every third room comes back empty; the others with their visitor.
        if i % 3 != 0 {
            occupants.push(OccupantRecord {
                session_id: i,
                jid: FullJid::new(&format!("anon{i}@anon.example.com/r")).unwrap(),
                nick: format!("V{i}"),
                role: Role::Visitor,
                joined_at: t,
                direct: false,
            });
        }
    }
    if reversed {
        sessions.reverse();
        occupants.reverse();
    }
    Snapshot {
        next_session_id: ROOMS + 1,
        sessions,
        occupants,
        ..Default::default()
    }
}

fn stanza(xml: &str) -> Input {
    let el: minidom::Element = xml.parse().unwrap();
    Input::Stanza(xso::transform(&el).unwrap())
}

/// Everything the core does for a run of inputs, as text.
fn run(core: &mut Core) -> Vec<String> {
    let t = Timestamp::parse_rfc3339("2026-11-22T10:00:00Z").unwrap();
    let ns = "xmlns='jabber:component:accept'";
    let inputs = vec![
        (0, Input::Connected),
        (
            1,
            stanza(&format!(
                "<presence {ns} from='alice_acme@example.com/desk' to='{COMPONENT}'/>"
            )),
        ),
        (
            2,
            stanza(&format!(
                "<presence {ns} from='bob_acme@example.com/laptop' to='{COMPONENT}'/>"
            )),
        ),
        (11, Input::Tick),
        (12, Input::Disconnected),
        (13, Input::Connected),
        (30, Input::Tick),
        (200, Input::Tick),
    ];
    let mut seen = Vec::new();
    for (secs, input) in inputs {
        for o in core.handle(t.plus_millis(secs * 1000), input) {
            seen.push(match o {
                Output::Send(s) => String::from(&to_element(&s)),
                other => format!("{other:?}"),
            });
        }
    }
    seen
}

#[test]
fn the_same_inputs_give_the_same_outputs_whatever_the_order_state_was_built_in() {
    let now = Timestamp::parse_rfc3339("2026-11-22T10:00:00Z").unwrap();
    let mut a = Core::new(config(), snapshot(false), now);
    let mut b = Core::new(config(), snapshot(true), now);
    let (out_a, out_b) = (run(&mut a), run(&mut b));
    // The run did something worth comparing: pings to every visitor, offers, closings.
    assert!(out_a.iter().filter(|s| s.contains("urn:xmpp:ping")).count() >= 16);
    assert!(out_a.iter().any(|s| s.contains("wants to chat")));
    assert!(out_a.iter().any(|s| s.contains("UpdateSession")));
    for (i, (x, y)) in out_a.iter().zip(&out_b).enumerate() {
        assert_eq!(x, y, "output {i} differs");
    }
    assert_eq!(out_a.len(), out_b.len());
}
