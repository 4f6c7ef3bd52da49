//! Stanzas to bytes for the component link. Messages and presences are written directly rather
//! than through xso's serialiser, which cost more than the rest of a reflected message (most
//! of it moving its iterator state around; docs/benchmark-notes.md); this writes the same XML
//! directly. IQs are rare and take the general path.
//!
//! Output is a stanza at depth 1 of the component stream, whose default namespace is
//! `jabber:component:accept`, so the stanza itself carries no `xmlns`.

use minidom::{Element, Node};
use xmpp_parsers::message::{Message, MessageType};
use xmpp_parsers::presence::{Presence, Show, Type as PresenceType};
use xmpp_parsers::stanza::Stanza;

/// The stream's default namespace (with xmpp-parsers' `component` feature).
const STREAM_NS: &str = xmpp_parsers::ns::DEFAULT_NS;
const XML_NS: &str = "http://www.w3.org/XML/1998/namespace";

/// The closing tag of the component stream.
pub const STREAM_FOOTER: &[u8] = b"</stream:stream>";

/// Appends one stanza to `out`.
pub fn write_stanza(stanza: Stanza, out: &mut Vec<u8>) {
    match stanza {
        Stanza::Message(m) => write_message(&m, out),
        Stanza::Presence(p) => write_presence(&p, out),
        Stanza::Iq(iq) => write_element(&Element::from(iq), STREAM_NS, out),
    }
}

fn write_message(m: &Message, out: &mut Vec<u8>) {
    out.extend_from_slice(b"<message");
    opt_attr(out, "from", m.from.as_ref().map(|j| j.as_str()));
    opt_attr(out, "to", m.to.as_ref().map(|j| j.as_str()));
    opt_attr(out, "id", m.id.as_ref().map(|i| i.0.as_str()));
    let type_ = match m.type_ {
        MessageType::Chat => Some("chat"),
        MessageType::Error => Some("error"),
        MessageType::Groupchat => Some("groupchat"),
        MessageType::Headline => Some("headline"),
        MessageType::Normal => None,
    };
    opt_attr(out, "type", type_);
    out.push(b'>');
    for (lang, text) in &m.subjects {
        text_child(out, "subject", &lang.0, text);
    }
    for (lang, text) in &m.bodies {
        text_child(out, "body", &lang.0, text);
    }
    if let Some(thread) = &m.thread {
        out.extend_from_slice(b"<thread");
        opt_attr(out, "parent", thread.parent.as_deref());
        out.push(b'>');
        escape(out, &thread.id, false);
        out.extend_from_slice(b"</thread>");
    }
    for p in &m.payloads {
        write_element(p, STREAM_NS, out);
    }
    out.extend_from_slice(b"</message>");
}

fn write_presence(p: &Presence, out: &mut Vec<u8>) {
    out.extend_from_slice(b"<presence");
    opt_attr(out, "from", p.from.as_ref().map(|j| j.as_str()));
    opt_attr(out, "to", p.to.as_ref().map(|j| j.as_str()));
    opt_attr(out, "id", p.id.as_deref());
    let type_ = match p.type_ {
        PresenceType::None => None,
        PresenceType::Error => Some("error"),
        PresenceType::Probe => Some("probe"),
        PresenceType::Subscribe => Some("subscribe"),
        PresenceType::Subscribed => Some("subscribed"),
        PresenceType::Unavailable => Some("unavailable"),
        PresenceType::Unsubscribe => Some("unsubscribe"),
        PresenceType::Unsubscribed => Some("unsubscribed"),
    };
    opt_attr(out, "type", type_);
    out.push(b'>');
    if let Some(show) = &p.show {
        out.extend_from_slice(match show {
            Show::Away => b"<show>away</show>".as_slice(),
            Show::Chat => b"<show>chat</show>",
            Show::Dnd => b"<show>dnd</show>",
            Show::Xa => b"<show>xa</show>",
        });
    }
    for (lang, text) in &p.statuses {
        text_child(out, "status", &lang.0, text);
    }
    // xso writes the priority even when it is the default 0; so do we.
    out.extend_from_slice(b"<priority>");
    out.extend_from_slice(p.priority.0.to_string().as_bytes());
    out.extend_from_slice(b"</priority>");
    for e in &p.payloads {
        write_element(e, STREAM_NS, out);
    }
    out.extend_from_slice(b"</presence>");
}

/// `<name xml:lang='..'>text</name>` in the stream's namespace.
fn text_child(out: &mut Vec<u8>, name: &str, lang: &str, text: &str) {
    out.push(b'<');
    out.extend_from_slice(name.as_bytes());
    if !lang.is_empty() {
        attr(out, "xml:lang", lang);
    }
    out.push(b'>');
    escape(out, text, false);
    out.extend_from_slice(b"</");
    out.extend_from_slice(name.as_bytes());
    out.push(b'>');
}

/// Any element, declaring its namespace where it differs from its parent's. Namespaced
/// attributes other than `xml:` get a prefix declared on the element itself.
fn write_element(e: &Element, parent_ns: &str, out: &mut Vec<u8>) {
    out.push(b'<');
    out.extend_from_slice(e.name().as_bytes());
    let own_ns;
    let ns = if e.has_ns(parent_ns) {
        parent_ns
    } else {
        own_ns = e.ns();
        attr(out, "xmlns", &own_ns);
        own_ns.as_str()
    };
    let mut prefixes = 0usize;
    for ((attr_ns, name), value) in e.attrs().iter() {
        match attr_ns.as_namespace_name() {
            None => attr(out, name.as_str(), value),
            Some(XML_NS) => {
                out.extend_from_slice(b" xml:");
                out.extend_from_slice(name.as_str().as_bytes());
                out.extend_from_slice(b"='");
                escape(out, value, true);
                out.push(b'\'');
            }
            Some(other) => {
                prefixes += 1;
                let prefix = format!("fdns{prefixes}");
                attr(out, &format!("xmlns:{prefix}"), other);
                attr(out, &format!("{prefix}:{}", name.as_str()), value);
            }
        }
    }
    let mut nodes = e.nodes().peekable();
    if nodes.peek().is_none() {
        out.extend_from_slice(b"/>");
        return;
    }
    out.push(b'>');
    for node in nodes {
        match node {
            Node::Element(child) => write_element(child, ns, out),
            Node::Text(text) => escape(out, text, false),
        }
    }
    out.extend_from_slice(b"</");
    out.extend_from_slice(e.name().as_bytes());
    out.push(b'>');
}

fn opt_attr(out: &mut Vec<u8>, name: &str, value: Option<&str>) {
    if let Some(v) = value {
        attr(out, name, v);
    }
}

fn attr(out: &mut Vec<u8>, name: &str, value: &str) {
    out.push(b' ');
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b"='");
    escape(out, value, true);
    out.push(b'\'');
}

/// XML escaping for text (`in_attr == false`) or a single-quoted attribute value. Carriage
/// returns (and, in attributes, tabs and newlines) become character references so that they
/// survive the receiver's end-of-line and attribute-value normalisation.
fn escape(out: &mut Vec<u8>, s: &str, in_attr: bool) {
    let bytes = s.as_bytes();
    let table = if in_attr {
        &ATTR_SPECIAL
    } else {
        &TEXT_SPECIAL
    };
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        if !table[usize::from(b)] {
            continue;
        }
        let rep: &[u8] = match b {
            b'&' => b"&amp;",
            b'<' => b"&lt;",
            b'>' => b"&gt;",
            b'\r' => b"&#xD;",
            b'\'' => b"&apos;",
            b'"' => b"&quot;",
            b'\n' => b"&#xA;",
            b'\t' => b"&#x9;",
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..i]);
        out.extend_from_slice(rep);
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
}

/// Which bytes `escape` replaces: one load per byte instead of a chain of compares.
const TEXT_SPECIAL: [bool; 256] = special(b"&<>\r");
const ATTR_SPECIAL: [bool; 256] = special(b"&<>\r'\"\n\t");

const fn special(chars: &[u8]) -> [bool; 256] {
    let mut t = [false; 256];
    let mut i = 0;
    while i < chars.len() {
        t[chars[i] as usize] = true;
        i += 1;
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::stanzas;
    use xmpp_parsers::jid::{BareJid, FullJid, Jid};
    use xmpp_parsers::message::{Id, Lang};
    use xmpp_parsers::stanza_error::{DefinedCondition, ErrorType};

    /// Parses what we wrote inside a component stream root, as a receiver would.
    fn parse(bytes: &[u8]) -> Element {
        let doc = format!(
            "<stream:stream xmlns='{STREAM_NS}' xmlns:stream='http://etherx.jabber.org/streams'>{}</stream:stream>",
            std::str::from_utf8(bytes).expect("utf-8")
        );
        let root: Element = doc.parse().expect("well-formed");
        let mut children = root.children();
        let only = children.next().expect("one stanza").clone();
        assert!(children.next().is_none(), "more than one element written");
        only
    }

    /// Ours and xso's serialisation mean the same element.
    fn same_as_xso<T: Clone + Into<Element> + Into<Stanza>>(stanza: T) -> Vec<u8> {
        // Through bytes too, so that both sides are parsed the same way (an empty text node).
        let mut theirs = Vec::new();
        Into::<Element>::into(stanza.clone())
            .write_to(&mut theirs)
            .unwrap();
        let expected: Element = std::str::from_utf8(&theirs).unwrap().parse().unwrap();
        let mut out = Vec::new();
        write_stanza(stanza.into(), &mut out);
        assert_eq!(parse(&out), expected, "{}", String::from_utf8_lossy(&out));
        out
    }

    fn nc(s: &str) -> minidom::rxml::NcName {
        minidom::rxml::NcName::try_from(s).unwrap()
    }

    fn full(s: &str) -> FullJid {
        FullJid::new(s).unwrap()
    }

    #[test]
    fn a_reflected_message_reads_back_as_xso_writes_it() {
        let room = BareJid::new("v1_acme@chat.example.com").unwrap();
        let kept: Vec<Element> = vec![
            Element::builder("active", "http://jabber.org/protocol/chatstates").build(),
            Element::builder("origin-id", "urn:xmpp:sid:0")
                .attr(nc("id"), "o-1")
                .build(),
        ];
        let m = stanzas::groupchat_text(stanzas::GroupchatText {
            from: full("v1_acme@chat.example.com/Visitor"),
            to: full("alice_acme@example.com/laptop"),
            id: Some(Id("m-1".into())),
            body: "hello <b>&amp;</b> 'quoted' \"double\" ]]> \r\n\ttab é 😀",
            lang: Lang::from("en"),
            stanza_id: "17",
            room: &room,
            kept,
            delayed: Some(crate::time::Timestamp(1_795_000_000_000)),
        });
        let bytes = same_as_xso(m);
        let text = String::from_utf8(bytes).unwrap();
        assert!(text.starts_with("<message from='v1_acme@chat.example.com/Visitor' to='alice_acme@example.com/laptop' id='m-1' type='groupchat'>"), "{text}");
        assert!(!text.contains("<b>"), "{text}");
    }

    #[test]
    fn presences_errors_and_iqs_read_back_as_xso_writes_them() {
        let room = Jid::from(BareJid::new("v1_acme@chat.example.com").unwrap());
        let to = Jid::from(full("v1@anon.example.com/r1"));
        let err = stanzas::error(
            ErrorType::Wait,
            DefinedCondition::InternalServerError,
            "could not be 'saved' & <sent>",
        );
        same_as_xso(stanzas::message_error(
            room.clone(),
            to.clone(),
            Some(Id("x".into())),
            err.clone(),
        ));
        same_as_xso(stanzas::iq_error(
            room.clone(),
            to.clone(),
            "q1".into(),
            err,
        ));
        same_as_xso(stanzas::iq_result(
            room.clone(),
            to.clone(),
            "q2".into(),
            None,
        ));
        same_as_xso(stanzas::iq_result(
            room.clone(),
            to.clone(),
            "q3".into(),
            Some(stanzas::disco_info(
                "Chat with us",
                &["http://jabber.org/protocol/muc"],
            )),
        ));
        let mut p = Presence::new(PresenceType::Unavailable);
        p.from = Some(room.clone());
        p.to = Some(to.clone());
        p.id = Some("p'1".into());
        p.show = Some(Show::Dnd);
        p.statuses.insert(Lang::from("en"), "gone\nfor now".into());
        p.statuses.insert(Lang::default(), "plain".into());
        p.priority = xmpp_parsers::presence::Priority(-5);
        p.payloads.push(
            Element::builder("x", "http://jabber.org/protocol/muc#user")
                .append(
                    Element::builder("item", "http://jabber.org/protocol/muc#user")
                        .attr(nc("role"), "participant")
                        .build(),
                )
                .append(
                    Element::builder("status", "http://jabber.org/protocol/muc#user")
                        .attr(nc("code"), "110")
                        .build(),
                )
                .build(),
        );
        same_as_xso(p);
        same_as_xso(Presence::new(PresenceType::None));
    }

    #[test]
    fn namespaced_attributes_and_nested_namespaces_survive() {
        let inner = Element::builder("inner", "urn:b")
            .attr(nc("k"), "v")
            .append(
                Element::builder("deeper", "urn:b")
                    .append("text & more")
                    .build(),
            )
            .append(Element::builder("other", "urn:c").build())
            .build();
        let mut outer = Element::builder("outer", "urn:a").append(inner).build();
        outer.attrs_mut().insert(
            minidom::rxml::Namespace::xml().clone(),
            nc("lang"),
            "de".to_string(),
        );
        outer.attrs_mut().insert(
            minidom::rxml::Namespace::from("urn:attr".to_string()),
            nc("flag"),
            "1".to_string(),
        );
        let mut m = Message::new(None);
        m.type_ = MessageType::Normal;
        m.payloads.push(outer);
        m.thread = Some(xmpp_parsers::message::Thread {
            parent: Some("p".into()),
            id: "t<1>".into(),
        });
        m.subjects.insert(Lang::default(), "subject".into());
        same_as_xso(m);
    }

    #[test]
    fn escaping_round_trips_any_text() {
        let samples = [
            "",
            "&",
            "<<>>",
            "a'b\"c",
            "\r",
            "\r\n",
            "\n",
            "\t",
            "]]>",
            "&amp;",
            "x\u{10FFFF}y",
        ];
        for s in samples {
            let mut m = Message::new(None);
            m.bodies.insert(Lang::default(), s.to_string());
            m.id = Some(Id(s.to_string()));
            same_as_xso(m);
        }
    }
}

#[cfg(test)]
mod props {
    use super::*;
    use proptest::prelude::*;
    use xmpp_parsers::message::{Id, Lang};

    proptest! {
        /// Any text a visitor can send (any XML character) comes back the same.
        #[test]
        fn any_body_and_id_round_trip(body in "[\\PC\t\r\n]{0,64}", id in "[\\PC\t\r\n]{0,16}") {
            let mut m = Message::groupchat(None);
            m.bodies.insert(Lang::from("en"), body.clone());
            m.id = Some(Id(id.clone()));
            let mut out = Vec::new();
            write_stanza(m.into(), &mut out);
            let doc = format!("<s xmlns='{STREAM_NS}'>{}</s>", String::from_utf8(out).unwrap());
            let root: Element = doc.parse().unwrap();
            let back = Message::try_from(root.children().next().unwrap().clone()).unwrap();
            prop_assert_eq!(back.bodies.get(&Lang::from("en")).cloned().unwrap_or_default(), body);
            prop_assert_eq!(back.id.map(|i| i.0), Some(id));
        }
    }
}
