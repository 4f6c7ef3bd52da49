//! The front desk: Seshat-style `!commands` sent as messages to the component's domain, the
//! same actions as XEP-0050 ad-hoc commands, and the server's privilege advertisement (which
//! also arrives as a message to the domain).

use std::sync::LazyLock;

use minidom::Element;
use xmpp_parsers::data_forms::{DataForm, DataFormType, Field, FieldType, Option_};
use xmpp_parsers::disco::{DiscoItemsResult, Item};
use xmpp_parsers::jid::{BareJid, FullJid, Jid};
use xmpp_parsers::message::{Message, MessageType};
use xmpp_parsers::ns;
use xmpp_parsers::stanza::Stanza;
use xmpp_parsers::stanza_error::DefinedCondition;

use super::refusal::Refusal;
use super::roster::parse_advert;
use super::session::{Role, SessionState};
use super::stanzas::{self, NS_COMMANDS};
use super::{Core, Effects};
use crate::address::RoomName;
// `!transcript` shows the rows as the file has them, as `frontdesk transcript` does.
use crate::store::{MessageRow, SessionRow};
use crate::time::Timestamp;

/// Longest transcript `!transcript` sends in one message, in lines (the newest are kept).
const TRANSCRIPT_MAX_LINES: usize = 200;

/// A parsed command (names are case-insensitive).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Help,
    Waiting,
    Accept(i64),
    Pass(i64),
    Cancel(i64),
    Finish(Option<i64>),
    Status,
    Transcript(i64),
    Info(i64),
    Diag,
    /// `!say [N] KEY`: a canned reply into the sender's chat.
    Say {
        chat: Option<i64>,
        key: String,
    },
    Canned,
    /// `!transfer N [staff]`: to another staff member, or (no one named) back to the queue.
    Transfer {
        chat: i64,
        to: Option<String>,
    },
    /// `!note N text`: an internal note in chat N's transcript.
    Note(i64, String),
    /// `!tag N word…`: labels on chat N (checked when run, see `notes::tag_words`).
    Tag(i64, String),
    /// `!untag N word…`: takes those labels off chat N.
    Untag(i64, String),
    /// `!missed [days]`: chats closed unanswered in the last days (default 7).
    Missed(Option<i64>),
}

/// What a command takes after its name, and how the [`Command`] is made from it.
#[derive(Debug)]
pub enum Takes {
    /// Nothing (anything after the name is ignored).
    Nothing(Command),
    /// A chat number: `!accept 12` (or `#12`).
    Chat(fn(i64) -> Command),
    /// A chat number or nothing: `!finish`, `!finish 12`.
    MaybeChat(fn(Option<i64>) -> Command),
    /// A chat number and text: `!note 12 called back`. `usage` names the text in `!help`,
    /// `label` is the ad-hoc form's text field.
    ChatText {
        make: fn(i64, String) -> Command,
        usage: &'static str,
        label: &'static str,
    },
    /// A number of days or nothing: `!missed`, `!missed 30`.
    MaybeDays(fn(Option<i64>) -> Command),
    /// Words after the name, parsed by the command: `!say 12 hello`. In an ad-hoc form, the
    /// chat (required or not) and a second field of this kind.
    Text {
        parse: fn(&str) -> Result<Command, String>,
        usage: &'static str,
        chat_required: bool,
        field: TextField,
    },
}

/// The second field of a [`Takes::Text`] command's ad-hoc form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextField {
    /// One of the canned replies of the staff member's sites, from a list.
    CannedKey,
    /// Free text, with this label.
    Text(&'static str),
}

/// One command: its `!name` (also its ad-hoc node), what it takes, its line in `!help`
/// (`None`: not listed) and its name in the ad-hoc menu.
#[derive(Debug)]
pub struct CommandSpec {
    pub name: &'static str,
    pub takes: Takes,
    pub help: Option<&'static str>,
    pub menu: &'static str,
}

/// Every command, in ad-hoc menu order; `!help` lists them in the same order. `!text`
/// parsing, the ad-hoc menu and the ad-hoc forms all go by this table.
pub static COMMANDS: &[CommandSpec] = &[
    CommandSpec {
        name: "waiting",
        takes: Takes::Nothing(Command::Waiting),
        help: Some("chats waiting on your sites"),
        menu: "Waiting chats",
    },
    CommandSpec {
        name: "accept",
        takes: Takes::Chat(Command::Accept),
        help: Some("take chat N"),
        menu: "Accept a chat",
    },
    CommandSpec {
        name: "pass",
        takes: Takes::Chat(Command::Pass),
        help: Some("leave waiting chat N to others (it stays open, unlike !cancel)"),
        menu: "Pass a waiting chat",
    },
    CommandSpec {
        name: "cancel",
        takes: Takes::Chat(Command::Cancel),
        help: Some("decline waiting chat N (the visitor is told, the chat is closed)"),
        menu: "Decline a waiting chat",
    },
    CommandSpec {
        name: "finish",
        takes: Takes::MaybeChat(Command::Finish),
        help: Some("close your chat (or chat N)"),
        menu: "Finish a chat",
    },
    CommandSpec {
        name: "status",
        takes: Takes::Nothing(Command::Status),
        help: Some("your current chats"),
        menu: "My chats",
    },
    CommandSpec {
        name: "transcript",
        takes: Takes::Chat(Command::Transcript),
        help: Some("the transcript of chat N"),
        menu: "Transcript of a chat",
    },
    CommandSpec {
        name: "info",
        takes: Takes::Chat(Command::Info),
        help: Some("what is known of chat N's visitor (signed details, page, pre-chat answers)"),
        menu: "Visitor details",
    },
    CommandSpec {
        name: "note",
        takes: Takes::ChatText {
            make: Command::Note,
            usage: "text",
            label: "Note",
        },
        help: Some("add an internal note to chat N (staff see it, the visitor never does)"),
        menu: "Note on a chat",
    },
    CommandSpec {
        name: "tag",
        takes: Takes::ChatText {
            make: Command::Tag,
            usage: "word…",
            label: "Tags (words)",
        },
        help: Some("label chat N with words, e.g. !tag 12 billing refund"),
        menu: "Tag a chat",
    },
    CommandSpec {
        name: "untag",
        takes: Takes::ChatText {
            make: Command::Untag,
            usage: "word…",
            label: "Tags to remove (words)",
        },
        help: Some("take tags off chat N, e.g. !untag 12 refund"),
        menu: "Remove tags from a chat",
    },
    CommandSpec {
        name: "missed",
        takes: Takes::MaybeDays(Command::Missed),
        help: Some("chats nobody answered in the last D days (default 7), to follow up"),
        menu: "Missed chats",
    },
    CommandSpec {
        name: "diag",
        takes: Takes::Nothing(Command::Diag),
        help: Some("what the front desk sees (roster method, privileges, uptime, open chats)"),
        menu: "Diagnostics",
    },
    CommandSpec {
        name: "say",
        takes: Takes::Text {
            parse: parse_say,
            usage: "[N] KEY",
            chat_required: false,
            field: TextField::CannedKey,
        },
        help: Some("send canned reply KEY into your chat (or chat N)"),
        menu: "Send a canned reply",
    },
    CommandSpec {
        name: "canned",
        takes: Takes::Nothing(Command::Canned),
        help: Some("the canned replies of your sites"),
        menu: "Canned replies",
    },
    CommandSpec {
        name: "transfer",
        takes: Takes::Text {
            parse: parse_transfer,
            usage: "N [staff]",
            chat_required: true,
            field: TextField::Text("To (address, local part or name; empty: back to the queue)"),
        },
        help: Some("hand chat N to another staff member (no one named: back to the queue)"),
        menu: "Transfer a chat",
    },
    CommandSpec {
        name: "help",
        takes: Takes::Nothing(Command::Help),
        help: None,
        menu: "Help",
    },
];

/// The `!help` text: a line per listed command of [`COMMANDS`].
pub static HELP: LazyLock<String> = LazyLock::new(|| {
    let mut lines = vec!["Front desk commands:".to_string()];
    lines.extend(
        COMMANDS
            .iter()
            .filter_map(|c| c.help.map(|h| format!("{} — {h}", c.usage()))),
    );
    lines.push("To answer a visitor, write to them in your roster.".into());
    lines.join("\n")
});

impl CommandSpec {
    /// How the command is written: `!status`, `!accept N`, `!finish [N]`.
    pub fn usage(&self) -> String {
        match self.takes {
            Takes::Nothing(_) => format!("!{}", self.name),
            Takes::Chat(_) => format!("!{} N", self.name),
            Takes::MaybeChat(_) => format!("!{} [N]", self.name),
            Takes::Text { usage, .. } => format!("!{} {usage}", self.name),
            Takes::ChatText { usage, .. } => format!("!{} N {usage}", self.name),
            Takes::MaybeDays(_) => format!("!{} [D]", self.name),
        }
    }

    /// The command given what follows its name (trimmed; empty when nothing was given), or
    /// what is wrong with it. Both `!text` and submitted ad-hoc forms come here.
    pub fn command(&self, rest: &str) -> Result<Command, String> {
        let arg = rest.split_whitespace().next();
        match &self.takes {
            Takes::Nothing(c) => Ok(c.clone()),
            Takes::Chat(f) => chat_number(self.name, arg).map(f),
            Takes::MaybeChat(f) => arg
                .map(|a| chat_number(self.name, Some(a)))
                .transpose()
                .map(f),
            Takes::Text { parse, .. } => parse(rest.trim()),
            Takes::ChatText { make: f, .. } => {
                let n = chat_number(self.name, arg)?;
                let text = rest
                    .trim_start()
                    .split_once(char::is_whitespace)
                    .map_or("", |(_, t)| t);
                Ok(f(n, text.trim().to_string()))
            }
            Takes::MaybeDays(f) => arg.map(days).transpose().map(f),
        }
    }
}

/// The command named `name` (as written in the table: lowercase).
pub fn command_spec(name: &str) -> Option<&'static CommandSpec> {
    COMMANDS.iter().find(|c| c.name == name)
}

/// A chat number for `!name`: `12` or `#12`.
fn chat_number(name: &str, arg: Option<&str>) -> Result<i64, String> {
    let a = arg.ok_or_else(|| format!("!{name} needs a chat number, e.g. !{name} 12"))?;
    a.trim_start_matches('#')
        .parse::<i64>()
        .map_err(|_| format!("{a:?} is not a chat number"))
}

/// A number of days for `!missed`.
fn days(a: &str) -> Result<i64, String> {
    a.parse::<i64>()
        .ok()
        .filter(|d| (1..=366).contains(d))
        .ok_or_else(|| format!("{a:?} is not a number of days from 1 to 366"))
}

/// `!say [N] KEY`.
fn parse_say(rest: &str) -> Result<Command, String> {
    let words: Vec<&str> = rest.split_whitespace().collect();
    let key = |k: &str| k.to_lowercase();
    match words.as_slice() {
        [k] => Ok(Command::Say {
            chat: None,
            key: key(k),
        }),
        [n, k] => Ok(Command::Say {
            chat: Some(chat_number("say", Some(n))?),
            key: key(k),
        }),
        _ => Err("!say needs the key of a canned reply, e.g. !say hello, or !say 12 hello for chat 12 (!canned lists them).".into()),
    }
}

/// `!transfer N [staff]` (the staff member may be a name with spaces).
fn parse_transfer(rest: &str) -> Result<Command, String> {
    let (n, to) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
    let chat = chat_number("transfer", Some(n).filter(|n| !n.is_empty()))?;
    let to = to.trim();
    Ok(Command::Transfer {
        chat,
        to: (!to.is_empty()).then(|| to.to_string()),
    })
}

/// A `!command` text: its first word names the command (`!` alone is `!help`), the rest is
/// for the command.
pub fn parse(text: &str) -> Result<Command, String> {
    let text = text.trim();
    let (first, rest) = text.split_once(char::is_whitespace).unwrap_or((text, ""));
    let name = first.trim_start_matches('!').to_lowercase();
    if name.is_empty() {
        return Ok(Command::Help);
    }
    command_spec(&name)
        .ok_or_else(|| {
            format!(
                "Unknown command !{}. Send !help for the list.",
                crate::render::short(&name, 32)
            )
        })?
        .command(rest.trim())
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
    /// A session, its transcript and its tags: [`Answer::Transcript`].
    Transcript { id: u64, session_id: i64 },
    /// A session's row: [`Answer::Session`].
    Session { id: u64, session_id: i64 },
    /// A session's row and its tags: [`Answer::SessionTags`].
    SessionTags { id: u64, session_id: i64 },
    /// Chats closed unanswered since then: [`Answer::Missed`].
    Missed { id: u64, since: Timestamp },
}

/// What a store read returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    Transcript(Option<Transcript>),
    Session(Option<SessionRow>),
    SessionTags(Option<(SessionRow, Vec<String>)>),
    Missed(Vec<crate::store::stats::Missed>),
}

/// A session with its transcript and tags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transcript {
    pub session: SessionRow,
    pub lines: Vec<MessageRow>,
    pub tags: Vec<String>,
}

/// What the core does with an answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Then {
    Transcript,
    /// `!note`: write this note once the session's site is known.
    Note {
        sender: FullJid,
        text: String,
    },
    /// `!tag`: add these tags once the session's site is known.
    Tag {
        tags: Vec<String>,
    },
    /// `!untag`: remove those of these tags the session has, once its site is known.
    Untag {
        tags: Vec<String>,
    },
    /// `!missed`: list them (covering `days`).
    Missed {
        days: i64,
    },
}

/// Store reads in flight: who asked, where the answer goes, and what it is for; and the
/// commands of a staff member that wait for their read, so that each command sees what the
/// ones sent before it wrote (`!tag 12 vip` then `!untag 12 vip` on a closed chat) and the
/// answers come in the order sent.
#[derive(Debug, Default)]
pub struct Queries {
    by_id: std::collections::BTreeMap<u64, Asked>,
    parked: std::collections::BTreeMap<BareJid, std::collections::VecDeque<Parked>>,
}

#[derive(Debug)]
struct Asked {
    staff: BareJid,
    reply: ReplyTo,
    then: Then,
    at: Timestamp,
}

/// A command that came while the same staff member's read was in flight.
#[derive(Debug)]
pub struct Parked {
    pub sender: FullJid,
    pub cmd: Command,
    pub reply: ReplyTo,
}

/// Commands one staff member may have waiting behind a read; more are refused.
pub const PARKED_MAX: usize = 8;
const BUSY_TEXT: &str =
    "Not done: your commands before it are still waiting for the database. Send it again once they are answered.";
/// A read unanswered this long no longer holds its staff member's commands back (the store
/// thread is gone or stuck; the log says so).
const READ_HOLDS_MS: i64 = 10_000;

impl Queries {
    pub fn asked(&mut self, id: u64, staff: BareJid, reply: ReplyTo, then: Then, at: Timestamp) {
        self.by_id.insert(
            id,
            Asked {
                staff,
                reply,
                then,
                at,
            },
        );
    }

    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty() && self.parked.is_empty()
    }

    pub fn answered(&mut self, id: u64) -> Option<(BareJid, ReplyTo, Then)> {
        self.by_id.remove(&id).map(|a| (a.staff, a.reply, a.then))
    }

    /// Whether `staff` has a read in flight that their next command must wait for.
    pub fn holds(&self, staff: &BareJid, now: Timestamp) -> bool {
        self.by_id.values().any(|a| {
            a.staff == *staff && now.millis().saturating_sub(a.at.millis()) < READ_HOLDS_MS
        })
    }

    /// Keeps a command for later, or gives it back if its sender has too many waiting.
    pub fn park(&mut self, p: Parked) -> Result<(), Parked> {
        let q = self.parked.entry(p.sender.to_bare()).or_default();
        if q.len() >= PARKED_MAX {
            return Err(p);
        }
        q.push_back(p);
        Ok(())
    }

    /// Who has commands waiting.
    pub fn parked_staff(&self) -> Vec<BareJid> {
        self.parked.keys().cloned().collect()
    }

    /// The oldest command `staff` has waiting.
    pub fn unpark(&mut self, staff: &BareJid) -> Option<Parked> {
        let q = self.parked.get_mut(staff)?;
        let p = q.pop_front();
        if q.is_empty() {
            self.parked.remove(staff);
        }
        p
    }
}

/// What a store read returned, or why it failed.
pub type QueryResult = Result<Answer, String>;

pub(super) fn ago(now: Timestamp, then: Timestamp) -> String {
    let s = (now.millis() - then.millis()).max(0) / 1000;
    match s {
        0..=59 => format!("{s} s"),
        60..=3599 => format!("{} min", s / 60),
        _ => format!("{} h {} min", s / 3600, (s % 3600) / 60),
    }
}

use crate::render::{self, short};

/// One line of `!transcript`: when, who and as what, then what they said (continuation lines
/// marked, so a message cannot pass for another).
fn transcript_line(m: &MessageRow) -> String {
    let at = m.at.to_rfc3339();
    let at = at.get(..16).unwrap_or(&at).replace('T', " ");
    let head = match m.role {
        Role::System => format!("[{at}] * "),
        role => format!("[{at}] {} ({}): ", render::one_line(&m.nick), role.as_str()),
    };
    render::entry(&head, &m.body)
}

impl Core {
    /// A message to the component's domain.
    pub(super) fn handle_message_to_desk(&mut self, now: Timestamp, m: Message, out: &mut Effects) {
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
        if !self.may_command(&bare) {
            let desk = Jid::from(self.config.component.clone());
            out.send(staff_only().message(desk, from, m.id));
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

    pub(super) fn reply(&self, to: &ReplyTo, text: &str, out: &mut Effects) {
        out.send(self.reply_stanza(to, text));
    }

    pub(super) fn reply_stanza(&self, to: &ReplyTo, text: &str) -> Stanza {
        reply_stanza(Jid::from(self.config.component.clone()), to, text)
    }

    /// The room of session `n`, if it is open and on one of `staff`'s sites.
    pub(super) fn room_for(&self, n: i64, staff: &BareJid) -> Result<RoomName, String> {
        let sites = self.staff_sites(staff);
        match self.rooms.by_session(n) {
            Some(r) if sites.contains(r.name().site()) => Ok(r.name().clone()),
            _ => Err(format!("There is no open chat #{n} on your sites.")),
        }
    }

    /// Runs a staff member's command, or keeps it until their read in flight is answered.
    pub(super) fn run_command(
        &mut self,
        now: Timestamp,
        sender: &FullJid,
        cmd: Command,
        reply: ReplyTo,
        out: &mut Effects,
    ) {
        let staff = sender.to_bare();
        // Any left behind a read that never came back go first.
        self.run_parked(now, &staff, out);
        if !self.queries.holds(&staff, now) {
            return self.run_command_now(now, sender, cmd, reply, out);
        }
        let parked = Parked {
            sender: sender.clone(),
            cmd,
            reply,
        };
        if let Err(p) = self.queries.park(parked) {
            self.reply(&p.reply, BUSY_TEXT, out);
        }
    }

    /// The commands `staff` sent while a read of theirs was in flight, in order, until one
    /// asks for a read again.
    pub(super) fn run_parked(&mut self, now: Timestamp, staff: &BareJid, out: &mut Effects) {
        while !self.queries.holds(staff, now) {
            let Some(p) = self.queries.unpark(staff) else {
                return;
            };
            // A reload in between may have taken their staff rights away.
            if !self.may_command(staff) {
                continue;
            }
            self.run_command_now(now, &p.sender, p.cmd, p.reply, out);
        }
    }

    fn run_command_now(
        &mut self,
        now: Timestamp,
        sender: &FullJid,
        cmd: Command,
        reply: ReplyTo,
        out: &mut Effects,
    ) {
        let staff = sender.to_bare();
        tracing::info!(staff = %staff, command = ?cmd, "command");
        let text = match cmd {
            Command::Help => HELP.to_string(),
            Command::Waiting => self.waiting_text(now, &staff),
            Command::Status => self.status_text(now, &staff),
            Command::Diag => self.diag_text(now, &staff),
            Command::Accept(n) => match self.room_for(n, &staff) {
                Err(e) => e,
                Ok(name) => self.accept(now, &name, sender, out),
            },
            Command::Pass(n) => match self.room_for(n, &staff) {
                Err(e) => e,
                Ok(name) => self.pass_chat(now, &staff, &name, out),
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
            Command::Info(n) => match self.room_for(n, &staff) {
                Err(e) => e,
                Ok(name) => self.info_text(&name),
            },
            Command::Canned => self.canned_text(&staff),
            Command::Say { chat, key } => self.say(now, sender, chat, &key, out),
            Command::Transfer { chat, to } => match self.room_for(chat, &staff) {
                Err(e) => e,
                Ok(name) => self.transfer(now, sender, &name, to.as_deref(), out),
            },
            Command::Transcript(n) => {
                let id = self.ids.next();
                self.queries.asked(id, staff.clone(), reply, Then::Transcript, now);
                out.query(Query::Transcript { id, session_id: n });
                return;
            }
            Command::Note(n, text) => return self.note(now, sender, n, text, reply, out),
            Command::Tag(n, words) => return self.tag(now, &staff, n, &words, reply, out),
            Command::Untag(n, words) => return self.untag(now, &staff, n, &words, reply, out),
            Command::Missed(days) => return self.missed(now, &staff, days, reply, out),
        };
        self.reply(&reply, &text, out);
    }

    fn accept(
        &mut self,
        now: Timestamp,
        name: &RoomName,
        sender: &FullJid,
        out: &mut Effects,
    ) -> String {
        let Some(room) = self.rooms.get(name) else {
            return "That chat is closed.".into();
        };
        let n = room.session_id();
        if let Some(h) = room.staff_present() {
            return if h.jid.to_bare() == sender.to_bare() {
                format!("#{n} is already yours.")
            } else {
                format!("{} is already chatting with this visitor (#{n}).", h.nick)
            };
        }
        if let Some(why) = self.at_cap(&sender.to_bare(), name.site()) {
            return why;
        }
        let Some(room) = self.rooms.get(name) else {
            return "That chat is closed.".into();
        };
        let offered = room.was_offered_to(&sender.to_bare());
        let contact = room.jid().clone();
        let visitor = room.visitor_nick();
        let history: Vec<(String, Timestamp)> = room
            .visitor_lines()
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

    fn finish(
        &mut self,
        now: Timestamp,
        staff: &BareJid,
        n: Option<i64>,
        out: &mut Effects,
    ) -> String {
        let mine = self.chats_of(staff);
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
            .map(|r| r.session_id())
            .unwrap_or_default();
        self.close_chat(now, &name, None, out);
        format!("#{id} is closed.")
    }

    fn waiting_text(&self, now: Timestamp, staff: &BareJid) -> String {
        let sites = self.staff_sites(staff);
        let mut rooms: Vec<_> = self
            .rooms
            .values()
            .filter(|r| sites.contains(r.name().site()))
            .filter(|r| matches!(r.state(), SessionState::Active | SessionState::Inactive))
            .collect();
        rooms.sort_by_key(|r| (r.state() != SessionState::Active, r.session_id()));
        if rooms.is_empty() {
            return "No chats are waiting on your sites.".into();
        }
        let mut lines = vec![format!("{} open request(s):", rooms.len())];
        for r in rooms {
            let site = self
                .config
                .sites
                .get(r.name().site())
                .map(|s| s.name.as_str())
                .unwrap_or(r.name().site().as_str());
            let first = r
                .first_message()
                .map(|m| format!(" — \"{}\"", short(m, 60)))
                .unwrap_or_default();
            lines.push(format!(
                "#{} {} on {} — {} for {}{}",
                r.session_id(),
                r.visitor_nick(),
                site,
                r.state(),
                ago(now, r.waiting_since()),
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
        mine.sort_by_key(|r| r.session_id());
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
                r.session_id(),
                r.visitor_nick(),
                r.jid(),
                ago(now, r.updated_at())
            ));
        }
        lines.join("\n")
    }

    /// Staff of any site, and the configured admins, may use the front desk.
    fn may_command(&self, jid: &BareJid) -> bool {
        !self.staff_sites(jid).is_empty() || self.config.admins.contains(jid)
    }

    /// What the front desk sees, of the sender's own sites (an admin's: of all).
    pub(super) fn diag_text(&self, now: Timestamp, sender: &BareJid) -> String {
        let uptime = self
            .connected_at
            .map(|t| ago(now, t))
            .unwrap_or_else(|| "not connected".into());
        let all = self.config.admins.contains(sender);
        let sites = self.staff_sites(sender);
        let mine = |site: &crate::address::SiteId| all || sites.contains(site);
        let count = |s: SessionState| {
            self.rooms
                .values()
                .filter(|r| mine(r.name().site()) && r.state() == s)
                .count()
        };
        let open = self
            .rooms
            .values()
            .filter(|r| mine(r.name().site()))
            .count();
        let staff: std::collections::BTreeSet<BareJid> = self
            .config
            .sites
            .iter()
            .filter(|(id, _)| mine(id))
            .flat_map(|(_, s)| s.staff.iter().cloned())
            .collect();
        let c = self.staff.counts_of(&staff);
        let scope = if all {
            "all sites".to_string()
        } else {
            let names: Vec<&str> = sites.iter().map(|s| s.as_str()).collect();
            format!("your sites: {}", names.join(", "))
        };
        format!(
            "frontdesk {}\n{}\nconnected for: {uptime}\n{scope}\nopen sessions: {open} (INACTIVE {}, ACTIVE {}, CHATTING {})\nstaff online: {}, available: {}, not answering pings: {}\nunasked answers dropped: {}",
            env!("CARGO_PKG_VERSION"),
            self.roster.diag(),
            count(SessionState::Inactive),
            count(SessionState::Active),
            count(SessionState::Chatting),
            c.online,
            c.available,
            c.silent,
            self.unmatched,
        )
    }

    /// The store answered a `!transcript` read.
    pub(super) fn transcript_ready(
        &mut self,
        staff: &BareJid,
        reply: &ReplyTo,
        result: Result<Option<Transcript>, String>,
        out: &mut Effects,
    ) {
        let sites = self.staff_sites(staff);
        let text = match result {
            Err(e) => {
                tracing::error!(error = %e, "transcript read failed");
                "The transcript could not be read; the log says why.".to_string()
            }
            Ok(Some(Transcript {
                session,
                lines: rows,
                tags,
            })) if sites.iter().any(|s| s.as_str() == session.site) => {
                let mut lines: Vec<String> = rows.iter().map(transcript_line).collect();
                let skipped = lines.len().saturating_sub(TRANSCRIPT_MAX_LINES);
                lines.drain(..skipped);
                let head = format!(
                    "#{} {} ({}), {}{}{}:",
                    session.id,
                    render::one_line(&session.visitor),
                    render::one_line(&session.site),
                    session.state,
                    super::notes::tags_suffix(&tags),
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
        self.reply(reply, &text, out);
    }

    // ---- XEP-0050 ad-hoc commands ---------------------------------------------------------

    /// disco#items on the commands node: the menu, for staff only.
    pub(super) fn adhoc_items(&self, from: &Jid) -> Element {
        let items = if !self.may_command(&from.to_bare()) {
            Vec::new()
        } else {
            COMMANDS
                .iter()
                .map(|c| Item {
                    jid: Jid::from(self.config.component.clone()),
                    node: Some(c.name.into()),
                    name: Some(c.menu.into()),
                })
                .collect()
        };
        DiscoItemsResult {
            node: Some(NS_COMMANDS.into()),
            items,
            rsm: None,
        }
        .into()
    }

    /// An ad-hoc command request. Commands that need a chat number first answer with a form.
    /// Every request is answered: with an error, a payload, or the command's reply.
    pub(super) fn handle_adhoc(
        &mut self,
        now: Timestamp,
        from: Jid,
        id: String,
        cmd: &Element,
        out: &mut Effects,
    ) {
        let desk = Jid::from(self.config.component.clone());
        let node = cmd.attr("node").unwrap_or("").to_string();
        match self.adhoc_step(&from, &node, cmd) {
            Ok(Step::Run(sender, command)) => {
                let reply = ReplyTo::Adhoc {
                    to: from,
                    iq_id: id,
                    node,
                };
                self.run_command(now, &sender, command, reply, out);
            }
            Ok(Step::Answer(payload)) => {
                out.send(stanzas::iq_result(desk, from, id, Some(payload)))
            }
            Err(r) => out.send(r.iq(desk, from, id)),
        }
    }

    /// What an ad-hoc request comes to.
    fn adhoc_step(&self, from: &Jid, node: &str, cmd: &Element) -> Result<Step, Refusal> {
        if !self.may_command(&from.to_bare()) {
            return Err(staff_only());
        }
        let canceled = Ok(Step::Answer(adhoc_status(node, "canceled")));
        if cmd.attr("action") == Some("cancel") {
            return canceled;
        }
        let form = submitted_form(cmd)?;
        if form
            .as_ref()
            .is_some_and(|f| f.type_ == DataFormType::Cancel)
        {
            return canceled;
        }
        let spec = command_spec(node)
            .ok_or_else(|| Refusal::cancel(DefinedCondition::ItemNotFound, "No such command."))?;
        // A chat is taken by the resource that will talk in it: a bare JID cannot take one.
        let sender = FullJid::try_from(from.clone())
            .map_err(|_| bad_request("Send ad-hoc commands from a full JID (with a resource)."))?;
        let command = match (&spec.takes, form) {
            (Takes::Nothing(c), _) => c.clone(),
            (_, None) => return Ok(Step::Answer(self.adhoc_form(spec, &sender.to_bare()))),
            (_, Some(form)) => match form_command(spec, &form) {
                Ok(c) => c,
                Err(e) => return Ok(Step::Answer(adhoc_completed(node, &e))),
            },
        };
        Ok(Step::Run(sender, command))
    }

    /// The form asking what the command needs: which chat, and its text or a number of days.
    fn adhoc_form(&self, spec: &CommandSpec, staff: &BareJid) -> Element {
        let fields = match spec.takes {
            Takes::ChatText { label, .. } => vec![
                self.my_chats_field(staff),
                text_field(
                    "number",
                    "Or a chat's number (#N, open or closed)",
                    false,
                    None,
                ),
                text_field("text", label, true, None),
            ],
            Takes::MaybeDays(_) => vec![text_field("days", "Days", false, Some("7"))],
            Takes::Text { field: second, .. } => vec![
                self.chat_field(spec, staff),
                self.second_field(second, &self.staff_sites(staff)),
            ],
            _ => vec![self.chat_field(spec, staff)],
        };
        let form = DataForm {
            type_: DataFormType::Form,
            title: Some(match spec.takes {
                Takes::MaybeDays(_) => format!("{}: how many days back?", spec.name),
                _ => format!("{}: which chat?", spec.name),
            }),
            instructions: None,
            fields,
        };
        stanzas::element(
            "command",
            NS_COMMANDS,
            &[
                ("node", spec.name),
                ("sessionid", spec.name),
                ("status", "executing"),
            ],
        )
        .append(
            stanzas::element("actions", NS_COMMANDS, &[("execute", "complete")])
                .append(Element::builder("complete", NS_COMMANDS).build())
                .build(),
        )
        .append(Element::from(form))
        .build()
    }

    /// A list of the open chats on the staff member's sites (required unless the command can
    /// do without one).
    fn chat_field(&self, spec: &CommandSpec, staff: &BareJid) -> Field {
        let sites = self.staff_sites(staff);
        let mut rooms: Vec<_> = self
            .rooms
            .values()
            .filter(|r| sites.contains(r.name().site()))
            .collect();
        rooms.sort_by_key(|r| r.session_id());
        let mut field = Field::new("session", FieldType::ListSingle);
        field.label = Some("Chat".into());
        field.required = matches!(
            spec.takes,
            Takes::Chat(_)
                | Takes::Text {
                    chat_required: true,
                    ..
                }
        );
        field.options = rooms
            .iter()
            .map(|r| Option_ {
                label: Some(format!(
                    "#{} {} ({})",
                    r.session_id(),
                    r.visitor_nick(),
                    r.state()
                )),
                value: r.session_id().to_string(),
            })
            .collect();
        field
    }
}

impl Core {
    /// The open chats a note or tag may be for: the staff member's own first, then the others
    /// of their sites (an admin's: of all). Not required: the `number` field may name another.
    fn my_chats_field(&self, staff: &BareJid) -> Field {
        let mut rooms: Vec<_> = self
            .rooms
            .values()
            .filter(|r| self.covers(staff, r.name().site().as_str()))
            .collect();
        rooms.sort_by_key(|r| (r.handler().as_ref() != Some(staff), r.session_id()));
        let mut field = Field::new("session", FieldType::ListSingle);
        field.label = Some("Chat".into());
        field.options = rooms
            .iter()
            .map(|r| {
                let whose = match (r.handler(), r.staff_present()) {
                    (Some(h), _) if h == *staff => "yours".to_string(),
                    (_, Some(o)) => format!("with {}", crate::render::one_line(&o.nick)),
                    _ => r.state().to_string(),
                };
                Option_ {
                    label: Some(format!(
                        "#{} {} ({whose})",
                        r.session_id(),
                        crate::render::one_line(&r.visitor_nick())
                    )),
                    value: r.session_id().to_string(),
                }
            })
            .collect();
        field
    }
}

/// The answer to a command from the front desk `desk`, as a chat message or the ad-hoc
/// command's result.
pub fn reply_stanza(desk: Jid, to: &ReplyTo, text: &str) -> Stanza {
    match to {
        ReplyTo::Chat(j) => stanzas::chat(desk, Jid::from(j.clone()), text).into(),
        ReplyTo::Adhoc { to, iq_id, node } => stanzas::iq_result(
            desk,
            to.clone(),
            iq_id.clone(),
            Some(adhoc_completed(node, text)),
        )
        .into(),
    }
}

impl Core {
    /// The second field of a [`Takes::Text`] command's form.
    fn second_field(&self, kind: TextField, sites: &[crate::address::SiteId]) -> Field {
        match kind {
            TextField::Text(label) => {
                let mut f = Field::new("text", FieldType::TextSingle);
                f.label = Some(label.into());
                f
            }
            TextField::CannedKey => {
                let mut f = Field::new("text", FieldType::ListSingle);
                f.label = Some("Reply".into());
                f.required = true;
                f.options = self
                    .config
                    .sites
                    .iter()
                    .filter(|(id, _)| sites.contains(id))
                    .flat_map(|(_, s)| s.desk.canned.iter())
                    .map(|c| Option_ {
                        label: Some(format!("{}: {}", c.key, crate::render::short(&c.text, 60))),
                        value: c.key.clone(),
                    })
                    .collect();
                f
            }
        }
    }
}

/// What an ad-hoc request comes to, short of an error: a command to run (its reply answers
/// the request), or an answer without one (a form, a note, `canceled`).
enum Step {
    Run(FullJid, Command),
    Answer(Element),
}

fn bad_request(text: &str) -> Refusal {
    Refusal::modify(DefinedCondition::BadRequest, text)
}

fn staff_only() -> Refusal {
    Refusal::auth(
        DefinedCondition::Forbidden,
        "The front desk takes commands from staff only.",
    )
}

/// The data form in an ad-hoc request, if there is one.
fn submitted_form(cmd: &Element) -> Result<Option<DataForm>, Refusal> {
    cmd.get_child("x", ns::DATA_FORMS)
        .map(|x| {
            DataForm::try_from(x.clone()).map_err(|_| bad_request("The form could not be read."))
        })
        .transpose()
}

/// The first value of a form's field, trimmed; `None` if it is missing or empty.
fn form_value<'a>(form: &'a DataForm, var: &str) -> Option<&'a str> {
    form.fields
        .iter()
        .find(|f| f.var.as_deref() == Some(var))
        .and_then(|f| f.values.first())
        .map(|v| v.trim())
        .filter(|v| !v.is_empty())
}

/// The command a submitted form asks for. A note's or tag's chat is one whole value, typed
/// (`number`, which wins) or chosen from the list (`session`, which a client may also show as
/// a text field): `12 billing` there is not a chat number, rather than chat 12 and a word.
fn form_command(spec: &CommandSpec, form: &DataForm) -> Result<Command, String> {
    match spec.takes {
        Takes::ChatText { make, .. } => {
            let chat = form_value(form, "number").or_else(|| form_value(form, "session"));
            let n = chat_number(spec.name, chat)?;
            Ok(make(
                n,
                form_value(form, "text").unwrap_or_default().to_string(),
            ))
        }
        _ => spec.command(&form_arg(spec, form)),
    }
}

/// What a submitted form gives the command, as `!text` would after the command's name.
fn form_arg(spec: &CommandSpec, form: &DataForm) -> String {
    let value = |var| form_value(form, var).unwrap_or_default();
    let arg = match spec.takes {
        Takes::ChatText { .. } | Takes::Text { .. } => {
            format!("{} {}", value("session"), value("text"))
        }
        Takes::MaybeDays(_) => value("days").to_string(),
        _ => value("session").to_string(),
    };
    arg.trim().to_string()
}

fn text_field(var: &str, label: &str, required: bool, value: Option<&str>) -> Field {
    let mut field = Field::new(var, FieldType::TextSingle);
    field.label = Some(label.into());
    field.required = required;
    field.values = value.map(str::to_string).into_iter().collect();
    field
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
