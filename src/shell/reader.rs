//! The component stream after the handshake: the guard cuts it into whole stanzas (frames) and
//! this turns each into an event for the session loop. A message of the common shape takes the
//! fast path (fastmsg.rs); everything else goes through rxml and xso into the same types
//! tokio-xmpp would give, one frame at a time, so a frame the parser refuses cannot disturb the
//! next. It also keeps time for the keepalive: after `read_timeout` of silence it asks for a
//! ping, and after `response_timeout` more it gives the link up.

use std::io::Read as _;

use minidom::rxml;
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_xmpp::xmlstream::{
    FallibleStreamElement, StreamElementError, Timeouts, XmppStreamElement,
};
use xmpp_parsers::ns;
use xmpp_parsers::stanza::Stanza;
use xso::{FromEventsBuilder, FromXml};

use super::fastmsg;
use super::guard::{Frame, Guarded};
use crate::core::{InvalidStanza, StanzaKind};

/// Stands in for the stream header the frame was cut from: its default namespace and the
/// `stream` prefix are what a stanza may rely on.
const WRAPPER: &[u8] = b"<stream:stream xmlns='jabber:component:accept' xmlns:stream='http://etherx.jabber.org/streams'>";

pub struct Reader {
    guard: Guarded<TcpStream>,
    timeouts: Timeouts,
    deadline: Instant,
    pinged: bool,
}

impl Reader {
    pub fn new(guard: Guarded<TcpStream>, timeouts: Timeouts) -> Reader {
        Reader {
            guard,
            timeouts,
            deadline: Instant::now() + timeouts.read_timeout,
            pinged: false,
        }
    }

    /// The next event. Cancel-safe (for `select!`): frames already read stay queued, and the
    /// keepalive deadline only moves when something arrives or it passes.
    pub async fn next(&mut self) -> Event {
        match tokio::time::timeout_at(self.deadline, self.guard.next_frame()).await {
            Ok(Ok(Some(frame))) => {
                self.deadline = Instant::now() + self.timeouts.read_timeout;
                self.pinged = false;
                event(frame)
            }
            Ok(Ok(None)) => Event::Closed("the connection ended".into()),
            Ok(Err(e)) => Event::Closed(format!("I/O error: {e}")),
            Err(_) if self.pinged => Event::Closed(format!(
                "the server did not answer the keepalive ping within {}s",
                self.timeouts.response_timeout.as_secs()
            )),
            Err(_) => {
                self.pinged = true;
                self.deadline = Instant::now() + self.timeouts.response_timeout;
                Event::Quiet
            }
        }
    }
}

/// What one read from the stream amounts to.
pub enum Event {
    Stanza(Stanza),
    Invalid(InvalidStanza),
    /// Nothing arrived for a while: send something that gets an answer.
    Quiet,
    /// Something we ignore (an unexpected nonza, a frame the parser refused).
    Ignored(String),
    /// The stream is over; reconnect.
    Closed(String),
}

/// What the full parser's stream element amounts to.
fn classify(element: FallibleStreamElement) -> Event {
    match element {
        FallibleStreamElement::Ok(XmppStreamElement::Stanza(s)) => Event::Stanza(s),
        FallibleStreamElement::Ok(XmppStreamElement::StreamError(e)) => {
            Event::Closed(format!("stream error from the server: {e}"))
        }
        FallibleStreamElement::Ok(other) => Event::Ignored(format!("unexpected element {other:?}")),
        FallibleStreamElement::Err(StreamElementError::InvalidStanza {
            name,
            header,
            error,
            ..
        }) => Event::Invalid(InvalidStanza {
            // tokio-xmpp keeps the stanza kind's type private; its Display is the element name.
            kind: match name.to_string().as_str() {
                "iq" => StanzaKind::Iq,
                "message" => StanzaKind::Message,
                _ => StanzaKind::Presence,
            },
            from: header.from,
            to: header.to,
            id: header.id,
            type_: header.type_,
            reason: error.to_string(),
        }),
        FallibleStreamElement::Err(e) => Event::Ignored(e.to_string()),
    }
}

/// What one frame amounts to.
pub fn event(frame: Frame) -> Event {
    match frame {
        Frame::End => Event::Closed("the server closed the stream".into()),
        Frame::Element(bytes) => match fastmsg::message(&bytes) {
            Some(m) => Event::Stanza(Stanza::Message(m)),
            None => parse(&bytes),
        },
    }
}

/// The full parser: rxml under the stream's namespaces, then the same xso types tokio-xmpp's
/// stream uses, so refusals carry the same header and reason.
pub fn parse(bytes: &[u8]) -> Event {
    match parse_element(bytes) {
        Ok(Some(element)) => classify(element),
        Ok(None) => {
            Event::Ignored("an element frontdesk does not know at the stream's top level".into())
        }
        Err(e) => Event::Ignored(format!("parse error: {e}")),
    }
}

fn parse_element(bytes: &[u8]) -> Result<Option<FallibleStreamElement>, String> {
    let mut events = rxml::XmlLangTracker::wrap(rxml::Reader::new(WRAPPER.chain(bytes)));
    let mut builder = None;
    while let Some(ev) = events.next() {
        let ev = ev.map_err(|e| e.to_string())?;
        let ctx = xso::Context::empty().with_language(events.language());
        match builder.as_mut() {
            None => {
                if let rxml::Event::StartElement(_, qname, attrs) = ev {
                    if qname.1.as_str() == "stream" && qname.0.as_str() == ns::STREAM {
                        continue; // the wrapper itself
                    }
                    match FallibleStreamElement::from_events(qname, attrs, &ctx) {
                        Ok(b) => builder = Some(b),
                        Err(xso::error::FromEventsError::Mismatch { .. }) => return Ok(None),
                        Err(xso::error::FromEventsError::Invalid(e)) => return Err(e.to_string()),
                    }
                }
            }
            Some(b) => {
                if let Some(done) = b.feed(ev, &ctx).map_err(|e| e.to_string())? {
                    return Ok(Some(done));
                }
            }
        }
    }
    Err("the stanza ended early".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shell::guard::{Framing, StanzaLimits};
    use std::time::Duration;
    use tokio::io::AsyncWriteExt;

    /// What the server sent before the reader takes over.
    const START: &[u8] = b"<?xml version='1.0'?><stream:stream xmlns='jabber:component:accept' xmlns:stream='http://etherx.jabber.org/streams' id='x' from='chat.localhost'><handshake/>";

    async fn pair(timeouts: Timeouts) -> (Reader, TcpStream) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (mut server, _) = listener.accept().await.unwrap();
        server.write_all(START).await.unwrap();
        let guard = Guarded::new(client, StanzaLimits::default(), Framing::AfterHandshake);
        (Reader::new(guard, timeouts), server)
    }

    fn frame(s: &str) -> Event {
        event(Frame::Element(s.as_bytes().to_vec()))
    }

    #[test]
    fn frames_become_the_events_the_session_loop_knows() {
        assert!(matches!(
            frame("<message from='a@b/c'><body>hi</body></message>"),
            Event::Stanza(Stanza::Message(_))
        ));
        assert!(matches!(
            frame("<presence from='a@b/c' to='r@chat.localhost/n'><x xmlns='http://jabber.org/protocol/muc'/></presence>"),
            Event::Stanza(Stanza::Presence(_))
        ));
        // Refused by xmpp-parsers: the header survives for the error reply.
        match frame("<iq from='a@b/c' to='chat.localhost' id='q1' type='get'/>") {
            Event::Invalid(bad) => {
                assert_eq!(bad.id.as_deref(), Some("q1"));
                assert_eq!(bad.from.as_deref(), Some("a@b/c"));
                assert_eq!(bad.type_.as_deref(), Some("get"));
            }
            _ => panic!("an iq without a child is invalid"),
        }
        match frame(
            "<stream:error><conflict xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error>",
        ) {
            Event::Closed(why) => assert!(why.contains("conflict"), "{why}"),
            _ => panic!("a stream error ends the link"),
        }
        assert!(matches!(event(Frame::End), Event::Closed(_)));
        assert!(matches!(frame("<foo xmlns='urn:x'/>"), Event::Ignored(_)));
        assert!(matches!(
            frame("<message><body>a</message>"),
            Event::Ignored(_)
        ));
        assert!(matches!(
            frame("<p:message xmlns:p='urn:p'/>"),
            Event::Ignored(_)
        ));
    }

    #[tokio::test]
    async fn silence_asks_for_a_ping_and_then_gives_the_link_up() {
        let timeouts = Timeouts {
            read_timeout: Duration::from_millis(100),
            response_timeout: Duration::from_millis(100),
        };
        let (mut reader, mut server) = pair(timeouts).await;
        assert!(matches!(reader.next().await, Event::Quiet));
        // An answer (any stanza) puts the clock back.
        server
            .write_all(
                b"<iq type='result' id='fd-keepalive-1' from='localhost' to='chat.localhost'/>",
            )
            .await
            .unwrap();
        assert!(matches!(reader.next().await, Event::Stanza(Stanza::Iq(_))));
        assert!(matches!(reader.next().await, Event::Quiet));
        match reader.next().await {
            Event::Closed(why) => assert!(why.contains("keepalive"), "{why}"),
            _ => panic!("no answer to the ping ends the link"),
        }
    }

    #[tokio::test]
    async fn stanzas_split_across_reads_come_whole_and_in_order() {
        let (mut reader, mut server) = pair(super::super::link::TIMEOUTS).await;
        let input = b"<message id='1'><body>one</body></message> <message id='2'><body>t\xc3\xa9</body></message></stream:stream>";
        let writer = tokio::spawn(async move {
            for chunk in input.chunks(3) {
                server.write_all(chunk).await.unwrap();
                server.flush().await.unwrap();
            }
            server
        });
        for (id, body) in [("1", "one"), ("2", "té")] {
            match reader.next().await {
                Event::Stanza(Stanza::Message(m)) => {
                    assert_eq!(m.id.map(|i| i.0).as_deref(), Some(id));
                    assert_eq!(m.bodies.values().next().map(String::as_str), Some(body));
                }
                _ => panic!("message {id}"),
            }
        }
        assert!(matches!(reader.next().await, Event::Closed(_)));
        drop(writer.await.unwrap());
    }
}
