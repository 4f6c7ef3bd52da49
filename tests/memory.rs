//! Memory stays bounded whatever visitors send: rooms filled with messages of the largest size
//! allowed keep at most `[limits] history_bytes` of text each in memory (the store keeps
//! everything). Measured as the process's resident set, so this runs on its own (one test in
//! this binary).

use std::collections::{BTreeMap, BTreeSet};

use frontdesk::address::SiteId;
use frontdesk::config::{Limits, RosterConfig, RosterMode};
use frontdesk::core::{Core, CoreConfig, Input, SiteInfo};
use frontdesk::store::Snapshot;
use frontdesk::time::Timestamp;
use xmpp_parsers::jid::BareJid;

const ROOMS: usize = 200;
const MESSAGES: usize = 100;

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap()
}

fn stanza(xml: &str) -> Input {
    let el: minidom::Element = xml.parse().unwrap();
    Input::Stanza(xso::transform(&el).unwrap())
}

#[test]
fn rooms_full_of_the_largest_messages_stay_within_the_history_bound() {
    let limits = Limits::default();
    let staff: BTreeSet<BareJid> = [BareJid::new("alice_acme@example.com").unwrap()].into();
    let mut sites = BTreeMap::new();
    sites.insert(
        SiteId::new("acme").unwrap(),
        SiteInfo {
            name: "ACME".into(),
            staff,
            token_secret: None,
            profiles: Default::default(),
            desk: Default::default(),
        },
    );
    let config = CoreConfig {
        component: BareJid::new("chat.example.com").unwrap(),
        sites,
        roster: RosterConfig {
            mode: RosterMode::Off,
            ..Default::default()
        },
        limits,
        admins: BTreeSet::new(),
    };
    let mut now = Timestamp::parse_rfc3339("2026-11-22T10:00:00Z").unwrap();
    let mut core = Core::new(config, Snapshot::default(), now);
    let ns = "xmlns='jabber:component:accept'";
    let body = "y".repeat(limits.body_chars);
    let before = rss_kib();
    for r in 0..ROOMS {
        let room = format!("v{r}_acme@chat.example.com");
        let visitor = format!("anon{r}@anon.example.com/r");
        let join = |who: &str, nick: &str| {
            stanza(&format!("<presence {ns} from='{who}' to='{room}/{nick}'><x xmlns='http://jabber.org/protocol/muc'/></presence>"))
        };
        core.handle(now, join(&visitor, "V"));
        core.handle(now, join("alice_acme@example.com/desk", "Alice"));
        for i in 0..MESSAGES {
            now = now.plus_millis(1);
            let m = stanza(&format!("<message {ns} from='alice_acme@example.com/desk' to='{room}' type='groupchat' id='m{i}'><body>{body}</body></message>"));
            drop(core.handle(now, m));
        }
    }
    let grown_kib = rss_kib().saturating_sub(before);
    let said_kib = (ROOMS * MESSAGES * body.len() / 1024) as u64;
    // The history bound for all these rooms, plus room for the allocator's slack and the
    // rooms themselves; unbounded history would keep everything said (~200 MB).
    let bound_kib =
        (ROOMS * Limits::default().history_bytes.min(1 << 20) / 1024) as u64 + 24 * 1024;
    eprintln!("said {said_kib} KiB in {ROOMS} rooms; resident memory grew {grown_kib} KiB (bound {bound_kib} KiB)");
    assert!(
        grown_kib < bound_kib,
        "resident memory grew {grown_kib} KiB (bound {bound_kib} KiB)"
    );
    assert_eq!(core.open_rooms(), ROOMS);
}
