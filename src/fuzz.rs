//! The fuzzing entry point: arbitrary bytes become stanzas from visitors, staff and strangers,
//! pass through the same byte guard and parser as on the component link, and go into a core.
//! Used by the cargo-fuzz target in `fuzz/` (run by hand, it needs nightly) and by the
//! `fuzz_corpus` test, which replays the committed seeds and mutations of them on stable.
//!
//! Input format: records separated by a NUL byte (never valid in XML). A record is one byte
//! choosing the sender (the server stamps `from`, so the fuzzer cannot forge it either), one
//! byte of time to let pass (that many seconds minus one; 0xFF means "the link went down, or
//! came back"), and the stanza's bytes.

use std::collections::{BTreeMap, BTreeSet};

use minidom::Element;
use xmpp_parsers::jid::BareJid;

use crate::address::SiteId;
use crate::config::{Limits, RosterConfig, RosterMode};
use crate::core::{Core, CoreConfig, Input, Output, SiteInfo};
use crate::shell::guard::{Scanner, StanzaLimits};
use crate::shell::Event;
use crate::store::Snapshot;
use crate::time::Timestamp;

const SENDERS: [&str; 7] = [
    "anon1@anon.example.com/r1",
    "anon2@anon.example.com/r2",
    "alice_acme@example.com/desk",
    "bob_acme@example.com/laptop",
    "carol_globex@example.com/pc",
    "mallory@example.com/x",
    "example.com",
];
const HEAD: &[u8] = b"<?xml version='1.0'?><stream:stream xmlns='jabber:component:accept' xmlns:stream='http://etherx.jabber.org/streams' id='f' from='chat.example.com'>";

fn config() -> Option<CoreConfig> {
    let site = |name: &str, staff: &[&str]| -> Option<SiteInfo> {
        Some(SiteInfo {
            name: name.into(),
            staff: staff
                .iter()
                .map(|s| BareJid::new(s).ok())
                .collect::<Option<BTreeSet<_>>>()?,
            token_secret: None,
            profiles: Default::default(),
            desk: Default::default(),
        })
    };
    let mut sites = BTreeMap::new();
    sites.insert(
        SiteId::new("acme").ok()?,
        site(
            "ACME Inc.",
            &["alice_acme@example.com", "bob_acme@example.com"],
        )?,
    );
    // Globex requires visitor tokens, so the token check is fuzzed too.
    let mut globex = site("Globex", &["carol_globex@example.com"])?;
    globex.token_secret = Some(crate::token::TokenSecret::new(
        b"fuzzing-token-secret".to_vec(),
    ));
    sites.insert(SiteId::new("globex").ok()?, globex);
    Some(CoreConfig {
        component: BareJid::new("chat.example.com").ok()?,
        sites,
        // Subscribe exercises the staff side without an HTTP helper.
        roster: RosterConfig {
            mode: RosterMode::Subscribe,
            ..Default::default()
        },
        admins: Default::default(),
        // Small limits, so that the fuzzer reaches them.
        limits: Limits {
            stanza_bytes: 4096,
            depth: 8,
            children: 16,
            body_chars: 200,
            nick_chars: 16,
            rooms_per_visitor: 2,
            sessions: 6,
            sessions_per_site: 4,
            messages_per_minute: 30,
            message_burst: 5,
            ..Limits::default()
        },
    })
}

/// What one stanza's bytes become after the guard and the parser, as on the link.
fn to_input(from: &str, bytes: &[u8]) -> Option<Input> {
    let mut scanner = Scanner::new(StanzaLimits {
        max_bytes: 4096,
        max_depth: 8,
        max_children: 16,
        max_token: 1024,
    });
    let mut out = Vec::with_capacity(bytes.len() + HEAD.len());
    scanner.feed(HEAD, &mut out);
    let start = out.len();
    scanner.feed(bytes, &mut out);
    scanner.feed(b"</stream:stream>", &mut out);
    let body = out.get(start..)?;
    let text = std::str::from_utf8(body).ok()?;
    let text = text.strip_suffix("</stream:stream>").unwrap_or(text).trim();
    // One stanza, in the stream's namespace, with the server's `from`.
    let end = text.find([' ', '>', '/'])?;
    let (name, rest) = text.split_at(end);
    let name = name.strip_prefix('<')?;
    let mut el: Element = format!("<{name} xmlns='jabber:component:accept'{rest}")
        .parse()
        .ok()?;
    set_attr(&mut el, "from", from)?;
    if el.attr("to").is_none() {
        set_attr(&mut el, "to", "chat.example.com")?;
    }
    // The same reader as on the link (fast path or full parser), on the stamped stanza.
    let frame = crate::shell::guard::Frame::Element(String::from(&el).into_bytes());
    match crate::shell::reader::event(frame) {
        Event::Stanza(s) => Some(Input::Stanza(s)),
        Event::Invalid(bad) => Some(Input::Invalid(bad)),
        _ => None,
    }
}

fn sender(byte: u8) -> &'static str {
    SENDERS[usize::from(byte.wrapping_sub(1)) % SENDERS.len()]
}

fn set_attr(el: &mut Element, name: &str, value: &str) -> Option<()> {
    let name = minidom::rxml::NcName::try_from(name).ok()?;
    el.set_attr(minidom::rxml::Namespace::NONE, name, value.to_string());
    Some(())
}

/// Feeds one fuzz input to a fresh core. Panics only if the core does, which is the bug the
/// fuzzer looks for; it also checks that every stanza the core sends can be serialised and
/// that nothing is addressed to the component itself.
pub fn feed(data: &[u8]) {
    let Some(config) = config() else { return };
    let mut now = Timestamp(1_795_000_000_000);
    let mut core = Core::new(config, Snapshot::default(), now);
    let mut asked = Asked::default();
    asked.note(&core.handle(now, Input::Connected));
    let mut connected = true;
    for record in data.split(|&b| b == 0) {
        let [who, dt, stanza @ ..] = record else {
            continue;
        };
        if *dt == 0xFF {
            let input = if connected {
                Input::Disconnected
            } else {
                Input::Connected
            };
            connected = !connected;
            check(core.handle(now, input), &mut asked);
            continue;
        }
        if *dt > 1 {
            now = Timestamp(now.0 + (i64::from(*dt) - 1) * 1000);
            check(core.handle(now, Input::Tick), &mut asked);
        }
        let from = sender(*who);
        if let Some(input) = to_input(from, stanza) {
            let foreign = asked.answered_by_someone_else(&input);
            let dropped = core.unasked_answers();
            check(core.handle(now, input), &mut asked);
            assert!(
                !foreign || core.unasked_answers() == dropped + 1,
                "an answer from an address we did not ask was taken"
            );
        }
    }
}

/// The requests the core sent: id -> the address asked.
#[derive(Default)]
struct Asked(BTreeMap<String, String>);

impl Asked {
    fn note(&mut self, outputs: &[Output]) {
        for o in outputs {
            if let Output::Send(xmpp_parsers::stanza::Stanza::Iq(
                xmpp_parsers::iq::Iq::Get { id, to, .. } | xmpp_parsers::iq::Iq::Set { id, to, .. },
            )) = o
            {
                let to = to.as_ref().map(|t| t.to_string()).unwrap_or_default();
                self.0.insert(id.clone(), to);
            }
        }
    }

    /// Is this an answer to one of our requests, from an address other than the one asked?
    fn answered_by_someone_else(&self, input: &Input) -> bool {
        let Input::Stanza(xmpp_parsers::stanza::Stanza::Iq(iq)) = input else {
            return false;
        };
        let (id, from) = match iq {
            xmpp_parsers::iq::Iq::Result { id, from, .. }
            | xmpp_parsers::iq::Iq::Error { id, from, .. } => (id, from),
            _ => return false,
        };
        let from = from.as_ref().map(|f| f.to_string()).unwrap_or_default();
        self.0.get(id).is_some_and(|to| *to != from)
    }
}

fn check(outputs: Vec<Output>, asked: &mut Asked) {
    asked.note(&outputs);
    for o in outputs {
        if let Output::Send(s) = o {
            let el: Element = xso::transform(&s).unwrap_or_else(|e| {
                panic!("the core sent a stanza that cannot be serialised: {e}")
            });
            assert_ne!(
                el.attr("to"),
                Some("chat.example.com"),
                "the core sent a stanza to itself: {el:?}"
            );
            check_text(&el);
        }
    }
}

/// What the desk says and contacts show staff is rendered text (see `crate::render`).
fn check_text(el: &Element) {
    let from = el.attr("from").unwrap_or("");
    let desk = from.split('/').next() == Some("chat.example.com");
    let contact = from.ends_with("/frontdesk");
    if !desk && !contact {
        return;
    }
    for child in el
        .children()
        .filter(|c| c.name() == "body" || c.name() == "status")
    {
        let text = child.text();
        assert!(
            crate::render::is_rendered(&text, desk && child.name() == "body"),
            "raw text to staff: {el:?}"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seeds() -> Vec<Vec<u8>> {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/core_stanzas");
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        files.sort();
        files
            .iter()
            .map(|p| std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display())))
            .collect()
    }

    #[test]
    fn fuzz_corpus_seeds_run_and_reach_the_core() {
        let seeds = seeds();
        assert!(seeds.len() >= 5, "the seed corpus is missing");
        for seed in &seeds {
            feed(seed);
        }
        // The seeds must mean something: every stanza in them reaches the core as a stanza.
        for seed in &seeds {
            for record in seed.split(|&b| b == 0) {
                let [who, _, stanza @ ..] = record else {
                    panic!("a record without sender and time")
                };
                if stanza.is_empty() {
                    continue;
                }
                let from = sender(*who);
                let input = to_input(from, stanza);
                assert!(
                    matches!(input, Some(Input::Stanza(_))),
                    "{:?} became {input:?}",
                    String::from_utf8_lossy(stanza)
                );
            }
        }
    }

    /// A cheap stand-in for the fuzzer on stable: deterministic byte mutations of the seeds.
    #[test]
    fn fuzz_corpus_mutations_do_not_panic() {
        let seeds = seeds();
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for i in 0..3000 {
            let mut data = seeds[i % seeds.len()].clone();
            for _ in 0..(1 + next() % 8) {
                if data.is_empty() {
                    break;
                }
                let at = (next() as usize) % data.len();
                match next() % 4 {
                    0 => data[at] = next() as u8,
                    1 => {
                        data.remove(at);
                    }
                    2 => data.insert(at, b"<>'\"&/\0x"[(next() % 8) as usize]),
                    _ => {
                        let end = (at + (next() as usize % 64)).min(data.len());
                        let piece = data[at..end].to_vec();
                        data.splice(at..at, piece);
                    }
                }
            }
            feed(&data);
        }
    }
}
