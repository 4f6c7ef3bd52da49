//! Monitoring: the Prometheus registry and `[metrics] listen`'s HTTP endpoint (`/metrics` in
//! the text format, `/healthz`). The endpoint runs on a thread of its own with its own small
//! runtime, so a slow scraper never delays the socket reader.
//!
//! What the shell sees (the link, commits, messages stored and reflected) is counted where it
//! happens with atomic metrics; what the core knows (sessions, staff, joins, offers, claims,
//! refusals, roster operations) is copied from the core once a second (`set_core`) and encoded
//! from that copy at scrape time.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::{Request, Response, StatusCode};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::core::metrics::{Counters, Gauges};
use crate::store::writer::CommitReport;

#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    #[error(
        "cannot listen on metrics.listen {addr}: {source} (is another process using the port?)"
    )]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot start the metrics endpoint's thread: {0}")]
    Thread(std::io::Error),
}

/// The shell's own metrics and the core's latest figures.
#[derive(Debug)]
pub struct Metrics {
    link_up: Gauge,
    reconnects: Counter,
    messages_stored: Counter,
    messages_reflected: Counter,
    store_errors: Counter,
    commit_seconds: Histogram,
    /// Did the last commit with writes store them all?
    store_ok: AtomicBool,
    store_problem: Mutex<String>,
    core: Arc<Mutex<CoreView>>,
}

#[derive(Debug, Default)]
struct CoreView {
    counters: Counters,
    gauges: Gauges,
}

impl Metrics {
    pub fn new() -> (Arc<Metrics>, Registry) {
        let m = Arc::new(Metrics {
            link_up: Gauge::default(),
            reconnects: Counter::default(),
            messages_stored: Counter::default(),
            messages_reflected: Counter::default(),
            store_errors: Counter::default(),
            // 0.1 ms .. ~0.8 s: a commit is ~0.1-2 ms with synchronous = NORMAL.
            commit_seconds: Histogram::new(
                prometheus_client::metrics::histogram::exponential_buckets(0.0001, 2.0, 14),
            ),
            store_ok: AtomicBool::new(true),
            store_problem: Mutex::new(String::new()),
            core: Arc::default(),
        });
        let mut r = Registry::default();
        r.register(
            "frontdesk_link_up",
            "1 while the component link to the XMPP server is up",
            m.link_up.clone(),
        );
        r.register(
            "frontdesk_link_reconnects",
            "Times the component link came up again after being lost",
            m.reconnects.clone(),
        );
        r.register(
            "frontdesk_messages_stored",
            "Chat messages committed to the store",
            m.messages_stored.clone(),
        );
        r.register(
            "frontdesk_messages_reflected",
            "Stanzas sent after a message was committed (reflections and copies to staff)",
            m.messages_reflected.clone(),
        );
        r.register(
            "frontdesk_store_errors",
            "Writes the store could not commit",
            m.store_errors.clone(),
        );
        r.register(
            "frontdesk_commit_seconds",
            "Time to commit one batch of writes",
            m.commit_seconds.clone(),
        );
        r.register_collector(Box::new(CoreCollector(m.core.clone())));
        (m, r)
    }

    pub fn link(&self, up: bool) {
        self.link_up.set(i64::from(up));
    }

    pub fn reconnected(&self) {
        self.reconnects.inc();
    }

    /// On the store thread, after each commit.
    pub fn committed(&self, r: CommitReport) {
        if r.writes == 0 {
            return;
        }
        self.commit_seconds.observe(r.took.as_secs_f64());
        self.store_errors.inc_by(r.failed);
        let ok = r.failed == 0;
        self.store_ok.store(ok, Ordering::Relaxed);
        if !ok {
            if let Ok(mut p) = self.store_problem.lock() {
                *p = format!("{} of the last {} writes failed", r.failed, r.writes);
            }
        }
    }

    /// A message was committed and `reflected` stanzas followed it.
    pub fn message_stored(&self, reflected: usize) {
        self.messages_stored.inc();
        self.messages_reflected.inc_by(reflected as u64);
    }

    /// The core's latest totals and gauges (the session loop calls this every second).
    pub fn set_core(&self, counters: &Counters, gauges: Gauges) {
        if let Ok(mut v) = self.core.lock() {
            v.counters.clone_from(counters);
            v.gauges = gauges;
        }
    }

    /// `None` when healthy, else why not.
    pub fn unhealthy(&self) -> Option<String> {
        let mut why = Vec::new();
        if self.link_up.get() != 1 {
            why.push("the component link to the XMPP server is down".to_string());
        }
        if !self.store_ok.load(Ordering::Relaxed) {
            let p = self
                .store_problem
                .lock()
                .map(|p| p.clone())
                .unwrap_or_default();
            why.push(format!("the store is failing writes ({p})"));
        }
        (!why.is_empty()).then(|| why.join("; "))
    }
}

/// Encodes the core's figures at scrape time.
#[derive(Debug)]
struct CoreCollector(Arc<Mutex<CoreView>>);

impl Collector for CoreCollector {
    fn encode(&self, mut e: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let Ok(v) = self.0.lock() else { return Ok(()) };
        encode_counters(&mut e, &v.counters)?;
        encode_gauges(&mut e, &v.gauges)
    }
}

fn by_site(m: &std::collections::BTreeMap<crate::address::SiteId, u64>) -> Labelled {
    m.iter()
        .map(|(s, n)| (vec![("site", s.as_str().to_string())], *n))
        .collect()
}

fn encode_counters(e: &mut DescriptorEncoder, c: &Counters) -> std::fmt::Result {
    counter(
        e,
        "frontdesk_joins",
        "Occupants admitted to rooms",
        by_site(&c.joins),
    )?;
    let help = "Waiting chats offered to staff members";
    counter(e, "frontdesk_offers", help, by_site(&c.offers))?;
    let help = "Chats taken one-to-one by staff";
    counter(e, "frontdesk_claims", help, by_site(&c.claims))?;
    let refusals = c
        .refusals
        .iter()
        .map(|(r, n)| (vec![("reason", r.clone())], *n))
        .collect();
    let help = "Stanzas refused, by error condition";
    counter(e, "frontdesk_refusals", help, refusals)?;
    let roster = c
        .roster
        .iter()
        .map(|((rung, outcome), n)| {
            let labels = vec![("rung", rung.to_string()), ("outcome", outcome.to_string())];
            (labels, *n)
        })
        .collect();
    let help = "Roster changes by rung and outcome";
    counter(e, "frontdesk_roster_operations", help, roster)
}

fn encode_gauges(e: &mut DescriptorEncoder, g: &Gauges) -> std::fmt::Result {
    let sessions = g
        .sessions
        .iter()
        .map(|((s, st), n)| {
            let labels = vec![("site", s.as_str().to_string()), ("state", st.to_string())];
            (labels, *n)
        })
        .collect();
    gauge(
        e,
        "frontdesk_sessions",
        "Open sessions by site and state",
        sessions,
    )?;
    let help = "Staff members available for new chats, by site";
    gauge(
        e,
        "frontdesk_staff_available",
        help,
        by_site(&g.staff_available),
    )
}

type Labelled = Vec<(Vec<(&'static str, String)>, u64)>;

fn counter(
    e: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    values: Labelled,
) -> std::fmt::Result {
    let mut m = e.encode_descriptor(
        name,
        help,
        None,
        prometheus_client::metrics::MetricType::Counter,
    )?;
    for (labels, n) in values {
        ConstCounter::new(n).encode(m.encode_family(&labels)?)?;
    }
    Ok(())
}

fn gauge(e: &mut DescriptorEncoder, name: &str, help: &str, values: Labelled) -> std::fmt::Result {
    let mut m = e.encode_descriptor(
        name,
        help,
        None,
        prometheus_client::metrics::MetricType::Gauge,
    )?;
    for (labels, n) in values {
        let n = i64::try_from(n).unwrap_or(i64::MAX);
        ConstGauge::new(n).encode(m.encode_family(&labels)?)?;
    }
    Ok(())
}

/// Binds `addr` now (so that a taken port stops `run` at once) and serves on a thread.
pub fn serve(
    addr: SocketAddr,
    metrics: Arc<Metrics>,
    registry: Registry,
) -> Result<(), MetricsError> {
    let listener = std::net::TcpListener::bind(addr)
        .and_then(|l| l.set_nonblocking(true).map(|()| l))
        .map_err(|source| MetricsError::Bind { addr, source })?;
    let registry = Arc::new(registry);
    std::thread::Builder::new()
        .name("metrics".into())
        .spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_io()
                .build();
            match rt {
                Ok(rt) => rt.block_on(accept_loop(listener, metrics, registry)),
                Err(e) => tracing::error!(error = %e, "metrics endpoint could not start"),
            }
        })
        .map_err(MetricsError::Thread)?;
    tracing::info!(listen = %addr, "metrics at /metrics, health at /healthz");
    Ok(())
}

async fn accept_loop(
    listener: std::net::TcpListener,
    metrics: Arc<Metrics>,
    registry: Arc<Registry>,
) {
    let listener = match tokio::net::TcpListener::from_std(listener) {
        Ok(l) => l,
        Err(e) => return tracing::error!(error = %e, "metrics endpoint could not start"),
    };
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let (m, r) = (metrics.clone(), registry.clone());
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let answer = answer(&req, &m, &r);
                async move { Ok::<_, Infallible>(answer) }
            });
            let io = hyper_util::rt::TokioIo::new(stream);
            if let Err(e) = hyper::server::conn::http1::Builder::new()
                .serve_connection(io, service)
                .await
            {
                tracing::debug!(error = %e, "metrics connection ended");
            }
        });
    }
}

fn answer(
    req: &Request<hyper::body::Incoming>,
    m: &Metrics,
    r: &Registry,
) -> Response<Full<Bytes>> {
    let reply = |status: StatusCode, kind: &str, body: String| {
        let mut resp = Response::new(Full::new(Bytes::from(body)));
        *resp.status_mut() = status;
        if let Ok(v) = hyper::header::HeaderValue::from_str(kind) {
            resp.headers_mut().insert(hyper::header::CONTENT_TYPE, v);
        }
        resp
    };
    match req.uri().path() {
        "/metrics" => {
            let mut body = String::new();
            match prometheus_client::encoding::text::encode(&mut body, r) {
                Ok(()) => reply(
                    StatusCode::OK,
                    "application/openmetrics-text; version=1.0.0; charset=utf-8",
                    body,
                ),
                Err(_) => reply(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "text/plain",
                    "encoding failed\n".into(),
                ),
            }
        }
        "/healthz" => match m.unhealthy() {
            None => reply(StatusCode::OK, "text/plain", "ok\n".into()),
            Some(why) => reply(
                StatusCode::SERVICE_UNAVAILABLE,
                "text/plain",
                format!("{why}\n"),
            ),
        },
        _ => reply(
            StatusCode::NOT_FOUND,
            "text/plain",
            "not found: try /metrics or /healthz\n".into(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::address::SiteId;
    use std::time::Duration;

    fn report(writes: u64, failed: u64) -> CommitReport {
        CommitReport {
            writes,
            failed,
            took: Duration::from_micros(300),
        }
    }

    #[test]
    fn health_follows_the_link_and_the_last_commit() {
        let (m, _) = Metrics::new();
        assert!(m.unhealthy().is_some_and(|w| w.contains("link")));
        m.link(true);
        assert_eq!(m.unhealthy(), None);
        m.committed(report(2, 2));
        let why = m.unhealthy().unwrap_or_default();
        assert!(why.contains("2 of the last 2 writes failed"), "{why}");
        // A batch with no writes says nothing about the store.
        m.committed(report(0, 0));
        assert!(m.unhealthy().is_some());
        m.committed(report(1, 0));
        assert_eq!(m.unhealthy(), None);
    }

    #[test]
    fn the_text_format_has_the_core_figures_with_bounded_labels() {
        let (m, registry) = Metrics::new();
        let acme = SiteId::new("acme").unwrap();
        let mut c = Counters::default();
        c.joins.insert(acme.clone(), 3);
        c.refusals.insert("forbidden".into(), 2);
        c.roster.insert(("ejabberd-api", "done"), 4);
        let mut g = Gauges::default();
        g.sessions.insert((acme.clone(), "ACTIVE"), 1);
        g.staff_available.insert(acme, 0);
        m.set_core(&c, g);
        m.message_stored(2);
        m.committed(report(1, 0));
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        for line in [
            "frontdesk_joins_total{site=\"acme\"} 3",
            "frontdesk_refusals_total{reason=\"forbidden\"} 2",
            "frontdesk_roster_operations_total{rung=\"ejabberd-api\",outcome=\"done\"} 4",
            "frontdesk_sessions{site=\"acme\",state=\"ACTIVE\"} 1",
            "frontdesk_staff_available{site=\"acme\"} 0",
            "frontdesk_messages_stored_total 1",
            "frontdesk_messages_reflected_total 2",
            "frontdesk_commit_seconds_count 1",
        ] {
            assert!(text.contains(line), "{line} missing from\n{text}");
        }
    }
}
