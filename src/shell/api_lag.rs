//! How far behind the admin API calls are. The calls go out one at a time, in order; when the
//! server cannot keep up, staff see visitors late and nothing else says so. This turns the lag
//! into a warning that says what to change, at most once per `EVERY`.

use std::time::{Duration, Instant};

use crate::config::RosterVisitors;

/// A call that waited this long before it was made is late enough to warn about.
pub const LATE: Duration = Duration::from_secs(30);
/// At most one warning in this long.
pub const EVERY: Duration = Duration::from_secs(300);

#[derive(Debug, Default)]
pub struct ApiLag {
    warned: Option<Instant>,
}

impl ApiLag {
    /// A call queued at `queued` is being made at `now`, with `waiting` more behind it.
    /// Returns the warning to log, if one is due.
    pub fn observe(
        &mut self,
        now: Instant,
        queued: Instant,
        waiting: usize,
        visitors: RosterVisitors,
    ) -> Option<String> {
        let lag = now.saturating_duration_since(queued);
        if lag < LATE || self.warned.is_some_and(|w| now.duration_since(w) < EVERY) {
            return None;
        }
        self.warned = Some(now);
        let what = match visitors {
            RosterVisitors::All => "with [roster] visitors = \"all\" every visitor, even one who only browses, costs two roster writes per staff member of the site: set visitors = \"waiting\" so that only visitors who write become contacts",
            RosterVisitors::Waiting => "ejabberd cannot keep up with the roster writes even for waiting visitors: give it more CPU, or fewer staff per site",
        };
        Some(format!(
            "roster writes through ejabberd's admin API are {} s behind ({waiting} more waiting), so staff see visitors late; {what} (docs/operations.md, capacity)",
            lag.as_secs()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warns_when_late_then_not_again_for_a_while() {
        let t0 = Instant::now();
        let mut l = ApiLag::default();
        let at = |s: u64| t0 + Duration::from_secs(s);
        assert_eq!(l.observe(at(29), t0, 5, RosterVisitors::All), None);
        let w = l
            .observe(at(31), t0, 7, RosterVisitors::All)
            .unwrap_or_default();
        assert!(w.contains("31 s behind (7 more waiting)"), "{w}");
        assert!(w.contains("visitors = \"waiting\""), "{w}");
        assert_eq!(l.observe(at(40), t0, 7, RosterVisitors::All), None);
        let again = l.observe(at(31 + 300), at(31 + 250), 1, RosterVisitors::Waiting);
        assert!(again.is_some_and(|w| w.contains("more CPU")));
    }
}
