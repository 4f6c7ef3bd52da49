//! Staff availability: which staff members are online, with which resources, and whether they
//! take new chats. A model of its own, fed by every presence the server routes to the
//! component from staff, and corrected by asking the server rather than by guessing.
//!
//! - An available presence from a staff resource, to the front desk or to any visitor contact,
//!   means that resource is online with that `<show>` and priority.
//! - An unavailable presence to the front desk from a resource means that resource went
//!   offline; from the bare JID (the server answering a probe for an account with no
//!   session) it means every resource did.
//! - An unavailable presence to a *visitor* contact proves nothing: the server sends one when
//!   that contact's roster item is removed or added while the staff member stays online. It
//!   only makes the model unsure.
//! - When unsure (that, a reconnect, a roster change, and at every sweep for whoever seems
//!   online) the core probes the staff member from the front desk. The server answers for
//!   each online resource; resources that have not answered within [`PROBE_WAIT_MS`] are
//!   taken to be gone.
//! - The server also answers probes for sessions whose client is no longer there: one killed
//!   while its session waits to be resumed (XEP-0198), one cut off without the TCP connection
//!   closing. So each sweep also pings every online resource; one that does not answer
//!   within [`PING_WAIT_MS`] is *silent*: still online for the server, but offered nothing
//!   until it answers a ping again (re-pinged at each sweep and whenever it sends presence).
//!
//! A staff member is available while at least one resource is online, not silent, with no
//! `<show>` or `chat` and a priority of 0 or more (messages to their bare JID reach it).

use std::collections::BTreeMap;

use xmpp_parsers::jid::{BareJid, FullJid, Jid};
use xmpp_parsers::presence::Show;

use crate::time::Timestamp;

/// How long the server has to answer a probe for each online resource.
pub const PROBE_WAIT_MS: i64 = 5_000;
/// How long a staff resource has to answer a ping before it is taken to be silent.
pub const PING_WAIT_MS: i64 = 15_000;

#[derive(Debug, Clone)]
struct Resource {
    show: Option<Show>,
    priority: i8,
    /// Which of the staff member's presences last said this resource is online (a count, so
    /// that "after the probe" is exact even within one millisecond).
    heard: u64,
    /// Did not answer our last ping: offered nothing until it answers one.
    silent: bool,
    /// Our ping in flight to this resource: its IQ id and when it was sent.
    ping: Option<(String, Timestamp)>,
}

impl Resource {
    fn takes_chats(&self) -> bool {
        !self.silent && self.priority >= 0 && matches!(self.show, None | Some(Show::Chat))
    }
}

/// One staff member's connected resources and what they show.
#[derive(Debug, Default)]
struct StaffPresence {
    resources: BTreeMap<String, Resource>,
    /// When the last resource went offline.
    offline_since: Option<Timestamp>,
    /// Presences heard from this staff member so far.
    heard: u64,
    /// A probe in flight (when, and how many presences had been heard then): resources not
    /// heard from since are gone once it times out.
    probed: Option<(Timestamp, u64)>,
    /// When the last probe was sent (for the sweep).
    last_probe: Option<Timestamp>,
}

impl StaffPresence {
    fn available(&self) -> bool {
        self.resources.values().any(Resource::takes_chats)
    }

    fn went_offline(&mut self, now: Timestamp) -> bool {
        if self.resources.is_empty() && self.offline_since.is_none() {
            self.offline_since = Some(now);
            return true;
        }
        false
    }
}

/// What a presence did to the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// The staff member now takes new chats (and did not before).
    BecameAvailable,
    /// Their last resource went offline.
    WentOffline,
    Nothing,
}

/// `!diag`'s staff figures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    pub online: usize,
    pub available: usize,
    /// With a resource that has not answered a ping.
    pub silent: usize,
}

#[derive(Debug, Default)]
pub struct Availability {
    by_staff: BTreeMap<BareJid, StaffPresence>,
}

impl Availability {
    /// A resource of a staff member said it is online.
    pub fn online(&mut self, from: &Jid, show: Option<Show>, priority: i8) -> Change {
        let st = self.by_staff.entry(from.to_bare()).or_default();
        let was = st.available();
        let resource = from.resource().map(|r| r.to_string()).unwrap_or_default();
        st.heard = st.heard.saturating_add(1);
        let heard = st.heard;
        // A silent resource stays silent until it answers a ping: the server's answer to a
        // probe looks the same as the client's own presence.
        let (silent, ping) = st
            .resources
            .remove(&resource)
            .map(|r| (r.silent, r.ping))
            .unwrap_or_default();
        st.resources.insert(
            resource,
            Resource {
                show,
                priority,
                heard,
                silent,
                ping,
            },
        );
        st.offline_since = None;
        if !was && st.available() {
            Change::BecameAvailable
        } else {
            Change::Nothing
        }
    }

    /// The server says a resource (or, from the bare JID, every resource) went offline.
    pub fn offline(&mut self, from: &Jid, now: Timestamp) -> Change {
        let Some(st) = self.by_staff.get_mut(&from.to_bare()) else {
            return Change::Nothing;
        };
        match from.resource() {
            Some(r) => {
                st.resources.remove(r.as_str());
            }
            None => {
                st.resources.clear();
                st.probed = None;
            }
        }
        if st.went_offline(now) {
            Change::WentOffline
        } else {
            Change::Nothing
        }
    }

    /// Starts a probe round for `staff` unless one is in flight. True if the caller should
    /// send the probe now.
    pub fn probe(&mut self, staff: &BareJid, now: Timestamp) -> bool {
        let st = self.by_staff.entry(staff.clone()).or_default();
        if st.probed.is_some() {
            return false;
        }
        st.probed = Some((now, st.heard));
        st.last_probe = Some(now);
        true
    }

    /// Drops the probe round in flight, if any, so a new one can start.
    pub fn forget_probe(&mut self, staff: &BareJid) {
        if let Some(st) = self.by_staff.get_mut(staff) {
            st.probed = None;
        }
    }

    /// Probe rounds that timed out: resources that did not answer are gone. Returns the staff
    /// whose last resource went with them.
    pub fn expire_probes(&mut self, now: Timestamp) -> Vec<BareJid> {
        let mut gone = Vec::new();
        for (jid, st) in &mut self.by_staff {
            let Some((sent, heard)) = st.probed else {
                continue;
            };
            if now.millis().saturating_sub(sent.millis()) < PROBE_WAIT_MS {
                continue;
            }
            st.probed = None;
            let before = st.resources.len();
            st.resources.retain(|_, r| r.heard > heard);
            // Gone since we asked, not since we gave up waiting.
            if st.resources.len() != before && st.went_offline(sent) {
                gone.push(jid.clone());
            }
        }
        gone
    }

    /// Whoever seems online and has not been checked for `sweep_ms`.
    pub fn due_for_sweep(&self, now: Timestamp, sweep_ms: i64) -> Vec<BareJid> {
        self.by_staff
            .iter()
            .filter(|(_, st)| !st.resources.is_empty() && st.probed.is_none())
            .filter(|(_, st)| {
                st.last_probe
                    .is_none_or(|t| now.millis().saturating_sub(t.millis()) >= sweep_ms)
            })
            .map(|(jid, _)| jid.clone())
            .collect()
    }

    /// The full JIDs of `staff`'s resources with no ping in flight (all of them, or only the
    /// silent ones).
    pub fn to_ping(&self, staff: &BareJid, only_silent: bool) -> Vec<FullJid> {
        let Some(st) = self.by_staff.get(staff) else {
            return Vec::new();
        };
        st.resources
            .iter()
            .filter(|(_, r)| r.ping.is_none() && (r.silent || !only_silent))
            .filter_map(|(res, _)| staff.with_resource_str(res).ok())
            .collect()
    }

    /// We pinged `jid` with IQ id `id`.
    pub fn pinged(&mut self, jid: &FullJid, id: String, now: Timestamp) {
        if let Some(r) = self.resource_mut(jid) {
            r.ping = Some((id, now));
        }
    }

    /// An answer to a ping we sent, if it is one: `from` must be the resource we pinged. An
    /// answer that says the session is `gone` removes the resource; any other answer (a
    /// result, or an error from a client without ping) proves it is there.
    pub fn ping_answered(
        &mut self,
        id: &str,
        from: Option<&Jid>,
        gone: bool,
        now: Timestamp,
    ) -> Option<(BareJid, Change)> {
        let from = from?.try_as_full().ok()?;
        let r = self.resource_mut(from)?;
        if r.ping.as_ref().map(|(i, _)| i.as_str()) != Some(id) {
            return None;
        }
        r.ping = None;
        let staff = from.to_bare();
        if gone {
            return Some((staff, self.offline(&Jid::from(from.clone()), now)));
        }
        let st = self.by_staff.get_mut(&staff)?;
        let was = st.available();
        if let Some(r) = st.resources.get_mut(from.resource().as_str()) {
            r.silent = false;
        }
        let change = if !was && st.available() {
            Change::BecameAvailable
        } else {
            Change::Nothing
        };
        Some((staff, change))
    }

    /// Pings unanswered for [`PING_WAIT_MS`]: those resources are silent. Returns the staff
    /// members who took chats before and do not now.
    pub fn expire_pings(&mut self, now: Timestamp) -> Vec<BareJid> {
        let mut lost = Vec::new();
        for (jid, st) in &mut self.by_staff {
            let was = st.available();
            for r in st.resources.values_mut() {
                let late = r.ping.as_ref().is_some_and(|(_, sent)| {
                    now.millis().saturating_sub(sent.millis()) >= PING_WAIT_MS
                });
                if late {
                    r.ping = None;
                    r.silent = true;
                }
            }
            if was && !st.available() {
                lost.push(jid.clone());
            }
        }
        lost
    }

    fn resource_mut(&mut self, jid: &FullJid) -> Option<&mut Resource> {
        self.by_staff
            .get_mut(&jid.to_bare())?
            .resources
            .get_mut(jid.resource().as_str())
    }

    /// Does the model have `staff` online with any resource?
    pub fn seems_online(&self, staff: &BareJid) -> bool {
        self.by_staff
            .get(staff)
            .is_some_and(|p| !p.resources.is_empty())
    }

    pub fn is_available(&self, staff: &BareJid) -> bool {
        self.by_staff.get(staff).is_some_and(|p| p.available())
    }

    /// The resource a chat handed to `staff` goes to: of those that take chats, the one with
    /// the highest priority (the first by name among equals).
    pub fn chat_resource(&self, staff: &BareJid) -> Option<FullJid> {
        let st = self.by_staff.get(staff)?;
        let (res, _) = st
            .resources
            .iter()
            .filter(|(_, r)| r.takes_chats())
            .max_by(|a, b| a.1.priority.cmp(&b.1.priority).then(b.0.cmp(a.0)))?;
        staff.with_resource_str(res).ok()
    }

    /// Since when every resource of `staff` has been offline, if they were seen online.
    pub fn offline_since(&self, staff: &BareJid) -> Option<Timestamp> {
        self.by_staff.get(staff)?.offline_since
    }

    /// After a reconnect nothing is known until staff answer our probes.
    pub fn clear(&mut self) {
        self.by_staff.clear();
    }

    /// Staff members remembered.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.by_staff.len()
    }

    /// Of these staff, how many are online, how many available, and how many have a silent
    /// resource, for `!diag`.
    pub fn counts_of(&self, staff: &std::collections::BTreeSet<BareJid>) -> Counts {
        let of = || {
            self.by_staff
                .iter()
                .filter(|(jid, _)| staff.contains(*jid))
                .map(|(_, p)| p)
        };
        Counts {
            online: of().filter(|p| !p.resources.is_empty()).count(),
            available: of().filter(|p| p.available()).count(),
            silent: of()
                .filter(|p| p.resources.values().any(|r| r.silent))
                .count(),
        }
    }
}
