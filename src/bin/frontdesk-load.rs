//! frontdesk-load: the load generator of scripts/bench. Raw-XML XMPP clients over plain TCP
//! (SASL ANONYMOUS for visitors, PLAIN for staff), one visitor and one staff member in each of
//! K rooms, each sending groupchat messages at a fixed rate. Every body carries the room, the
//! direction, a sequence number and the send time, so the receiving side measures latency and
//! finds lost or reordered messages. The same workload runs against frontdesk's rooms and
//! against ejabberd's own mod_muc; only the room addresses differ.
//!
//! It prints one JSON object (see `Report`) on stdout. Kept apart from the product: only tokio
//! and hand-written XML for the few stanzas it needs (xmpp-parsers only for the handshake
//! digest).
//!
//! `frontdesk-load --echo-component HOST:PORT --jid echo.localhost --secret S` is the other
//! half of the latency baseline: a component that answers joins and reflects groupchat at
//! once, storing nothing and checking nothing. Its latency is what any component pays for the
//! two extra trips through the server, before doing any work of its own.

use std::cell::RefCell;
use std::collections::HashMap;
use std::io::Write;
use std::rc::Rc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;

#[path = "load_churn/churn.rs"]
mod churn;

#[derive(Debug, Clone)]
struct Args {
    c2s: String,
    host: String,
    anon_host: String,
    /// Room address with `{i}` for the room number, e.g. `b{i}_acme@chat.localhost`.
    rooms: String,
    count: usize,
    /// `user:password` staff accounts; room i uses account i % len with resource
    /// `load-<room's local part>`.
    staff: Vec<(String, String)>,
    /// Messages per second from each visitor and each staff member.
    rate: f64,
    seconds: f64,
    /// Only join and hold (for memory readings); `rooms_per_visitor` rooms per visitor login.
    idle: bool,
    rooms_per_visitor: usize,
    /// Write every message body any client received here (for the transcript checks).
    seen_out: Option<String>,
    connect_parallel: usize,
}

fn usage() -> ! {
    eprintln!(
        "usage: frontdesk-load --c2s HOST:PORT --host STAFF_DOMAIN --anon-host ANON_DOMAIN \
--rooms 'b{{i}}_acme@chat.localhost' --count K --staff user:pw[,user:pw...] \
[--rate MSGS_PER_S] [--seconds S] [--idle --rooms-per-visitor N] [--seen-out FILE]"
    );
    std::process::exit(2)
}

fn parse_args() -> Args {
    let mut a = Args {
        c2s: String::new(),
        host: String::new(),
        anon_host: String::new(),
        rooms: String::new(),
        count: 10,
        staff: Vec::new(),
        rate: 1.0,
        seconds: 10.0,
        idle: false,
        rooms_per_visitor: 1,
        seen_out: None,
        connect_parallel: 64,
    };
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        let mut v = || it.next().unwrap_or_else(|| usage());
        match k.as_str() {
            "--c2s" => a.c2s = v(),
            "--host" => a.host = v(),
            "--anon-host" => a.anon_host = v(),
            "--rooms" => a.rooms = v(),
            "--count" => a.count = v().parse().unwrap_or_else(|_| usage()),
            "--staff" => {
                a.staff = v()
                    .split(',')
                    .filter_map(|p| p.split_once(':'))
                    .map(|(u, p)| (u.to_string(), p.to_string()))
                    .collect()
            }
            "--rate" => a.rate = v().parse().unwrap_or_else(|_| usage()),
            "--seconds" => a.seconds = v().parse().unwrap_or_else(|_| usage()),
            "--idle" => a.idle = true,
            "--rooms-per-visitor" => a.rooms_per_visitor = v().parse().unwrap_or_else(|_| usage()),
            "--seen-out" => a.seen_out = Some(v()),
            "--connect-parallel" => a.connect_parallel = v().parse().unwrap_or_else(|_| usage()),
            _ => usage(),
        }
    }
    if a.c2s.is_empty() || a.host.is_empty() || a.anon_host.is_empty() || !a.rooms.contains("{i}") {
        usage();
    }
    if !a.idle && a.staff.is_empty() {
        usage();
    }
    a
}

// ---- a minimal XMPP client ----------------------------------------------------------------

type Res<T> = Result<T, String>;

struct Conn {
    rd: OwnedReadHalf,
    wr: OwnedWriteHalf,
    buf: Vec<u8>,
}

impl Conn {
    /// A TCP connection with nothing sent yet.
    async fn connect(addr: &str) -> Res<Conn> {
        let s = TcpStream::connect(addr)
            .await
            .map_err(|e| format!("connect {addr}: {e}"))?;
        s.set_nodelay(true).map_err(|e| e.to_string())?;
        let (rd, wr) = s.into_split();
        Ok(Conn {
            rd,
            wr,
            buf: Vec::with_capacity(8192),
        })
    }

    async fn open(addr: &str, to: &str) -> Res<Conn> {
        let mut c = Conn::connect(addr).await?;
        c.header(to).await?;
        Ok(c)
    }

    async fn header(&mut self, to: &str) -> Res<()> {
        self.send(&format!("<?xml version='1.0'?><stream:stream to='{to}' xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>")).await
    }

    async fn send(&mut self, s: &str) -> Res<()> {
        self.wr
            .write_all(s.as_bytes())
            .await
            .map_err(|e| format!("write: {e}"))
    }

    /// The next complete top-level element (a stanza or nonza) after the stream header.
    async fn next(&mut self) -> Res<String> {
        loop {
            if let Some(s) = self.scan() {
                return Ok(s);
            }
            self.fill().await?;
        }
    }

    /// One read from the socket into the buffer.
    async fn fill(&mut self) -> Res<()> {
        let mut chunk = [0u8; 16384];
        let n = self
            .rd
            .read(&mut chunk)
            .await
            .map_err(|e| format!("read: {e}"))?;
        if n == 0 {
            return Err("the server closed the stream".into());
        }
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(())
    }

    /// The next complete element at the top of the stream, if the buffer holds one. Servers
    /// serialise plainly (tags, quoted attributes, escaped text), so counting tags is enough.
    /// A stream header (also after a SASL restart) is skipped.
    fn scan(&mut self) -> Option<String> {
        'again: loop {
            let b = &self.buf;
            let (mut i, mut depth, mut start) = (0usize, 0usize, 0usize);
            while i < b.len() {
                if b[i] != b'<' {
                    i += 1;
                    continue;
                }
                let mut j = i + 1;
                let mut quote = 0u8;
                while j < b.len() {
                    let c = b[j];
                    if quote != 0 {
                        if c == quote {
                            quote = 0;
                        }
                    } else if c == b'\'' || c == b'"' {
                        quote = c;
                    } else if c == b'>' {
                        break;
                    }
                    j += 1;
                }
                if j >= b.len() {
                    return None;
                }
                let tag = &b[i..=j];
                if tag.starts_with(b"<?") || tag.starts_with(b"<!") {
                } else if depth == 0 && tag.starts_with(b"<stream:stream") {
                    self.buf.drain(..=j);
                    continue 'again;
                } else if tag.starts_with(b"</") {
                    if depth == 0 {
                        let out = String::from_utf8_lossy(tag).into_owned();
                        self.buf.drain(..=j);
                        return Some(out);
                    }
                    depth -= 1;
                    if depth == 0 {
                        let out = String::from_utf8_lossy(&b[start..=j]).into_owned();
                        self.buf.drain(..=j);
                        return Some(out);
                    }
                } else if tag.ends_with(b"/>") {
                    if depth == 0 {
                        let out = String::from_utf8_lossy(tag).into_owned();
                        self.buf.drain(..=j);
                        return Some(out);
                    }
                } else {
                    if depth == 0 {
                        start = i;
                    }
                    depth += 1;
                }
                i = j + 1;
            }
            return None;
        }
    }

    async fn until(&mut self, want: impl Fn(&str) -> bool) -> Res<String> {
        loop {
            let s = self.next().await?;
            if s.starts_with("<failure")
                || s.starts_with("<stream:error")
                || s.starts_with("</stream:stream")
            {
                return Err(format!("refused: {s}"));
            }
            if want(&s) {
                return Ok(s);
            }
        }
    }

    /// Logs in (ANONYMOUS without a user) and binds a resource; returns the full JID.
    async fn login(
        addr: &str,
        domain: &str,
        user: Option<(&str, &str)>,
        resource: &str,
    ) -> Res<Conn> {
        let mut c = Conn::open(addr, domain).await?;
        c.until(|s| s.starts_with("<stream:features")).await?;
        match user {
            None => {
                c.send("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='ANONYMOUS'/>")
                    .await?
            }
            Some((u, p)) => {
                let cred = b64(format!("\0{u}\0{p}").as_bytes());
                c.send(&format!("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>{cred}</auth>")).await?
            }
        }
        c.until(|s| s.starts_with("<success")).await?;
        c.header(domain).await?;
        c.until(|s| s.starts_with("<stream:features")).await?;
        c.send(&format!("<iq type='set' id='bind'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>{resource}</resource></bind></iq>")).await?;
        c.until(|s| s.starts_with("<iq") && attr(s, "id") == Some("bind"))
            .await?;
        Ok(c)
    }
}

fn b64(data: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for ch in data.chunks(3) {
        let n = (ch[0] as u32) << 16
            | (*ch.get(1).unwrap_or(&0) as u32) << 8
            | *ch.get(2).unwrap_or(&0) as u32;
        for k in 0..4 {
            if k <= ch.len() {
                out.push(T[(n >> (18 - 6 * k) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The value of attribute `name` on the element's start tag.
fn attr<'a>(s: &'a str, name: &str) -> Option<&'a str> {
    let head = &s[..s.find('>').unwrap_or(s.len())];
    for q in ['\'', '"'] {
        let pat = format!(" {name}={q}");
        if let Some(i) = head.find(&pat) {
            let rest = &head[i + pat.len()..];
            return rest.find(q).map(|e| &rest[..e]);
        }
    }
    None
}

fn body(s: &str) -> Option<&str> {
    let i = s.find("<body")?;
    let open_end = i + s[i..].find('>')?;
    if s[i..=open_end].ends_with("/>") {
        return None;
    }
    let close = s[open_end..].find("</body>")? + open_end;
    Some(&s[open_end + 1..close])
}

fn is_self_presence(s: &str, room_nick: &str) -> bool {
    s.starts_with("<presence")
        && attr(s, "from") == Some(room_nick)
        && s.contains("code='110'") | s.contains("code=\"110\"")
}

// ---- the workload ---------------------------------------------------------------------------

#[derive(Default)]
struct Stats {
    /// Latencies in microseconds, visitor->staff and staff->visitor.
    v2s: Vec<u64>,
    s2v: Vec<u64>,
    sent: u64,
    received: u64,
    reordered: u64,
    duplicates: u64,
    errors: u64,
    joins: Vec<u64>,
    seen: Vec<String>,
    /// Highest sequence received per (room, direction) and how many.
    next_seq: HashMap<(usize, u8), u64>,
    got: HashMap<(usize, u8), u64>,
    sent_by: HashMap<(usize, u8), u64>,
}

fn micros(base: Instant) -> u64 {
    base.elapsed().as_micros() as u64
}

#[allow(clippy::too_many_arguments)]
async fn run_client(
    mut c: Conn,
    room: String,
    idx: usize,
    role: u8,
    rate: f64,
    start_at: Instant,
    stop_at: Instant,
    drain_until: Instant,
    base: Instant,
    stats: Rc<RefCell<Stats>>,
    keep_seen: bool,
) -> Res<()> {
    let period = Duration::from_secs_f64(1.0 / rate.max(0.001));
    // Spread the senders' phases so the load is even.
    let phase = Duration::from_secs_f64(
        (idx as f64 * 0.6180339887 + role as f64 * 0.5).fract() * period.as_secs_f64(),
    );
    let mut tick =
        tokio::time::interval_at(tokio::time::Instant::from_std(start_at + phase), period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let other = 1 - role;
    let mut seq = 0u64;
    let mut sending = true;
    loop {
        let now = Instant::now();
        if now >= drain_until {
            return Ok(());
        }
        if sending && now >= stop_at {
            sending = false;
        }
        tokio::select! {
            _ = tick.tick(), if sending => {
                if Instant::now() >= stop_at { sending = false; continue; }
                let t = micros(base);
                let d = if role == 0 { 'v' } else { 's' };
                c.send(&format!("<message type='groupchat' to='{room}' id='{d}{seq}'><body>L {idx} {d} {seq} {t}</body></message>")).await?;
                seq += 1;
                let mut st = stats.borrow_mut();
                st.sent += 1;
                *st.sent_by.entry((idx, role)).or_default() += 1;
            }
            s = c.next() => {
                let s = s?;
                if !s.starts_with("<message") { continue; }
                if attr(&s, "type") == Some("error") {
                    stats.borrow_mut().errors += 1;
                    continue;
                }
                let Some(b) = body(&s) else { continue };
                let mut parts = b.split(' ');
                if parts.next() != Some("L") { continue; }
                let (Some(r), Some(d), Some(q), Some(t)) = (parts.next(), parts.next(), parts.next(), parts.next()) else { continue };
                let (Ok(r), Ok(q), Ok(t)) = (r.parse::<usize>(), q.parse::<u64>(), t.parse::<u64>()) else { continue };
                let dir = if d == "v" { 0 } else { 1 };
                let mut st = stats.borrow_mut();
                if keep_seen {
                    st.seen.push(b.to_string());
                }
                if dir != other || r != idx { continue; }
                let lat = micros(base).saturating_sub(t);
                if dir == 0 { st.v2s.push(lat) } else { st.s2v.push(lat) }
                st.received += 1;
                *st.got.entry((idx, dir)).or_default() += 1;
                let next = st.next_seq.entry((idx, dir)).or_default();
                if q == *next {
                    *next += 1;
                } else if q > *next {
                    *next = q + 1; // a gap: counted as loss at the end unless it arrives late
                } else {
                    st.reordered += 1;
                }
            }
            _ = tokio::time::sleep_until(tokio::time::Instant::from_std(drain_until)) => return Ok(()),
        }
    }
}

fn pct(v: &mut [u64], p: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_unstable();
    let i = ((p / 100.0) * (v.len() as f64 - 1.0)).round() as usize;
    v[i.min(v.len() - 1)] as f64 / 1000.0
}

async fn join(c: &mut Conn, room: &str, nick: &str, base: Instant) -> Res<u64> {
    let t0 = micros(base);
    c.send(&format!("<presence to='{room}/{nick}'><x xmlns='http://jabber.org/protocol/muc'><history maxstanzas='0'/></x></presence>")).await?;
    let me = format!("{room}/{nick}");
    loop {
        let s = c.next().await?;
        if s.starts_with("<presence")
            && attr(&s, "type") == Some("error")
            && attr(&s, "from").is_some_and(|f| f.starts_with(room))
        {
            return Err(format!("join {room} refused: {s}"));
        }
        if is_self_presence(&s, &me) {
            return Ok(micros(base) - t0);
        }
    }
}

async fn main_async(a: Args) -> Res<()> {
    let base = Instant::now();
    let room = |i: usize| a.rooms.replace("{i}", &i.to_string());
    let stats = Rc::new(RefCell::new(Stats::default()));
    let sem = Rc::new(tokio::sync::Semaphore::new(a.connect_parallel));

    if a.idle {
        // Visitors only, each in `rooms_per_visitor` rooms; hold until stdin closes.
        let logins = a.count.div_ceil(a.rooms_per_visitor);
        let mut tasks = Vec::new();
        for v in 0..logins {
            let (a, sem, stats) = (a.clone(), sem.clone(), stats.clone());
            tasks.push(tokio::task::spawn_local(async move {
                let permit = sem.acquire().await.map_err(|e| e.to_string())?;
                let mut c = Conn::login(&a.c2s, &a.anon_host, None, "idle").await?;
                for k in 0..a.rooms_per_visitor {
                    let i = v * a.rooms_per_visitor + k;
                    if i >= a.count {
                        break;
                    }
                    let j =
                        join(&mut c, &a.rooms.replace("{i}", &i.to_string()), "V", base).await?;
                    stats.borrow_mut().joins.push(j);
                }
                drop(permit);
                Ok::<Conn, String>(c)
            }));
        }
        let mut conns = Vec::new();
        for t in tasks {
            conns.push(t.await.map_err(|e| e.to_string())??);
        }
        let (j50, j99) = {
            let mut st = stats.borrow_mut();
            (pct(&mut st.joins, 50.0), pct(&mut st.joins, 99.0))
        };
        println!("{{\"mode\":\"idle\",\"rooms\":{},\"logins\":{},\"join_p50_ms\":{j50:.3},\"join_p99_ms\":{j99:.3},\"setup_s\":{:.3}}}", a.count, conns.len(), base.elapsed().as_secs_f64());
        std::io::stdout().flush().ok();
        // Hold the connections until the caller closes our stdin.
        let _ = tokio::task::spawn_blocking(|| {
            let mut sink = Vec::new();
            std::io::Read::read_to_end(&mut std::io::stdin(), &mut sink)
        })
        .await;
        return Ok(());
    }

    // Log everyone in and join: the visitor first (it opens the room), then staff.
    let mut tasks = Vec::new();
    for i in 0..a.count {
        let (a, sem, stats) = (a.clone(), sem.clone(), stats.clone());
        let r = room(i);
        tasks.push(tokio::task::spawn_local(async move {
            let permit = sem.acquire().await.map_err(|e| e.to_string())?;
            let mut v = Conn::login(&a.c2s, &a.anon_host, None, "load").await?;
            let jv = join(&mut v, &r, "V", base).await?;
            let (u, p) = &a.staff[i % a.staff.len()];
            // A resource of this run's own: a server still working off an earlier run (the
            // archived MUC behind its load) would otherwise deliver that run's messages to
            // this session, which reuses the address.
            let node = r.split('@').next().unwrap_or(&r);
            let mut s = Conn::login(&a.c2s, &a.host, Some((u, p)), &format!("load-{node}")).await?;
            join(&mut s, &r, "S", base).await?;
            stats.borrow_mut().joins.push(jv);
            drop(permit);
            Ok::<(Conn, Conn), String>((v, s))
        }));
    }
    let mut pairs = Vec::new();
    for t in tasks {
        pairs.push(t.await.map_err(|e| e.to_string())??);
    }
    let setup = base.elapsed().as_secs_f64();
    let start_at = Instant::now() + Duration::from_millis(300);
    let stop_at = start_at + Duration::from_secs_f64(a.seconds);
    let drain_until = stop_at + Duration::from_secs(5);
    let mut runs = Vec::new();
    for (i, (v, s)) in pairs.into_iter().enumerate() {
        for (c, role) in [(v, 0u8), (s, 1u8)] {
            let (r, stats, keep) = (room(i), stats.clone(), a.seen_out.is_some());
            runs.push(tokio::task::spawn_local(run_client(
                c,
                r,
                i,
                role,
                a.rate,
                start_at,
                stop_at,
                drain_until,
                base,
                stats,
                keep,
            )));
        }
    }
    let mut failures = 0;
    for t in runs {
        if let Ok(Err(e)) = t.await {
            failures += 1;
            eprintln!("frontdesk-load: a client failed: {e}");
        }
    }
    let mut st = stats.borrow_mut();
    let mut lost = 0u64;
    let sent_by: Vec<((usize, u8), u64)> = st.sent_by.iter().map(|(k, v)| (*k, *v)).collect();
    for (k, n) in sent_by {
        let got = st.got.get(&k).copied().unwrap_or(0);
        lost += n.saturating_sub(got);
    }
    if let Some(path) = &a.seen_out {
        let mut f = std::fs::File::create(path).map_err(|e| format!("{path}: {e}"))?;
        for s in &st.seen {
            writeln!(f, "{s}").map_err(|e| e.to_string())?;
        }
    }
    let (v50, v99, v999) = (
        pct(&mut st.v2s, 50.0),
        pct(&mut st.v2s, 99.0),
        pct(&mut st.v2s, 99.9),
    );
    let (s50, s99, s999) = (
        pct(&mut st.s2v, 50.0),
        pct(&mut st.s2v, 99.0),
        pct(&mut st.s2v, 99.9),
    );
    let (j50, j99) = (pct(&mut st.joins, 50.0), pct(&mut st.joins, 99.0));
    let nan = |x: f64| {
        if x.is_nan() {
            "null".to_string()
        } else {
            format!("{x:.3}")
        }
    };
    println!(
        "{{\"mode\":\"chat\",\"rooms\":{},\"rate_per_sender\":{},\"seconds\":{},\"offered_per_s\":{:.1},\"sent\":{},\"received\":{},\"delivered_per_s\":{:.1},\"lost\":{},\"reordered\":{},\"errors\":{},\"client_failures\":{},\"v2s_p50_ms\":{},\"v2s_p99_ms\":{},\"v2s_p999_ms\":{},\"s2v_p50_ms\":{},\"s2v_p99_ms\":{},\"s2v_p999_ms\":{},\"join_p50_ms\":{},\"join_p99_ms\":{},\"setup_s\":{:.3}}}",
        a.count, a.rate, a.seconds, 2.0 * a.count as f64 * a.rate, st.sent, st.received,
        st.received as f64 / a.seconds, lost, st.reordered, st.errors, failures,
        nan(v50), nan(v99), nan(v999), nan(s50), nan(s99), nan(s999), nan(j50), nan(j99), setup
    );
    let _ = st.duplicates;
    Ok(())
}

// ---- the echo component (the baseline) -------------------------------------------------------

/// Answers joins and reflects groupchat messages, nothing else; runs until killed.
async fn echo_component(addr: &str, jid: &str, secret: &str) -> Res<()> {
    let mut c = Conn::connect(addr).await?;
    c.send(&format!("<stream:stream xmlns='jabber:component:accept' xmlns:stream='http://etherx.jabber.org/streams' to='{jid}'>")).await?;
    // The header's id, before `scan` skips the header.
    let id = loop {
        let text = String::from_utf8_lossy(&c.buf).into_owned();
        if let Some(i) = text.find("<stream:stream") {
            if let Some(end) = text[i..].find('>') {
                break attr(&text[i..i + end + 1], "id")
                    .ok_or("the server sent no stream id")?
                    .to_string();
            }
        }
        c.fill().await?;
    };
    let digest: String =
        xmpp_parsers::component::Handshake::from_stream_id_and_password(id, secret)
            .data
            .ok_or("no handshake digest")?
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
    c.send(&format!("<handshake>{digest}</handshake>")).await?;
    c.until(|s| s.starts_with("<handshake")).await?;
    println!("ready");
    std::io::stdout().flush().ok();
    // room -> (occupant's full JID, nick)
    let mut rooms: HashMap<String, Vec<(String, String)>> = HashMap::new();
    let mut out = String::with_capacity(65536);
    let debug = std::env::var_os("FRONTDESK_ECHO_DEBUG").is_some();
    // Reflections with the XEP-0359 stanza-id frontdesk adds, to tell what those bytes cost
    // the server from what frontdesk itself costs.
    let mut sid = std::env::var_os("FRONTDESK_ECHO_STANZA_ID").map(|_| 0u64);
    loop {
        let mut stanza = c.next().await?;
        // Everything already read is answered in one write.
        loop {
            if debug {
                eprintln!("IN  {stanza}");
            }
            echo_one(&stanza, &mut rooms, &mut out, sid.as_mut());
            match c.scan() {
                Some(next) => stanza = next,
                None => break,
            }
        }
        if !out.is_empty() {
            if debug {
                eprintln!("OUT {out}");
            }
            c.send(&out).await?;
            out.clear();
        }
    }
}

fn echo_one(
    s: &str,
    rooms: &mut HashMap<String, Vec<(String, String)>>,
    out: &mut String,
    sid: Option<&mut u64>,
) {
    use std::fmt::Write as _;
    let (Some(from), Some(to)) = (attr(s, "from"), attr(s, "to")) else {
        return;
    };
    if s.starts_with("<presence") {
        let Some((room, nick)) = to.split_once('/') else {
            return;
        };
        let occupants = rooms.entry(room.to_string()).or_default();
        if attr(s, "type") == Some("unavailable") {
            occupants.retain(|(j, _)| j != from);
            let _ = write!(out, "<presence type='unavailable' from='{to}' to='{from}'><x xmlns='http://jabber.org/protocol/muc#user'><item affiliation='none' role='none'/><status code='110'/></x></presence>");
            return;
        }
        for (j, n) in occupants.iter() {
            let _ = write!(out, "<presence from='{room}/{n}' to='{from}'><x xmlns='http://jabber.org/protocol/muc#user'><item affiliation='none' role='participant'/></x></presence>");
            let _ = write!(out, "<presence from='{to}' to='{j}'><x xmlns='http://jabber.org/protocol/muc#user'><item affiliation='none' role='participant'/></x></presence>");
        }
        let _ = write!(out, "<presence from='{to}' to='{from}'><x xmlns='http://jabber.org/protocol/muc#user'><item affiliation='none' role='participant'/><status code='110'/></x></presence>");
        occupants.push((from.to_string(), nick.to_string()));
    } else if s.starts_with("<message") && attr(s, "type") == Some("groupchat") {
        let Some(occupants) = rooms.get(to) else {
            return;
        };
        let Some((_, nick)) = occupants.iter().find(|(j, _)| j == from) else {
            return;
        };
        let body = body(s).unwrap_or("");
        let id = attr(s, "id").unwrap_or("");
        let sid = sid.map(|n| {
            *n += 1;
            format!("<stanza-id xmlns='urn:xmpp:sid:0' id='1-{n}' by='{to}'/>")
        });
        let sid = sid.as_deref().unwrap_or("");
        for (j, _) in occupants {
            let _ = write!(out, "<message from='{to}/{nick}' to='{j}' type='groupchat' id='{id}'><body>{body}</body>{sid}</message>");
        }
    }
}

fn main() {
    let argv: Vec<String> = std::env::args().collect();
    if argv.get(1).map(String::as_str) == Some("--echo-component") {
        let get = |k: &str| {
            argv.iter()
                .position(|a| a == k)
                .and_then(|i| argv.get(i + 1))
                .cloned()
                .unwrap_or_else(|| usage())
        };
        let (addr, jid, secret) = (get("--echo-component"), get("--jid"), get("--secret"));
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build();
        let result = match rt {
            Ok(rt) => rt.block_on(echo_component(&addr, &jid, &secret)),
            Err(e) => Err(e.to_string()),
        };
        if let Err(e) = result {
            eprintln!("frontdesk-load: {e}");
            std::process::exit(1);
        }
        return;
    }
    if argv.iter().any(|a| a == "--churn") {
        let a = churn::parse_churn_args(&argv);
        run_local(churn::churn_main(a));
        return;
    }
    run_local(main_async(parse_args()));
}

/// Runs `fut` on a single-threaded runtime; exits 1 with its error.
fn run_local(fut: impl std::future::Future<Output = Res<()>>) {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("frontdesk-load: {e}");
            std::process::exit(1);
        }
    };
    let local = tokio::task::LocalSet::new();
    if let Err(e) = local.block_on(&rt, fut) {
        eprintln!("frontdesk-load: {e}");
        std::process::exit(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_and_attributes() {
        assert_eq!(b64(b"\0alice\0pw"), "AGFsaWNlAHB3");
        assert_eq!(b64(b"ab"), "YWI=");
        let s = "<message from='r@c/V' type=\"groupchat\"><body>L 1 v 2 3</body></message>";
        assert_eq!(attr(s, "from"), Some("r@c/V"));
        assert_eq!(attr(s, "type"), Some("groupchat"));
        assert_eq!(body(s), Some("L 1 v 2 3"));
    }
}
