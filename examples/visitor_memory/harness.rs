//! The measurement itself, shared by the example and tests/visitor_memory.rs.

use std::alloc::{GlobalAlloc, Layout, System};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicIsize, Ordering};

use frontdesk::address::SiteId;
use frontdesk::config::{HttpUrl, Limits, RosterConfig, RosterMode, RosterVisitors};
use frontdesk::core::roster::ApiCall;
use frontdesk::core::{Core, CoreConfig, Input, Output, SiteInfo};
use frontdesk::store::Snapshot;
use frontdesk::time::Timestamp;
use xmpp_parsers::iq::Iq;
use xmpp_parsers::jid::BareJid;
use xmpp_parsers::stanza::Stanza;

/// Counts the live heap's bytes; installed as the global allocator by whoever uses this.
pub struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        System.alloc(layout)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        System.dealloc(ptr, layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new: usize) -> *mut u8 {
        LIVE.fetch_add(new as isize - layout.size() as isize, Ordering::Relaxed);
        System.realloc(ptr, layout, new)
    }
}

fn live() -> isize {
    LIVE.load(Ordering::Relaxed)
}

pub const STAFF: usize = 20;
const COMPONENT: &str = "chat.example.com";
const NS: &str = "xmlns='jabber:component:accept'";

fn stanza(xml: &str) -> Option<Input> {
    let el: minidom::Element = xml.parse().ok()?;
    Some(Input::Stanza(xso::transform(&el).ok()?))
}

#[derive(Clone, Copy, Debug)]
pub enum Way {
    Off,
    Api,
    Privilege,
}

fn config(way: Way, visitors: RosterVisitors) -> CoreConfig {
    let staff: BTreeSet<BareJid> = (0..STAFF)
        .filter_map(|i| BareJid::new(&format!("staff{i}@example.com")).ok())
        .collect();
    let site = SiteInfo {
        name: "ACME".into(),
        staff,
        token_secret: None,
        profiles: Default::default(),
        desk: Default::default(),
    };
    let mode = match way {
        Way::Off => RosterMode::Off,
        Way::Api => RosterMode::EjabberdApi,
        Way::Privilege => RosterMode::Privilege,
    };
    CoreConfig {
        component: BareJid::new(COMPONENT).expect("a valid component address"),
        sites: BTreeMap::from([(SiteId::new("acme").expect("a valid site id"), site)]),
        roster: RosterConfig {
            mode,
            ejabberd_api: HttpUrl::parse("http://127.0.0.1:5280/api").ok(),
            visitors,
            ..Default::default()
        },
        limits: Limits::default(),
        admins: BTreeSet::new(),
    }
}

/// Roster writes the server has not answered yet: the API calls the shell's channel holds,
/// the privileged IQs on their way.
#[derive(Default)]
struct Pending {
    api: Vec<ApiCall>,
    iqs: Vec<Iq>,
}

impl Pending {
    fn take(&mut self, outputs: Vec<Output>) {
        for o in outputs {
            match o {
                Output::Api(call) => self.api.push(call),
                Output::Send(Stanza::Iq(iq)) if is_roster_set(&iq) => self.iqs.push(iq),
                _ => {}
            }
        }
    }

    /// The server's answers to these writes, as inputs (ids and addresses only).
    fn answers(&self) -> Vec<Input> {
        let api = self.api.iter().map(|call| Input::ApiDone {
            id: call.id(),
            result: Ok(()),
        });
        let iqs = self.iqs.iter().filter_map(|iq| {
            let to = iq.to().map(|j| j.to_string()).unwrap_or_default();
            let id = iq.id();
            stanza(&format!(
                "<iq {NS} type='result' id='{id}' from='{to}' to='{COMPONENT}'/>"
            ))
        });
        api.chain(iqs).collect()
    }
}

/// Answers every write as the server would, and what those answers ask for next.
fn answer(core: &mut Core, now: Timestamp, mut answers: Vec<Input>) -> usize {
    let mut answered = 0;
    while !answers.is_empty() {
        answered += answers.len();
        let mut next = Pending::default();
        for input in answers {
            next.take(core.handle(now, input));
        }
        answers = next.answers();
    }
    answered
}

fn is_roster_set(iq: &Iq) -> bool {
    matches!(iq, Iq::Set { payload, .. } if payload.is("query", "jabber:iq:roster"))
}

/// Live heap bytes the N visitors added.
pub struct Figures {
    /// Right after they joined, with every roster write still unanswered.
    pub queued: isize,
    /// Of that, what the writes waiting outside the core hold (the shell's channel of
    /// `ApiCall`s, or the IQs on their way).
    pub queue: isize,
    /// After the server answered every write.
    pub steady: isize,
    /// Roster writes made.
    pub writes: usize,
}

fn feed(core: &mut Core, pending: &mut Pending, now: Timestamp, xml: &str) {
    if let Some(input) = stanza(xml) {
        let out = core.handle(now, input);
        pending.take(out);
    }
}

/// N visitors join, each a room of their own, with STAFF staff online.
pub fn run(way: Way, visitors: RosterVisitors, n: usize) -> Figures {
    let mut now = Timestamp::parse_rfc3339("2026-12-04T10:00:00Z").expect("a valid time");
    let mut core = Core::new(config(way, visitors), Snapshot::default(), now);
    let mut pending = Pending::default();
    pending.take(core.handle(now, Input::Connected));
    let advert = format!("<message {NS} from='example.com' to='{COMPONENT}'><privilege xmlns='urn:xmpp:privilege:2'><perm access='roster' type='both'/></privilege></message>");
    feed(&mut core, &mut pending, now, &advert);
    now = now.plus_millis(2_000);
    pending.take(core.handle(now, Input::Tick));
    for i in 0..STAFF {
        let xml = format!("<presence {NS} from='staff{i}@example.com/desk' to='{COMPONENT}'/>");
        feed(&mut core, &mut pending, now, &xml);
    }
    answer(&mut core, now, pending.answers());
    drop(pending);
    let mut pending = Pending::default();
    let before = live();
    for v in 0..n {
        now = now.plus_millis(1);
        let xml = format!("<presence {NS} from='{v:08x}-anon@anon.example.com/web{v}' to='v{v}_acme@{COMPONENT}/Visitor {v}'><x xmlns='http://jabber.org/protocol/muc'/></presence>");
        feed(&mut core, &mut pending, now, &xml);
    }
    let queued = live() - before;
    let answers = pending.answers();
    let at = live();
    drop(pending);
    let queue = at - live();
    let writes = answer(&mut core, now, answers);
    Figures {
        queued,
        queue,
        steady: live() - before,
        writes,
    }
}
