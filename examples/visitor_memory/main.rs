//! Heap bytes frontdesk holds per present idle visitor (issue 21's memory target), counted by a
//! global allocator, so the figures do not depend on the machine's noise or on glibc's arenas.
//!
//! Drives the real `Core`: S staff online, N visitors each in a room of their own, INACTIVE,
//! with the roster written by ejabberd's admin API or by XEP-0356, under both `[roster]
//! visitors` policies. Prints the live heap per visitor with the roster writes still queued
//! (the core's calls in flight plus the `ApiCall`s or IQs the shell would still hold) and
//! after the server answered them all (steady state).
//!
//! `cargo run --release --example visitor_memory [N...]` (default 1000 10000); the harness is
//! in harness.rs, which tests/visitor_memory.rs shares.

mod harness;

use frontdesk::config::RosterVisitors;
use harness::{run, Counting, Way, STAFF};

#[global_allocator]
static ALLOC: Counting = Counting;

fn main() {
    let ns: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let ns = if ns.is_empty() {
        vec![1_000, 10_000]
    } else {
        ns
    };
    println!("{STAFF} staff online; bytes of live heap per present idle visitor");
    println!("| roster | visitors | N | writes queued | of which the queue | steady (writes answered) | roster writes |");
    println!("|---|---|---:|---:|---:|---:|---:|");
    for &n in &ns {
        for (way, policy) in [
            (Way::Off, RosterVisitors::All),
            (Way::Api, RosterVisitors::All),
            (Way::Api, RosterVisitors::Waiting),
            (Way::Privilege, RosterVisitors::All),
            (Way::Privilege, RosterVisitors::Waiting),
        ] {
            let f = run(way, policy, n);
            let per = |b: isize| b / n as isize;
            println!(
                "| {way:?} | {policy:?} | {n} | {} | {} | {} | {} |",
                per(f.queued),
                per(f.queue),
                per(f.steady),
                f.writes
            );
        }
    }
}
