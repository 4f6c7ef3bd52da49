//! `frontdesk-load --churn`: visitors arriving at a steady rate, each an anonymous login in a
//! room of its own, staying (INACTIVE), then leaving, a fraction writing one message; S staff
//! online as real c2s sessions that fetch their roster, answer pings and count every stanza
//! and byte they receive. First the room count is filled to N quickly; then, for each rate,
//! arrivals and departures (the oldest visitor) match, and a window is measured.
//!
//! Lines of JSON on stdout: `{"event":"filled"}`, then per rate `{"event":"window_start"}` and
//! `{"event":"window_stop"}` (the driver reads CPU from /proc at those two lines) and
//! `{"event":"window_end",...}` once the window's joins are answered,
//! `{"event":"fresh_login",...}`, `{"event":"drained",...}`.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::io::Write;
use std::rc::Rc;
use std::time::{Duration, Instant};

use tokio::io::AsyncReadExt;
use tokio::sync::oneshot;

use super::{attr, is_self_presence, micros, pct, Conn, Res};

#[derive(Debug, Clone)]
pub struct ChurnArgs {
    c2s: String,
    host: String,
    anon_host: String,
    rooms: String,
    staff: Vec<(String, String)>,
    present: usize,
    fill_rate: f64,
    rates: Vec<f64>,
    settle: f64,
    window: f64,
    write_fraction: f64,
    /// A writer leaves this many seconds after writing; None: it stays until sent away.
    writer_stay: Option<f64>,
    drain_rate: f64,
    drain_wait: f64,
    /// After the fill, wait this long at most for the staff's roster pushes to stop.
    roster_settle: f64,
    /// Churn at the first rate for this long before the windows, so that writers who leave
    /// reach their steady number first.
    warmup: f64,
}

impl ChurnArgs {
    /// Whether visitor `i` writes. Writers who leave on their own arrive only with churn: a
    /// fill of N visitors does not bring N/10 simultaneous chats, steady churn does not either.
    fn writer(&self, i: usize) -> bool {
        writes(i, self.write_fraction) && (self.writer_stay.is_none() || i >= self.present)
    }
}

fn churn_usage() -> ! {
    eprintln!(
        "usage: frontdesk-load --churn --c2s HOST:PORT --host STAFF_DOMAIN --anon-host ANON_DOMAIN \
--rooms 'c1v{{i}}_acme@chat.localhost' --staff user:pw[,...] --present N [--fill-rate 300] \
[--rates 5,20,50] [--settle 3] [--window 20] [--write-fraction 0.1] [--writer-stay SECS] [--drain-rate 500] [--drain-wait 60] [--roster-settle 0] [--warmup SECS]"
    );
    std::process::exit(2)
}

pub fn parse_churn_args(argv: &[String]) -> ChurnArgs {
    let mut a = ChurnArgs {
        c2s: String::new(),
        host: String::new(),
        anon_host: String::new(),
        rooms: String::new(),
        staff: Vec::new(),
        present: 100,
        fill_rate: 300.0,
        rates: vec![5.0, 20.0, 50.0],
        settle: 3.0,
        window: 20.0,
        write_fraction: 0.1,
        writer_stay: None,
        drain_rate: 500.0,
        drain_wait: 60.0,
        roster_settle: 0.0,
        warmup: 0.0,
    };
    let mut it = argv.iter().skip(1).filter(|a| *a != "--churn");
    while let Some(k) = it.next() {
        let mut v = || it.next().cloned().unwrap_or_else(|| churn_usage());
        let num = |s: String| s.parse::<f64>().unwrap_or_else(|_| churn_usage());
        match k.as_str() {
            "--c2s" => a.c2s = v(),
            "--host" => a.host = v(),
            "--anon-host" => a.anon_host = v(),
            "--rooms" => a.rooms = v(),
            "--staff" => {
                a.staff = v()
                    .split(',')
                    .filter_map(|p| p.split_once(':'))
                    .map(|(u, p)| (u.to_string(), p.to_string()))
                    .collect()
            }
            "--present" => a.present = v().parse().unwrap_or_else(|_| churn_usage()),
            "--fill-rate" => a.fill_rate = num(v()),
            "--rates" => a.rates = v().split(',').map(|x| num(x.to_string())).collect(),
            "--settle" => a.settle = num(v()),
            "--window" => a.window = num(v()),
            "--write-fraction" => a.write_fraction = num(v()),
            "--writer-stay" => a.writer_stay = Some(num(v())),
            "--drain-rate" => a.drain_rate = num(v()),
            "--drain-wait" => a.drain_wait = num(v()),
            "--roster-settle" => a.roster_settle = num(v()),
            "--warmup" => a.warmup = num(v()),
            _ => churn_usage(),
        }
    }
    if a.c2s.is_empty() || a.anon_host.is_empty() || !a.rooms.contains("{i}") || a.staff.is_empty()
    {
        churn_usage();
    }
    a
}

// ---- shared counters ------------------------------------------------------------------------

const KINDS: [&str; 5] = ["roster_push", "presence", "message", "ping", "iq_other"];

#[derive(Default, Clone)]
struct Counts {
    stanzas: [u64; 5],
    bytes: [u64; 5],
    roster_adds: u64,
    roster_removes: u64,
    arrivals: u64,
    departures: u64,
    joined: u64,
    join_failures: u64,
    writes: u64,
    /// Writers that left on their own after `writer_stay`.
    writers_left: u64,
}

#[derive(Default)]
struct Shared {
    c: Counts,
    /// (join sent at, latency), microseconds since base.
    joins: Vec<(u64, u64)>,
    /// (push received at, latency since the visitor's last action).
    pushes: Vec<(u64, u64)>,
    /// The visitor's last action (join sent, or message sent), by visitor number.
    last_action: HashMap<usize, u64>,
    /// Each staff session's roster: the visitor items it holds now.
    rosters: Vec<HashSet<String>>,
    errors: Vec<String>,
}

type S = Rc<RefCell<Shared>>;

/// The next element, reading into the connection's own buffer (no big per-read array: ten
/// thousand idle visitors each hold one pending read).
async fn next_small(c: &mut Conn) -> Res<String> {
    loop {
        if let Some(s) = c.scan() {
            return Ok(s);
        }
        c.buf.reserve(2048);
        let n =
            c.rd.read_buf(&mut c.buf)
                .await
                .map_err(|e| format!("read: {e}"))?;
        if n == 0 {
            return Err("the server closed the stream".into());
        }
    }
}

// ---- staff ----------------------------------------------------------------------------------

fn kind_of(s: &str) -> usize {
    if s.starts_with("<iq") {
        if s.contains("jabber:iq:roster") && attr(s, "type") == Some("set") {
            0
        } else if s.contains("urn:xmpp:ping") {
            3
        } else {
            4
        }
    } else if s.starts_with("<presence") {
        1
    } else if s.starts_with("<message") {
        2
    } else {
        4
    }
}

/// The visitor number in a room address made from the pattern, e.g. `c1v42_acme@...` -> 42.
fn visitor_of(pattern: &str, jid: &str) -> Option<usize> {
    let (pre, post) = pattern.split_once("{i}")?;
    jid.strip_prefix(pre)?.strip_suffix(post)?.parse().ok()
}

/// Every `<item .../>` start tag in a roster query: (jid, subscription).
fn roster_items(s: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = s;
    while let Some(i) = rest.find("<item ") {
        let tail = &rest[i..];
        let tag = &tail[..tail.find('>').map_or(tail.len(), |e| e + 1)];
        if let Some(j) = attr(tag, "jid") {
            out.push((
                j.to_string(),
                attr(tag, "subscription").unwrap_or("").to_string(),
            ));
        }
        rest = &tail[1..];
    }
    out
}

/// Logs a staff member in, fetches the roster, sends presence; returns the roster's items.
async fn staff_login(a: &ChurnArgs, k: usize, res: &str) -> Res<(Conn, Vec<(String, String)>)> {
    let (u, p) = &a.staff[k % a.staff.len()];
    let mut c = Conn::login(&a.c2s, &a.host, Some((u, p)), res).await?;
    c.send("<iq type='get' id='roster1'><query xmlns='jabber:iq:roster'/></iq>")
        .await?;
    let r = c
        .until(|s| s.starts_with("<iq") && attr(s, "id") == Some("roster1"))
        .await?;
    c.send("<presence/>").await?;
    Ok((c, roster_items(&r)))
}

fn is_visitor_item(a: &ChurnArgs, jid: &str) -> bool {
    visitor_of(&a.rooms, jid).is_some()
}

async fn staff_loop(a: ChurnArgs, k: usize, mut c: Conn, st: S, base: Instant) -> Res<()> {
    loop {
        let s = next_small(&mut c).await?;
        let kind = kind_of(&s);
        let now = micros(base);
        if s.starts_with("<iq") && matches!(attr(&s, "type"), Some("get") | Some("set")) {
            let id = attr(&s, "id").unwrap_or("");
            let to = attr(&s, "from")
                .map(|f| format!(" to='{f}'"))
                .unwrap_or_default();
            c.send(&format!("<iq type='result' id='{id}'{to}/>"))
                .await?;
        }
        let mut g = st.borrow_mut();
        g.c.stanzas[kind] += 1;
        g.c.bytes[kind] += s.len() as u64;
        if kind != 0 {
            continue;
        }
        for (jid, sub) in roster_items(&s) {
            if !is_visitor_item(&a, &jid) {
                continue;
            }
            if sub == "remove" {
                g.c.roster_removes += 1;
                g.rosters[k].remove(&jid);
            } else if g.rosters[k].insert(jid.clone()) {
                g.c.roster_adds += 1;
                let since = visitor_of(&a.rooms, &jid).and_then(|v| g.last_action.get(&v).copied());
                if let Some(t) = since {
                    g.pushes.push((now, now.saturating_sub(t)));
                }
            }
        }
    }
}

// ---- visitors -------------------------------------------------------------------------------

/// Stands for "never" in timers (Duration::MAX would overflow an Instant).
const YEAR: Duration = Duration::from_secs(365 * 86_400);

fn writes(i: usize, f: f64) -> bool {
    ((i + 1) as f64 * f).floor() > (i as f64 * f).floor()
}

async fn visitor(a: ChurnArgs, i: usize, st: S, base: Instant, leave: oneshot::Receiver<()>) {
    if let Err(e) = visitor_inner(&a, i, &st, base, leave).await {
        let mut g = st.borrow_mut();
        g.c.join_failures += 1;
        if g.errors.len() < 20 {
            g.errors.push(format!("visitor {i}: {e}"));
        }
    }
}

async fn visitor_inner(
    a: &ChurnArgs,
    i: usize,
    st: &S,
    base: Instant,
    mut leave: oneshot::Receiver<()>,
) -> Res<()> {
    let room = a.rooms.replace("{i}", &i.to_string());
    let mut c = Conn::login(&a.c2s, &a.anon_host, None, "c").await?;
    let t0 = micros(base);
    st.borrow_mut().last_action.insert(i, t0);
    c.send(&format!("<presence to='{room}/V'><x xmlns='http://jabber.org/protocol/muc'><history maxstanzas='0'/></x></presence>")).await?;
    let me = format!("{room}/V");
    loop {
        let s = next_small(&mut c).await?;
        if s.starts_with("<presence") && attr(&s, "type") == Some("error") {
            return Err(format!("join refused: {s}"));
        }
        if is_self_presence(&s, &me) {
            break;
        }
    }
    {
        let mut g = st.borrow_mut();
        g.joins.push((t0, micros(base) - t0));
        g.c.joined += 1;
    }
    if a.writer(i) {
        c.send(&format!(
            "<message type='groupchat' to='{room}'><body>hello from visitor {i}</body></message>"
        ))
        .await?;
        let mut g = st.borrow_mut();
        g.c.writes += 1;
        g.last_action.insert(i, micros(base));
    }
    let stay = match a.writer_stay {
        Some(secs) if a.writer(i) => Duration::from_secs_f64(secs),
        _ => Duration::MAX,
    };
    let gone = tokio::time::sleep_until(tokio::time::Instant::now() + stay.min(YEAR));
    tokio::pin!(gone);
    loop {
        tokio::select! {
            _ = &mut leave => break,
            _ = &mut gone => { st.borrow_mut().c.writers_left += 1; break; }
            s = next_small(&mut c) => { s?; }
        }
    }
    c.send(&format!(
        "<presence type='unavailable' to='{room}/V'/></stream:stream>"
    ))
    .await?;
    st.borrow_mut().c.departures += 1;
    Ok(())
}

// ---- the schedule ---------------------------------------------------------------------------

struct Run {
    a: ChurnArgs,
    st: S,
    base: Instant,
    present: VecDeque<oneshot::Sender<()>>,
    next_i: usize,
}

fn emit(v: String) {
    println!("{v}");
    std::io::stdout().flush().ok();
}

fn ms(x: f64) -> String {
    if x.is_nan() {
        "null".into()
    } else {
        format!("{x:.3}")
    }
}

impl Run {
    fn arrive(&mut self) {
        let (tx, rx) = oneshot::channel();
        let (a, st, i) = (self.a.clone(), self.st.clone(), self.next_i);
        self.next_i += 1;
        self.st.borrow_mut().c.arrivals += 1;
        tokio::task::spawn_local(visitor(a, i, st, self.base, rx));
        self.present.push_back(tx);
    }

    /// Sends the oldest visitor still present away (writers may have left on their own).
    fn depart_oldest(&mut self) {
        while let Some(tx) = self.present.pop_front() {
            if !tx.is_closed() {
                let _ = tx.send(());
                return;
            }
        }
    }

    fn present_now(&self) -> usize {
        self.present.iter().filter(|tx| !tx.is_closed()).count()
    }

    /// Visitors still present (or joining): their task still holds its receiver.
    fn live(&mut self) -> usize {
        self.present.retain(|tx| !tx.is_closed());
        self.present.len()
    }

    /// Arrivals at `rate` for `secs`; with `churn`, each arrival sends the oldest visitor away.
    async fn arrivals(&mut self, rate: f64, secs: f64, churn: bool, limit: Option<usize>) {
        let period = Duration::from_secs_f64(1.0 / rate.max(0.01));
        let mut tick = tokio::time::interval(period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
        let end = Instant::now() + Duration::from_secs_f64(secs);
        let mut n = 0usize;
        while Instant::now() < end && limit.is_none_or(|l| n < l) {
            tick.tick().await;
            self.arrive();
            n += 1;
            // Keeps N present: writers who left on their own are replaced, not doubled.
            while churn && self.live() > self.a.present {
                self.depart_oldest();
            }
        }
    }

    /// Waits (bounded) until every visitor that arrived has joined or failed.
    async fn settle_joins(&self, bound: Duration) {
        let end = Instant::now() + bound;
        while Instant::now() < end {
            let c = self.st.borrow().c.clone();
            if c.joined + c.join_failures >= c.arrivals {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits (at most `bound`) until no roster push has reached staff for 3 s: the fill's
    /// roster writes are done and the windows measure steady churn, not the fill's backlog.
    async fn settle_rosters(&self, bound: Duration) -> f64 {
        let t0 = Instant::now();
        let ops = || {
            let g = self.st.borrow();
            g.c.roster_adds + g.c.roster_removes
        };
        let (mut last, mut since) = (ops(), Instant::now());
        while t0.elapsed() < bound {
            tokio::time::sleep(Duration::from_millis(250)).await;
            let n = ops();
            if n != last {
                (last, since) = (n, Instant::now());
            } else if since.elapsed() >= Duration::from_secs(3) {
                break;
            }
        }
        t0.elapsed().as_secs_f64()
    }

    fn visitor_items(&self) -> (usize, usize) {
        let g = self.st.borrow();
        let sizes: Vec<usize> = g.rosters.iter().map(HashSet::len).collect();
        (
            sizes.iter().sum::<usize>() / sizes.len().max(1),
            sizes.iter().copied().max().unwrap_or(0),
        )
    }
}

fn window_json(run: &Run, rate: f64, secs: f64, before: &Counts, t0: u64, t1: u64) -> String {
    let (avg_items, max_items) = run.visitor_items();
    let g = run.st.borrow();
    let c = &g.c;
    let staff = run.a.staff.len() as f64;
    let arrivals = (c.arrivals - before.arrivals) as f64;
    let mut joins: Vec<u64> = g
        .joins
        .iter()
        .filter(|(t, _)| *t >= t0 && *t < t1)
        .map(|x| x.1)
        .collect();
    let mut pushes: Vec<u64> = g
        .pushes
        .iter()
        .filter(|(t, _)| *t >= t0 && *t < t1)
        .map(|x| x.1)
        .collect();
    let mut kinds = BTreeMap::new();
    for (k, name) in KINDS.iter().enumerate() {
        let n = (c.stanzas[k] - before.stanzas[k]) as f64;
        let b = (c.bytes[k] - before.bytes[k]) as f64;
        kinds.insert(
            *name,
            (n / arrivals.max(1.0) / staff, b / arrivals.max(1.0) / staff),
        );
    }
    let total_n: u64 = (0..5).map(|k| c.stanzas[k] - before.stanzas[k]).sum();
    let total_b: u64 = (0..5).map(|k| c.bytes[k] - before.bytes[k]).sum();
    let per_kind: Vec<String> = kinds
        .iter()
        .map(|(k, (n, b))| format!("\"{k}\":{{\"stanzas\":{n:.3},\"bytes\":{b:.1}}}"))
        .collect();
    let ops =
        (c.roster_adds - before.roster_adds + c.roster_removes - before.roster_removes) as f64;
    format!(
        "{{\"event\":\"window_end\",\"rate\":{rate},\"seconds\":{secs:.3},\"arrivals\":{arrivals},\"joined\":{},\"join_failures\":{},\"writes\":{},\"writers_left\":{},\"present\":{},\"join_count\":{},\"join_p50_ms\":{},\"join_p99_ms\":{},\"roster_adds\":{},\"roster_removes\":{},\"roster_ops_per_s_per_staff\":{:.3},\"push_count\":{},\"push_p50_ms\":{},\"push_p99_ms\":{},\"stanzas_per_arrival_per_staff\":{:.3},\"bytes_per_arrival_per_staff\":{:.1},\"kinds\":{{{}}},\"staff_roster_items_avg\":{avg_items},\"staff_roster_items_max\":{max_items}}}",
        c.joined - before.joined, c.join_failures - before.join_failures, c.writes - before.writes,
        c.writers_left - before.writers_left, run.present_now(), joins.len(), ms(pct(&mut joins, 50.0)), ms(pct(&mut joins, 99.0)),
        c.roster_adds - before.roster_adds, c.roster_removes - before.roster_removes, ops / secs / staff,
        pushes.len(), ms(pct(&mut pushes, 50.0)), ms(pct(&mut pushes, 99.0)),
        total_n as f64 / arrivals.max(1.0) / staff, total_b as f64 / arrivals.max(1.0) / staff,
        per_kind.join(",")
    )
}

/// A fresh staff session at N present: how long until its roster, and until the visitors'
/// presences, arrive.
async fn fresh_login(run: &Run) -> Res<String> {
    let t0 = Instant::now();
    let (mut c, items) = staff_login(&run.a, 0, "fresh").await?;
    let roster_ms = t0.elapsed().as_secs_f64() * 1000.0;
    let visitors = items
        .iter()
        .filter(|(j, _)| is_visitor_item(&run.a, j))
        .count();
    let mut seen = HashSet::new();
    let end = Instant::now() + Duration::from_secs(30);
    while seen.len() < visitors && Instant::now() < end {
        let left = end.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, next_small(&mut c)).await {
            Ok(Ok(s)) if s.starts_with("<presence") => {
                if let Some(f) = attr(&s, "from") {
                    let bare = f.split('/').next().unwrap_or(f);
                    if is_visitor_item(&run.a, bare) {
                        seen.insert(bare.to_string());
                    }
                }
            }
            Ok(Ok(_)) => {}
            Ok(Err(e)) => return Err(e),
            Err(_) => break,
        }
    }
    let presences_ms = t0.elapsed().as_secs_f64() * 1000.0;
    c.send("</stream:stream>").await?;
    Ok(format!("{{\"event\":\"fresh_login\",\"roster_items\":{},\"visitor_items\":{visitors},\"roster_ms\":{roster_ms:.1},\"visitor_presences\":{},\"presences_ms\":{presences_ms:.1}}}", items.len(), seen.len()))
}

async fn start_staff(a: &ChurnArgs, st: &S, base: Instant) -> Res<usize> {
    let mut initial = 0;
    st.borrow_mut().rosters = vec![HashSet::new(); a.staff.len()];
    for k in 0..a.staff.len() {
        let (c, items) = staff_login(a, k, "churn").await?;
        let vis: HashSet<String> = items
            .into_iter()
            .filter(|(j, _)| is_visitor_item(a, j))
            .map(|x| x.0)
            .collect();
        initial += vis.len();
        st.borrow_mut().rosters[k] = vis;
        let (a2, st2) = (a.clone(), st.clone());
        tokio::task::spawn_local(async move {
            if let Err(e) = staff_loop(a2, k, c, st2.clone(), base).await {
                st2.borrow_mut().errors.push(format!("staff {k}: {e}"));
            }
        });
    }
    Ok(initial)
}

pub async fn churn_main(a: ChurnArgs) -> Res<()> {
    let base = Instant::now();
    let st: S = Rc::new(RefCell::new(Shared::default()));
    let initial = start_staff(&a, &st, base).await?;
    let mut run = Run {
        a: a.clone(),
        st: st.clone(),
        base,
        present: VecDeque::new(),
        next_i: 0,
    };
    let t_fill = Instant::now();
    run.arrivals(a.fill_rate, 1e6, false, Some(a.present)).await;
    let fill_arrivals = t_fill.elapsed().as_secs_f64();
    run.settle_joins(Duration::from_secs(120)).await;
    let fill_s = t_fill.elapsed().as_secs_f64();
    let settle_s = run
        .settle_rosters(Duration::from_secs_f64(a.roster_settle))
        .await;
    let c = st.borrow().c.clone();
    let mut fill_joins: Vec<u64> = st.borrow().joins.iter().map(|x| x.1).collect();
    let items = run.visitor_items().0;
    emit(format!("{{\"event\":\"filled\",\"staff_initial_visitor_items\":{initial},\"present\":{},\"joined\":{},\"join_failures\":{},\"arrivals_s\":{fill_arrivals:.3},\"fill_s\":{fill_s:.3},\"roster_settle_s\":{settle_s:.3},\"staff_visitor_items_avg\":{items},\"join_p50_ms\":{},\"join_p99_ms\":{}}}",
        run.present_now(), c.joined, c.join_failures,
        ms(pct(&mut fill_joins, 50.0)), ms(pct(&mut fill_joins, 99.0))));
    if let (Some(&rate), true) = (a.rates.first(), a.warmup > 0.0) {
        run.arrivals(rate, a.warmup, true, None).await;
        let (avg, max) = run.visitor_items();
        emit(format!("{{\"event\":\"warmed\",\"seconds\":{},\"rate\":{rate},\"present\":{},\"staff_roster_items_avg\":{avg},\"staff_roster_items_max\":{max}}}",
            a.warmup, run.present_now()));
    }
    for &rate in &a.rates {
        run.arrivals(rate, a.settle, true, None).await;
        let before = st.borrow().c.clone();
        let t0 = micros(base);
        emit(format!("{{\"event\":\"window_start\",\"rate\":{rate}}}"));
        run.arrivals(rate, a.window, true, None).await;
        let t1 = micros(base);
        emit(format!("{{\"event\":\"window_stop\",\"rate\":{rate}}}"));
        let secs = (t1 - t0) as f64 / 1e6;
        // Joins sent in the window get their answer before the line is written.
        run.settle_joins(Duration::from_secs(10)).await;
        emit(window_json(&run, rate, secs, &before, t0, t1));
    }
    emit(
        fresh_login(&run)
            .await
            .unwrap_or_else(|e| format!("{{\"event\":\"fresh_login\",\"error\":{:?}}}", e)),
    );
    drain(&mut run).await;
    Ok(())
}

/// Every visitor leaves; then waits (bounded) until the staff rosters hold no visitor.
async fn drain(run: &mut Run) {
    let t0 = Instant::now();
    let period = Duration::from_secs_f64(1.0 / run.a.drain_rate.max(1.0));
    let mut tick = tokio::time::interval(period);
    while !run.present.is_empty() {
        tick.tick().await;
        run.depart_oldest();
    }
    let end = Instant::now() + Duration::from_secs_f64(run.a.drain_wait);
    while run.visitor_items().1 > 0 && Instant::now() < end {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (avg, max) = run.visitor_items();
    let g = run.st.borrow();
    let errors: Vec<String> = g.errors.iter().map(|e| format!("{e:?}")).collect();
    emit(format!("{{\"event\":\"drained\",\"seconds\":{:.3},\"staff_roster_items_avg\":{avg},\"staff_roster_items_max\":{max},\"arrivals\":{},\"joined\":{},\"join_failures\":{},\"departures\":{},\"roster_adds\":{},\"roster_removes\":{},\"errors\":[{}]}}",
        t0.elapsed().as_secs_f64(), g.c.arrivals, g.c.joined, g.c.join_failures, g.c.departures,
        g.c.roster_adds, g.c.roster_removes, errors.join(",")));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn visitor_numbers_items_and_writers() {
        assert_eq!(
            visitor_of("c1v{i}_acme@chat.localhost", "c1v42_acme@chat.localhost"),
            Some(42)
        );
        assert_eq!(
            visitor_of("c1v{i}_acme@chat.localhost", "chat.localhost"),
            None
        );
        let push = "<iq type='set' id='p'><query xmlns='jabber:iq:roster'><item jid='c1v3_acme@chat.localhost' subscription='remove'/></query></iq>";
        assert_eq!(
            roster_items(push),
            vec![("c1v3_acme@chat.localhost".into(), "remove".into())]
        );
        assert_eq!(kind_of(push), 0);
        assert_eq!((0..100).filter(|&i| writes(i, 0.1)).count(), 10);
    }
}
