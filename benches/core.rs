//! Criterion micro-benchmarks of the sans-I/O core: stanzas handled per second on one core,
//! with no socket and no SQLite (the store writes are only produced, as the core does).
//! `cargo bench --bench core`; the numbers go with the report in docs/benchmark.md.

use std::collections::{BTreeMap, BTreeSet};

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use minidom::Element;
use xmpp_parsers::jid::BareJid;
use xmpp_parsers::stanza::Stanza;

use frontdesk::address::SiteId;
use frontdesk::config::{Limits, RosterConfig, RosterMode};
use frontdesk::core::{Core, CoreConfig, Input, SiteInfo};
use frontdesk::store::Snapshot;
use frontdesk::time::Timestamp;

fn config() -> CoreConfig {
    let mut sites = BTreeMap::new();
    sites.insert(
        SiteId::new("acme").unwrap(),
        SiteInfo {
            name: "ACME Inc.".into(),
            staff: [BareJid::new("alice_acme@example.com").unwrap()]
                .into_iter()
                .collect::<BTreeSet<_>>(),
            token_secret: None,
            profiles: Default::default(),
            desk: Default::default(),
        },
    );
    CoreConfig {
        component: BareJid::new("chat.example.com").unwrap(),
        sites,
        roster: RosterConfig {
            mode: RosterMode::Off,
            ..Default::default()
        },
        admins: Default::default(),
        limits: Limits {
            messages_per_minute: 1_000_000,
            message_burst: 1_000_000,
            // The join benchmarks open rooms by the million.
            sessions: usize::MAX,
            sessions_per_site: usize::MAX,
            ..Limits::default()
        },
    }
}

fn stanza(xml: &str) -> Input {
    let end = xml.find([' ', '>', '/']).unwrap();
    let el: Element = format!(
        "{} xmlns='jabber:component:accept'{}",
        &xml[..end],
        &xml[end..]
    )
    .parse()
    .unwrap();
    Input::Stanza(xso::transform::<Stanza, _>(&el).unwrap())
}

fn join(i: usize) -> Input {
    stanza(&format!("<presence from='v{i}@anon.example.com/r' to='v{i}_acme@chat.example.com/Ann'><x xmlns='http://jabber.org/protocol/muc'/></presence>"))
}

fn leave(i: usize) -> Input {
    stanza(&format!("<presence type='unavailable' from='v{i}@anon.example.com/r' to='v{i}_acme@chat.example.com/Ann'/>"))
}

fn benches(c: &mut Criterion) {
    let now = Timestamp(1_795_000_000_000);
    let mut g = c.benchmark_group("core");
    g.throughput(Throughput::Elements(1));

    g.bench_function("visitor join (new room)", |b| {
        let mut core = Core::new(config(), Snapshot::default(), now);
        let mut i = 0usize;
        b.iter_batched(
            || {
                i += 1;
                join(i)
            },
            |input| core.handle(now, input),
            BatchSize::SmallInput,
        )
    });

    g.bench_function("groupchat message, visitor and staff in the room", |b| {
        let mut core = Core::new(config(), Snapshot::default(), now);
        core.handle(now, join(0));
        core.handle(now, stanza("<presence from='alice_acme@example.com/desk' to='v0_acme@chat.example.com/Alice'><x xmlns='http://jabber.org/protocol/muc'/></presence>"));
        let mut n = 0u64;
        b.iter_batched(
            || {
                n += 1;
                stanza(&format!("<message type='groupchat' from='v0@anon.example.com/r' to='v0_acme@chat.example.com' id='m{n}'><body>message number {n}</body></message>"))
            },
            |input| core.handle(now, input),
            BatchSize::SmallInput,
        )
    });

    g.bench_function("join then leave", |b| {
        let mut core = Core::new(config(), Snapshot::default(), now);
        let mut i = 0usize;
        b.iter_batched(
            || {
                i += 1;
                (join(i), leave(i))
            },
            |(j, l)| {
                core.handle(now, j);
                core.handle(now, l)
            },
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

criterion_group!(core_benches, benches);
criterion_main!(core_benches);
