//! A minimal HTTP/1.1 client for ejabberd's admin API: one JSON POST per connection, on
//! loopback. Hand-written because the whole need is "POST this JSON, read the status line"
//! and a general client would pull TLS and a resolver into the binary.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::config::HttpUrl;
use crate::core::roster::ApiCall;

const TIMEOUT: Duration = Duration::from_secs(10);
/// Answers are a few bytes (`0`, or an error object); anything longer is cut.
const MAX_ANSWER: usize = 64 * 1024;

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
}

/// The JSON object of an API call (string fields only, escaped by serde_json).
pub fn body_of(call: &ApiCall) -> String {
    let map: serde_json::Map<String, serde_json::Value> = call
        .args
        .iter()
        .map(|(k, v)| (k.to_string(), serde_json::Value::String(v.clone())))
        .collect();
    serde_json::Value::Object(map).to_string()
}

/// `POST <base>/<command>`; Ok when ejabberd answers 200 with result code 0 (or any non-error
/// JSON for commands without a result code).
pub async fn call(base: &HttpUrl, call: &ApiCall) -> Result<(), HttpError> {
    let url = format!("{base}/{}", call.command);
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
        call.command,
        base.authority(),
        body.len(),
        body
    );
    let io = |source| HttpError::Io {
        url: url.to_string(),
        source,
    };
    s.write_all(req.as_bytes()).await.map_err(io)?;
    let mut buf = Vec::new();
    (&mut s)
        .take(MAX_ANSWER as u64)
        .read_to_end(&mut buf)
        .await
        .map_err(io)?;
    let text = String::from_utf8_lossy(&buf);
    let status: u16 = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| HttpError::Garbled {
            url: url.to_string(),
        })?;
    let answer = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.trim().to_string())
        .unwrap_or_default();
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_is_escaped_json() {
        let c = ApiCall {
            id: "1".into(),
            command: "add_rosteritem",
            args: vec![("nick", "Jane \"J\" (ACME)".into())],
        };
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
        let c = ApiCall {
            id: "1".into(),
            command: "add_rosteritem",
            args: vec![],
        };
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
}
