//! A new config while running (`Input::Reconfigure`, from SIGHUP). The shell has read and
//! checked the file, and kept what cannot change without a restart (the component's address,
//! the server, the store). Here the core works out what the change means for the people in
//! the chats, deterministically:
//!
//! * a site that is gone: its open chats are closed, their people told why;
//! * staff removed from a site: the chats of that site they hold (one-to-one or joined) go
//!   back to the queue, as when staff go offline for too long, and are offered to the others;
//!   visitor contacts of that site leave their roster after the usual grace period, and the
//!   front desk too if they are staff nowhere now;
//! * new staff (and new sites): the front desk and the open visitors go into their rosters and
//!   they are asked for their presence, so they get offers as soon as they are available;
//! * limits, names, tokens and roster settings simply apply from now on.

use std::collections::BTreeSet;

use xmpp_parsers::jid::{BareJid, FullJid};

use super::roster::RosterOp;
use super::session::Role;
use super::{Core, CoreConfig, Effects};
use crate::address::{RoomName, SiteId};
use crate::time::Timestamp;

/// Told to the people of a chat whose site was taken out of the config.
pub const SITE_REMOVED_TEXT: &str =
    "This chat was closed because the website it belongs to is no longer served here.";

impl Core {
    pub(super) fn reconfigure(&mut self, now: Timestamp, new: CoreConfig, out: &mut Effects) {
        let old_staff: BTreeSet<(SiteId, BareJid)> = staff_pairs(&self.config);
        let new_staff: BTreeSet<(SiteId, BareJid)> = staff_pairs(&new);
        for name in self
            .rooms
            .names_where(|r| !new.sites.contains_key(r.name().site()))
        {
            tracing::warn!(room = %name, "site removed from the config: closing its chat");
            self.close_chat(now, &name, Some(SITE_REMOVED_TEXT), out);
        }
        let removed: Vec<&(SiteId, BareJid)> = old_staff
            .difference(&new_staff)
            .filter(|(site, _)| new.sites.contains_key(site))
            .collect();
        for (site, staff) in &removed {
            self.staff_leaves_site(now, site, staff, out);
        }
        let added: Vec<BareJid> = new_staff
            .difference(&old_staff)
            .map(|(_, s)| s.clone())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        self.config = new;
        self.staff_nicks = super::nick::staff_nicks(&self.config);
        self.roster.reconfigure(
            self.config.roster.mode,
            self.config.roster.ejabberd_api.is_some(),
            (self.config.roster.remove_after_secs as i64).saturating_mul(1000),
            now,
        );
        self.drop_desk_items_of_former_staff(now, removed.iter().map(|(_, s)| s), out);
        if self.connected_at.is_some() {
            for s in &added {
                self.probe_staff(now, s, out);
                self.send_contact_presence_to(&self.config.component.clone(), s, out);
            }
            self.roster_resync(now, out);
        }
        tracing::info!(
            sites = self.config.sites.len(),
            staff_added = added.len(),
            staff_removed = removed.len(),
            "config reloaded"
        );
    }

    /// The staff member is no longer staff of `site`: the chats they hold there go back to
    /// the queue, and its visitor contacts leave their roster after the grace period.
    fn staff_leaves_site(
        &mut self,
        now: Timestamp,
        site: &SiteId,
        staff: &BareJid,
        out: &mut Effects,
    ) {
        let held: Vec<(RoomName, FullJid)> = self
            .rooms
            .values()
            .filter(|r| r.name().site() == site)
            .flat_map(|r| {
                r.occupants()
                    .filter(|o| o.role == Role::Staff && o.jid.to_bare() == *staff)
                    .map(|o| (r.name().clone(), o.jid.clone()))
                    .collect::<Vec<_>>()
            })
            .collect();
        for (name, jid) in held {
            tracing::info!(room = %name, staff = %jid, "staff member removed from the site: the chat waits again");
            self.occupant_lost(now, &name, &jid, out);
        }
        let contacts: Vec<BareJid> = self
            .rooms
            .values()
            .filter(|r| r.name().site() == site)
            .map(|r| r.jid().clone())
            .collect();
        for contact in contacts {
            self.roster_schedule_removal_for(now, staff, &contact);
        }
    }

    /// Who is staff of no site any more loses the front desk from their roster now.
    fn drop_desk_items_of_former_staff<'a>(
        &mut self,
        now: Timestamp,
        removed: impl Iterator<Item = &'a BareJid>,
        out: &mut Effects,
    ) {
        let still: BTreeSet<BareJid> = self.config.all_staff().into_iter().collect();
        let gone: BTreeSet<BareJid> = removed.filter(|s| !still.contains(*s)).cloned().collect();
        for staff in gone {
            self.staff.forget(&staff);
            if self.roster.has_item(&staff, &self.config.component) {
                let contact = std::sync::Arc::new(self.config.component.clone());
                self.roster_apply(now, RosterOp::Remove { staff, contact }, out);
            }
        }
    }
}

fn staff_pairs(c: &CoreConfig) -> BTreeSet<(SiteId, BareJid)> {
    c.sites
        .iter()
        .flat_map(|(id, s)| s.staff.iter().map(move |j| (id.clone(), j.clone())))
        .collect()
}
