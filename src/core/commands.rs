//! The front desk: Seshat-style `!commands` sent as messages to the component's domain, the
//! same actions as XEP-0050 ad-hoc commands, and the server's privilege advertisement (which
//! also arrives as a message to the domain).

use minidom::Element;
use xmpp_parsers::jid::{BareJid, FullJid, Jid};
use xmpp_parsers::message::{Message, MessageType};
use xmpp_parsers::stanza_error::{DefinedCondition, ErrorType};

use super::roster::parse_advert;
use super::stanzas::{self, NS_COMMANDS, NS_DATA};
use super::{Core, Out, Output};
use crate::address::RoomName;
use crate::store::{MessageRow, Role, SessionRow, SessionState};
use crate::time::Timestamp;

/// Longest transcript `!transcript` sends in one message, in lines (the newest are kept).
const TRANSCRIPT_MAX_LINES: usize = 200;

pub const HELP: &str = "Front desk commands:
!waiting — chats waiting on your sites
!accept N — take chat N
!cancel N — decline waiting chat N (the visitor is told, the chat is closed)
!finish [N] — close your chat (or chat N)
!status — your current chats
!transcript N — the transcript of chat N
!diag — what the front desk sees (roster method, privileges, uptime, open chats)
To answer a visitor, write to them in your roster.";

/// A parsed command (names are case-insensitive).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Help,
    Waiting,
    Accept(i64),
    Cancel(i64),
    Finish(Option<i64>),
    Status,
    Transcript(i64),
    Diag,
}

/// The ad-hoc command nodes, with their names, in menu order.
pub const ADHOC: &[(&str, &str)] = &[
    ("waiting", "Waiting chats"),
    ("accept", "Accept a chat"),
    ("cancel", "Decline a waiting chat"),
    ("finish", "Finish a chat"),
    ("status", "My chats"),
    ("transcript", "Transcript of a chat"),
    ("diag", "Diagnostics"),
    ("help", "Help"),
];

pub fn parse(text: &str) -> Result<Command, String> {
    let mut words = text.split_whitespace();
    let name = words
        .next()
        .unwrap_or("")
        .trim_start_matches('!')
        .to_lowercase();
    let arg = words.next();
    let n = |a: Option<&str>| -> Result<i64, String> {
        let a = a.ok_or_else(|| format!("!{name} needs a chat number, e.g. !{name} 12"))?;
        a.trim_start_matches('#')
            .parse::<i64>()
            .map_err(|_| format!("{a:?} is not a chat number"))
    };
    Ok(match name.as_str() {
        "help" | "" => Command::Help,
        "waiting" => Command::Waiting,
        "accept" => Command::Accept(n(arg)?),
        "cancel" => Command::Cancel(n(arg)?),
        "finish" => Command::Finish(arg.map(|a| n(Some(a))).transpose()?),
        "status" => Command::Status,
        "transcript" => Command::Transcript(n(arg)?),
        "diag" => Command::Diag,
        other => {
            return Err(format!(
                "Unknown command !{other}. Send !help for the list."
            ))
        }
    })
}

/// Where a command's answer goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplyTo {
    Chat(BareJid),
    Adhoc {
        to: Jid,
        iq_id: String,
        node: String,
    },
}

/// A store read the core asked for; the answer comes back as `Input::QueryDone`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Query {
    Transcript { id: u64, session_id: i64 },
}

/// What a store read returned.
pub type TranscriptResult = Result<Option<(SessionRow, Vec<MessageRow>)>, String>;

fn ago(now: Timestamp, then: Timestamp) -> String {
    let s = (now.millis() - then.millis()).max(0) / 1000;
    match s {
        0..=59 => format!("{s} s"),
        60..=3599 => format!("{} min", s / 60),
        _ => format!("{} h {} min", s / 3600, (s % 3600) / 60),
    }
}

fn short(text: &str, n: usize) -> String {
    let mut s: String = text.chars().take(n).collect();
    if text.chars().count() > n {
        s.push('…');
    }
    s.replace('\n', " ")
}

impl Core {
    /// A message to the component's domain.
    pub(super) fn handle_message_to_desk(&mut self, now: Timestamp, m: Message, out: &mut Out) {
        let Some(from) = m.from.clone() else { return };
        // The server's XEP-0356 advertisement comes from a domain (no node).
        if from.node().is_none() {
            if let Some(advert) = parse_advert(&m.payloads) {
                self.privileges_advertised(now, from.domain().to_string(), advert, out);
            }
            return;
        }
        let bare = from.to_bare();
        let body = m
            .get_best_body(vec![])
            .map(|(_, b)| b.trim().to_string())
            .unwrap_or_default();
        if body.is_empty() {
            return; // chat states to the desk
        }
        if self.staff_sites(&bare).is_empty() {
            out.send(stanzas::message_error(
                Jid::from(self.config.component.clone()),
                from,
                m.id,
                stanzas::error(
                    ErrorType::Auth,
                    DefinedCondition::Forbidden,
                    "The front desk takes commands from staff only.",
                ),
            ));
            return;
        }
        let Ok(sender) = FullJid::try_from(from) else {
            return;
        };
        if m.type_ == MessageType::Groupchat {
            return;
        }
        let reply = ReplyTo::Chat(bare.clone());
        if !body.starts_with('!') {
            self.desk_says(&bare, "I am the front desk. Send !help for the commands; write to a visitor in your roster to answer them.", out);
            return;
        }
        match parse(&body) {
            Ok(cmd) => self.run_command(now, &sender, cmd, reply, out),
            Err(e) => self.desk_says(&bare, &e, out),
        }
    }

    fn reply(&self, to: &ReplyTo, text: &str, out: &mut Out) {
        match to {
            ReplyTo::Chat(j) => self.desk_says(j, text, out),
            ReplyTo::Adhoc { to, iq_id, node } => out.send(stanzas::iq_result(
                Jid::from(self.config.component.clone()),
                to.clone(),
                iq_id.clone(),
                Some(adhoc_completed(node, text)),
            )),
        }
    }

    /// The room of session `n`, if it is open and on one of `staff`'s sites.
    fn room_for(&self, n: i64, staff: &BareJid) -> Result<RoomName, String> {
        let sites = self.staff_sites(staff);
        match self.rooms.values().find(|r| r.session.id == n) {
            Some(r) if sites.contains(r.name.site()) => Ok(r.name.clone()),
            _ => Err(format!("There is no open chat #{n} on your sites.")),
        }
    }

    pub(super) fn run_command(
        &mut self,
        now: Timestamp,
        sender: &FullJid,
        cmd: Command,
        reply: ReplyTo,
        out: &mut Out,
    ) {
        let staff = sender.to_bare();
        tracing::info!(staff = %staff, command = ?cmd, "command");
        let text = match cmd {
            Command::Help => HELP.to_string(),
            Command::Waiting => self.waiting_text(now, &staff),
            Command::Status => self.status_text(now, &staff),
            Command::Diag => self.diag_text(now),
            Command::Accept(n) => match self.room_for(n, &staff) {
                Err(e) => e,
                Ok(name) => self.accept(now, &name, sender, out),
            },
            Command::Cancel(n) => match self.room_for(n, &staff) {
                Err(e) => e,
                Ok(name) => match self.rooms.get(&name).and_then(|r| r.staff_present().cloned()) {
                    Some(h) => format!("#{n} is handled by {}; it cannot be cancelled. Use !finish {n} if it is yours.", h.nick),
                    None => {
                        self.close_chat(now, &name, Some("Sorry, no one can take your chat right now. Please try again later."), out);
                        format!("#{n} cancelled: the visitor was told, and the chat is closed.")
                    }
                },
            },
            Command::Finish(n) => self.finish(now, &staff, n, out),
            Command::Transcript(n) => {
                let id = self.next_query;
                self.next_query += 1;
                self.queries.insert(id, (staff.clone(), reply));
                out.0.push(Output::Query(Query::Transcript { id, session_id: n }));
                return;
            }
        };
        self.reply(&reply, &text, out);
    }

    fn accept(
        &mut self,
        now: Timestamp,
        name: &RoomName,
        sender: &FullJid,
        out: &mut Out,
    ) -> String {
        let Some(room) = self.rooms.get(name) else {
            return "That chat is closed.".into();
        };
        let n = room.session.id;
        if let Some(h) = room.staff_present() {
            return if h.jid.to_bare() == sender.to_bare() {
                format!("#{n} is already yours.")
            } else {
                format!("{} is already chatting with this visitor (#{n}).", h.nick)
            };
        }
        let offered = room.offered.contains(&sender.to_bare());
        let contact = room.jid.clone();
        let visitor = room.visitor_nick();
        let history: Vec<(String, Timestamp)> = room
            .history
            .iter()
            .filter(|h| h.role == Role::Visitor)
            .map(|h| (h.body.clone(), h.at))
            .collect();
        self.claim_direct(now, name, sender, out);
        if !offered {
            for (body, at) in history {
                out.send(stanzas::chat_delayed(
                    Jid::from(contact.clone()),
                    Jid::from(sender.to_bare()),
                    &body,
                    at,
                ));
            }
        }
        format!("#{n} is yours: write to {contact} to talk to {visitor}; !finish {n} when you are done.")
    }

    fn finish(&mut self, now: Timestamp, staff: &BareJid, n: Option<i64>, out: &mut Out) -> String {
        let mut mine: Vec<(i64, RoomName)> = self
            .rooms
            .values()
            .filter(|r| r.handler().as_ref() == Some(staff))
            .map(|r| (r.session.id, r.name.clone()))
            .collect();
        mine.sort();
        let name = match n {
            Some(n) => match self.room_for(n, staff) {
                Err(e) => return e,
                Ok(name) => {
                    let handler = self
                        .rooms
                        .get(&name)
                        .and_then(|r| r.staff_present().cloned());
                    match handler {
                        Some(h) if h.jid.to_bare() != *staff => {
                            return format!(
                                "#{n} is handled by {}; only they can finish it.",
                                h.nick
                            )
                        }
                        _ => name,
                    }
                }
            },
            None => match mine.as_slice() {
                [] => return "You have no chat to finish.".into(),
                [(_, name)] => name.clone(),
                many => {
                    let ids: Vec<String> = many.iter().map(|(id, _)| format!("#{id}")).collect();
                    return format!(
                        "You have several chats ({}): say which, e.g. !finish {}.",
                        ids.join(", "),
                        many[0].0
                    );
                }
            },
        };
        let id = self
            .rooms
            .get(&name)
            .map(|r| r.session.id)
            .unwrap_or_default();
        self.close_chat(now, &name, None, out);
        format!("#{id} is closed.")
    }

    fn waiting_text(&self, now: Timestamp, staff: &BareJid) -> String {
        let sites = self.staff_sites(staff);
        let mut rooms: Vec<_> = self
            .rooms
            .values()
            .filter(|r| sites.contains(r.name.site()))
            .filter(|r| {
                matches!(
                    r.session.state,
                    SessionState::Active | SessionState::Inactive
                )
            })
            .collect();
        rooms.sort_by_key(|r| (r.session.state != SessionState::Active, r.session.id));
        if rooms.is_empty() {
            return "No chats are waiting on your sites.".into();
        }
        let mut lines = vec![format!("{} open request(s):", rooms.len())];
        for r in rooms {
            let site = self
                .config
                .sites
                .get(r.name.site())
                .map(|s| s.name.as_str())
                .unwrap_or(r.name.site().as_str());
            let first = r
                .first_message
                .as_deref()
                .map(|m| format!(" — \"{}\"", short(m, 60)))
                .unwrap_or_default();
            lines.push(format!(
                "#{} {} on {} — {} for {}{}",
                r.session.id,
                r.visitor_nick(),
                site,
                r.session.state,
                ago(now, r.session.created_at),
                first
            ));
        }
        lines.join("\n")
    }

    fn status_text(&self, now: Timestamp, staff: &BareJid) -> String {
        let mut mine: Vec<_> = self
            .rooms
            .values()
            .filter(|r| r.handler().as_ref() == Some(staff))
            .collect();
        mine.sort_by_key(|r| r.session.id);
        let availability = if self.staff_available(staff) {
            "available for new chats"
        } else {
            "not offered new chats (away, busy or offline)"
        };
        if mine.is_empty() {
            return format!("You have no chats. You are {availability}.");
        }
        let mut lines = vec![format!(
            "Your chats ({}); you are {availability}:",
            mine.len()
        )];
        for r in mine {
            lines.push(format!(
                "#{} {} ({}) since {}",
                r.session.id,
                r.visitor_nick(),
                r.jid,
                ago(now, r.session.updated_at)
            ));
        }
        lines.join("\n")
    }

    pub(super) fn diag_text(&self, now: Timestamp) -> String {
        let rung = self
            .roster
            .rung
            .as_ref()
            .map(|r| r.to_string())
            .unwrap_or_else(|| "choosing…".into());
        let adverts = if self.roster.adverts.is_empty() {
            "none".to_string()
        } else {
            self.roster
                .adverts
                .iter()
                .map(|(srv, a)| {
                    let perms: Vec<String> =
                        a.perms.iter().map(|(k, v)| format!("{k}={v}")).collect();
                    format!("{srv} {} [{}]", a.ns, perms.join(", "))
                })
                .collect::<Vec<_>>()
                .join("; ")
        };
        let uptime = self
            .connected_at
            .map(|t| ago(now, t))
            .unwrap_or_else(|| "not connected".into());
        let count = |s: SessionState| self.rooms.values().filter(|r| r.session.state == s).count();
        let online = self
            .staff
            .values()
            .filter(|p| !p.resources.is_empty())
            .count();
        let available = self.staff.values().filter(|p| p.available()).count();
        let (pending, removals) = self.roster_pending();
        format!(
            "frontdesk {}\nroster: {rung} (mode {:?}; {} done, {} failed, {pending} in flight, {removals} removals scheduled)\nprivileges advertised: {adverts}\nconnected for: {uptime}\nopen sessions: {} (INACTIVE {}, ACTIVE {}, CHATTING {})\nstaff online: {online}, available: {available}",
            env!("CARGO_PKG_VERSION"),
            self.roster.mode,
            self.roster.done,
            self.roster.failed,
            self.rooms.len(),
            count(SessionState::Inactive),
            count(SessionState::Active),
            count(SessionState::Chatting),
        )
    }

    /// The store answered a `!transcript` read.
    pub(super) fn transcript_ready(&mut self, id: u64, result: TranscriptResult, out: &mut Out) {
        let Some((staff, reply)) = self.queries.remove(&id) else {
            return;
        };
        let sites = self.staff_sites(&staff);
        let text = match result {
            Err(e) => {
                tracing::error!(error = %e, "transcript read failed");
                "The transcript could not be read; the log says why.".to_string()
            }
            Ok(Some((session, rows))) if sites.iter().any(|s| s.as_str() == session.site) => {
                let mut lines: Vec<String> = rows
                    .iter()
                    .map(|m| {
                        let who = if m.role == Role::System {
                            "*".to_string()
                        } else {
                            m.nick.clone()
                        };
                        format!(
                            "[{}] {who}: {}",
                            &m.at.to_rfc3339()[..16].replace('T', " "),
                            m.body
                        )
                    })
                    .collect();
                let skipped = lines.len().saturating_sub(TRANSCRIPT_MAX_LINES);
                lines.drain(..skipped);
                let head = format!(
                    "#{} {} ({}), {}{}:",
                    session.id,
                    session.visitor,
                    session.site,
                    session.state,
                    if skipped > 0 {
                        format!(", last {TRANSCRIPT_MAX_LINES} lines")
                    } else {
                        String::new()
                    }
                );
                if lines.is_empty() {
                    format!("{head}\n(no messages)")
                } else {
                    format!("{head}\n{}", lines.join("\n"))
                }
            }
            Ok(_) => "There is no such chat on your sites.".to_string(),
        };
        self.reply(&reply, &text, out);
    }

    // ---- XEP-0050 ad-hoc commands ---------------------------------------------------------

    /// disco#items on the commands node: the menu, for staff only.
    pub(super) fn adhoc_items(&self, from: &Jid) -> Element {
        let mut q = stanzas::element("query", stanzas::NS_DISCO_ITEMS, &[("node", NS_COMMANDS)]);
        if !self.staff_sites(&from.to_bare()).is_empty() {
            for (node, name) in ADHOC {
                q = q.append(
                    stanzas::element(
                        "item",
                        stanzas::NS_DISCO_ITEMS,
                        &[
                            ("jid", self.config.component.as_str()),
                            ("node", node),
                            ("name", name),
                        ],
                    )
                    .build(),
                );
            }
        }
        q.build()
    }

    /// An ad-hoc command request. Commands that need a chat number first answer with a form.
    pub(super) fn handle_adhoc(
        &mut self,
        now: Timestamp,
        from: Jid,
        id: String,
        cmd: &Element,
        out: &mut Out,
    ) {
        let desk = Jid::from(self.config.component.clone());
        let node = cmd.attr("node").unwrap_or("").to_string();
        let refuse = |c: DefinedCondition, t: ErrorType, text: &str| {
            stanzas::iq_error(
                desk.clone(),
                from.clone(),
                id.clone(),
                stanzas::error(t, c, text),
            )
        };
        if self.staff_sites(&from.to_bare()).is_empty() {
            out.send(refuse(
                DefinedCondition::Forbidden,
                ErrorType::Auth,
                "The front desk takes commands from staff only.",
            ));
            return;
        }
        // A chat is taken by the resource that will talk in it: a bare JID cannot take one.
        let Ok(sender) = FullJid::try_from(from.clone()) else {
            out.send(refuse(
                DefinedCondition::BadRequest,
                ErrorType::Modify,
                "Send ad-hoc commands from a full JID (with a resource).",
            ));
            return;
        };
        if cmd.attr("action") == Some("cancel") {
            out.send(stanzas::iq_result(
                desk,
                from,
                id,
                Some(adhoc_status(&node, "canceled")),
            ));
            return;
        }
        let needs_number = matches!(node.as_str(), "accept" | "cancel" | "finish" | "transcript");
        let submitted = cmd
            .children()
            .find(|c| c.is("x", NS_DATA))
            .and_then(|x| x.children().find(|f| f.attr("var") == Some("session")))
            .and_then(|f| f.children().find(|v| v.name() == "value"))
            .map(|v| v.text());
        let command = match (node.as_str(), &submitted) {
            ("waiting", _) => Command::Waiting,
            ("status", _) => Command::Status,
            ("diag", _) => Command::Diag,
            ("help", _) => Command::Help,
            (_, None) if needs_number => {
                out.send(stanzas::iq_result(
                    desk,
                    from,
                    id,
                    Some(self.adhoc_form(&node, &sender.to_bare())),
                ));
                return;
            }
            (_, Some(v)) if needs_number => {
                let text = format!("!{node} {}", v.trim());
                match parse(&text) {
                    Ok(Command::Finish(None)) | Err(_)
                        if v.trim().is_empty() && node == "finish" =>
                    {
                        Command::Finish(None)
                    }
                    Ok(c) => c,
                    Err(e) => {
                        out.send(stanzas::iq_result(
                            desk,
                            from,
                            id,
                            Some(adhoc_completed(&node, &e)),
                        ));
                        return;
                    }
                }
            }
            _ => {
                out.send(refuse(
                    DefinedCondition::ItemNotFound,
                    ErrorType::Cancel,
                    "No such command.",
                ));
                return;
            }
        };
        self.run_command(
            now,
            &sender,
            command,
            ReplyTo::Adhoc {
                to: from,
                iq_id: id,
                node,
            },
            out,
        );
    }

    /// The form asking which chat: a list of the chats the command can apply to.
    fn adhoc_form(&self, node: &str, staff: &BareJid) -> Element {
        let sites = self.staff_sites(staff);
        let mut field = stanzas::element(
            "field",
            NS_DATA,
            &[
                ("var", "session"),
                ("type", "list-single"),
                ("label", "Chat"),
            ],
        )
        .append(Element::builder("required", NS_DATA).build());
        let mut rooms: Vec<_> = self
            .rooms
            .values()
            .filter(|r| sites.contains(r.name.site()))
            .collect();
        rooms.sort_by_key(|r| r.session.id);
        for r in rooms {
            let label = format!(
                "#{} {} ({})",
                r.session.id,
                r.visitor_nick(),
                r.session.state
            );
            field = field.append(
                stanzas::element("option", NS_DATA, &[("label", &label)])
                    .append(
                        Element::builder("value", NS_DATA)
                            .append(r.session.id.to_string())
                            .build(),
                    )
                    .build(),
            );
        }
        let form = stanzas::element("x", NS_DATA, &[("type", "form")])
            .append(
                Element::builder("title", NS_DATA)
                    .append(format!("{node}: which chat?"))
                    .build(),
            )
            .append(field.build())
            .build();
        stanzas::element(
            "command",
            NS_COMMANDS,
            &[("node", node), ("sessionid", node), ("status", "executing")],
        )
        .append(
            stanzas::element("actions", NS_COMMANDS, &[("execute", "complete")])
                .append(Element::builder("complete", NS_COMMANDS).build())
                .build(),
        )
        .append(form)
        .build()
    }
}

fn adhoc_status(node: &str, status: &str) -> Element {
    stanzas::element(
        "command",
        NS_COMMANDS,
        &[("node", node), ("sessionid", node), ("status", status)],
    )
    .build()
}

fn adhoc_completed(node: &str, text: &str) -> Element {
    stanzas::element(
        "command",
        NS_COMMANDS,
        &[("node", node), ("sessionid", node), ("status", "completed")],
    )
    .append(
        stanzas::element("note", NS_COMMANDS, &[("type", "info")])
            .append(text)
            .build(),
    )
    .build()
}
