//! A minimal HTTP/1.1 client for ejabberd's admin API: one JSON POST per connection, on
//! loopback. Hand-written because the whole need is "POST this JSON, read the status and the
//! short body" and a general client would pull TLS and a resolver into the binary; httparse
//! parses the head, and the body is read as the head frames it (Content-Length, chunked, or
//! up to the close), since ejabberd's error text is in the body.

use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::config::HttpUrl;
use crate::core::roster::ApiCall;

const TIMEOUT: Duration = Duration::from_secs(10);
/// Answers are a few bytes (`0`, or an error object); a longer body is cut here, and a head
/// or a chunk-size line longer than this is not an answer from ejabberd.
const MAX_ANSWER: usize = 64 * 1024;
/// ejabberd sends about ten headers.
const MAX_HEADERS: usize = 64;

#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("cannot reach {url}: {source} (is ejabberd's HTTP listener with mod_http_api up?)")]
    Connect { url: String, source: std::io::Error },
    #[error("{url}: {source}")]
    Io { url: String, source: std::io::Error },
    #[error("{url}: no answer within {}s", TIMEOUT.as_secs())]
    Timeout { url: String },
    #[error("{url}: answered {status}: {body} (ejabberd.yml needs the api_permissions block from ejabberd.yml.example)")]
    Forbidden {
        url: String,
        status: u16,
        body: String,
    },
    #[error("{url}: answered {status}: {body}")]
    Status {
        url: String,
        status: u16,
        body: String,
    },
    #[error("{url}: the answer is not HTTP")]
    Garbled { url: String },
    #[error("{url}: the connection closed before the whole answer came")]
    Truncated { url: String },
}

/// The JSON object of an API call (string fields only, escaped by serde_json).
pub fn body_of(call: &ApiCall) -> String {
    let map: serde_json::Map<String, serde_json::Value> = call
        .args()
        .map(|(k, v)| (k.to_string(), serde_json::Value::String(v.to_string())))
        .collect();
    serde_json::Value::Object(map).to_string()
}

/// `POST <base>/<command>`; Ok when ejabberd answers 200 with result code 0 (or any non-error
/// JSON for commands without a result code).
pub async fn call(base: &HttpUrl, call: &ApiCall) -> Result<(), HttpError> {
    let url = format!("{base}/{}", call.command());
    match tokio::time::timeout(TIMEOUT, post(base, &url, call)).await {
        Ok(r) => r,
        Err(_) => Err(HttpError::Timeout { url }),
    }
}

async fn post(base: &HttpUrl, url: &str, call: &ApiCall) -> Result<(), HttpError> {
    let body = body_of(call);
    let mut s = TcpStream::connect(base.authority())
        .await
        .map_err(|source| HttpError::Connect {
            url: url.to_string(),
            source,
        })?;
    let req = format!(
        "POST {}/{} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{}",
        base.path,
        call.command(),
        base.authority(),
        body.len(),
        body
    );
    s.write_all(req.as_bytes())
        .await
        .map_err(|source| HttpError::Io {
            url: url.to_string(),
            source,
        })?;
    let (status, body) = read_answer(&mut s, url).await?;
    let answer = String::from_utf8_lossy(&body).trim().to_string();
    match status {
        // add_rosteritem / delete_rosteritem answer 0 on success and 1 on failure.
        200 if answer != "1" => Ok(()),
        401 | 403 => Err(HttpError::Forbidden {
            url: url.to_string(),
            status,
            body: answer,
        }),
        _ => Err(HttpError::Status {
            url: url.to_string(),
            status,
            body: answer,
        }),
    }
}

/// How the head says the body ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    Length(usize),
    Chunked,
    UntilClose,
}

/// Reads one answer: its status and its body (at most `MAX_ANSWER` bytes of it).
async fn read_answer(
    io: &mut (impl AsyncRead + Unpin),
    url: &str,
) -> Result<(u16, Vec<u8>), HttpError> {
    let mut r = Buffered {
        io,
        buf: Vec::new(),
        pos: 0,
        url,
    };
    let (status, framing, head_len) = loop {
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut head = httparse::Response::new(&mut headers);
        match head.parse(&r.buf) {
            Ok(httparse::Status::Complete(n)) => {
                let status = head.code.ok_or_else(|| r.garbled())?;
                let framing = framing(status, head.headers).ok_or_else(|| r.garbled())?;
                break (status, framing, n);
            }
            Ok(httparse::Status::Partial) if r.buf.len() < MAX_ANSWER => {
                if !r.fill().await? {
                    return Err(r.truncated());
                }
            }
            Ok(httparse::Status::Partial) | Err(_) => return Err(r.garbled()),
        }
    };
    r.pos = head_len;
    let body = match framing {
        Framing::Length(n) => r.exactly(n.min(MAX_ANSWER)).await?,
        Framing::Chunked => r.chunked().await?,
        Framing::UntilClose => r.until_close().await?,
    };
    Ok((status, body))
}

/// RFC 9112 section 6.3: a chunked transfer coding wins over Content-Length; several
/// Content-Length values must agree. None when the head cannot frame a body.
fn framing(status: u16, headers: &[httparse::Header<'_>]) -> Option<Framing> {
    if (100..200).contains(&status) || status == 204 || status == 304 {
        return Some(Framing::Length(0));
    }
    // A value that is not UTF-8 is no coding or length we know.
    let values = |name: &'static str| {
        headers
            .iter()
            .filter(move |h| h.name.eq_ignore_ascii_case(name))
            .map(|h| std::str::from_utf8(h.value).unwrap_or("\u{fffd}"))
    };
    let codings: Vec<&str> = values("transfer-encoding")
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .collect();
    if let Some(last) = codings.last() {
        // A body in another coding is only framed by the close.
        return Some(if last.eq_ignore_ascii_case("chunked") {
            Framing::Chunked
        } else {
            Framing::UntilClose
        });
    }
    let mut length = None;
    for v in values("content-length").flat_map(|v| v.split(',')) {
        let n = decimal(v.trim())?;
        if length.is_some_and(|l| l != n) {
            return None;
        }
        length = Some(n);
    }
    Some(length.map_or(Framing::UntilClose, Framing::Length))
}

/// Digits only: `str::parse` also takes a leading `+`, which a length never has.
fn decimal(s: &str) -> Option<usize> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// The chunk-size line's size: hex digits, then perhaps `;` and extensions, which we ignore.
fn chunk_size(line: &[u8]) -> Option<usize> {
    let line = std::str::from_utf8(line).ok()?;
    let size = line.split(';').next()?.trim_matches([' ', '\t']);
    if size.is_empty() || size.len() > 8 || !size.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    usize::from_str_radix(size, 16).ok()
}

/// The socket with what has been read from it and not used yet (`buf[pos..]`).
struct Buffered<'a, R> {
    io: &'a mut R,
    buf: Vec<u8>,
    pos: usize,
    url: &'a str,
}

impl<R: AsyncRead + Unpin> Buffered<'_, R> {
    fn garbled(&self) -> HttpError {
        HttpError::Garbled {
            url: self.url.to_string(),
        }
    }

    fn truncated(&self) -> HttpError {
        HttpError::Truncated {
            url: self.url.to_string(),
        }
    }

    /// Reads more; false at the end of the stream.
    async fn fill(&mut self) -> Result<bool, HttpError> {
        // What was used goes, so that the buffer holds at most a line or a chunk.
        self.buf.drain(..self.pos);
        self.pos = 0;
        let mut chunk = [0u8; 4096];
        let n = self
            .io
            .read(&mut chunk)
            .await
            .map_err(|source| HttpError::Io {
                url: self.url.to_string(),
                source,
            })?;
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(n > 0)
    }

    /// The next `n` bytes; the stream must have them.
    async fn exactly(&mut self, n: usize) -> Result<Vec<u8>, HttpError> {
        while self.buf.len() - self.pos < n {
            if !self.fill().await? {
                return Err(self.truncated());
            }
        }
        let out = self.buf[self.pos..self.pos + n].to_vec();
        self.pos += n;
        Ok(out)
    }

    /// The next line, without its CRLF (or bare LF).
    async fn line(&mut self) -> Result<Vec<u8>, HttpError> {
        loop {
            if let Some(i) = memchr::memchr(b'\n', &self.buf[self.pos..]) {
                let line = &self.buf[self.pos..self.pos + i];
                let line = line.strip_suffix(b"\r").unwrap_or(line).to_vec();
                self.pos += i + 1;
                return Ok(line);
            }
            if self.buf.len() - self.pos > MAX_ANSWER {
                return Err(self.garbled());
            }
            if !self.fill().await? {
                return Err(self.truncated());
            }
        }
    }

    /// A chunked body, up to its last chunk (the trailers after it say nothing we need).
    async fn chunked(&mut self) -> Result<Vec<u8>, HttpError> {
        let mut body = Vec::new();
        loop {
            let line = self.line().await?;
            let size = chunk_size(&line).ok_or_else(|| self.garbled())?;
            if size == 0 {
                return Ok(body);
            }
            // Past MAX_ANSWER the rest is cut (the server closes the connection anyway).
            let wanted = size.min(MAX_ANSWER - body.len());
            body.extend(self.exactly(wanted).await?);
            if wanted < size || body.len() == MAX_ANSWER {
                return Ok(body);
            }
            if !self.line().await?.is_empty() {
                return Err(self.garbled());
            }
        }
    }

    async fn until_close(&mut self) -> Result<Vec<u8>, HttpError> {
        while self.buf.len() - self.pos < MAX_ANSWER && self.fill().await? {}
        let end = self.buf.len().min(self.pos + MAX_ANSWER);
        Ok(self.buf[self.pos..end].to_vec())
    }
}

/// An add as the core makes it, from alice@example.com's roster with this label.
#[cfg(test)]
fn add_call(label: &str) -> ApiCall {
    use crate::core::roster::{Change, Item};
    use std::sync::Arc;
    use xmpp_parsers::jid::BareJid;
    let item = Item {
        contact: BareJid::new("v1_acme@chat.example.com").unwrap(),
        name: label.into(),
        group: Some("ACME visitors".into()),
    };
    let staff = Arc::new(BareJid::new("alice@example.com").unwrap());
    ApiCall::new([1; 12], staff, Change::Add(Arc::new(item)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_is_escaped_json() {
        let c = add_call("Jane \"J\" (ACME)");
        let v: serde_json::Value = serde_json::from_str(&body_of(&c)).unwrap();
        assert_eq!(v["nick"], "Jane \"J\" (ACME)");
    }

    #[tokio::test]
    async fn status_codes_map_to_errors() {
        async fn serve(answer: &'static str) -> HttpUrl {
            let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let port = l.local_addr().unwrap().port();
            tokio::spawn(async move {
                let (mut s, _) = l.accept().await.unwrap();
                let mut buf = [0u8; 4096];
                let _ = s.read(&mut buf).await;
                s.write_all(answer.as_bytes()).await.unwrap();
            });
            HttpUrl::parse(&format!("http://127.0.0.1:{port}/api")).unwrap()
        }
        let c = add_call("Ann");
        let ok = serve("HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n0").await;
        assert!(call(&ok, &c).await.is_ok());
        let one = serve("HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n1").await;
        assert!(matches!(
            call(&one, &c).await,
            Err(HttpError::Status { status: 200, .. })
        ));
        let denied = serve("HTTP/1.1 403 Forbidden\r\nContent-Length: 2\r\n\r\nno").await;
        assert!(matches!(
            call(&denied, &c).await,
            Err(HttpError::Forbidden { status: 403, .. })
        ));
        let refused = HttpUrl::parse("http://127.0.0.1:1/api").unwrap();
        assert!(matches!(
            call(&refused, &c).await,
            Err(HttpError::Connect { .. })
        ));
    }

    /// Serves one connection: reads the request, writes `parts` one by one (each its own TCP
    /// write), then holds the connection open for `linger` before closing it.
    async fn serve_parts(parts: &[&[u8]], linger: Duration) -> HttpUrl {
        let parts: Vec<Vec<u8>> = parts.iter().map(|p| p.to_vec()).collect();
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        tokio::spawn(async move {
            let (mut s, _) = l.accept().await.unwrap();
            s.set_nodelay(true).unwrap();
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf).await;
            for p in parts {
                if s.write_all(&p).await.is_err() {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            tokio::time::sleep(linger).await;
        });
        HttpUrl::parse(&format!("http://127.0.0.1:{port}/api")).unwrap()
    }

    async fn answer(parts: &[&[u8]]) -> Result<(), HttpError> {
        answer_lingering(parts, Duration::ZERO).await
    }

    async fn answer_lingering(parts: &[&[u8]], linger: Duration) -> Result<(), HttpError> {
        let c = add_call("Ann");
        let base = serve_parts(parts, linger).await;
        // Well within TIMEOUT: an answer that is complete must not wait for the close.
        match tokio::time::timeout(Duration::from_secs(3), call(&base, &c)).await {
            Ok(r) => r,
            Err(_) => panic!("no result for {parts:?} within 3 s"),
        }
    }

    fn status_of(r: &Result<(), HttpError>) -> Option<(u16, &str)> {
        match r {
            Err(HttpError::Status { status, body, .. }) => Some((*status, body.as_str())),
            _ => None,
        }
    }

    const ERROR_JSON: &str =
        r#"{"status":"error","code":10,"message":"Cannot add roster item: user not found"}"#;

    #[tokio::test]
    async fn chunked_failures_are_errors_with_their_text() {
        let (a, b) = ERROR_JSON.split_at(20);
        let chunks = format!("{:x}\r\n{a}\r\n{:X}\r\n{b}\r\n0\r\n\r\n", a.len(), b.len());
        for (status, reason) in [(500, "Internal Server Error"), (400, "Bad Request")] {
            let head = format!(
                "HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
            );
            let r = answer(&[head.as_bytes(), chunks.as_bytes()]).await;
            assert_eq!(status_of(&r), Some((status, ERROR_JSON)), "{r:?}");
        }
        // A 200 whose chunked body is the result code 1 is a failure too.
        let r =
            answer(&[b"HTTP/1.1 200 OK\r\ntransfer-encoding: Chunked\r\n\r\n1\r\n1\r\n0\r\n\r\n"])
                .await;
        assert_eq!(status_of(&r), Some((200, "1")), "{r:?}");
        let r = answer(&[
            b"HTTP/1.1 403 Forbidden\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nno\r\n0\r\n\r\n",
        ])
        .await;
        assert!(
            matches!(&r, Err(HttpError::Forbidden { status: 403, body, .. }) if body == "no"),
            "{r:?}"
        );
    }

    #[tokio::test]
    async fn chunked_and_sized_successes_are_ok() {
        assert!(answer(&[
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\n0\r\n0\r\n\r\n"
        ])
        .await
        .is_ok());
        // Chunk extensions, a chunk split in two, trailers.
        assert!(answer(&[
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
            b"1;name=value\r\n0\r\n",
            b"2\r\n\r\n\r\n0\r\nX-Trailer: 1\r\n\r\n",
        ])
        .await
        .is_ok());
        assert!(answer(&[b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n0"])
            .await
            .is_ok());
        assert!(answer(&[b"HTTP/1.0 200 OK\r\n\r\n0"]).await.is_ok());
        let r = answer(&[b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n 1\n"]).await;
        assert_eq!(status_of(&r), Some((200, "1")), "{r:?}");
        let sized = format!(
            "HTTP/1.1 500 Internal Server Error\r\nContent-Length: {}\r\n\r\n{ERROR_JSON}",
            ERROR_JSON.len()
        );
        let r = answer(&[sized.as_bytes()]).await;
        assert_eq!(status_of(&r), Some((500, ERROR_JSON)), "{r:?}");
    }

    #[tokio::test]
    async fn a_complete_answer_does_not_wait_for_the_close() {
        let hold = Duration::from_secs(30);
        let r = answer_lingering(&[b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n0"], hold).await;
        assert!(r.is_ok(), "{r:?}");
        let chunked =
            b"HTTP/1.1 500 Oops\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n";
        let r = answer_lingering(&[chunked], hold).await;
        assert_eq!(status_of(&r), Some((500, "{}")), "{r:?}");
    }

    #[tokio::test]
    async fn a_head_split_across_writes_is_read_whole() {
        let r = answer(&[
            b"HTT",
            b"P/1.1 50",
            b"0 Internal Server Error\r\nContent-Le",
            b"ngth: 2\r",
            b"\n\r",
            b"\n{",
            b"}",
        ])
        .await;
        assert_eq!(status_of(&r), Some((500, "{}")), "{r:?}");
        let r = answer(&[
            b"HTTP/1.1 200 OK\r\nTransfer-Enc",
            b"oding: chunked\r\n\r\n",
            b"1",
            b"\r\n1",
            b"\r\n0\r\n\r\n",
        ])
        .await;
        assert_eq!(status_of(&r), Some((200, "1")), "{r:?}");
        assert!(answer(&[
            b"HTTP/1.1 200 OK\r\n",
            b"Content-Length: 1\r\n",
            b"\r\n",
            b"0"
        ])
        .await
        .is_ok());
    }

    #[tokio::test]
    async fn garbage_and_truncated_answers_are_errors() {
        let long_line = [b"HTTP/1.1 200 OK\r\nX: ".as_slice(), &[b'a'; 70_000]].concat();
        let cases: &[&[&[u8]]] = &[
            &[],
            &[b"FOO 200 bar\r\n\r\n0"],
            &[b"200 OK\r\n\r\n0"],
            &[b"HTTP/1.1 2000 OK\r\nContent-Length: 1\r\n\r\n0"],
            &[b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n"],
            &[b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n0"],
            &[b"HTTP/1.1 200 OK\r\nContent-Length: +1\r\n\r\n0"],
            &[b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n0"],
            &[b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"],
            &[b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n0"],
            &[b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\n0"],
            &[b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n+1\r\n0\r\n0\r\n\r\n"],
            &[b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n0\r\n0\r\n\r\n"],
            &[b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\n0xx0\r\n\r\n"],
            &[b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\xc3\xa9\r\n0\r\n\r\n"],
            &[b"HTTP/1.1 2\xc3\xa90 OK\r\n\r\n0"],
            &[b"\x00\x01\x02\xff garbage \r\n\r\n"],
            &[&long_line],
        ];
        for parts in cases {
            let r = answer(parts).await;
            let shown: Vec<_> = parts.iter().map(|p| String::from_utf8_lossy(p)).collect();
            assert!(r.is_err(), "{shown:?}: {r:?}");
        }
    }
}

#[cfg(test)]
mod request_bytes {
    use super::*;

    fn remove_call() -> ApiCall {
        use crate::core::roster::Change;
        use std::sync::Arc;
        use xmpp_parsers::jid::BareJid;
        let staff = Arc::new(BareJid::new("alice@example.com").unwrap());
        let contact = Arc::new(BareJid::new("v1_acme@chat.example.com").unwrap());
        ApiCall::new([2; 12], staff, Change::Remove(contact))
    }

    /// What ejabberd receives for one call, byte for byte.
    async fn request_of(c: &ApiCall) -> (Vec<u8>, String) {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        let base = HttpUrl::parse(&format!("http://127.0.0.1:{port}/api")).unwrap();
        let server = tokio::spawn(async move {
            let (mut s, _) = l.accept().await.unwrap();
            let mut req = Vec::new();
            let mut buf = [0u8; 4096];
            // The request is complete once its head is and the body has Content-Length bytes.
            while !request_complete(&req) {
                let n = s.read(&mut buf).await.unwrap();
                assert!(n > 0, "closed mid-request: {req:?}");
                req.extend_from_slice(&buf[..n]);
            }
            s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n0")
                .await
                .unwrap();
            req
        });
        let done = tokio::time::timeout(Duration::from_secs(5), call(&base, c)).await;
        assert!(matches!(done, Ok(Ok(()))), "{done:?}");
        (server.await.unwrap(), base.authority().to_string())
    }

    fn request_complete(req: &[u8]) -> bool {
        let Some(end) = req.windows(4).position(|w| w == b"\r\n\r\n") else {
            return false;
        };
        let head = String::from_utf8_lossy(&req[..end]);
        let len: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("Content-Length: "))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        req.len() >= end + 4 + len
    }

    #[tokio::test]
    async fn adds_and_removals_are_sent_byte_for_byte_as_before() {
        // With characters JSON must escape in the label.
        let (req, host) = request_of(&add_call("Jane \"J\" \\ (ACME)")).await;
        let body = r#"{"group":"ACME visitors","host":"chat.example.com","localhost":"example.com","localuser":"alice","nick":"Jane \"J\" \\ (ACME)","subs":"both","user":"v1_acme"}"#;
        let expected = format!(
            "POST /api/add_rosteritem HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nContent-Length: 158\r\nConnection: close\r\n\r\n{body}"
        );
        assert_eq!(String::from_utf8_lossy(&req), expected);
        let (req, host) = request_of(&remove_call()).await;
        let body = r#"{"host":"chat.example.com","localhost":"example.com","localuser":"alice","user":"v1_acme"}"#;
        let expected = format!(
            "POST /api/delete_rosteritem HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nContent-Length: 90\r\nConnection: close\r\n\r\n{body}"
        );
        assert_eq!(String::from_utf8_lossy(&req), expected);
    }
}
