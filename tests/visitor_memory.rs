//! Issue 21's memory target: at most 4 KiB of heap per present idle visitor with 20 staff,
//! roster state included, once the roster writes are answered, under both `[roster] visitors`
//! policies and both ways of writing rosters. And while the server has not answered yet: at
//! most 6 KiB with the admin API (its calls waiting in the shell included; 19,028 B before
//! round 7d), and at most 4 KiB held by the core with either rung (8,336 and 8,796 B before). Counted by a global allocator (allocated bytes,
//! not RSS), so the figure is the same on every run; one test in this binary, so nothing
//! else allocates meanwhile. The figures per step are in docs/benchmark-notes.md.

// The example uses more of it than this test does.
#[allow(dead_code)]
#[path = "../examples/visitor_memory/harness.rs"]
mod harness;

use frontdesk::config::RosterVisitors;
use harness::{run, Counting, Way};

#[global_allocator]
static ALLOC: Counting = Counting;

const VISITORS: usize = 1_000;
const TARGET: isize = 4_096;
const QUEUED_API: isize = 6_144;
const QUEUED_IN_CORE: isize = 4_096;

#[test]
fn a_present_idle_visitor_costs_at_most_4_kib_with_20_staff() {
    for (way, policy) in [
        (Way::Api, RosterVisitors::All),
        (Way::Api, RosterVisitors::Waiting),
        (Way::Privilege, RosterVisitors::All),
        (Way::Privilege, RosterVisitors::Waiting),
    ] {
        let f = run(way, policy, VISITORS);
        let per = f.steady / VISITORS as isize;
        eprintln!(
            "{way:?} {policy:?}: {per} B per visitor, {} writes",
            f.writes
        );
        assert!(
            per <= TARGET,
            "{way:?} {policy:?}: {per} B per present visitor (target {TARGET})"
        );
        let (queued, in_core) = (
            f.queued / VISITORS as isize,
            (f.queued - f.queue) / VISITORS as isize,
        );
        eprintln!("  writes queued: {queued} B per visitor, {in_core} B of it in the core");
        assert!(
            in_core <= QUEUED_IN_CORE,
            "{way:?} {policy:?}: the core holds {in_core} B per visitor while its roster writes are unanswered (bound {QUEUED_IN_CORE})"
        );
        if matches!(way, Way::Api) {
            assert!(
                queued <= QUEUED_API,
                "{way:?} {policy:?}: {queued} B per visitor while its admin API calls are unanswered (bound {QUEUED_API})"
            );
        }
        let expected = if matches!(policy, RosterVisitors::All) {
            20 * VISITORS
        } else {
            0
        };
        assert_eq!(f.writes, expected, "{way:?} {policy:?}: roster writes made");
    }
}
