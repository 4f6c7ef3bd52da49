//! History older than memory (replay.rs): a join that wants more than the room holds in memory
//! gets an `Output::Replay` between the presences and the lines from memory, and the lines it
//! stands for come out as memory's would.

use super::replay::Replay;
use super::tests::*;
use super::*;
use crate::store::StoreOp;

/// A room whose visitor said `line 0` .. `line 19` with 40 bytes of history in memory.
fn room_with_older_lines() -> Scenario {
    let mut c = config();
    c.limits.history_bytes = 40;
    let mut s = Scenario::with_config(c);
    s.visitor_joins();
    for i in 0..20 {
        s.now = s.now.plus_millis(1_000);
        s.visitor_says(&format!("line {i:02}"));
    }
    s
}

fn join(s: &mut Scenario, history: &str) -> Vec<Output> {
    s.now = s.now.plus_millis(1_000);
    let el = parse(&format!("<presence from='{ALICE}' to='{ROOM}/Alice'><x xmlns='http://jabber.org/protocol/muc'>{history}</x></presence>"));
    let stanza = xso::transform(&el).unwrap();
    s.core.handle(s.now, Input::Stanza(stanza))
}

fn body_of(o: &Output) -> Option<String> {
    let Output::Send(st) = o else { return None };
    to_element(st)
        .get_child("body", "jabber:component:accept")
        .map(|b| b.text())
}

/// What the store would answer: the stored lines before `r.before`, the newest `r.max`.
fn stored_before(s: &Scenario, r: &Replay) -> Vec<session::MessageRecord> {
    let lines: Vec<_> = s
        .stored
        .iter()
        .filter_map(|op| match op {
            StoreOp::AppendMessage(m) if m.session_id == r.session_id => Some(m.clone()),
            _ => None,
        })
        .take_while(|m| m.stanza_id != r.before)
        .filter(|m| m.role != session::Role::System && r.after.is_none_or(|a| m.at > a))
        .collect();
    let skip = lines.len().saturating_sub(r.max);
    lines.into_iter().skip(skip).collect()
}

#[test]
fn a_join_asking_for_more_than_memory_holds_gets_the_rest_from_the_store_in_place() {
    let mut s = room_with_older_lines();
    let outputs = join(&mut s, "<history maxstanzas='1000'/>");
    // What alice gets, in order, with the Replay in its place.
    let kinds: Vec<&str> = outputs
        .iter()
        .filter_map(|o| match o {
            Output::Send(st) => {
                let e = to_element(st);
                (e.attr("to") == Some(ALICE)).then(|| match e.name() {
                    "presence" => "presence",
                    _ if body_of(o).is_some() => "line",
                    _ if e.has_child("subject", "jabber:component:accept") => "subject",
                    _ => "other",
                })
            }
            Output::Replay(_) => Some("replay"),
            _ => None,
        })
        .collect();
    let at = kinds.iter().position(|k| *k == "replay").expect("a Replay");
    let lines = kinds.iter().filter(|k| **k == "line").count();
    assert!(
        kinds[..at].iter().all(|k| *k == "presence") && at > 0,
        "{kinds:?}"
    );
    assert!(
        kinds[at + 1..=at + lines].iter().all(|k| *k == "line"),
        "{kinds:?}"
    );
    assert_eq!(kinds[at + lines + 1..], ["subject"], "{kinds:?}");
    let Some(Output::Replay(r)) = outputs.iter().find(|o| matches!(o, Output::Replay(_))) else {
        unreachable!()
    };
    let in_memory: Vec<String> = outputs.iter().filter_map(body_of).collect();
    assert!(
        in_memory.len() < 20 && !in_memory.is_empty(),
        "{in_memory:?}"
    );
    assert_eq!(r.max, 1000 - in_memory.len());
    assert_eq!(r.after, None);
    assert_eq!(r.to.to_string(), ALICE);
    // The stored lines come out as memory's do: from room/nick, delayed, with their stanza-id.
    let older = r.stanzas(stored_before(&s, r));
    let all: Vec<String> = older
        .iter()
        .map(|st| {
            to_element(st)
                .get_child("body", "jabber:component:accept")
                .unwrap()
                .text()
        })
        .chain(in_memory)
        .collect();
    let want: Vec<String> = (0..20).map(|i| format!("line {i:02}")).collect();
    assert_eq!(all, want);
    let first = to_element(&older[0]);
    assert_eq!(first.attr("from"), Some(format!("{ROOM}/Ann").as_str()));
    assert!(
        first.has_child("delay", "urn:xmpp:delay"),
        "{}",
        show(&first)
    );
    assert!(
        first.has_child("stanza-id", "urn:xmpp:sid:0"),
        "{}",
        show(&first)
    );
}

#[test]
fn the_default_amount_counts_the_store_and_narrow_requests_need_no_read() {
    let mut s = room_with_older_lines();
    let outputs = join(&mut s, "");
    let in_memory = outputs.iter().filter_map(body_of).count();
    let replay = outputs.iter().find_map(|o| match o {
        Output::Replay(r) => Some(r.clone()),
        _ => None,
    });
    assert_eq!(replay.map(|r| r.max), Some(room::HISTORY_MAX - in_memory));
    // Fewer than memory holds, none at all, or a time window memory does not cover whole.
    for history in [
        "<history maxstanzas='2'/>",
        "<history maxchars='0'/>",
        "<history seconds='3'/>",
    ] {
        let mut s = room_with_older_lines();
        let outputs = join(&mut s, history);
        assert!(
            !outputs.iter().any(|o| matches!(o, Output::Replay(_))),
            "{history}"
        );
    }
}

#[test]
fn a_room_that_kept_everything_asks_the_store_nothing() {
    let mut s = Scenario::new();
    s.visitor_joins();
    s.visitor_says("one");
    s.visitor_says("two");
    let outputs = join(&mut s, "<history maxstanzas='1000'/>");
    assert!(!outputs.iter().any(|o| matches!(o, Output::Replay(_))));
    assert_eq!(outputs.iter().filter_map(body_of).count(), 2);
}
