//! The link's sending side. It runs on the store thread right after each commit (see
//! `store::writer`): stanzas become bytes in the order the core produced them; those that
//! followed a write go out only if it was stored (otherwise the refusal goes instead and the core
//! is told); and each batch leaves in one socket write. The socket is a second handle on the
//! component link's TCP connection, written with plain calls and poll(2), so this thread never
//! needs the tokio runtime (which is busy reading on the other handle).

use std::io::{self, Write};
use std::net::TcpStream;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use xmpp_parsers::stanza::Stanza;

use super::wire;
use crate::core::{Input, OrElse};
use crate::store::writer::{Deliver, Outcome};

/// How long a write may wait for the server to read before the link counts as dead.
const WRITE_STALL: Duration = Duration::from_secs(30);

/// What the session loop hands the store thread, in order with the writes.
pub enum Delivery {
    /// Stanzas that depend on no write.
    Send(Vec<Stanza>),
    /// Rides with a write: `then` if it was stored, else `or_else`, and the core is told what
    /// `or_else` says it must hear.
    AfterWrite { then: Vec<Stanza>, or_else: OrElse },
    /// A new link: from now on stanzas go there.
    Attach { socket: TcpStream, generation: u64 },
    /// The link is gone: stanzas are dropped (their writes stay stored) until the next one.
    Detach,
    /// Ends the stream (`</stream:stream>`) once everything before it is sent.
    Close(tokio::sync::oneshot::Sender<()>),
}

/// What the store thread tells the session loop.
#[derive(Debug)]
pub enum Feedback {
    /// A write failed; this input tells the core (it takes the message or the session back).
    NotStored(Input),
    /// Writing to this link failed: it is over.
    LinkFailed { generation: u64, reason: String },
}

pub struct Sender {
    link: Option<(TcpStream, u64)>,
    buf: Vec<u8>,
    feedback: tokio::sync::mpsc::UnboundedSender<Feedback>,
    /// Stanzas dropped while there was no link, reported at the next attach.
    dropped: u64,
    metrics: Option<std::sync::Arc<super::metrics::Metrics>>,
}

impl Sender {
    pub fn new(feedback: tokio::sync::mpsc::UnboundedSender<Feedback>) -> Sender {
        Sender {
            link: None,
            buf: Vec::with_capacity(64 * 1024),
            feedback,
            dropped: 0,
            metrics: None,
        }
    }

    pub fn with_metrics(mut self, m: std::sync::Arc<super::metrics::Metrics>) -> Sender {
        self.metrics = Some(m);
        self
    }

    fn queue(&mut self, stanzas: Vec<Stanza>) {
        if self.link.is_none() {
            self.dropped += stanzas.len() as u64;
            return;
        }
        for s in stanzas {
            wire::write_stanza(s, &mut self.buf);
        }
    }

    /// Writes what is buffered; on failure the link is dropped and the session loop told.
    fn flush(&mut self) {
        if self.buf.is_empty() {
            return;
        }
        let Some((socket, generation)) = self.link.as_mut() else {
            self.buf.clear();
            return;
        };
        let result = write_all(socket, &self.buf);
        self.buf.clear();
        // Give back memory a burst took, keeping a working size.
        if self.buf.capacity() > 1024 * 1024 {
            self.buf.shrink_to(64 * 1024);
        }
        if let Err(e) = result {
            let generation = *generation;
            tracing::warn!(error = %e, "writing to the component link failed");
            self.link = None;
            let _ = self.feedback.send(Feedback::LinkFailed {
                generation,
                reason: e.to_string(),
            });
        }
    }
}

impl Deliver for Sender {
    type Item = Delivery;

    fn committed(&mut self, report: crate::store::writer::CommitReport) {
        if let Some(m) = &self.metrics {
            m.committed(report);
        }
    }

    fn deliver(&mut self, items: Vec<(Delivery, Outcome)>) {
        for (item, outcome) in items {
            match item {
                Delivery::Send(stanzas) => self.queue(stanzas),
                Delivery::AfterWrite { then, or_else } => match outcome {
                    Outcome::Failed(e) => {
                        tracing::error!(error = %e, "a message could not be stored; the sender is told and nobody else sees it");
                        if let Some(input) = or_else.not_stored() {
                            let _ = self.feedback.send(Feedback::NotStored(input));
                        }
                        self.queue(or_else.into_stanzas());
                    }
                    Outcome::Stored | Outcome::NoWrite => {
                        if let (Some(m), OrElse::MessageNotSaved { .. }) = (&self.metrics, &or_else)
                        {
                            m.message_stored(if self.link.is_some() { then.len() } else { 0 });
                        }
                        self.queue(then)
                    }
                },
                Delivery::Attach { socket, generation } => {
                    self.flush();
                    if self.dropped > 0 {
                        tracing::warn!(
                            unsent = self.dropped,
                            "stanzas not sent while the link was down (stored messages stay stored)"
                        );
                        self.dropped = 0;
                    }
                    self.link = Some((socket, generation));
                }
                Delivery::Detach => {
                    self.flush();
                    self.link = None;
                }
                Delivery::Close(done) => {
                    if self.link.is_some() {
                        self.buf.extend_from_slice(wire::STREAM_FOOTER);
                    }
                    self.flush();
                    if let Some((socket, _)) = self.link.take() {
                        let _ = socket.shutdown(std::net::Shutdown::Write);
                    }
                    let _ = done.send(());
                }
            }
        }
        self.flush();
    }
}

fn write_all(socket: &mut TcpStream, mut data: &[u8]) -> io::Result<()> {
    let deadline = Instant::now() + WRITE_STALL;
    while !data.is_empty() {
        match socket.write(data) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => data = &data[n..],
            // The descriptor is non-blocking (it shares tokio's open file).
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => wait_writable(socket, deadline)?,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

fn wait_writable(socket: &TcpStream, deadline: Instant) -> io::Result<()> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return Err(io::Error::new(
            io::ErrorKind::TimedOut,
            format!(
                "the server has not read from the link for {} s",
                WRITE_STALL.as_secs()
            ),
        ));
    }
    let mut pfd = libc::pollfd {
        fd: socket.as_raw_fd(),
        events: libc::POLLOUT,
        revents: 0,
    };
    let ms = left.as_millis().clamp(1, i32::MAX as u128) as libc::c_int;
    // SAFETY: one valid, initialised pollfd that outlives the call; the count says one.
    let r = unsafe { libc::poll(&mut pfd, 1, ms) };
    if r < 0 {
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::stanzas;
    use std::io::Read;
    use xmpp_parsers::jid::{BareJid, Jid};

    fn stanza(n: u32) -> Stanza {
        let room = Jid::from(BareJid::new("v1_acme@chat.example.com").unwrap());
        stanzas::iq_result(room.clone(), room, format!("q{n}"), None).into()
    }

    fn refusal(id: &str, stanza_id: &str) -> OrElse {
        OrElse::MessageNotSaved {
            session_id: 7,
            stanza_id: stanza_id.into(),
            room: Jid::from(BareJid::new("v1_acme@chat.example.com").unwrap()),
            to: Jid::from(BareJid::new("v1@anon.example.com").unwrap()),
            id: Some(xmpp_parsers::message::Id(id.into())),
        }
    }

    fn pair() -> (TcpStream, TcpStream) {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let a = TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (b, _) = l.accept().unwrap();
        (a, b)
    }

    fn read_until(sock: &mut TcpStream, needle: &str) -> String {
        sock.set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut got = Vec::new();
        let mut chunk = [0u8; 4096];
        while !String::from_utf8_lossy(&got).contains(needle) {
            let n = sock.read(&mut chunk).unwrap();
            assert!(
                n > 0,
                "closed before {needle:?}: {}",
                String::from_utf8_lossy(&got)
            );
            got.extend_from_slice(&chunk[..n]);
        }
        String::from_utf8(got).unwrap()
    }

    #[test]
    fn stanzas_follow_their_writes_and_failures_send_the_refusal() {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let mut s = Sender::new(tx);
        let (ours, mut theirs) = pair();
        s.deliver(vec![
            (
                Delivery::Attach {
                    socket: ours,
                    generation: 1,
                },
                Outcome::NoWrite,
            ),
            (Delivery::Send(vec![stanza(1)]), Outcome::NoWrite),
            (
                Delivery::AfterWrite {
                    then: vec![stanza(2)],
                    or_else: refusal("q90", "s1"),
                },
                Outcome::Stored,
            ),
            (
                Delivery::AfterWrite {
                    then: vec![stanza(91)],
                    or_else: refusal("q3", "s2"),
                },
                Outcome::Failed("disk full".into()),
            ),
        ]);
        let text = read_until(&mut theirs, "id='q3'");
        let at = |id: &str| {
            text.find(&format!("id='{id}'"))
                .unwrap_or_else(|| panic!("{id} missing: {text}"))
        };
        assert!(at("q1") < at("q2") && at("q2") < at("q3"), "{text}");
        assert!(!text.contains("q90") && !text.contains("q91"), "{text}");
        assert!(
            text.contains("<internal-server-error"),
            "the refusal is an error: {text}"
        );
        match rx.try_recv() {
            Ok(Feedback::NotStored(Input::NotStored {
                session_id: 7,
                stanza_id: Some(id),
            })) => assert_eq!(id, "s2"),
            other => panic!("expected NotStored, got {other:?}"),
        }
    }

    #[test]
    fn without_a_link_stanzas_are_dropped_and_close_ends_the_stream() {
        let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
        let mut s = Sender::new(tx);
        s.deliver(vec![(Delivery::Send(vec![stanza(1)]), Outcome::NoWrite)]);
        assert_eq!(s.dropped, 1);
        let (ours, mut theirs) = pair();
        let (done_tx, mut done_rx) = tokio::sync::oneshot::channel();
        s.deliver(vec![
            (
                Delivery::Attach {
                    socket: ours,
                    generation: 2,
                },
                Outcome::NoWrite,
            ),
            (Delivery::Send(vec![stanza(2)]), Outcome::NoWrite),
            (Delivery::Close(done_tx), Outcome::NoWrite),
        ]);
        assert_eq!(s.dropped, 0);
        let text = read_until(&mut theirs, "</stream:stream>");
        assert!(
            text.starts_with("<iq ") && text.contains("id='q2'") && !text.contains("id='q1'"),
            "{text}"
        );
        assert!(done_rx.try_recv().is_ok());
        // The write side was shut down: the peer reads end of file.
        let mut rest = Vec::new();
        assert_eq!(theirs.read_to_end(&mut rest).unwrap(), 0);
    }

    #[test]
    fn a_dead_peer_is_reported_once_with_its_generation() {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let mut s = Sender::new(tx);
        let (ours, theirs) = pair();
        drop(theirs);
        s.deliver(vec![(
            Delivery::Attach {
                socket: ours,
                generation: 5,
            },
            Outcome::NoWrite,
        )]);
        // The first write may still be accepted by the kernel; keep writing until it fails.
        for _ in 0..50 {
            if s.link.is_none() {
                break;
            }
            s.deliver(vec![(
                Delivery::Send((0..2000).map(stanza).collect()),
                Outcome::NoWrite,
            )]);
        }
        assert!(s.link.is_none(), "writing to a closed peer never failed");
        match rx.try_recv() {
            Ok(Feedback::LinkFailed { generation: 5, .. }) => {}
            other => panic!("expected LinkFailed for generation 5, got {other:?}"),
        }
        assert!(rx.try_recv().is_err(), "reported twice");
    }
}
