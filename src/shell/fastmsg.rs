//! The fast path for most of the traffic: a `<message/>` with attributes, at most one body and
//! childless extension elements (chat states, receipts, origin-id…), built straight into
//! xmpp-parsers' `Message` from the frame's bytes: the general parser (rxml and xso) was the
//! largest part of what a reflected message cost (docs/benchmark-notes.md, round 4).
//!
//! It accepts a strict subset of XML that it checks completely, and answers `None` ("not
//! mine") for anything else: other stanzas, prefixes, subjects, threads, nested payloads, text
//! outside the body, anything malformed, anything needing normalisation. The full parser then
//! judges the stanza, so there is one judge of errors. The tests hold it to the full parser:
//! whenever this returns a message, rxml + xso return the same one.

use std::collections::BTreeMap;

use minidom::rxml::NcName;
use minidom::Element;
use xmpp_parsers::jid::Jid;
use xmpp_parsers::message::{Id, Lang, Message, MessageType};

/// The component stream's default namespace, which the message and its body inherit.
const NS: &str = "jabber:component:accept";
const XML_NS: &str = "http://www.w3.org/XML/1998/namespace";
const XMLNS_NS: &str = "http://www.w3.org/2000/xmlns/";

/// The message in `frame` (one whole element), when it has the simple shape.
pub fn message(frame: &[u8]) -> Option<Message> {
    let mut c = Cursor { b: frame, i: 0 };
    c.literal(b"<message")?;
    let mut from = None;
    let mut to = None;
    let mut id = None;
    let mut type_ = MessageType::Normal;
    let mut lang: Option<String> = None;
    let mut seen = [false; 6];
    let empty = c.attributes(|name, value| {
        let k = match name {
            b"from" => 0,
            b"to" => 1,
            b"id" => 2,
            b"type" => 3,
            b"xml:lang" => 4,
            b"xmlns" => 5,
            _ => return None,
        };
        if std::mem::replace(&mut seen[k], true) {
            return None; // a repeated attribute is not well-formed
        }
        match k {
            0 => from = Some(Jid::new(&value).ok()?),
            1 => to = Some(Jid::new(&value).ok()?),
            2 => id = Some(Id(value)),
            3 => type_ = message_type(&value)?,
            4 => lang = Some(value),
            _ if value == NS => {}
            _ => return None,
        }
        Some(())
    })?;
    let mut message = Message {
        from,
        to,
        id,
        type_,
        bodies: BTreeMap::new(),
        subjects: BTreeMap::new(),
        thread: None,
        payloads: Vec::new(),
    };
    if empty {
        return c.at_end().then_some(message);
    }
    loop {
        c.literal(b"<")?;
        if c.peek() == Some(b'/') {
            c.literal(b"/message")?;
            c.space();
            c.literal(b">")?;
            return c.at_end().then_some(message);
        }
        let name = c.name()?;
        if name == b"body" {
            if !message.bodies.is_empty() {
                return None;
            }
            let (body_lang, text) = body(&mut c)?;
            let key = body_lang.or_else(|| lang.clone()).unwrap_or_default();
            message.bodies.insert(Lang(key), text);
        } else {
            message.payloads.push(payload(&mut c, name)?);
        }
    }
}

fn message_type(v: &str) -> Option<MessageType> {
    Some(match v {
        "chat" => MessageType::Chat,
        "error" => MessageType::Error,
        "groupchat" => MessageType::Groupchat,
        "headline" => MessageType::Headline,
        "normal" => MessageType::Normal,
        _ => return None,
    })
}

/// `<body` already read: its optional `xml:lang`, then its text.
fn body(c: &mut Cursor) -> Option<(Option<String>, String)> {
    let mut lang = None;
    let mut seen = [false; 2];
    let empty = c.attributes(|name, value| {
        let k = match name {
            b"xml:lang" => 0,
            b"xmlns" => 1,
            _ => return None,
        };
        if std::mem::replace(&mut seen[k], true) {
            return None;
        }
        match k {
            0 => lang = Some(value),
            _ if value == NS => {}
            _ => return None,
        }
        Some(())
    })?;
    if empty {
        return Some((lang, String::new()));
    }
    let text = c.text()?;
    c.literal(b"</body")?;
    c.space();
    c.literal(b">")?;
    Some((lang, text))
}

/// A childless element in a namespace of its own, with plain attributes.
fn payload(c: &mut Cursor, name: &[u8]) -> Option<Element> {
    let name = std::str::from_utf8(name).ok()?;
    NcName::try_from(name).ok()?;
    let mut ns = None;
    let mut attrs: Vec<(NcName, String)> = Vec::new();
    let empty = c.attributes(|n, value| {
        if n == b"xmlns" {
            if ns.is_some() || value.is_empty() || value == XML_NS || value == XMLNS_NS {
                return None;
            }
            ns = Some(value);
            return Some(());
        }
        let n = NcName::try_from(std::str::from_utf8(n).ok()?).ok()?;
        if attrs.iter().any(|(k, _)| *k == n) {
            return None;
        }
        attrs.push((n, value));
        Some(())
    })?;
    // In the stream's namespace it would be a part of the message this path does not build
    // (subject, thread, error…), so only foreign namespaces are payloads here.
    let ns = ns.filter(|ns| ns != NS)?;
    if !empty {
        // `<x></x>` is the same element; anything inside is not for the fast path.
        c.literal(b"</")?;
        if c.name()? != name.as_bytes() {
            return None;
        }
        c.space();
        c.literal(b">")?;
    }
    let mut b = Element::builder(name, ns);
    for (n, v) in attrs {
        b = b.attr(n, v);
    }
    Some(b.build())
}

struct Cursor<'a> {
    b: &'a [u8],
    i: usize,
}

impl<'a> Cursor<'a> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    fn at_end(&self) -> bool {
        self.i == self.b.len()
    }

    fn literal(&mut self, s: &[u8]) -> Option<()> {
        if self.b.get(self.i..)?.starts_with(s) {
            self.i += s.len();
            Some(())
        } else {
            None
        }
    }

    /// Skips XML whitespace; says whether there was any.
    fn space(&mut self) -> bool {
        let start = self.i;
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\r' | b'\n')) {
            self.i += 1;
        }
        self.i > start
    }

    /// An element or attribute name: ASCII letters, digits, `_ - . :` (the caller decides what
    /// it accepts; anything else is left to the full parser).
    fn name(&mut self) -> Option<&'a [u8]> {
        let start = self.i;
        while matches!(
            self.peek(),
            Some(b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'_' | b'-' | b'.' | b':')
        ) {
            self.i += 1;
        }
        (self.i > start).then(|| &self.b[start..self.i])
    }

    /// The attributes of a start tag whose name was read, through its `>` or `/>`: each goes
    /// to `each` (decoded). Says whether the element was empty (`/>`).
    fn attributes(&mut self, mut each: impl FnMut(&[u8], String) -> Option<()>) -> Option<bool> {
        loop {
            let spaced = self.space();
            match self.peek()? {
                b'>' => {
                    self.i += 1;
                    return Some(false);
                }
                b'/' => {
                    self.literal(b"/>")?;
                    return Some(true);
                }
                _ if !spaced => return None, // attributes need whitespace before them
                _ => {}
            }
            let name = self.name()?;
            self.space();
            self.literal(b"=")?;
            self.space();
            let q = self.peek().filter(|q| matches!(q, b'\'' | b'"'))?;
            self.i += 1;
            let rest = self.b.get(self.i..)?;
            let n = memchr::memchr(q, rest)?;
            let value = decode(&rest[..n], true)?;
            self.i += n + 1;
            each(name, value)?;
        }
    }

    /// Character data up to the next `<`.
    fn text(&mut self) -> Option<String> {
        let rest = self.b.get(self.i..)?;
        let n = memchr::memchr(b'<', rest)?;
        let text = decode(&rest[..n], false)?;
        self.i += n;
        Some(text)
    }
}

/// Decodes text or an attribute value. `None` for anything not plainly valid or that XML would
/// normalise (a carriage return; a tab or newline inside an attribute value).
fn decode(raw: &[u8], attribute: bool) -> Option<String> {
    let s = std::str::from_utf8(raw).ok()?;
    let mut out = String::with_capacity(s.len());
    let mut copied = 0;
    let bytes = s.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        match b {
            b'&' => {
                out.push_str(&s[copied..i]);
                let end = i + memchr::memchr(b';', &bytes[i..])?;
                out.push(entity(&s[i + 1..end])?);
                i = end + 1;
                copied = i;
                continue;
            }
            b'<' => return None,
            b'\t' | b'\n' if !attribute => {}
            0..=0x1f => return None,
            // `]]>` may not appear in character data.
            b'>' if !attribute && i >= 2 && &bytes[i - 2..i] == b"]]" => return None,
            // U+FFFE and U+FFFF are not XML characters.
            0xEF if matches!(bytes.get(i + 1..i + 3), Some([0xBF, 0xBE | 0xBF])) => return None,
            _ => {}
        }
        i += 1;
    }
    out.push_str(&s[copied..]);
    Some(out)
}

fn entity(name: &str) -> Option<char> {
    let c = match name {
        "amp" => '&',
        "lt" => '<',
        "gt" => '>',
        "quot" => '"',
        "apos" => '\'',
        _ => {
            let num = name.strip_prefix('#')?;
            let (digits, radix) = match num.strip_prefix('x') {
                Some(hex) => (hex, 16),
                None => (num, 10),
            };
            if digits.is_empty()
                || digits.len() > 8
                || !digits.bytes().all(|d| d.is_ascii_hexdigit())
            {
                return None;
            }
            let c = char::from_u32(u32::from_str_radix(digits, radix).ok()?)?;
            let ok = matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..);
            return ok.then_some(c);
        }
    };
    Some(c)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shell::reader::{self, Event};
    use proptest::prelude::*;
    use xmpp_parsers::stanza::Stanza;

    /// What the full parser makes of the frame, when it is a message.
    fn full(frame: &[u8]) -> Option<Message> {
        match reader::parse(frame) {
            Event::Stanza(Stanza::Message(m)) => Some(m),
            _ => None,
        }
    }

    /// Holds the fast path to the full parser; says whether the fast path took the frame.
    fn agrees(frame: &[u8]) -> Result<bool, TestCaseError> {
        let Some(fast) = message(frame) else {
            return Ok(false);
        };
        let text = String::from_utf8_lossy(frame);
        let Some(slow) = full(frame) else {
            return Err(TestCaseError::fail(format!(
                "fast path took what the full parser refuses: {text}"
            )));
        };
        prop_assert_eq!(&fast, &slow, "{}", text);
        // Payloads are reflected as they are, so they must serialise the same as well.
        for (a, b) in fast.payloads.iter().zip(&slow.payloads) {
            prop_assert_eq!(String::from(a), String::from(b));
        }
        Ok(true)
    }

    fn taken(frame: &str) -> Message {
        match agrees(frame.as_bytes()) {
            Ok(true) => message(frame.as_bytes()).unwrap(),
            Ok(false) => panic!("fast path declined: {frame}"),
            Err(e) => panic!("{e}"),
        }
    }

    fn declined(frame: &str) {
        assert!(
            message(frame.as_bytes()).is_none(),
            "fast path took: {frame}"
        );
    }

    #[test]
    fn the_common_shapes_take_the_fast_path() {
        // Strophe.js through ejabberd, which adds xml:lang.
        let m = taken("<message xml:lang='en' to='v1_acme@chat.example.com' from='abc@anon.example.com/r1' type='groupchat' id='a1'><body>Hello &amp; &lt;welcome&gt; &#x1F600; &#233;</body></message>");
        assert_eq!(m.type_, MessageType::Groupchat);
        assert_eq!(
            m.bodies.get(&Lang("en".into())).map(String::as_str),
            Some("Hello & <welcome> 😀 é")
        );
        // Conversations-style extras: chat state, receipt request, origin-id, markable.
        let m = taken(
            r#"<message from="alice_acme@example.com/desk" to="v1_acme@chat.example.com" type="groupchat" id="x"><body xml:lang="de">Hallo</body><active xmlns="http://jabber.org/protocol/chatstates"/><request xmlns="urn:xmpp:receipts"/><origin-id xmlns="urn:xmpp:sid:0" id="o-1"/><markable xmlns="urn:xmpp:chat-markers:0"></markable></message>"#,
        );
        assert_eq!(m.payloads.len(), 4);
        assert!(m.bodies.contains_key(&Lang("de".into())));
        // A chat state alone, an empty body, no attributes at all, explicit namespace.
        taken("<message to='v1_acme@chat.example.com' type='groupchat'><composing xmlns='http://jabber.org/protocol/chatstates'/></message>");
        taken("<message type='chat'><body/></message>");
        taken("<message/>");
        taken("<message xmlns='jabber:component:accept' id='q'><body xmlns='jabber:component:accept'>x</body></message>");
        taken("<message id = \"a'b\" ><body >tab\tand\nnewline &quot;&apos;</body ></message >");
    }

    #[test]
    fn anything_else_goes_to_the_full_parser() {
        for frame in [
            "<presence/>",
            "<message><subject>s</subject></message>",
            "<message><thread>t</thread></message>",
            "<message><body>a</body><body xml:lang='de'>b</body></message>",
            "<message><x xmlns='urn:x'><y/></x></message>",
            "<message><x xmlns='urn:x'>text</x></message>",
            "<message><error type='cancel'/></message>",
            "<message><x/></message>",
            "<message xmlns:p='urn:p'><p:x/></message>",
            "<message><x xmlns='urn:x' p:a='1'/></message>",
            "<message id='a' id='b'/>",
            "<message id='a'type='chat'/>",
            "<message type='bogus'/>",
            "<message from='@@'/>",
            "<message to=''/>",
            "<message> <body>a</body></message>",
            "<message><body>a]]>b</body></message>",
            "<message><body>a\rb</body></message>",
            "<message id='a\tb'/>",
            "<message><body>a\u{1}b</body></message>",
            "<message><body>\u{FFFE}</body></message>",
            "<message><body>&nbsp;</body></message>",
            "<message><body>&#0;</body></message>",
            "<message><body>&#xD800;</body></message>",
            "<message><body>&#12345678901;</body></message>",
            "<message><body><![CDATA[x]]></body></message>",
            "<message><body>a</bodyx></message>",
            "<message><body>a</body></messagex>",
            "<message><body>a</body></message> ",
            "<message><x xmlns='urn:x'></y></message>",
            "<message><x xmlns=''/></message>",
            "<message><x xmlns='http://www.w3.org/XML/1998/namespace'/></message>",
            "<messages/>",
        ] {
            declined(frame);
            // and the full parser's answer is whatever it is: no panic either way
            let _ = reader::parse(frame.as_bytes());
        }
        assert!(message(b"<message><body>\xff</body></message>").is_none());
    }

    /// Text the generator escapes itself, with every kind of character XML allows.
    fn chars() -> impl Strategy<Value = String> {
        proptest::collection::vec(
            prop_oneof![
                4 => proptest::char::range('a', 'z'),
                2 => proptest::sample::select(vec!['&', '<', '>', '"', '\'', ']', ';', '#', ' ', '\t', '\n', '\r', '\u{7f}', '\u{85}', '\u{a0}', 'é', '€', '\u{FFFD}', '😀', '\u{E000}', '\u{10FFFF}']),
            ],
            0..24,
        )
        .prop_map(|v| v.into_iter().collect())
    }

    fn escape(s: &str, attribute: bool, numeric: bool) -> String {
        let mut out = String::new();
        for c in s.chars() {
            match c {
                '&' => out.push_str("&amp;"),
                '<' => out.push_str("&lt;"),
                '>' => out.push_str(if numeric { "&#62;" } else { "&gt;" }),
                '"' if attribute => out.push_str("&quot;"),
                '\'' if attribute => out.push_str(if numeric { "&#x27;" } else { "&apos;" }),
                '\r' => out.push_str("&#13;"),
                '\t' | '\n' if attribute => out.push_str(&format!("&#{};", c as u32)),
                'é' if numeric => out.push_str("&#xE9;"),
                c => out.push(c),
            }
        }
        out
    }

    fn jid() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("v1_acme@chat.example.com".to_string()),
            Just("abc@anon.example.com/r1".to_string()),
            Just("alice_acme@example.com/desk with space".to_string()),
            Just("example.com".to_string()),
        ]
    }

    prop_compose! {
        fn frame()(
            from in proptest::option::of(jid()),
            to in proptest::option::of(jid()),
            id in proptest::option::of(chars()),
            type_ in proptest::option::of(proptest::sample::select(vec!["chat", "groupchat", "normal", "headline", "error"])),
            lang in proptest::option::of(proptest::sample::select(vec!["en", "de-CH", ""])),
            body in proptest::option::of((chars(), proptest::option::of(proptest::sample::select(vec!["en", "fr", ""])))),
            payloads in proptest::collection::vec((0usize..4, proptest::option::of(chars()), any::<bool>()), 0..4),
            numeric in any::<bool>(),
            dq in any::<bool>(),
        ) -> String {
            let q = if dq { '"' } else { '\'' };
            let mut s = String::from("<message");
            let attr = |s: &mut String, k: &str, v: &str| {
                s.push_str(&format!(" {k}={q}{}{q}", escape(v, true, numeric)));
            };
            if let Some(v) = &from { attr(&mut s, "from", v) }
            if let Some(v) = &to { attr(&mut s, "to", v) }
            if let Some(v) = &id { attr(&mut s, "id", v) }
            if let Some(v) = type_ { attr(&mut s, "type", v) }
            if let Some(v) = lang { attr(&mut s, "xml:lang", v) }
            s.push('>');
            if let Some((text, blang)) = &body {
                match blang {
                    Some(l) => s.push_str(&format!("<body xml:lang={q}{l}{q}>")),
                    None => s.push_str("<body>"),
                }
                s.push_str(&escape(text, false, numeric));
                s.push_str("</body>");
            }
            const NAMES: [(&str, &str); 4] = [
                ("active", "http://jabber.org/protocol/chatstates"),
                ("origin-id", "urn:xmpp:sid:0"),
                ("request", "urn:xmpp:receipts"),
                ("x", "urn:example:a&amp;b"),
            ];
            for (k, value, closed) in &payloads {
                let (name, ns) = NAMES[*k];
                s.push_str(&format!("<{name} xmlns={q}{ns}{q}"));
                if let Some(v) = value {
                    s.push_str(&format!(" id={q}{}{q}", escape(v, true, numeric)));
                }
                s.push_str(if *closed { "/>" } else { "></" });
                if !*closed {
                    s.push_str(name);
                    s.push('>');
                }
            }
            s.push_str("</message>");
            s
        }
    }

    /// Up to three inserts, deletions or replacements with bytes that matter to XML.
    fn edits() -> impl Strategy<Value = Vec<(prop::sample::Index, u8, u8)>> {
        let bytes = vec![
            b'<', b'>', b'&', b'\'', b'"', b'/', b';', b'#', b'x', b' ', b'\r', b'\t', 0u8, 1,
            0x7f, 0xC3, 0xEF, 0xBF, 0xBE, b']', b'=', b':', b'a',
        ];
        proptest::collection::vec(
            (
                any::<prop::sample::Index>(),
                0u8..3,
                proptest::sample::select(bytes),
            ),
            1..4,
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn well_formed_messages_take_the_fast_path_and_agree(frame in frame()) {
            prop_assert!(agrees(frame.as_bytes())?, "declined: {}", frame);
        }

        #[test]
        fn damaged_messages_never_get_past_the_full_parser(
            frame in frame(),
            edits in edits(),
        ) {
            let mut bytes = frame.into_bytes();
            for (at, op, b) in edits {
                let i = at.index(bytes.len() + 1);
                match op {
                    0 => bytes.insert(i, b),
                    1 if i < bytes.len() => { bytes.remove(i); }
                    _ if i < bytes.len() => bytes[i] = b,
                    _ => bytes.push(b),
                }
            }
            agrees(&bytes)?;
        }
    }
}
