//! The thin tokio shell around the core: the instance lock, the store thread, the component
//! link with reconnect and keepalive, the one-second tick, and SIGINT/SIGTERM. Every decision
//! about stanzas is the core's; this only moves bytes and time.
//!
//! Data flow: this task reads the link (guard -> frames -> fast path or parser -> core) and
//! hands the core's writes and stanzas, in order, to the store thread, which commits each batch
//! and then writes its stanzas to the link itself (outbox.rs, sender.rs). One thread hand-off
//! per batch.

mod api_lag;
pub mod fastmsg;
pub mod guard;
pub mod http;
mod link;
pub mod metrics;
mod outbox;
pub mod reader;
pub mod reads;
pub mod reload;
mod sender;
pub mod wire;

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::mpsc::UnboundedReceiver;
use xmpp_parsers::jid::{BareJid, Jid};

use crate::config::{Config, Secret};
use crate::core::{stanzas, Core, CoreConfig, Input};
use crate::store::{InstanceLock, Store, StoreError, Writer, WriterConfig};
use crate::time::Timestamp;
use outbox::LinkWriter;
use sender::{Delivery, Feedback};

pub use link::LinkError;
pub use reader::Event;

const BACKOFF_START: Duration = Duration::from_secs(1);
const BACKOFF_MAX: Duration = Duration::from_secs(60);
/// On shutdown, how long we wait for pending writes before we close the link anyway.
const DRAIN_LIMIT: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum ShellError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Link(#[from] LinkError),
    #[error("cannot install signal handlers: {0}")]
    Signals(std::io::Error),
    #[error("cannot read /dev/urandom (needed for IQ ids nobody can guess): {0}")]
    Random(std::io::Error),
    #[error(transparent)]
    Metrics(#[from] metrics::MetricsError),
}

/// Why a connected session ended.
enum SessionEnd {
    Shutdown,
    Lost(String),
}

/// The signals the process acts on, as one channel: polling the three signal streams in every
/// `select!` of the session loop cost ~1,700 instructions a message; a task waits on them
/// instead and forwards what arrives.
struct Signals {
    rx: UnboundedReceiver<Sig>,
}

/// What a signal asks for.
enum Sig {
    Stop(&'static str),
    /// SIGHUP: read the config again.
    Reload,
}

impl Signals {
    fn new() -> Result<Signals, ShellError> {
        let mut int = signal(SignalKind::interrupt()).map_err(ShellError::Signals)?;
        let mut term = signal(SignalKind::terminate()).map_err(ShellError::Signals)?;
        let mut hup = signal(SignalKind::hangup()).map_err(ShellError::Signals)?;
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move {
            loop {
                let sig = tokio::select! {
                    _ = int.recv() => Sig::Stop("SIGINT"),
                    _ = term.recv() => Sig::Stop("SIGTERM"),
                    _ = hup.recv() => Sig::Reload,
                };
                if tx.send(sig).is_err() {
                    return;
                }
            }
        });
        Ok(Signals { rx })
    }

    async fn recv(&mut self) -> Sig {
        match self.rx.recv().await {
            Some(sig) => sig,
            // The forwarding task ends only with the runtime: no signal comes any more.
            None => std::future::pending().await,
        }
    }
}

/// The running config and what follows it on a reload (the core, the admin API helper).
struct Running<'a> {
    config: Config,
    core: &'a mut Core,
    metrics: Arc<metrics::Metrics>,
}

impl Running<'_> {
    /// SIGHUP: the file is read and checked; a good one goes to the core, whose outputs go out.
    fn reload(&mut self, writer: &LinkWriter, helpers: &mut Helpers) {
        tracing::info!(file = %self.config.path.display(), "SIGHUP: reading the config again");
        let Some(next) = reload::reread(&self.config) else {
            return;
        };
        self.config = next;
        helpers.set_api(
            self.config.roster.ejabberd_api.clone(),
            self.config.roster.visitors,
        );
        let input = Input::Reconfigure(Box::new(CoreConfig::from_config(&self.config)));
        let mut ob = outbox::Outbox::default();
        ob.push(self.core.handle(Timestamp::now(), input), writer);
        helpers.dispatch(&mut ob, writer);
        self.publish();
    }

    /// The store thread drops stanzas until the next link; the core hears the link is down.
    fn link_lost(&mut self, writer: &LinkWriter, helpers: &mut Helpers) {
        writer.item(Delivery::Detach);
        let mut ob = outbox::Outbox::default();
        ob.push(
            self.core.handle(Timestamp::now(), Input::Disconnected),
            writer,
        );
        helpers.dispatch(&mut ob, writer);
    }

    /// A ping to the server after 30 s of silence on the link: any answer proves it alive.
    fn keepalive(&self, n: u64, writer: &LinkWriter) {
        let component = &self.config.component.jid;
        let ping = stanzas::ping(
            Jid::from(component.clone()),
            keepalive_target(component),
            format!("fd-keepalive-{n}"),
        );
        writer.item(Delivery::Send(vec![ping.into()]));
    }

    /// The core's figures for the metrics endpoint.
    fn publish(&self) {
        self.metrics
            .set_core(self.core.counters(), self.core.gauges());
    }
}

/// Runs until SIGINT/SIGTERM (Ok) or an error that retrying cannot fix.
pub async fn run(config: Config, secret: Secret) -> Result<(), ShellError> {
    let path = config.store.path.clone();
    let _lock = InstanceLock::acquire(&path)?;
    let store = Store::open_with(&path, config.store.synchronous)?;
    let snapshot = store.snapshot(crate::core::RESUMED_HISTORY)?;
    tracing::info!(
        db = %path.display(),
        open_sessions = snapshot.sessions.len(),
        next_session = snapshot.next_session_id,
        "store opened"
    );
    let (metrics, registry) = metrics::Metrics::new();
    if let Some(addr) = config.metrics.listen {
        metrics::serve(addr, metrics.clone(), registry)?;
    }
    let (feedback_tx, mut feedback) = tokio::sync::mpsc::unbounded_channel();
    let writer = Writer::spawn(
        store,
        WriterConfig {
            retain_days: config.store.retain_days,
            ..WriterConfig::default()
        },
        sender::Sender::new(feedback_tx).with_metrics(metrics.clone()),
    )?;
    let mut core = Core::new(CoreConfig::from_config(&config), snapshot, Timestamp::now())
        .with_id_key(random_key()?);
    let mut signals = Signals::new()?;
    let mut helpers = Helpers::start(&config);
    let mut running = Running {
        config,
        core: &mut core,
        metrics,
    };
    running.publish();
    let result = serve(
        &mut running,
        &secret,
        &writer,
        &mut feedback,
        &mut signals,
        &mut helpers,
    )
    .await;
    match writer.shutdown() {
        Ok(stats) => tracing::info!(
            batches = stats.batches,
            writes = stats.ops,
            failed = stats.failed_ops,
            "store closed"
        ),
        Err(e) => tracing::error!(error = %e, "store did not close cleanly"),
    }
    result
}

/// What ended a wait outside a session (connecting, or waiting to reconnect).
enum Between<T> {
    Done(T),
    Signal(Sig),
}

async fn serve(
    run: &mut Running<'_>,
    secret: &Secret,
    writer: &LinkWriter,
    feedback: &mut UnboundedReceiver<Feedback>,
    signals: &mut Signals,
    helpers: &mut Helpers,
) -> Result<(), ShellError> {
    let mut backoff = BACKOFF_START;
    let mut generation = 0u64;
    loop {
        let attempt = match connect(run, secret, signals).await {
            Between::Done(r) => r,
            Between::Signal(Sig::Stop(sig)) => {
                tracing::info!(signal = sig, "stopping (was connecting)");
                return Ok(());
            }
            Between::Signal(Sig::Reload) => {
                run.reload(writer, helpers);
                continue;
            }
        };
        match attempt {
            Ok((mut reader, socket)) => {
                tracing::info!(component = %run.config.component.jid, server = %run.config.component.server, "connected");
                // Reconnect quickly after a server restart; the doubling only slows a server
                // that keeps refusing us.
                backoff = BACKOFF_START;
                if generation > 0 {
                    run.metrics.reconnected();
                }
                generation += 1;
                writer.item(Delivery::Attach { socket, generation });
                run.metrics.link(true);
                let link = Link {
                    reader: &mut reader,
                    generation,
                };
                let end = session(run, link, writer, feedback, signals, helpers).await;
                run.metrics.link(false);
                match end {
                    SessionEnd::Shutdown => return Ok(()),
                    SessionEnd::Lost(why) => {
                        run.link_lost(writer, helpers);
                        tracing::warn!(reason = %why, retry_in_s = backoff.as_secs(), "connection lost; reconnecting");
                    }
                }
            }
            Err(e) if e.is_fatal() => return Err(e.into()),
            Err(e) => {
                tracing::warn!(error = %e, retry_in_s = backoff.as_secs(), "cannot connect; retrying")
            }
        }
        if wait_to_reconnect(run, backoff, writer, signals, helpers).await {
            return Ok(());
        }
        backoff = (backoff * 2).min(BACKOFF_MAX);
    }
}

/// One attempt to connect, unless a signal comes first.
async fn connect(
    run: &Running<'_>,
    secret: &Secret,
    signals: &mut Signals,
) -> Between<Result<(reader::Reader, std::net::TcpStream), LinkError>> {
    let limits = guard::StanzaLimits::from_config(&run.config.limits);
    tokio::select! {
        r = link::connect(&run.config, secret, limits) => Between::Done(r),
        sig = signals.recv() => Between::Signal(sig),
    }
}

/// Waits `backoff`, reloading on SIGHUP meanwhile; true if a signal says stop.
async fn wait_to_reconnect(
    run: &mut Running<'_>,
    backoff: Duration,
    writer: &LinkWriter,
    signals: &mut Signals,
    helpers: &mut Helpers,
) -> bool {
    let until = tokio::time::Instant::now() + backoff;
    loop {
        let woke = tokio::select! {
            _ = tokio::time::sleep_until(until) => Between::Done(()),
            sig = signals.recv() => Between::Signal(sig),
        };
        match woke {
            Between::Done(()) => return false,
            Between::Signal(Sig::Stop(sig)) => {
                tracing::info!(signal = sig, "stopping (was waiting to reconnect)");
                return true;
            }
            Between::Signal(Sig::Reload) => run.reload(writer, helpers),
        }
    }
}

/// The connected link as the session loop sees it: the read side, and which attach it is.
struct Link<'a> {
    reader: &'a mut reader::Reader,
    generation: u64,
}

/// What woke the session loop.
enum Wake {
    Read(reader::Event),
    Feedback(Feedback),
    Helper(Input),
    Tick,
    Signal(Sig),
}

async fn session(
    run: &mut Running<'_>,
    link: Link<'_>,
    writer: &LinkWriter,
    feedback: &mut UnboundedReceiver<Feedback>,
    signals: &mut Signals,
    helpers: &mut Helpers,
) -> SessionEnd {
    let Link { reader, generation } = link;
    let mut outbox = outbox::Outbox::default();
    let mut keepalives = 0u64;
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    outbox.push(run.core.handle(Timestamp::now(), Input::Connected), writer);
    loop {
        helpers.dispatch(&mut outbox, writer);
        let wake = tokio::select! {
            event = reader.next() => Wake::Read(event),
            Some(f) = feedback.recv() => Wake::Feedback(f),
            Some(input) = helpers.results.recv() => Wake::Helper(input),
            _ = tick.tick() => Wake::Tick,
            sig = signals.recv() => Wake::Signal(sig),
        };
        let now = Timestamp::now();
        let core = &mut *run.core;
        match wake {
            Wake::Read(reader::Event::Stanza(s)) => {
                outbox.push(core.handle(now, Input::Stanza(s)), writer)
            }
            Wake::Read(reader::Event::Invalid(bad)) => {
                tracing::info!(from = ?bad.from, id = ?bad.id, kind = ?bad.kind, reason = %bad.reason, "malformed stanza");
                outbox.push(core.handle(now, Input::Invalid(bad)), writer)
            }
            Wake::Read(reader::Event::Quiet) => {
                keepalives += 1;
                run.keepalive(keepalives, writer);
            }
            Wake::Read(reader::Event::Ignored(what)) => {
                tracing::debug!(what = %what, "ignored from the stream")
            }
            Wake::Read(reader::Event::Closed(why)) => return SessionEnd::Lost(why),
            Wake::Feedback(Feedback::NotStored(input)) => {
                outbox.push(core.handle(now, input), writer)
            }
            Wake::Feedback(Feedback::LinkFailed {
                generation: g,
                reason,
            }) if g == generation => {
                return SessionEnd::Lost(format!("write failed: {reason}"));
            }
            // A report about an earlier link is old news.
            Wake::Feedback(Feedback::LinkFailed { .. }) => {}
            Wake::Helper(input) => outbox.push(core.handle(now, input), writer),
            Wake::Tick => {
                outbox.push(core.handle(now, Input::Tick), writer);
                run.publish();
            }
            Wake::Signal(Sig::Reload) => run.reload(writer, helpers),
            Wake::Signal(Sig::Stop(sig)) => return stop(sig, core.open_rooms(), writer).await,
        }
    }
}

/// The shell's helpers off the socket reader: one task making admin API calls in order, and
/// store reads on the blocking pool (each once the writes before it are committed). Their answers come back as core inputs.
struct Helpers {
    api: tokio::sync::mpsc::UnboundedSender<(Instant, crate::core::roster::ApiCall)>,
    results: tokio::sync::mpsc::UnboundedReceiver<Input>,
    results_tx: tokio::sync::mpsc::UnboundedSender<Input>,
    db: std::path::PathBuf,
    /// Where store reads run (they start on the store thread, which is not tokio's).
    pool: tokio::runtime::Handle,
    /// `roster.ejabberd_api` and `roster.visitors`, which a reload may change.
    api_base: Arc<std::sync::Mutex<ApiSettings>>,
}

type ApiSettings = (
    Option<crate::config::HttpUrl>,
    crate::config::RosterVisitors,
);

impl Helpers {
    fn start(config: &Config) -> Helpers {
        let (results_tx, results) = tokio::sync::mpsc::unbounded_channel();
        let (api, mut calls) =
            tokio::sync::mpsc::unbounded_channel::<(Instant, crate::core::roster::ApiCall)>();
        let api_base = Arc::new(std::sync::Mutex::new((
            config.roster.ejabberd_api.clone(),
            config.roster.visitors,
        )));
        let shared = api_base.clone();
        let tx = results_tx.clone();
        tokio::spawn(async move {
            let mut lag = api_lag::ApiLag::default();
            while let Some((queued, call)) = calls.recv().await {
                let (base, visitors) = match shared.lock() {
                    Ok(b) => b.clone(),
                    Err(poisoned) => poisoned.into_inner().clone(),
                };
                if let Some(w) = lag.observe(Instant::now(), queued, calls.len(), visitors) {
                    tracing::warn!("{w}");
                }
                let result = match &base {
                    Some(base) => http::call(base, &call).await.map_err(|e| e.to_string()),
                    None => Err("roster.ejabberd_api is not set in the config".to_string()),
                };
                if let Err(e) = &result {
                    tracing::warn!(command = call.command(), error = %e, "ejabberd API call failed");
                }
                if tx
                    .send(Input::ApiDone {
                        id: call.id(),
                        result,
                    })
                    .is_err()
                {
                    return;
                }
            }
        });
        Helpers {
            api,
            results,
            results_tx,
            db: config.store.path.clone(),
            pool: tokio::runtime::Handle::current(),
            api_base,
        }
    }

    fn set_api(
        &mut self,
        base: Option<crate::config::HttpUrl>,
        visitors: crate::config::RosterVisitors,
    ) {
        if let Ok(mut b) = self.api_base.lock() {
            *b = (base, visitors);
        }
    }

    fn dispatch(&mut self, outbox: &mut outbox::Outbox, writer: &LinkWriter) {
        for job in std::mem::take(&mut outbox.jobs) {
            match job {
                outbox::Job::Api(call) => {
                    let _ = self.api.send((Instant::now(), call));
                }
                outbox::Job::Query(query) => {
                    let tx = self.results_tx.clone();
                    reads::after_writes(
                        writer,
                        Delivery::Send(Vec::new()),
                        self.pool.clone(),
                        self.db.clone(),
                        query,
                        move |input| {
                            let _ = tx.send(input);
                        },
                    );
                }
            }
        }
    }
}

async fn stop(sig: &'static str, open_rooms: usize, writer: &LinkWriter) -> SessionEnd {
    tracing::info!(signal = sig, open_rooms, "stopping");
    drain(writer).await;
    SessionEnd::Shutdown
}

/// Lets the store thread commit and send what is queued, then close the stream; waits a bounded
/// time for it.
async fn drain(writer: &LinkWriter) {
    let (done, closed) = tokio::sync::oneshot::channel();
    writer.item(Delivery::Close(done));
    if tokio::time::timeout(DRAIN_LIMIT, closed).await.is_err() {
        tracing::warn!("gave up waiting for the store while stopping");
    }
}

/// The server to ping for keepalive: the component's parent domain (`chat.example.com` ->
/// `example.com`), which is the server itself in the usual setup; any answer, even an error,
/// proves the link is alive.
fn keepalive_target(component: &BareJid) -> Jid {
    component
        .domain()
        .as_str()
        .split_once('.')
        .filter(|(_, parent)| parent.contains('.') || *parent == "localhost")
        .and_then(|(_, parent)| BareJid::new(parent).ok())
        .map(Jid::from)
        .unwrap_or_else(|| Jid::from(component.clone()))
}

/// 32 bytes from the kernel's random source, for the core's IQ ids.
fn random_key() -> Result<[u8; 32], ShellError> {
    use std::io::Read;
    let mut key = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut key))
        .map_err(ShellError::Random)?;
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keepalive_goes_to_the_parent_domain() {
        let t = |s: &str| keepalive_target(&BareJid::new(s).unwrap()).to_string();
        assert_eq!(t("chat.example.com"), "example.com");
        assert_eq!(t("chat.localhost"), "localhost");
        assert_eq!(t("chat"), "chat");
        assert_eq!(t("chat.com"), "chat.com");
    }
}
