//! The XEP-0114 link: connect and handshake with tokio-xmpp's lower-level API, then hand the
//! socket to frontdesk's own reader (reader.rs), so that one stanza the parser rejects (or a
//! quiet minute) does not end the stream as `tokio_xmpp::Component` would.

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use std::borrow::Cow;
use tokio::io::BufStream;
use tokio::net::TcpStream;

use super::guard::{Framing, Guarded, StanzaLimits};
use super::reader::Reader;
use tokio_xmpp::parsers::component::Handshake;
use tokio_xmpp::parsers::jid::Jid;
use tokio_xmpp::parsers::ns;
use tokio_xmpp::parsers::stream_error::{DefinedCondition, ReceivedStreamError};
use tokio_xmpp::xmlstream::{
    initiate_stream, FallibleStreamElement, ReadError, StreamHeader, Timeouts, XmppStream,
    XmppStreamElement,
};

use crate::config::{Config, Secret};

/// The component stream during the handshake: the socket, with the guard that bounds stanzas
/// on its read side.
type Stream = XmppStream<BufStream<Guarded<TcpStream>>>;

/// Silence before we send a keepalive ping, and how long the answer may take after it.
pub const TIMEOUTS: Timeouts = Timeouts {
    read_timeout: Duration::from_secs(30),
    response_timeout: Duration::from_secs(30),
};
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(15);

#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    #[error("cannot resolve {server}: {source}")]
    Resolve {
        server: String,
        source: std::io::Error,
    },
    #[error("cannot reach the XMPP server's component port at {server}: {source}")]
    Connect {
        server: String,
        source: std::io::Error,
    },
    #[error("the server refused the component secret for {domain} (not-authorized): component.secret does not match the password of the server's component listener. (ejabberd also answers this way when it has no listener entry for {domain}: check both in ejabberd.yml)")]
    NotAuthorized { domain: String },
    #[error("the server does not know the component domain {domain} (host-unknown): add a component for {domain} to the server's config (Prosody: Component \"{domain}\" with component_secret), or fix component.jid")]
    UnknownDomain { domain: String },
    #[error("the server says another component is already connected as {domain}: stop the other frontdesk (or whatever else uses that domain) first")]
    Conflict { domain: String },
    #[error("the server ended the handshake with a stream error: {0}")]
    StreamError(String),
    #[error("the server did not complete the handshake within {}s", HANDSHAKE_TIMEOUT.as_secs())]
    HandshakeTimeout,
    #[error("the connection closed during the handshake")]
    ClosedDuringHandshake,
    #[error("I/O error on the component link: {0}")]
    Io(#[from] std::io::Error),
}

impl LinkError {
    /// Errors retrying cannot fix: a wrong secret or domain, or a second instance.
    pub fn is_fatal(&self) -> bool {
        matches!(
            self,
            LinkError::NotAuthorized { .. }
                | LinkError::UnknownDomain { .. }
                | LinkError::Conflict { .. }
        )
    }
}

/// Connects and completes the XEP-0114 handshake. Returns the reader for the rest of the stream
/// and a second handle on the same socket for the store thread, which does all writing.
pub async fn connect(
    config: &Config,
    secret: &Secret,
    limits: StanzaLimits,
) -> Result<(Reader, std::net::TcpStream), LinkError> {
    let server = &config.component.server;
    let addr = tokio::net::lookup_host(server.as_str())
        .await
        .map_err(|source| LinkError::Resolve {
            server: server.clone(),
            source,
        })?
        .next()
        .ok_or_else(|| LinkError::Resolve {
            server: server.clone(),
            source: std::io::Error::new(std::io::ErrorKind::NotFound, "no address"),
        })?;
    let tcp = TcpStream::connect(addr)
        .await
        .map_err(|source| LinkError::Connect {
            server: server.clone(),
            source,
        })?;
    let _ = tcp.set_nodelay(true);
    let write_handle = {
        use std::os::fd::AsFd;
        std::net::TcpStream::from(tcp.as_fd().try_clone_to_owned()?)
    };
    let jid = Jid::from(config.component.jid.clone());
    // The guard passes bytes to tokio-xmpp's parser up to the server's <handshake/> and cuts
    // everything after it into frames for the reader, so no byte is read twice or lost.
    let io = BufStream::new(Guarded::new(tcp, limits, Framing::AfterHandshake));
    let header = StreamHeader {
        to: Some(Cow::Borrowed(jid.domain().as_str())),
        from: None,
        id: None,
    };
    let mut pending = initiate_stream(io, ns::COMPONENT, header, TIMEOUTS).await?;
    let header = pending.take_header();
    let Some(stream_id) = header.id.map(|id| id.into_owned()) else {
        return Err(LinkError::StreamError(
            "the server sent no stream id".into(),
        ));
    };
    let mut stream: Stream = pending.skip_features();
    let handshake = Handshake::from_stream_id_and_password(stream_id, secret.expose());
    stream
        .send(&XmppStreamElement::ComponentHandshake(handshake))
        .await?;
    let domain = config.component.jid.to_string();
    let wait = async {
        loop {
            match stream.next().await {
                Some(Ok(FallibleStreamElement::Ok(XmppStreamElement::ComponentHandshake(_)))) => {
                    return Ok(())
                }
                Some(Ok(FallibleStreamElement::Ok(XmppStreamElement::StreamError(e)))) => {
                    return Err(refusal(&e, &domain));
                }
                Some(Ok(_))
                | Some(Err(ReadError::SoftTimeout))
                | Some(Err(ReadError::ParseError(_))) => continue,
                Some(Err(ReadError::HardError(e))) => return Err(LinkError::Io(e)),
                Some(Err(ReadError::StreamFooterReceived)) | None => {
                    return Err(LinkError::ClosedDuringHandshake)
                }
            }
        }
    };
    match tokio::time::timeout(HANDSHAKE_TIMEOUT, wait).await {
        // The handshake was read whole and nothing is being written: the stream gives its
        // socket back without panicking.
        Ok(Ok(())) => Ok((
            Reader::new(stream.into_inner().into_inner(), TIMEOUTS),
            write_handle,
        )),
        Ok(Err(e)) => Err(e),
        Err(_) => Err(LinkError::HandshakeTimeout),
    }
}

/// What a stream error during the handshake means for the operator. By condition, not by its
/// text: `see-other-host`'s text carries a host name, which may well contain "conflict".
fn refusal(e: &ReceivedStreamError, domain: &str) -> LinkError {
    let domain = domain.to_string();
    match e.0.condition {
        DefinedCondition::HostUnknown => LinkError::UnknownDomain { domain },
        DefinedCondition::NotAuthorized => LinkError::NotAuthorized { domain },
        DefinedCondition::Conflict => LinkError::Conflict { domain },
        _ => LinkError::StreamError(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio_xmpp::parsers::stream_error::StreamError;

    fn refused(condition: DefinedCondition) -> LinkError {
        let text = "not-authorized host-unknown conflict";
        refusal(
            &ReceivedStreamError(StreamError::new(condition, "en", text)),
            "chat.example.com",
        )
    }

    #[test]
    fn handshake_refusals_are_told_apart_by_their_condition() {
        assert!(matches!(
            refused(DefinedCondition::NotAuthorized),
            LinkError::NotAuthorized { domain } if domain == "chat.example.com"
        ));
        assert!(matches!(
            refused(DefinedCondition::HostUnknown),
            LinkError::UnknownDomain { .. }
        ));
        assert!(matches!(
            refused(DefinedCondition::Conflict),
            LinkError::Conflict { .. }
        ));
        for fatal in [
            DefinedCondition::NotAuthorized,
            DefinedCondition::HostUnknown,
            DefinedCondition::Conflict,
        ] {
            assert!(refused(fatal).is_fatal());
        }
        // Any other condition is worth a retry, whatever its text or host name says.
        for passing in [
            DefinedCondition::SystemShutdown,
            DefinedCondition::InternalServerError,
            DefinedCondition::HostGone,
            DefinedCondition::PolicyViolation,
            DefinedCondition::SeeOtherHost("conflict.not-authorized.host-unknown".into()),
        ] {
            let e = refused(passing.clone());
            assert!(matches!(e, LinkError::StreamError(_)), "{passing}: {e}");
            assert!(!e.is_fatal(), "{passing}");
        }
        // The text keeps the condition and the server's words.
        let shown = refused(DefinedCondition::SystemShutdown).to_string();
        assert!(shown.contains("system-shutdown"), "{shown}");
        assert!(shown.contains("host-unknown conflict"), "{shown}");
    }

    #[test]
    fn only_configuration_errors_are_fatal() {
        let io = || std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        for e in [
            LinkError::Resolve {
                server: "x:5347".into(),
                source: io(),
            },
            LinkError::Connect {
                server: "x:5347".into(),
                source: io(),
            },
            LinkError::StreamError("reset".into()),
            LinkError::HandshakeTimeout,
            LinkError::ClosedDuringHandshake,
            LinkError::Io(io()),
        ] {
            assert!(!e.is_fatal(), "{e}");
        }
    }
}
