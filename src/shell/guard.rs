//! The guard between the socket and the XML parser: it bounds every stanza the server passes
//! through (bytes, element depth, children per element, and the length of a name or attribute
//! value) and replaces one that is over a limit by a small stand-in, so the core can refuse it
//! with an error. Without it, one visitor's 10 KB attribute value made tokio-xmpp's parser
//! (rxml, 8 KiB per token) end the whole component stream, and every chat with it.
//!
//! The stand-in keeps the stanza's name and its `from`, `to`, `id` and `type` (when they are of
//! sane length) and carries one `<limit-exceeded xmlns='urn:xmpp:frontdesk:limits:0'
//! limit='…'/>` child. Memory stays bounded: past a limit the rest of the stanza is only
//! scanned, not kept.
//!
//! The servers re-serialize what clients send, so inside a stanza there are only elements,
//! attributes in quotes and escaped text: no comments, CDATA or processing instructions (if
//! one shows up anyway, the guard stops guarding that stanza and passes it on as it is).

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

pub use crate::core::limits::NS_LIMITS;

/// The bounds on one stanza.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StanzaLimits {
    pub max_bytes: usize,
    /// Element depth below the stanza itself (the stanza's children are depth 1).
    pub max_depth: usize,
    pub max_children: usize,
    /// Longest element name, attribute name or attribute value, in bytes (rxml's own limit
    /// is 8192 and ends the stream).
    pub max_token: usize,
}

impl StanzaLimits {
    /// The config's limits; names and attribute values stay well under rxml's fatal 8 KiB.
    pub fn from_config(l: &crate::config::Limits) -> StanzaLimits {
        StanzaLimits {
            max_bytes: l.stanza_bytes,
            max_depth: l.depth,
            max_children: l.children,
            max_token: 4_096,
        }
    }
}

impl Default for StanzaLimits {
    fn default() -> StanzaLimits {
        StanzaLimits {
            max_bytes: 65_536,
            max_depth: 32,
            max_children: 256,
            max_token: 4_096,
        }
    }
}

/// Which limit a stanza went over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Over {
    Bytes,
    Depth,
    Children,
    Token,
}

impl Over {
    pub fn as_str(self) -> &'static str {
        match self {
            Over::Bytes => "stanza-bytes",
            Over::Depth => "depth",
            Over::Children => "children",
            Over::Token => "token-length",
        }
    }
}

/// The root attributes a stand-in keeps.
const ROOT_ATTRS: [&[u8]; 4] = [b"from", b"to", b"id", b"type"];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Text,
    /// Just after `<`.
    Open,
    Name {
        end: bool,
    },
    InTag,
    AttrName,
    Eq,
    Value(u8),
    /// `/` inside a start tag.
    SelfClose,
    /// Inside an end tag, after the name.
    EndRest,
    /// `<?…>` or `<!…>` outside stanzas (the XML declaration): passed through.
    Markup,
}

/// Whether the scanner hands stanzas on as bytes for a streaming parser or as frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// Everything goes on as bytes (`feed`'s `out`).
    Off,
    /// As `Off` up to and including the server's `<handshake/>`, then as `On`. The link's
    /// mode: tokio-xmpp's parser does the handshake, frontdesk's reader everything after it.
    AfterHandshake,
    /// Each complete stanza (or stand-in) becomes one `Frame`; nothing goes to `out`.
    On,
}

/// One top-level element of the stream, whole, or the stream's end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    Element(Vec<u8>),
    End,
}

/// The byte-level scanner (no I/O): feed it what the socket gave, it writes what the parser
/// should see (or, when framing, queues whole stanzas).
pub struct Scanner {
    limits: StanzaLimits,
    framing: Framing,
    frames: std::collections::VecDeque<Frame>,
    state: State,
    /// Open elements, the stream's own included.
    depth: usize,
    /// Inside a stanza (depth ≥ 2 or its root start tag).
    in_stanza: bool,
    /// A `<` at stream depth 1 not yet passed on.
    held_lt: bool,
    /// Guarding stopped for this stanza (unexpected markup): pass the rest through.
    passthrough: bool,
    buf: Vec<u8>,
    over: Option<Over>,
    bytes: usize,
    token: usize,
    /// Children so far of each open element of the stanza (root first).
    children: Vec<usize>,
    root_name: Vec<u8>,
    /// The root's from, to, id and type (see `ROOT_ATTRS`): whether seen, and the value.
    root_attrs: [(bool, Vec<u8>); 4],
    attr_name: Vec<u8>,
    attr_value: Vec<u8>,
    /// The name being read, for the root's start tag.
    name: Vec<u8>,
    /// Stanzas replaced so far (for the log).
    pub replaced: u64,
}

impl Scanner {
    pub fn new(limits: StanzaLimits) -> Scanner {
        Scanner::with_framing(limits, Framing::Off)
    }

    pub fn with_framing(limits: StanzaLimits, framing: Framing) -> Scanner {
        Scanner {
            limits,
            framing,
            frames: std::collections::VecDeque::new(),
            state: State::Text,
            depth: 0,
            in_stanza: false,
            held_lt: false,
            passthrough: false,
            buf: Vec::new(),
            over: None,
            bytes: 0,
            token: 0,
            children: Vec::new(),
            root_name: Vec::new(),
            root_attrs: Default::default(),
            attr_name: Vec::new(),
            attr_value: Vec::new(),
            name: Vec::new(),
            replaced: 0,
        }
    }

    /// The next whole element, when framing.
    pub fn next_frame(&mut self) -> Option<Frame> {
        self.frames.pop_front()
    }

    fn violate(&mut self, what: Over) {
        if self.over.is_none() {
            self.over = Some(what);
            self.buf = Vec::new();
        }
    }

    /// Depth of the element being opened or closed, counted from the stanza root (1).
    fn stanza_depth(&self) -> usize {
        self.depth.saturating_sub(1)
    }

    pub fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) {
        let mut i = 0;
        while i < input.len() {
            // Text and attribute values are most of the bytes: take each run up to the byte
            // that ends it at once rather than byte by byte.
            let stop = match self.state {
                State::Text if !self.held_lt => Some(b'<'),
                State::Value(q) if !self.held_lt => Some(q),
                _ => None,
            };
            if let Some(stop) = stop {
                let rest = &input[i..];
                let n = memchr::memchr(stop, rest).unwrap_or(rest.len());
                if n > 0 {
                    self.run(&rest[..n], out);
                    i += n;
                    continue;
                }
            }
            self.byte(input[i], out);
            i += 1;
        }
    }

    /// Bytes into the stanza being collected (counted against its size limit), or, outside a
    /// guarded stanza, straight on to the parser.
    fn take(&mut self, bytes: &[u8], out: &mut Vec<u8>) {
        if let Some(sink) = self.sink(bytes.len(), out) {
            sink.extend_from_slice(bytes);
        }
    }

    /// `take` for one byte: most markup bytes come one at a time, and a push is far cheaper
    /// than copying a one-byte slice.
    #[inline]
    fn take_byte(&mut self, b: u8, out: &mut Vec<u8>) {
        if let Some(sink) = self.sink(1, out) {
            sink.push(b);
        }
    }

    /// Where the next `n` bytes go, counted against the stanza's size limit: the stanza's
    /// buffer, the parser's input, or nowhere (over a limit, or framing outside a stanza).
    #[inline]
    fn sink<'a>(&'a mut self, n: usize, out: &'a mut Vec<u8>) -> Option<&'a mut Vec<u8>> {
        if self.in_stanza && !self.passthrough {
            self.bytes += n;
            if self.bytes > self.limits.max_bytes {
                self.violate(Over::Bytes);
            }
            self.over.is_none().then_some(&mut self.buf)
        } else if self.framing != Framing::On {
            Some(out)
        } else {
            None
        }
    }

    /// Bytes that do not change the state: text without `<`, or an attribute value without its
    /// closing quote. Same effect as feeding them one by one.
    fn run(&mut self, run: &[u8], out: &mut Vec<u8>) {
        let State::Value(_) = self.state else {
            self.take(run, out);
            return;
        };
        let (before, after) = run.split_at(self.over_token_at(run.len()));
        self.take(before, out);
        let was = self.token;
        self.token += run.len();
        if self.token > self.limits.max_token {
            self.violate(Over::Token);
        } else if self.in_stanza && self.depth == 1 && was <= self.limits.max_token {
            self.attr_value.extend_from_slice(run);
        }
        self.take(after, out);
    }

    /// How many of the next `n` bytes of a token to take before the one that goes over the
    /// token limit, so that a size and a token violation are told in the order stepping the
    /// bytes one by one would meet them.
    fn over_token_at(&self, n: usize) -> usize {
        (self.limits.max_token.saturating_sub(self.token) + 1).min(n)
    }

    fn byte(&mut self, b: u8, out: &mut Vec<u8>) {
        // A `<` between stanzas is held back until the next byte says whether a stanza starts.
        if self.held_lt {
            self.held_lt = false;
            if matches!(b, b'/' | b'?' | b'!') {
                if self.framing != Framing::On {
                    out.push(b'<');
                }
            } else {
                self.in_stanza = true;
                self.passthrough = false;
                self.over = None;
                self.buf.clear();
                self.buf.push(b'<');
                self.bytes = 1;
                self.children.clear();
                self.root_name.clear();
                for slot in &mut self.root_attrs {
                    slot.0 = false;
                    slot.1.clear();
                }
            }
        }
        if !self.in_stanza && self.depth == 1 && self.state == State::Text && b == b'<' {
            self.held_lt = true;
        } else {
            self.take_byte(b, out);
        }
        self.step(b, out);
    }

    fn step(&mut self, b: u8, out: &mut Vec<u8>) {
        let lim = self.limits;
        match self.state {
            State::Text => {
                if b == b'<' {
                    self.state = State::Open;
                }
            }
            State::Open => match b {
                b'/' => {
                    self.state = State::Name { end: true };
                    self.token = 0;
                }
                b'?' | b'!' => {
                    if self.in_stanza && !self.passthrough && self.framing != Framing::On {
                        // Not what a server sends inside a stanza: stop guarding it. (A frame
                        // stays guarded; the full parser deals with the markup.)
                        self.passthrough = true;
                        if self.over.is_none() {
                            out.extend_from_slice(&self.buf);
                        }
                        self.buf.clear();
                    }
                    self.state = State::Markup;
                }
                _ => {
                    self.state = State::Name { end: false };
                    self.token = 1;
                    self.name.clear();
                    self.name.push(b);
                    if self.in_stanza {
                        let d = self.stanza_depth() + 1;
                        if d > lim.max_depth + 1 {
                            self.violate(Over::Depth);
                        }
                        if let Some(c) = self.children.last_mut() {
                            *c += 1;
                            if *c > lim.max_children {
                                self.violate(Over::Children);
                            }
                        }
                    }
                }
            },
            State::Name { end } => {
                if is_space(b) || b == b'>' || b == b'/' {
                    if !end && self.in_stanza && self.depth == 1 {
                        self.root_name.clear();
                        self.root_name.extend_from_slice(&self.name);
                    }
                    self.state = if end { State::EndRest } else { State::InTag };
                    self.tag_char(b, end, out);
                } else {
                    self.token += 1;
                    if self.token > lim.max_token {
                        self.violate(Over::Token);
                    }
                    if !end && self.name.len() < 64 {
                        self.name.push(b);
                    }
                }
            }
            State::InTag => self.tag_char(b, false, out),
            State::AttrName => {
                if b == b'=' {
                    self.state = State::Eq;
                } else if is_space(b) {
                    // whitespace before '='
                } else {
                    self.token += 1;
                    if self.token > lim.max_token {
                        self.violate(Over::Token);
                    }
                    if self.attr_name.len() < 64 {
                        self.attr_name.push(b);
                    }
                }
            }
            State::Eq => {
                if b == b'\'' || b == b'"' {
                    self.state = State::Value(b);
                    self.token = 0;
                    self.attr_value.clear();
                }
            }
            State::Value(q) => {
                if b == q {
                    if self.in_stanza && self.depth == 1 && self.token <= lim.max_token {
                        // Only these go into a stand-in; copied into reused buffers.
                        if let Some(k) = ROOT_ATTRS.iter().position(|n| *n == self.attr_name) {
                            let slot = &mut self.root_attrs[k];
                            slot.0 = true;
                            slot.1.clear();
                            slot.1.extend_from_slice(&self.attr_value);
                        }
                    }
                    self.attr_name.clear();
                    self.attr_value.clear();
                    self.state = State::InTag;
                } else {
                    self.token += 1;
                    if self.token > lim.max_token {
                        self.violate(Over::Token);
                    } else if self.in_stanza && self.depth == 1 {
                        self.attr_value.push(b);
                    }
                }
            }
            State::SelfClose => {
                if b == b'>' {
                    // An empty element: it opened and closed.
                    self.state = State::Text;
                    if self.in_stanza && self.depth == 1 {
                        self.finish_stanza(out);
                    }
                } else {
                    self.state = State::InTag;
                }
            }
            State::EndRest => {
                if b == b'>' {
                    self.state = State::Text;
                    self.depth = self.depth.saturating_sub(1);
                    if self.in_stanza {
                        self.children.pop();
                        if self.depth == 1 {
                            self.finish_stanza(out);
                        }
                    } else if self.depth == 0 && self.framing == Framing::On {
                        self.frames.push_back(Frame::End);
                    }
                }
            }
            State::Markup => {
                if b == b'>' {
                    self.state = State::Text;
                }
            }
        }
    }

    /// A byte inside a start tag (after its name) or at the end of an end tag's name.
    fn tag_char(&mut self, b: u8, end: bool, out: &mut Vec<u8>) {
        if end {
            if b == b'>' {
                self.state = State::EndRest;
                self.step(b, out);
            }
            return;
        }
        match b {
            b'>' => {
                self.state = State::Text;
                self.depth += 1;
                if self.in_stanza {
                    self.children.push(0);
                }
            }
            b'/' => self.state = State::SelfClose,
            c if is_space(c) => self.state = State::InTag,
            c => {
                self.state = State::AttrName;
                self.token = 1;
                self.attr_name.clear();
                self.attr_name.push(c);
            }
        }
    }

    fn finish_stanza(&mut self, out: &mut Vec<u8>) {
        self.in_stanza = false;
        if self.passthrough {
            self.passthrough = false;
            return;
        }
        if self.framing == Framing::On {
            // Sized once: `buf` keeps its capacity for the next stanza.
            let mut frame = Vec::with_capacity(self.buf.len());
            self.finish_into(&mut frame);
            if !frame.is_empty() {
                self.frames.push_back(Frame::Element(frame));
            }
        } else {
            self.finish_into(out);
            if self.framing == Framing::AfterHandshake && self.root_name == b"handshake" {
                self.framing = Framing::On;
            }
        }
        self.children.clear();
    }

    fn finish_into(&mut self, out: &mut Vec<u8>) {
        match self.over.take() {
            None => {
                out.extend_from_slice(&self.buf);
                self.buf.clear();
            }
            Some(over) => {
                self.replaced += 1;
                self.buf = Vec::new();
                if !matches!(self.root_name.as_slice(), b"message" | b"presence" | b"iq") {
                    return; // not a stanza: dropped
                }
                out.push(b'<');
                out.extend_from_slice(&self.root_name);
                for (k, (set, v)) in ROOT_ATTRS.iter().zip(&self.root_attrs) {
                    if *set {
                        out.push(b' ');
                        out.extend_from_slice(k);
                        out.extend_from_slice(b"='");
                        // The value was valid inside quotes of either kind; re-quote safely.
                        for &c in v {
                            if c == b'\'' {
                                out.extend_from_slice(b"&apos;");
                            } else {
                                out.push(c);
                            }
                        }
                        out.push(b'\'');
                    }
                }
                out.extend_from_slice(b"><limit-exceeded xmlns='");
                out.extend_from_slice(NS_LIMITS.as_bytes());
                out.extend_from_slice(b"' limit='");
                out.extend_from_slice(over.as_str().as_bytes());
                out.extend_from_slice(b"'/></");
                out.extend_from_slice(&self.root_name);
                out.push(b'>');
            }
        }
    }
}

fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

/// The socket with the scanner on its read side.
pub struct Guarded<S> {
    inner: S,
    scanner: Scanner,
    ready: Vec<u8>,
    pos: usize,
    raw: Box<[u8]>,
}

impl<S> Guarded<S> {
    pub fn new(inner: S, limits: StanzaLimits, framing: Framing) -> Guarded<S> {
        Guarded {
            inner,
            scanner: Scanner::with_framing(limits, framing),
            ready: Vec::new(),
            pos: 0,
            raw: vec![0; 16 * 1024].into_boxed_slice(),
        }
    }
}

impl<S: AsyncRead + Unpin> Guarded<S> {
    /// One read from the socket through the scanner; `false` at end of file.
    fn poll_fill(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<bool>> {
        let mut rb = ReadBuf::new(&mut self.raw);
        match Pin::new(&mut self.inner).poll_read(cx, &mut rb) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Ready(Ok(())) => {
                let n = rb.filled().len();
                if n > 0 {
                    self.scanner.feed(&self.raw[..n], &mut self.ready);
                }
                Poll::Ready(Ok(n > 0))
            }
        }
    }

    /// The next whole stanza once framing is on (after the handshake); `None` at end of file.
    /// Cancel-safe: what was read stays queued in the scanner.
    pub fn poll_frame(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<Option<Frame>>> {
        loop {
            if let Some(f) = self.scanner.next_frame() {
                return Poll::Ready(Ok(Some(f)));
            }
            match self.poll_fill(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Ready(Ok(false)) => return Poll::Ready(Ok(None)),
                Poll::Ready(Ok(true)) => {
                    // The handshake's bytes went to the handshake's parser already.
                    self.ready.clear();
                    self.pos = 0;
                }
            }
        }
    }

    pub async fn next_frame(&mut self) -> io::Result<Option<Frame>> {
        std::future::poll_fn(|cx| self.poll_frame(cx)).await
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Guarded<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            if this.pos < this.ready.len() {
                let n = (this.ready.len() - this.pos).min(buf.remaining());
                buf.put_slice(&this.ready[this.pos..this.pos + n]);
                this.pos += n;
                if this.pos == this.ready.len() {
                    this.ready.clear();
                    this.pos = 0;
                }
                return Poll::Ready(Ok(()));
            }
            match this.poll_fill(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Ready(Ok(false)) => return Poll::Ready(Ok(())), // EOF
                // A whole read may have gone into a stanza still being collected: read on.
                Poll::Ready(Ok(true)) => {}
            }
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Guarded<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, data)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEAD: &str = "<?xml version='1.0'?><stream:stream xmlns='jabber:component:accept' xmlns:stream='http://etherx.jabber.org/streams' id='x' from='chat.localhost'>";

    fn run(limits: StanzaLimits, input: &str, chunk: usize) -> String {
        let mut s = Scanner::new(limits);
        let mut out = Vec::new();
        for c in input.as_bytes().chunks(chunk.max(1)) {
            s.feed(c, &mut out);
        }
        String::from_utf8(out).unwrap()
    }

    /// What goes on to the handshake parser, and the frames after it.
    fn frames(limits: StanzaLimits, input: &str, chunk: usize) -> (String, Vec<Frame>) {
        let mut s = Scanner::with_framing(limits, Framing::AfterHandshake);
        let mut out = Vec::new();
        let mut frames = Vec::new();
        for c in input.as_bytes().chunks(chunk.max(1)) {
            s.feed(c, &mut out);
            while let Some(f) = s.next_frame() {
                frames.push(f);
            }
        }
        (String::from_utf8(out).unwrap(), frames)
    }

    #[test]
    fn after_the_handshake_stanzas_come_as_frames_and_stand_ins_too() {
        let input = format!("{HEAD}<handshake/> <message from='v@a/r'><body>{}</body></message>\n<presence from='v@a/r'/><iq id='1'><![CDATA[<]]></iq></stream:stream>", "x".repeat(400));
        for chunk in [1, 3, 64, 4096] {
            let (out, frames) = frames(small(), &input, chunk);
            assert_eq!(out, format!("{HEAD}<handshake/>"), "chunk {chunk}");
            let text: Vec<String> = frames
                .iter()
                .map(|f| match f {
                    Frame::Element(b) => String::from_utf8(b.clone()).unwrap(),
                    Frame::End => "END".into(),
                })
                .collect();
            assert_eq!(
                text,
                [
                    format!("<message from='v@a/r'><limit-exceeded xmlns='{NS_LIMITS}' limit='stanza-bytes'/></message>"),
                    "<presence from='v@a/r'/>".to_string(),
                    // Markup stays inside its frame; the full parser judges it.
                    "<iq id='1'><![CDATA[<]]></iq>".to_string(),
                    "END".to_string(),
                ],
                "chunk {chunk}"
            );
        }
    }

    fn small() -> StanzaLimits {
        StanzaLimits {
            max_bytes: 300,
            max_depth: 3,
            max_children: 4,
            max_token: 40,
        }
    }

    /// An element name, attribute name or value that goes over the token limit a few bytes
    /// before its stanza goes over the size limit is a token violation, whether it comes as
    /// one run or byte by byte.
    #[test]
    fn a_long_name_is_told_as_the_first_limit_it_breaks() {
        let pad = 250 - "<message from='v@a/r'><body></body><".len();
        let head = format!("<message from='v@a/r'><body>{}</body><", "x".repeat(pad));
        assert_eq!(head.len(), 250);
        let long = "n".repeat(60);
        for tail in [
            format!("{long}/>"),
            format!("x {long}='v'/>"),
            format!("x a='{long}'/>"),
        ] {
            let input = format!("{HEAD}{head}{tail}</message></stream:stream>");
            let whole = run(small(), &input, input.len());
            assert!(whole.contains("token-length"), "{whole}");
            assert!(!whole.contains("stanza-bytes"), "{whole}");
            assert_eq!(run(small(), &input, 1), whole);
        }
    }

    #[test]
    fn well_behaved_streams_pass_unchanged_in_any_chunking() {
        let body = format!(
            "{HEAD}<handshake/> <message from='a@b/c' to='r@chat.localhost' type='groupchat' id=\"q'1\"><body>x &gt; y &amp; 'z'</body><x xmlns='urn:y'><y a='1&lt;2'/></x></message>\n<presence from='a@b/c' to='r@chat.localhost/n'/><iq type='get' id='1' from='a@b/c' to='chat.localhost'><ping xmlns='urn:xmpp:ping'/></iq></stream:stream>"
        );
        for chunk in [1, 2, 3, 7, 64, 4096] {
            assert_eq!(run(small(), &body, chunk), body, "chunk {chunk}");
        }
    }

    #[test]
    fn a_long_attribute_value_is_replaced_and_the_stream_goes_on() {
        let long = "A".repeat(100);
        let input = format!("{HEAD}<message from='v@anon/r' to='r@chat.localhost' id='{long}' type='groupchat'><body>hi</body></message><presence from='v@anon/r' to='r@chat.localhost/n'/>");
        let out = run(small(), &input, 5);
        assert_eq!(
            out,
            format!("{HEAD}<message from='v@anon/r' to='r@chat.localhost' type='groupchat'><limit-exceeded xmlns='{NS_LIMITS}' limit='token-length'/></message><presence from='v@anon/r' to='r@chat.localhost/n'/>")
        );
    }

    #[test]
    fn too_big_too_deep_and_too_many_children() {
        let big = format!(
            "{HEAD}<message from='v@a/r' id='m1'><body>{}</body></message>",
            "x".repeat(400)
        );
        assert!(run(small(), &big, 9).ends_with(&format!("<message from='v@a/r' id='m1'><limit-exceeded xmlns='{NS_LIMITS}' limit='stanza-bytes'/></message>")));
        let deep = format!(
            "{HEAD}<message id='m2'>{}{}</message>",
            "<a>".repeat(4),
            "</a>".repeat(4)
        );
        assert!(
            run(small(), &deep, 1).contains("limit='depth'"),
            "{}",
            run(small(), &deep, 1)
        );
        let ok_deep = format!(
            "{HEAD}<message id='m3'>{}{}</message>",
            "<a>".repeat(3),
            "</a>".repeat(3)
        );
        assert_eq!(run(small(), &ok_deep, 1), ok_deep);
        let wide = format!(
            "{HEAD}<iq type='set' id='i1'><q>{}</q></iq>",
            "<a/>".repeat(5)
        );
        assert!(run(small(), &wide, 4).ends_with(&format!(
            "<iq id='i1' type='set'><limit-exceeded xmlns='{NS_LIMITS}' limit='children'/></iq>"
        )));
    }

    #[test]
    fn quotes_in_kept_attributes_stay_escaped() {
        let input = format!(
            "{HEAD}<message from='v@a/r' id=\"it's\"><body>{}</body></message>",
            "x".repeat(400)
        );
        let out = run(small(), &input, 3);
        assert!(out.ends_with("<message from='v@a/r' id='it&apos;s'><limit-exceeded xmlns='urn:xmpp:frontdesk:limits:0' limit='stanza-bytes'/></message>"), "{out}");
    }

    #[test]
    fn memory_stays_bounded_while_skipping() {
        let mut s = Scanner::new(small());
        let mut out = Vec::new();
        s.feed(format!("{HEAD}<message id='m'><body>").as_bytes(), &mut out);
        for _ in 0..1000 {
            s.feed(&[b'x'; 1000], &mut out);
            assert!(
                s.buf.capacity() <= 1024,
                "buffer grew to {}",
                s.buf.capacity()
            );
        }
        s.feed(b"</body></message>", &mut out);
        assert!(String::from_utf8(out)
            .unwrap()
            .ends_with("limit='stanza-bytes'/></message>"));
        assert_eq!(s.replaced, 1);
    }

    mod props {
        use super::*;
        use proptest::prelude::*;

        fn escaped() -> impl Strategy<Value = String> {
            proptest::collection::vec(
                prop_oneof![
                    Just("a".to_string()),
                    Just(" ".to_string()),
                    Just("&amp;".to_string()),
                    Just("&lt;".to_string()),
                    Just("&gt;".to_string()),
                    Just("&apos;".to_string()),
                    Just("&quot;".to_string()),
                    Just("é".to_string()),
                    Just("\n".to_string()),
                    Just("/".to_string()),
                    Just("=".to_string()),
                ],
                0..12,
            )
            .prop_map(|v| v.concat())
        }

        fn attrs() -> impl Strategy<Value = String> {
            proptest::collection::vec(
                (
                    prop_oneof![Just("id"), Just("type"), Just("xml:lang"), Just("a-b.c")],
                    escaped(),
                    any::<bool>(),
                ),
                0..3,
            )
            .prop_map(|v| {
                let mut seen = std::collections::HashSet::new();
                v.into_iter()
                    .filter(|(n, _, _)| seen.insert(*n))
                    .map(|(n, val, dq)| {
                        if dq {
                            format!(" {n}=\"{val}\"")
                        } else {
                            format!(" {n}='{val}'")
                        }
                    })
                    .collect()
            })
        }

        fn element() -> impl Strategy<Value = String> {
            let leaf = prop_oneof![
                escaped(),
                (prop_oneof![Just("body"), Just("x"), Just("n-1")], attrs())
                    .prop_map(|(n, a)| format!("<{n} xmlns='urn:t'{a}/>")),
            ];
            leaf.prop_recursive(4, 40, 4, |inner| {
                (
                    prop_oneof![Just("body"), Just("x"), Just("n-1")],
                    attrs(),
                    proptest::collection::vec(inner, 0..4),
                )
                    .prop_map(|(n, a, kids)| {
                        format!("<{n} xmlns='urn:t'{a}>{}</{n}>", kids.concat())
                    })
            })
        }

        /// The stanzas of a generated stream, as the reader should get them.
        fn stanzas_of(input: &str) -> String {
            input
                .strip_prefix(HEAD)
                .and_then(|s| s.strip_suffix("</stream:stream>"))
                .unwrap_or_default()
                .to_string()
        }

        fn stream() -> impl Strategy<Value = (String, usize)> {
            proptest::collection::vec(
                (
                    prop_oneof![Just("message"), Just("presence"), Just("iq")],
                    attrs(),
                    proptest::collection::vec(element(), 0..4),
                ),
                1..5,
            )
            .prop_map(|stanzas| {
                let body: String = stanzas
                    .iter()
                    .map(|(n, a, kids)| format!("<{n} from='v@a/r'{a}>{}</{n}>", kids.concat()))
                    .collect();
                (format!("{HEAD}{body}</stream:stream>"), stanzas.len())
            })
        }

        /// Stanzas whose element and attribute names, values and sizes straddle `small()`'s
        /// limits.
        fn long_names() -> impl Strategy<Value = String> {
            let name = "[a-z][a-z0-9:.-]{0,60}";
            proptest::collection::vec((name, name, "[a-z ]{0,50}", name), 1..4).prop_map(|v| {
                let body: String = v
                    .iter()
                    .map(|(el, at, val, kid)| {
                        format!("<message from='v@a/r' {at}='{val}'><{el} xmlns='urn:t'><{kid}/></{el}></message>")
                    })
                    .collect();
                format!("{HEAD}{body}</stream:stream>")
            })
        }

        proptest! {
            /// Text and attribute values taken as runs give what stepping them byte by byte
            /// gives (a one-byte chunk is stepped byte by byte), violations of every kind included.
            #[test]
            fn runs_step_like_single_bytes(input in long_names(), chunk in 2usize..400) {
                let one_by_one = run(small(), &input, 1);
                prop_assert_eq!(run(small(), &input, chunk), one_by_one.clone());
                prop_assert_eq!(run(small(), &input, input.len()), one_by_one);
            }

            /// Well-formed stanzas within the limits pass byte for byte, however the socket cuts them.
            #[test]
            fn within_limits_nothing_changes((input, _) in stream(), chunk in 1usize..200) {
                prop_assert_eq!(run(StanzaLimits::default(), &input, chunk), input);
            }

            /// After the handshake, the same stanzas come out whole, one frame each, then the end.
            #[test]
            fn framing_gives_each_stanza_whole((input, n) in stream(), chunk in 1usize..200) {
                let with_handshake = input.replacen(HEAD, &format!("{HEAD}<handshake/>\n"), 1);
                let (out, frames) = frames(StanzaLimits::default(), &with_handshake, chunk);
                prop_assert_eq!(out, format!("{HEAD}<handshake/>"));
                prop_assert_eq!(frames.len(), n + 1);
                prop_assert_eq!(frames.last(), Some(&Frame::End));
                let joined: Vec<u8> = frames
                    .iter()
                    .filter_map(|f| match f {
                        Frame::Element(b) => Some(b.clone()),
                        Frame::End => None,
                    })
                    .collect::<Vec<_>>()
                    .concat();
                prop_assert_eq!(String::from_utf8(joined).unwrap(), stanzas_of(&input));
            }

            /// With tight limits, what comes out is still well-formed XML with as many stanzas.
            #[test]
            fn over_limits_the_output_stays_well_formed((input, n) in stream(), chunk in 1usize..200) {
                let out = run(small(), &input, chunk);
                let doc = out.strip_prefix("<?xml version='1.0'?>").unwrap_or(&out);
                let el: minidom::Element = doc.parse().map_err(|e| TestCaseError::fail(format!("{e}: {out}")))?;
                prop_assert_eq!(el.children().count(), n, "{}", out);
            }
        }
    }
}
