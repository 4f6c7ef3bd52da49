//! Visitors in staff rosters: which way ("rung") the server lets us write rosters, the roster
//! items we want, and falling back to the next rung when one fails.
//!
//! The rungs, best first: XEP-0356 privileged roster set (stanzas, answered by the server),
//! ejabberd's HTTP admin API (the shell makes the call and reports back), and a presence
//! subscription request that works everywhere but needs the staff member's approval.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::Arc;

use minidom::Element;
use xmpp_parsers::jid::{BareJid, Jid};
use xmpp_parsers::presence::Type as PresenceType;

use super::metrics::Counted;
use super::room::Room;
use super::roster_items::RosterItems;
use super::stanzas;
use super::{id_key, id_text, Core, Effects, IdKey};
use crate::config::{RosterMode, RosterVisitors};
use crate::store::types::SessionState;
use crate::store::StoreOp;
use crate::time::Timestamp;

pub const NS_PRIVILEGE_1: &str = "urn:xmpp:privilege:1";
pub const NS_PRIVILEGE_2: &str = "urn:xmpp:privilege:2";
/// After (re)connecting, how long we listen for the server's privilege advertisement before
/// choosing a rung in `auto` mode.
pub const DETECT_MS: i64 = 1_500;
/// A privileged roster change answered this long after it was sent says the server reads our
/// link late (Prosody 0.12 with its default read size did: docs/benchmark-notes.md, 7e).
pub const PRIVILEGE_LATE_MS: i64 = 3_000;
/// At most one warning about late privileged answers in this long.
pub const LATE_WARN_EVERY_MS: i64 = 300_000;

/// The XEP-0356 namespace a server advertised.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrivilegeNs {
    V1,
    V2,
}

impl PrivilegeNs {
    pub fn of(ns: &str) -> Option<PrivilegeNs> {
        match ns {
            NS_PRIVILEGE_1 => Some(PrivilegeNs::V1),
            NS_PRIVILEGE_2 => Some(PrivilegeNs::V2),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            PrivilegeNs::V1 => NS_PRIVILEGE_1,
            PrivilegeNs::V2 => NS_PRIVILEGE_2,
        }
    }
}

/// The kinds in the ids of privileged roster sets and of admin API calls.
const PRIVILEGE_IDS: &str = "roster";
const API_IDS: &str = "api";

/// The way roster items are written now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rung {
    /// XEP-0356, with the namespace the server advertised.
    Privilege(PrivilegeNs),
    EjabberdApi,
    Subscribe,
    Off,
}

impl Rung {
    /// The kind in the ids of this rung's writes (`Ids::iq_keyed`).
    fn id_kind(self) -> &'static str {
        match self {
            Rung::Privilege(_) => PRIVILEGE_IDS,
            _ => API_IDS,
        }
    }

    /// The rung's name as a metrics label.
    pub fn label(&self) -> &'static str {
        match self {
            Rung::Privilege(_) => "privilege",
            Rung::EjabberdApi => "ejabberd-api",
            Rung::Subscribe => "subscribe",
            Rung::Off => "off",
        }
    }
}

impl fmt::Display for Rung {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rung::Privilege(ns) => write!(f, "privilege ({})", ns.as_str()),
            Rung::EjabberdApi => f.write_str("ejabberd-api"),
            Rung::Subscribe => f.write_str("subscribe"),
            Rung::Off => f.write_str("off"),
        }
    }
}

/// A roster item as frontdesk writes it. One per contact, shared (`Arc`) by the writes into
/// each staff roster: with 20 staff a visitor's label and address are held once, not 20 times,
/// however long the server takes to answer.
#[derive(Debug, PartialEq, Eq)]
pub struct Item {
    pub contact: BareJid,
    pub name: Box<str>,
    pub group: Option<Box<str>>,
}

/// One roster change for one staff member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RosterOp {
    Add {
        staff: BareJid,
        item: Arc<Item>,
    },
    Remove {
        staff: BareJid,
        contact: Arc<BareJid>,
    },
}

impl RosterOp {
    fn staff(&self) -> &BareJid {
        match self {
            RosterOp::Add { staff, .. } | RosterOp::Remove { staff, .. } => staff,
        }
    }

    fn contact(&self) -> &BareJid {
        match self {
            RosterOp::Add { item, .. } => &item.contact,
            RosterOp::Remove { contact, .. } => contact,
        }
    }
}

impl RosterOp {
    /// The XEP-0356 roster set that makes this change, from the component.
    fn privileged_set(&self, desk: &BareJid, id: String) -> xmpp_parsers::iq::Iq {
        let (contact, name, group, remove) = match self {
            RosterOp::Add { item, .. } => (
                &item.contact,
                Some(&*item.name),
                item.group.as_deref(),
                false,
            ),
            RosterOp::Remove { contact, .. } => (&**contact, None, None, true),
        };
        stanzas::roster_set(
            Jid::from(desk.clone()),
            Jid::from(self.staff().clone()),
            id,
            contact,
            name,
            group,
            remove,
        )
    }

    /// Without a way to write rosters: a subscription request the staff member approves, or
    /// the subscription cancelled both ways.
    fn subscription(&self, desk: &BareJid) -> Vec<xmpp_parsers::presence::Presence> {
        match self {
            RosterOp::Add { staff, item } => {
                let (contact, name) = (&item.contact, &item.name);
                let status = if contact == desk {
                    "frontdesk: accept this contact to receive chat requests and send commands (!help).".to_string()
                } else {
                    format!("frontdesk: website visitor {name}. Accept to see their state and chat with them.")
                };
                vec![stanzas::subscribe_request(
                    Jid::from(contact.clone()),
                    Jid::from(staff.clone()),
                    name,
                    &status,
                )]
            }
            RosterOp::Remove { staff, contact } => {
                [PresenceType::Unsubscribe, PresenceType::Unsubscribed]
                    .into_iter()
                    .map(|t| {
                        stanzas::presence_of_type(
                            Jid::from((**contact).clone()),
                            Jid::from(staff.clone()),
                            t,
                        )
                    })
                    .collect()
            }
        }
    }
}

/// A call to ejabberd's admin API for the shell to make: `POST <api>/<command>` with
/// [`ApiCall::args`] as a JSON object. The answer comes back as `Input::ApiDone` with
/// [`ApiCall::id`]. No strings of its own: while ejabberd is behind, thousands wait in the
/// shell's channel, so it holds its id's key and shares the staff address and the item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiCall {
    key: IdKey,
    staff: Arc<BareJid>,
    change: Change,
}

impl ApiCall {
    pub(crate) fn new(key: IdKey, staff: Arc<BareJid>, change: Change) -> ApiCall {
        ApiCall { key, staff, change }
    }

    /// The id the answer must carry back.
    pub fn id(&self) -> String {
        id_text(API_IDS, &self.key)
    }

    pub fn command(&self) -> &'static str {
        match self.change {
            Change::Add(_) => "add_rosteritem",
            Change::Remove(_) => "delete_rosteritem",
        }
    }

    /// The command's string fields, in this order.
    pub fn args(&self) -> impl Iterator<Item = (&'static str, &str)> {
        fn local(j: &BareJid) -> &str {
            j.node().map_or("", |n| n.as_str())
        }
        let (staff, contact) = (&*self.staff, self.change.contact());
        let item = match &self.change {
            Change::Add(item) => Some([
                ("nick", &*item.name),
                ("group", item.group.as_deref().unwrap_or_default()),
                ("subs", "both"),
            ]),
            Change::Remove(_) => None,
        };
        [
            ("localuser", local(staff)),
            ("localhost", staff.domain().as_str()),
            ("user", local(contact)),
            ("host", contact.domain().as_str()),
        ]
        .into_iter()
        .chain(item.into_iter().flatten())
    }

    pub fn arg(&self, name: &str) -> Option<&str> {
        self.args().find(|(k, _)| *k == name).map(|(_, v)| v)
    }
}

/// What one server advertised (XEP-0356 `<privilege/>` message after the handshake).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Advert {
    pub ns: String,
    /// access -> type, e.g. roster -> both, message -> outgoing, presence -> roster.
    pub perms: BTreeMap<String, String>,
}

impl Advert {
    fn can_set_roster(&self) -> bool {
        matches!(
            self.perms.get("roster").map(String::as_str),
            Some("set" | "both")
        )
    }
}

#[derive(Debug)]
pub struct RosterState {
    mode: RosterMode,
    api_configured: bool,
    remove_after_ms: i64,
    /// None while we are still choosing.
    rung: Option<Rung>,
    detect_until: Option<Timestamp>,
    /// Per server domain.
    adverts: BTreeMap<String, Advert>,
    /// Ops waiting for a rung to be chosen.
    queue: Vec<RosterOp>,
    /// Privileged IQs and API calls in flight, by the key of their id.
    inflight: BTreeMap<IdKey, InFlight>,
    /// When we last warned that privileged answers come late.
    late_warned: Option<Timestamp>,
    /// Removals due later: (staff, contact) -> when.
    removals: BTreeMap<(BareJid, BareJid), Timestamp>,
    /// Items we have put into rosters and not removed (mirrors the roster_items table).
    items: RosterItems,
    done: u64,
    failed: u64,
    /// Changes a rung could not make in auto mode, redone by the next rung: not failures.
    fallbacks: Option<Fallback>,
}

/// A write the server has not answered, with the rung it used. Thousands wait while a server
/// is behind, so it is small: the staff member by number (`RosterItems` numbers them), the
/// item shared with the writes into the other staff rosters.
#[derive(Debug)]
struct InFlight {
    staff: u32,
    change: Change,
    rung: Rung,
    sent: Timestamp,
}

/// What a write does to one staff roster, shared with the other writes of its contact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Add(Arc<Item>),
    Remove(Arc<BareJid>),
}

impl Change {
    fn of(op: &RosterOp) -> Change {
        match op {
            RosterOp::Add { item, .. } => Change::Add(Arc::clone(item)),
            RosterOp::Remove { contact, .. } => Change::Remove(Arc::clone(contact)),
        }
    }

    fn contact(&self) -> &BareJid {
        match self {
            Change::Add(item) => &item.contact,
            Change::Remove(contact) => contact,
        }
    }
}

/// The last rung auto mode left, how many changes it handed on, and the last error.
#[derive(Debug, Clone)]
struct Fallback {
    from: Rung,
    count: u64,
    error: String,
}

impl Fallback {
    /// One line for `!diag` that says whether the operator has anything to do.
    fn describe(&self) -> String {
        let why = match self.from {
            // ejabberd 23.01 advertises roster access to components but its roster set fails
            // for them (ejabberd issue #3942, fixed in 23.10): the admin API is the way there.
            Rung::Privilege(_) => "this is expected on ejabberd 23.01 (before 23.10), which advertises XEP-0356 roster access but cannot set rosters for a component of this kind; the admin API or subscriptions do it instead, nothing to fix".to_string(),
            _ => format!("last error: {}", self.error),
        };
        format!(
            "fell back from {} ({} change(s) redone by the next way, none lost): {why}",
            self.from, self.count
        )
    }
}

impl RosterState {
    pub fn new(
        mode: RosterMode,
        api_configured: bool,
        remove_after_ms: i64,
        items: &[(BareJid, BareJid)],
    ) -> RosterState {
        let rung = match mode {
            RosterMode::Off => Some(Rung::Off),
            RosterMode::EjabberdApi => Some(Rung::EjabberdApi),
            RosterMode::Subscribe => Some(Rung::Subscribe),
            // Privilege needs the advertised namespace, auto needs the advertisement.
            RosterMode::Privilege | RosterMode::Auto => None,
        };
        RosterState {
            mode,
            api_configured,
            remove_after_ms,
            rung,
            detect_until: None,
            adverts: BTreeMap::new(),
            queue: Vec::new(),
            inflight: BTreeMap::new(),
            late_warned: None,
            removals: BTreeMap::new(),
            items: RosterItems::from_pairs(items),
            done: 0,
            failed: 0,
            fallbacks: None,
        }
    }

    /// New roster settings from a reloaded config. A new mode starts over the choice of rung
    /// (with the server's adverts already heard); items in place stay.
    pub fn reconfigure(
        &mut self,
        mode: RosterMode,
        api_configured: bool,
        remove_after_ms: i64,
        now: Timestamp,
    ) {
        self.api_configured = api_configured;
        self.remove_after_ms = remove_after_ms;
        if mode == self.mode {
            return;
        }
        let fresh = RosterState::new(mode, api_configured, remove_after_ms, &[]);
        self.mode = mode;
        self.rung = fresh.rung;
        if self.rung.is_none() {
            self.detect_until = Some(now);
        }
    }

    /// Is the item still being written? Its contact's presence waits for it: a presence
    /// that arrives before the roster item is lost on some clients (poezio 0.14 does not
    /// redraw its roster for the later push). `roster_done` sends the presence then.
    pub fn item_pending(&self, staff: &BareJid, contact: &BareJid) -> bool {
        let writes_items = matches!(
            self.rung,
            None | Some(Rung::Privilege(_) | Rung::EjabberdApi)
        );
        writes_items && !self.has_item(staff, contact)
    }

    /// Does the item exist in the staff member's roster, as far as we know?
    pub fn has_item(&self, staff: &BareJid, contact: &BareJid) -> bool {
        self.items.contains(staff, contact)
    }

    /// Anything in rosters at all (for tests of restarts).
    #[cfg(test)]
    pub fn has_items(&self) -> bool {
        !self.items.is_empty()
    }

    #[cfg(test)]
    pub fn item_count(&self) -> usize {
        self.items.len()
    }

    /// The roster lines of `!diag`.
    pub fn diag(&self) -> String {
        let rung = self
            .rung
            .as_ref()
            .map(|r| r.to_string())
            .unwrap_or_else(|| "choosing…".into());
        let adverts = if self.adverts.is_empty() {
            "none".to_string()
        } else {
            self.adverts
                .iter()
                .map(|(srv, a)| {
                    let perms: Vec<String> =
                        a.perms.iter().map(|(k, v)| format!("{k}={v}")).collect();
                    format!("{srv} {} [{}]", a.ns, perms.join(", "))
                })
                .collect::<Vec<_>>()
                .join("; ")
        };
        let pending = self.inflight.len() + self.queue.len();
        let fallback = self
            .fallbacks
            .as_ref()
            .map(|f| format!("\n{}", f.describe()))
            .unwrap_or_default();
        format!(
            "roster: {rung} (mode {:?}; {} done, {} failed, {pending} in flight, {} removals scheduled){fallback}\nprivileges advertised: {adverts}",
            self.mode,
            self.done,
            self.failed,
            self.removals.len(),
        )
    }

    /// A privileged roster change sent at `sent` was answered at `now`. Returns the warning to
    /// log when that took [`PRIVILEGE_LATE_MS`] or more, at most once per
    /// [`LATE_WARN_EVERY_MS`]: staff then see visitors late, and nothing else says why.
    fn late_answer(&mut self, now: Timestamp, sent: Timestamp) -> Option<String> {
        let lag = now.millis().saturating_sub(sent.millis());
        let recent = self
            .late_warned
            .is_some_and(|w| now.millis().saturating_sub(w.millis()) < LATE_WARN_EVERY_MS);
        if lag < PRIVILEGE_LATE_MS || recent {
            return None;
        }
        self.late_warned = Some(now);
        Some(format!(
            "the server answered a privileged roster change {:.1} s after it was sent ({} more in flight), so staff see visitors late: it reads frontdesk's stanzas late. On Prosody 0.12 set network_default_read_size = 8192; otherwise it needs more CPU (docs/operations.md, capacity)",
            lag as f64 / 1000.0,
            self.inflight.len()
        ))
    }

    /// Whether a late privileged answer was warned about (for tests).
    #[cfg(test)]
    pub fn warned_late(&self) -> bool {
        self.late_warned.is_some()
    }

    /// Counts a change that `from` could not make and the next rung redoes.
    fn fell_back(&mut self, from: Rung, error: String) {
        match &mut self.fallbacks {
            Some(f) if f.from == from => {
                f.count += 1;
                f.error = error;
            }
            _ => {
                self.fallbacks = Some(Fallback {
                    from,
                    count: 1,
                    error,
                })
            }
        }
    }

    /// Files a write sent under the id whose key is `key`; the staff member's shared address
    /// and the change are what its admin API call needs.
    fn track(
        &mut self,
        key: IdKey,
        op: &RosterOp,
        rung: Rung,
        sent: Timestamp,
    ) -> (Arc<BareJid>, Change) {
        let (n, staff) = self.items.numbered(op.staff());
        let change = Change::of(op);
        let w = InFlight {
            staff: n,
            change: change.clone(),
            rung,
            sent,
        };
        self.inflight.insert(key, w);
        (staff, change)
    }

    /// The write filed under `key`, no longer in flight.
    fn untrack(&mut self, key: &IdKey) -> Option<(RosterOp, Rung, Timestamp)> {
        let w = self.inflight.remove(key)?;
        // Numbers are never reused, so this finds the staff member it was given for.
        let staff = (**self.items.staff(w.staff)?).clone();
        let op = match w.change {
            Change::Add(item) => RosterOp::Add { staff, item },
            Change::Remove(contact) => RosterOp::Remove { staff, contact },
        };
        Some((op, w.rung, w.sent))
    }

    /// The rung after `r` when it fails at run time (auto mode only falls back).
    fn next_rung(&self, r: &Rung) -> Rung {
        match r {
            Rung::Privilege(_) if self.api_configured => Rung::EjabberdApi,
            Rung::Privilege(_) | Rung::EjabberdApi => Rung::Subscribe,
            Rung::Subscribe | Rung::Off => Rung::Off,
        }
    }
}

/// Parses a `<privilege/>` payload (either namespace).
pub fn parse_advert(payloads: &[Element]) -> Option<Advert> {
    let p = payloads.iter().find(|e| {
        e.name() == "privilege" && (e.ns() == NS_PRIVILEGE_1 || e.ns() == NS_PRIVILEGE_2)
    })?;
    let perms = p
        .children()
        .filter(|c| c.name() == "perm")
        .filter_map(|c| Some((c.attr("access")?.to_string(), c.attr("type")?.to_string())))
        .collect();
    Some(Advert { ns: p.ns(), perms })
}

impl Core {
    /// A server told us what we may do (XEP-0356).
    pub(super) fn privileges_advertised(
        &mut self,
        now: Timestamp,
        server: String,
        advert: Advert,
        out: &mut Effects,
    ) {
        tracing::info!(server = %server, ns = %advert.ns, perms = ?advert.perms, "privileges advertised");
        let can_set = advert.can_set_roster();
        self.roster.adverts.insert(server, advert);
        if self.roster.mode == RosterMode::Privilege && self.roster.rung.is_none() {
            self.choose_rung(now, out);
        }
        // A server slow to advertise (a loaded machine) let `auto` settle for subscription
        // requests, which staff must approve one by one: move up now.
        if self.roster.mode == RosterMode::Auto
            && can_set
            && self.roster.rung == Some(Rung::Subscribe)
        {
            tracing::warn!("roster privileges advertised after the wait for them; moving up from subscription requests");
            self.choose_rung(now, out);
            // Subscription requests may still wait for approval: write every item for sure.
            for name in self.rooms.names_where(|r| self.contact_wanted(r)) {
                self.roster_add_room(now, &name, out);
            }
        }
    }

    /// After the handshake: choose at once where the config says how, else listen a moment
    /// for the privilege advertisement.
    pub(super) fn roster_connected(&mut self, now: Timestamp, out: &mut Effects) {
        // Privileged IQs sent on the old link will never be answered: redo them.
        let lost: Vec<IdKey> = self
            .roster
            .inflight
            .iter()
            .filter(|(_, w)| matches!(w.rung, Rung::Privilege(_)))
            .map(|(key, _)| *key)
            .collect();
        for key in lost {
            if let Some((op, _, _)) = self.roster.untrack(&key) {
                self.roster.queue.push(op);
            }
        }
        if self.roster.rung.is_some() {
            for op in std::mem::take(&mut self.roster.queue) {
                self.roster_apply(now, op, out);
            }
        }
        if self.roster.rung.is_none() {
            self.roster.detect_until = Some(now.plus_millis(DETECT_MS));
        } else {
            self.roster_sync(now, out);
        }
    }

    pub(super) fn roster_tick(&mut self, now: Timestamp, out: &mut Effects) {
        if self.roster.rung.is_none() && self.roster.detect_until.is_some_and(|t| t <= now) {
            self.choose_rung(now, out);
        }
        if self.roster.rung.is_none() {
            return;
        }
        let due: Vec<(BareJid, BareJid)> = self
            .roster
            .removals
            .iter()
            .filter(|(_, t)| **t <= now)
            .map(|(k, _)| k.clone())
            .collect();
        for (staff, contact) in due {
            self.roster
                .removals
                .remove(&(staff.clone(), contact.clone()));
            let contact = Arc::new(contact);
            self.roster_apply(now, RosterOp::Remove { staff, contact }, out);
        }
    }

    fn choose_rung(&mut self, now: Timestamp, out: &mut Effects) {
        self.roster.detect_until = None;
        // parse_advert takes only the two namespaces PrivilegeNs knows.
        let advert = self
            .roster
            .adverts
            .values()
            .find(|a| a.can_set_roster())
            .and_then(|a| PrivilegeNs::of(&a.ns));
        let rung = match (self.roster.mode, advert) {
            (RosterMode::Privilege, Some(ns)) => Rung::Privilege(ns),
            (RosterMode::Privilege, None) => {
                tracing::warn!("roster mode is \"privilege\" but the server advertised no roster permission; trying urn:xmpp:privilege:2 anyway (see docs/configuration.md)");
                Rung::Privilege(PrivilegeNs::V2)
            }
            (_, Some(ns)) => Rung::Privilege(ns),
            (_, None) if self.roster.api_configured => Rung::EjabberdApi,
            (_, None) => Rung::Subscribe,
        };
        tracing::info!(rung = %rung, "roster: visitors reach staff rosters this way");
        self.roster.rung = Some(rung);
        for op in std::mem::take(&mut self.roster.queue) {
            self.roster_apply(now, op, out);
        }
        self.roster_sync(now, out);
    }

    /// Puts the front desk into every staff roster, every open visitor into their site's
    /// staff rosters, and schedules the removal of items whose chat is over (e.g. closed while
    /// we were down).
    fn roster_sync(&mut self, now: Timestamp, out: &mut Effects) {
        self.roster_sync_items(now, out, false);
    }

    /// After a reload: new staff get the front desk and the open visitors of their sites
    /// (once a rung is chosen; until then `choose_rung` does this).
    pub(super) fn roster_resync(&mut self, now: Timestamp, out: &mut Effects) {
        if self.roster.rung.is_some() {
            self.roster_sync_items(now, out, true);
        }
    }

    /// One item to leave one staff roster after the grace period.
    pub(super) fn roster_schedule_removal_for(
        &mut self,
        now: Timestamp,
        staff: &BareJid,
        contact: &BareJid,
    ) {
        if self.roster.has_item(staff, contact) {
            let due = now.plus_millis(self.roster.remove_after_ms);
            self.roster
                .removals
                .insert((staff.clone(), contact.clone()), due);
        }
    }

    /// `missing_only`: the front desk goes only to rosters known to lack it (a reload),
    /// rather than to every one again (a reconnect, when a roster may have lost it).
    fn roster_sync_items(&mut self, now: Timestamp, out: &mut Effects, missing_only: bool) {
        let desk = self.config.component.clone();
        let item = Arc::new(Item {
            contact: desk.clone(),
            name: "Front desk".into(),
            group: None,
        });
        for staff in self.config.all_staff() {
            if missing_only && self.roster.has_item(&staff, &desk) {
                continue;
            }
            let item = Arc::clone(&item);
            self.roster_apply(now, RosterOp::Add { staff, item }, out);
        }
        // Open visitors whose items we know are in place need nothing (a reconnect to a
        // server with many open chats would otherwise redo every item).
        let rooms =
            self.rooms.names_where(|r| {
                self.contact_wanted(r)
                    && self.config.sites.get(r.name().site()).is_some_and(|s| {
                        s.staff.iter().any(|st| !self.roster.has_item(st, r.jid()))
                    })
            });
        for name in &rooms {
            if let Some(r) = self.rooms.get_mut(name) {
                r.mark_rostered();
            }
            self.roster_add_room(now, name, out);
        }
        let open: BTreeSet<BareJid> = self
            .rooms
            .values()
            .filter(|r| self.contact_wanted(r))
            .map(|r| r.jid().clone())
            .collect();
        // Browsing visitors after a reload to "waiting": their items go, and come back if
        // they write.
        for name in self.rooms.names_where(|r| !self.contact_wanted(r)) {
            if let Some(r) = self.rooms.get_mut(&name) {
                r.forget_rostered();
            }
        }
        let stale: Vec<(BareJid, BareJid)> = self
            .roster
            .items
            .pairs()
            .filter(|(_, c)| **c != desk && !open.contains(*c))
            .map(|(s, c)| (s.clone(), c.clone()))
            .collect();
        for (staff, contact) in stale {
            let due = now.plus_millis(self.roster.remove_after_ms);
            self.roster.removals.entry((staff, contact)).or_insert(due);
        }
    }

    /// Should the room's visitor be a contact in its site's staff rosters (`[roster] visitors`)?
    pub(super) fn contact_wanted(&self, room: &Room) -> bool {
        self.config.roster.visitors == RosterVisitors::All || room.state() != SessionState::Inactive
    }

    /// Is the room's contact presence for `staff`: an item in place, or one wanted and not
    /// still being written (a presence before its item is lost on some clients).
    pub(super) fn contact_shown_to(&self, room: &Room, staff: &BareJid) -> bool {
        self.roster.has_item(staff, room.jid())
            || (self.contact_wanted(room) && !self.roster.item_pending(staff, room.jid()))
    }

    /// The visitor contact goes into staff rosters the first time the room wants it: at
    /// arrival with `visitors = "all"`, when the visitor writes (or is taken) with "waiting".
    pub(super) fn roster_admit_room(
        &mut self,
        now: Timestamp,
        name: &crate::address::RoomName,
        out: &mut Effects,
    ) {
        let wanted = self.rooms.get(name).is_some_and(|r| self.contact_wanted(r));
        if wanted && self.rooms.get_mut(name).is_some_and(|r| r.mark_rostered()) {
            self.roster_add_room(now, name, out);
        }
    }

    /// Every staff member of the room's site gets the visitor contact.
    pub(super) fn roster_add_room(
        &mut self,
        now: Timestamp,
        name: &crate::address::RoomName,
        out: &mut Effects,
    ) {
        let Some(room) = self.rooms.get(name) else {
            return;
        };
        let Some(site) = self.config.sites.get(name.site()) else {
            return;
        };
        let nick = room.visitor_nick();
        let item = Arc::new(Item {
            contact: room.jid().clone(),
            name: format!("{nick} ({})", site.name).into(),
            group: Some(format!("{} visitors", site.name).into()),
        });
        let staff: Vec<BareJid> = site.staff.iter().cloned().collect();
        for s in staff {
            self.roster
                .removals
                .remove(&(s.clone(), item.contact.clone()));
            let item = Arc::clone(&item);
            self.roster_apply(now, RosterOp::Add { staff: s, item }, out);
        }
    }

    /// The chat is over: its contact leaves staff rosters after the grace period.
    pub(super) fn roster_schedule_removal(
        &mut self,
        now: Timestamp,
        contact: &BareJid,
        site: &crate::address::SiteId,
    ) {
        let Some(site) = self.config.sites.get(site) else {
            return;
        };
        // Only items that exist: a visitor who never became a contact costs no removal. An
        // add still in flight is scheduled for removal when it completes (`roster_done`).
        let due = now.plus_millis(self.roster.remove_after_ms);
        for s in &site.staff {
            if self.roster.has_item(s, contact) {
                self.roster
                    .removals
                    .insert((s.clone(), contact.clone()), due);
            }
        }
    }

    /// Carries out one roster change on the current rung (or queues it while choosing).
    pub(super) fn roster_apply(&mut self, now: Timestamp, op: RosterOp, out: &mut Effects) {
        let Some(rung) = self.roster.rung else {
            self.roster.queue.push(op);
            return;
        };
        let desk = &self.config.component;
        match rung {
            Rung::Off => {}
            Rung::Privilege(_) => {
                let (id, key) = self.ids.iq_keyed(rung.id_kind());
                out.send(op.privileged_set(desk, id));
                self.roster.track(key, &op, rung, now);
            }
            Rung::EjabberdApi => {
                let key = self.ids.iq_key();
                let (staff, change) = self.roster.track(key, &op, rung, now);
                out.api(ApiCall::new(key, staff, change));
            }
            Rung::Subscribe => {
                for p in op.subscription(desk) {
                    out.send(p);
                }
                out.count(Counted::Roster {
                    rung: rung.label(),
                    ok: true,
                });
                self.roster_done(now, op, out);
            }
        }
    }

    fn roster_done(&mut self, now: Timestamp, op: RosterOp, out: &mut Effects) {
        self.roster.done += 1;
        match op {
            RosterOp::Add { staff, item } => {
                let contact = &item.contact;
                if self.roster.items.insert(&staff, contact) {
                    out.store(StoreOp::RosterAdded {
                        staff: staff.clone(),
                        contact: contact.clone(),
                        at: now,
                    });
                }
                // The item may have arrived after the contact's presence: send it again.
                self.send_contact_presence_to(contact, &staff, out);
                // The chat closed while the item was being written.
                if *contact != self.config.component && !self.contact_is_open(contact) {
                    self.roster_schedule_removal_for(now, &staff, contact);
                }
                // A staff member who logged in before the front desk was in their roster never
                // sent us their presence: ask for it now that the subscription exists (a probe
                // sent before it may have gone unanswered).
                if *contact == self.config.component {
                    self.reprobe_staff(now, &staff, out);
                }
            }
            RosterOp::Remove { staff, contact } => {
                if self.roster.items.remove(&staff, &contact) {
                    out.store(StoreOp::RosterRemoved {
                        staff: staff.clone(),
                        contact: (*contact).clone(),
                    });
                }
                // The removal made the server send presence traffic about the staff member:
                // make sure of where they are.
                self.verify_staff(now, &staff, out);
            }
        }
    }

    fn contact_is_open(&self, contact: &BareJid) -> bool {
        contact
            .node()
            .and_then(|n| crate::address::RoomName::parse(n.as_str()).ok())
            .is_some_and(|n| self.rooms.get(&n).is_some())
    }

    /// An IQ answer to a privileged roster set: ours only if it has the id we gave it and comes
    /// from the address we sent it to (the staff member's bare JID, answered by their server).
    /// An admin API call is never answered by a stanza. Returns false if it was not ours.
    pub(super) fn roster_iq_answered(
        &mut self,
        now: Timestamp,
        id: &str,
        from: Option<&Jid>,
        error: Option<String>,
        out: &mut Effects,
    ) -> bool {
        let Some(key) = id_key(id, PRIVILEGE_IDS) else {
            return false;
        };
        let asked = match self.roster.inflight.get(&key) {
            Some(w) if matches!(w.rung, Rung::Privilege(_)) => self.roster.items.staff(w.staff),
            _ => return false,
        };
        if from != asked.map(|s| Jid::from((**s).clone())).as_ref() {
            return false;
        }
        self.roster_answered(now, &key, error, out)
    }

    /// The shell's report on an admin API call.
    pub(super) fn api_answered(
        &mut self,
        now: Timestamp,
        id: &str,
        error: Option<String>,
        out: &mut Effects,
    ) {
        let Some(key) = id_key(id, API_IDS) else {
            return;
        };
        if matches!(self.roster.inflight.get(&key), Some(w) if w.rung == Rung::EjabberdApi) {
            self.roster_answered(now, &key, error, out);
        }
    }

    /// What an answer to a roster change means: done, or (in auto mode) the rung failed.
    fn roster_answered(
        &mut self,
        now: Timestamp,
        key: &IdKey,
        error: Option<String>,
        out: &mut Effects,
    ) -> bool {
        let Some((op, rung, sent)) = self.roster.untrack(key) else {
            return false;
        };
        // The admin API has its own lag warning in the shell (api_lag.rs).
        if matches!(rung, Rung::Privilege(_)) {
            if let Some(w) = self.roster.late_answer(now, sent) {
                tracing::warn!("{w}");
            }
        }
        out.count(Counted::Roster {
            rung: rung.label(),
            ok: error.is_none(),
        });
        match error {
            None => self.roster_done(now, op, out),
            Some(e) => {
                let current = self.roster.rung;
                if self.roster.mode != RosterMode::Auto {
                    self.roster.failed += 1;
                    tracing::error!(rung = %rung, staff = %op.staff(), contact = %op.contact(), error = %e, "roster change failed (roster mode is fixed in the config, so no fallback)");
                    return true;
                }
                if current == Some(rung) {
                    let next = self.roster.next_rung(&rung);
                    tracing::warn!(failed = %rung, error = %e, next = %next, "roster rung failed; falling back");
                    self.roster.rung = Some(next);
                }
                self.roster.fell_back(rung, e);
                self.roster_apply(now, op, out);
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn late_privileged_answers_warn_once_per_interval() {
        let mut r = RosterState::new(RosterMode::Privilege, false, 3_000, &[]);
        let t0 = Timestamp::from_secs(1_000);
        let at = |ms: i64| t0.plus_millis(ms);
        assert_eq!(r.late_answer(at(PRIVILEGE_LATE_MS - 1), t0), None);
        let w = r.late_answer(at(4_200), t0).unwrap_or_default();
        assert!(w.contains("4.2 s after it was sent"), "{w}");
        assert!(w.contains("network_default_read_size = 8192"), "{w}");
        // Late again within the interval: not repeated.
        assert_eq!(r.late_answer(at(60_000), at(50_000)), None);
        // After the interval, a late answer warns again; one in time still does not.
        let later = at(4_200 + LATE_WARN_EVERY_MS);
        assert_eq!(r.late_answer(later, later.plus_millis(-10)), None);
        assert!(r.late_answer(later, later.plus_millis(-5_000)).is_some());
    }
}
