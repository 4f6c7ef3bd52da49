//! Commands that act inside a staff member's chat: `!say` (a canned reply), `!canned` (the
//! list), `!transfer` (to someone else, or back to the queue).

use xmpp_parsers::jid::{BareJid, FullJid, Jid};

use super::room::post::Said;
use super::session::SessionState;
use super::{Core, Effects};
use crate::address::{RoomName, SiteId};
use crate::time::Timestamp;

impl Core {
    /// `!canned`: the canned replies of the sender's sites.
    pub(super) fn canned_text(&self, staff: &BareJid) -> String {
        let sites = self.staff_sites(staff);
        let mut lines = Vec::new();
        for id in &sites {
            let Some(site) = self.config.sites.get(id) else {
                continue;
            };
            if site.desk.canned.is_empty() {
                continue;
            }
            lines.push(format!("{}:", site.name));
            for c in &site.desk.canned {
                lines.push(format!(
                    "  {} — {}",
                    c.key,
                    crate::render::short(&c.text, 80)
                ));
            }
        }
        if lines.is_empty() {
            return "Your sites have no canned replies ([[sites.canned]] in the config).".into();
        }
        lines.push("Send one with !say KEY (or !say N KEY).".into());
        lines.join("\n")
    }

    /// `!info N`: what is known of the visitor of open chat N.
    pub(super) fn info_text(&self, name: &RoomName) -> String {
        let (Some(room), Some(site)) = (self.rooms.get(name), self.config.sites.get(name.site()))
        else {
            return "That chat is closed.".into();
        };
        let mut lines = vec![format!(
            "#{} {} on {} — {}",
            room.session_id(),
            room.visitor_nick(),
            site.name,
            room.state()
        )];
        let details = room.details().lines();
        if details.is_empty() {
            lines.push("Nothing else is known of this visitor: no signed details in their token, no page or pre-chat answers from the widget.".into());
        }
        lines.extend(details);
        lines.join("\n")
    }

    /// The chats `staff` has now, by number.
    pub(super) fn chats_of(&self, staff: &BareJid) -> Vec<(i64, RoomName)> {
        let mut mine: Vec<(i64, RoomName)> = self
            .rooms
            .values()
            .filter(|r| r.handler().as_ref() == Some(staff))
            .map(|r| (r.session_id(), r.name().clone()))
            .collect();
        mine.sort();
        mine
    }

    /// The chat `n` of `staff` (or their only one), or what is wrong.
    fn own_chat(&self, staff: &BareJid, n: Option<i64>, cmd: &str) -> Result<RoomName, String> {
        let mine = self.chats_of(staff);
        match n {
            Some(n) => {
                let name = self.room_for(n, staff)?;
                if mine.iter().any(|(_, m)| *m == name) {
                    Ok(name)
                } else {
                    Err(format!("#{n} is not your chat: !accept {n} first."))
                }
            }
            None => match mine.as_slice() {
                [] => Err("You have no chat.".into()),
                [(_, name)] => Ok(name.clone()),
                [(n, _), ..] => Err(format!(
                    "You have {} chats: say which, e.g. !{cmd} {n} …",
                    mine.len()
                )),
            },
        }
    }

    /// `!say [N] KEY`: the site's canned text, sent as the staff member into their chat, as
    /// if they had typed it.
    pub(super) fn say(
        &mut self,
        now: Timestamp,
        sender: &FullJid,
        n: Option<i64>,
        key: &str,
        out: &mut Effects,
    ) -> String {
        let staff = sender.to_bare();
        let name = match self.own_chat(&staff, n, "say") {
            Ok(name) => name,
            Err(e) => return e,
        };
        let Some(site) = self.config.sites.get(name.site()) else {
            return "That chat is closed.".into();
        };
        let Some(text) = site
            .desk
            .canned
            .iter()
            .find(|c| c.key == key)
            .map(|c| c.text.clone())
        else {
            return format!(
                "No canned reply {:?} on {}; !canned lists them.",
                crate::render::short(key, 32),
                site.name
            );
        };
        let Some(room) = self.rooms.get(&name) else {
            return "That chat is closed.".into();
        };
        let (id, visitor) = (room.session_id(), room.visitor_nick());
        let Some(author) = room.staff_author(&staff) else {
            return "That chat is closed.".into();
        };
        let said = Said {
            author,
            body: text.clone(),
            lang: Default::default(),
            id: None,
            kept: Vec::new(),
            reply_to: Jid::from(sender.clone()),
        };
        self.post_message(now, &name, said, out);
        format!(
            "Sent to {visitor} (#{id}): {}",
            crate::render::short(&text, 200)
        )
    }

    /// A staff member of `site` named by `who`: their bare JID, its local part, or their
    /// display name (case does not matter).
    fn staff_named(&self, site: &SiteId, who: &str) -> Option<BareJid> {
        let info = self.config.sites.get(site)?;
        let who = who.trim().to_lowercase();
        info.staff
            .iter()
            .find(|s| {
                s.as_str().to_lowercase() == who
                    || s.node().is_some_and(|n| n.as_str().to_lowercase() == who)
                    || info
                        .display_name(s)
                        .is_some_and(|d| d.to_lowercase() == who)
            })
            .cloned()
    }

    /// `!transfer N [staff]`: only the one-to-one staff member who has the chat hands it on,
    /// to a colleague of the same site who is available and under their cap; nobody named
    /// puts it back in the queue (offered to everyone but them).
    pub(super) fn transfer(
        &mut self,
        now: Timestamp,
        sender: &FullJid,
        name: &RoomName,
        to: Option<&str>,
        out: &mut Effects,
    ) -> String {
        let staff = sender.to_bare();
        let Some(room) = self.rooms.get(name) else {
            return "That chat is closed.".into();
        };
        let n = room.session_id();
        let mine = room
            .direct_staff()
            .filter(|d| d.jid.to_bare() == staff)
            .map(|d| d.jid.clone());
        let Some(from) = mine else {
            return match room.staff_present() {
                Some(h) if h.jid.to_bare() == staff => format!("You are in #{n}'s room from a group chat: leave the room to give the chat back."),
                Some(h) => format!("#{n} is handled by {}; only they can transfer it.", h.nick),
                None => format!("#{n} is not yours: !accept {n} first."),
            };
        };
        let target = match to {
            None => None,
            Some(who) => match self.transfer_target(&staff, name, who) {
                Ok(t) => Some(t),
                Err(e) => return e,
            },
        };
        let Some(ctx) = self.config.ctx(now, name) else {
            return "That chat is closed.".into();
        };
        let Some(room) = self.rooms.get_mut(name) else {
            return "That chat is closed.".into();
        };
        room.hand_over(&ctx, &from, target.as_ref(), out);
        tracing::info!(session = n, from = %staff, to = ?target.as_ref().map(|t| t.to_string()), "chat transferred");
        let Some(target) = target else {
            return format!("#{n} is back in the queue: it is offered to the others.");
        };
        let who = target.to_bare();
        self.tell_new_handler(name, &staff, &who, out);
        format!("#{n} is now {who}'s.")
    }

    /// What the visitor wrote so far, from the contact, and a note from the desk, to whom a
    /// chat was handed: an offer's makings, with its own note.
    fn tell_new_handler(
        &mut self,
        name: &RoomName,
        from: &BareJid,
        who: &BareJid,
        out: &mut Effects,
    ) {
        let desk = Jid::from(self.config.component.clone());
        let (Some(room), Some(site)) =
            (self.rooms.get_mut(name), self.config.sites.get(name.site()))
        else {
            return;
        };
        let n = room.session_id();
        let note = format!(
            "{from} handed you chat #{n} with {} on {}. Reply to them; !transcript {n} shows the conversation so far.",
            room.visitor_nick(),
            site.name
        );
        room.offer_to(&desk, who, &note, out);
    }

    /// The resource a transfer to `who` goes to, or why it cannot.
    fn transfer_target(
        &self,
        staff: &BareJid,
        name: &RoomName,
        who: &str,
    ) -> Result<FullJid, String> {
        let site = self
            .config
            .sites
            .get(name.site())
            .map(|s| s.name.as_str())
            .unwrap_or("");
        let shown = crate::render::short(who, 64);
        let Some(to) = self.staff_named(name.site(), who) else {
            return Err(format!(
                "{shown:?} is not staff of {site}: name them by address, local part or name."
            ));
        };
        if &to == staff {
            return Err("That is you.".into());
        }
        if self.at_cap(&to, name.site()).is_some() {
            return Err(format!("{to} has as many chats as they may have."));
        }
        match self.staff.chat_resource(&to) {
            Some(r)
                if self
                    .rooms
                    .get(name)
                    .is_some_and(|r| r.state() == SessionState::Chatting) =>
            {
                Ok(r)
            }
            Some(_) => Err("That chat is not in progress.".into()),
            None => Err(format!("{to} is not available now.")),
        }
    }
}
