//! A site's opening hours: `hours = ["mon-fri 09:00-17:00", "sat 10:00-13:00"]` in the site's
//! `timezone` (an IANA name). Outside them visitors are told when the desk opens; chats still
//! open and reach whoever is available.

use chrono::{Datelike, Duration, NaiveDate, TimeZone, Timelike, Weekday};
use chrono_tz::Tz;

use crate::time::Timestamp;

const DAYS: [(&str, Weekday); 7] = [
    ("mon", Weekday::Mon),
    ("tue", Weekday::Tue),
    ("wed", Weekday::Wed),
    ("thu", Weekday::Thu),
    ("fri", Weekday::Fri),
    ("sat", Weekday::Sat),
    ("sun", Weekday::Sun),
];

/// One opening: a weekday, and minutes after local midnight it opens and closes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Opening {
    pub day: Weekday,
    pub from: u32,
    pub to: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpeningHours {
    pub tz: Tz,
    pub openings: Vec<Opening>,
}

fn day(s: &str) -> Option<Weekday> {
    DAYS.iter().find(|(n, _)| *n == s).map(|(_, d)| *d)
}

/// `HH:MM` (00:00 to 24:00) in minutes.
fn minutes(s: &str) -> Option<u32> {
    let (h, m) = s.split_once(':')?;
    if h.len() != 2 || m.len() != 2 {
        return None;
    }
    let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
    (h < 24 && m < 60 || h == 24 && m == 0).then_some(h * 60 + m)
}

/// One entry, e.g. `mon-fri 09:00-17:00` or `sat,sun 10:00-13:00`.
pub fn parse_entry(s: &str) -> Result<Vec<Opening>, String> {
    let bad =
        || format!("{s:?} must look like \"mon-fri 09:00-17:00\" (days mon..sun, 24-hour times)");
    let (days, times) = s.trim().split_once(' ').ok_or_else(bad)?;
    let (from, to) = times.trim().split_once('-').ok_or_else(bad)?;
    let (from, to) = (minutes(from).ok_or_else(bad)?, minutes(to).ok_or_else(bad)?);
    if to <= from {
        return Err(format!(
            "{s:?}: the closing time must be after the opening time (split a range over midnight in two)"
        ));
    }
    let mut out = Vec::new();
    for part in days.split(',') {
        let days: Vec<Weekday> = match part.split_once('-') {
            None => vec![day(part).ok_or_else(bad)?],
            Some((a, b)) => {
                let (mut d, last) = (day(a).ok_or_else(bad)?, day(b).ok_or_else(bad)?);
                let mut v = vec![d];
                while d != last {
                    d = d.succ();
                    v.push(d);
                }
                v
            }
        };
        out.extend(days.into_iter().map(|day| Opening { day, from, to }));
    }
    Ok(out)
}

impl OpeningHours {
    fn local(&self, now: Timestamp) -> Option<chrono::DateTime<Tz>> {
        Some(chrono::DateTime::from_timestamp_millis(now.millis())?.with_timezone(&self.tz))
    }

    pub fn open_at(&self, now: Timestamp) -> bool {
        let Some(t) = self.local(now) else {
            return true;
        };
        let m = t.hour() * 60 + t.minute();
        self.openings
            .iter()
            .any(|o| o.day == t.weekday() && o.from <= m && m < o.to)
    }

    /// When the desk next opens after `now`, for a visitor: "today at 09:00", "tomorrow at
    /// 09:00", "on Monday at 09:00".
    pub fn next_opening(&self, now: Timestamp) -> Option<String> {
        let t = self.local(now)?;
        let today = t.date_naive();
        for ahead in 0..8i64 {
            let date = today + Duration::days(ahead);
            let mut opens: Vec<&Opening> = self
                .openings
                .iter()
                .filter(|o| o.day == date.weekday())
                .collect();
            opens.sort_by_key(|o| o.from);
            for o in opens {
                let Some(at) = self.at(date, o.from) else {
                    continue;
                };
                if at > t {
                    let when = match ahead {
                        0 => "today".to_string(),
                        1 => "tomorrow".to_string(),
                        _ => format!("on {}", day_name(date.weekday())),
                    };
                    return Some(format!("{when} at {:02}:{:02}", at.hour(), at.minute()));
                }
            }
        }
        None
    }

    /// Local `minutes` after midnight of `date`; a time the clocks skip (a DST change) is
    /// taken as the first time after it.
    fn at(&self, date: NaiveDate, minutes: u32) -> Option<chrono::DateTime<Tz>> {
        let naive = date.and_hms_opt(0, 0, 0)? + Duration::minutes(i64::from(minutes));
        let local = self.tz.from_local_datetime(&naive);
        local.earliest().or_else(|| {
            self.tz
                .from_local_datetime(&(naive + Duration::hours(1)))
                .earliest()
        })
    }
}

fn day_name(d: Weekday) -> &'static str {
    match d {
        Weekday::Mon => "Monday",
        Weekday::Tue => "Tuesday",
        Weekday::Wed => "Wednesday",
        Weekday::Thu => "Thursday",
        Weekday::Fri => "Friday",
        Weekday::Sat => "Saturday",
        Weekday::Sun => "Sunday",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn oslo(entries: &[&str]) -> OpeningHours {
        OpeningHours {
            tz: "Europe/Oslo".parse().unwrap(),
            openings: entries
                .iter()
                .flat_map(|e| parse_entry(e).unwrap())
                .collect(),
        }
    }

    fn at(s: &str) -> Timestamp {
        Timestamp::parse_rfc3339(s).unwrap()
    }

    #[test]
    fn entries_parse_and_bad_ones_say_why() {
        assert_eq!(parse_entry("mon-fri 09:00-17:00").unwrap().len(), 5);
        assert_eq!(parse_entry("sat,sun 10:00-13:00").unwrap().len(), 2);
        assert_eq!(parse_entry("fri-mon 10:00-24:00").unwrap().len(), 4);
        for bad in [
            "monday 09:00-17:00",
            "mon 9:00-17:00",
            "mon 09:00-25:00",
            "mon 09:00",
            "mon-fri",
        ] {
            assert!(
                parse_entry(bad).unwrap_err().contains("must look like"),
                "{bad}"
            );
        }
        assert!(parse_entry("mon 22:00-02:00")
            .unwrap_err()
            .contains("over midnight"));
    }

    /// Europe/Oslo moves from UTC+1 to UTC+2 on 2026-03-29 at 02:00 local.
    #[test]
    fn hours_follow_the_local_clock_across_a_dst_change() {
        let h = oslo(&["mon-fri 09:00-17:00"]);
        // Friday before: 09:30 local is 08:30 UTC.
        assert!(h.open_at(at("2026-03-27T08:30:00Z")));
        assert!(!h.open_at(at("2026-03-27T07:30:00Z")));
        // Monday after: 09:30 local is 07:30 UTC.
        assert!(h.open_at(at("2026-03-30T07:30:00Z")));
        assert!(!h.open_at(at("2026-03-30T06:30:00Z")));
        assert!(!h.open_at(at("2026-03-28T12:00:00Z")), "closed on Saturday");
        assert_eq!(
            h.next_opening(at("2026-03-28T17:00:00Z")).as_deref(),
            Some("on Monday at 09:00")
        );
        assert_eq!(
            h.next_opening(at("2026-03-29T20:00:00Z")).as_deref(),
            Some("tomorrow at 09:00")
        );
        assert_eq!(
            h.next_opening(at("2026-03-30T05:00:00Z")).as_deref(),
            Some("today at 09:00")
        );
        assert_eq!(
            h.next_opening(at("2026-03-30T16:00:00Z")).as_deref(),
            Some("tomorrow at 09:00")
        );
    }

    #[test]
    fn an_opening_the_clocks_skip_starts_when_the_clocks_resume() {
        let h = oslo(&["sun 02:30-04:00"]);
        // 2026-03-29 02:30 does not exist in Oslo: it opens at 03:30 (01:30 UTC).
        assert_eq!(
            h.next_opening(at("2026-03-28T12:00:00Z")).as_deref(),
            Some("tomorrow at 03:30")
        );
        assert!(h.open_at(at("2026-03-29T01:45:00Z")));
    }
}
