//! `frontdesk stats`: the figures of `store::stats`, as text for humans or one JSON object.
//! Times are exact milliseconds in JSON, rounded down to seconds in text.

use std::io::Write;
use std::process::ExitCode;

use serde_json::{json, Value};

use super::CliError;
use crate::render::one_line;
use crate::store::stats::{self, percentile, Counts, Filter, Stats};
use crate::store::Store;

pub fn stats(store: &Store, f: Filter, as_json: bool) -> Result<ExitCode, CliError> {
    let s = stats::stats(store.conn(), &f)?;
    let mut out = std::io::stdout().lock();
    if as_json {
        writeln!(out, "{}", to_json(&f, &s))?;
    } else {
        write!(out, "{}", to_text(&f, &s))?;
    }
    Ok(ExitCode::SUCCESS)
}

fn counts_json(c: &Counts) -> Value {
    json!({ "chats": c.chats, "answered": c.answered, "missed": c.missed })
}

pub fn to_json(f: &Filter, s: &Stats) -> Value {
    let staff: Vec<Value> = s
        .staff
        .iter()
        .map(|(jid, st)| {
            json!({
                "staff": jid,
                "chats": st.chats,
                "first_replies": st.first_replies.len(),
                "first_reply_ms_p50": percentile(&st.first_replies, 50),
            })
        })
        .collect();
    let days: Vec<Value> = s
        .days
        .iter()
        .map(|(day, c)| {
            let mut v = counts_json(c);
            v["day"] = json!(day);
            v
        })
        .collect();
    let mut v = counts_json(&s.total);
    v["site"] = json!(f.site);
    v["since"] = json!(f.since);
    v["first_reply_ms"] = json!({
        "p50": percentile(&s.reply_ms, 50),
        "p90": percentile(&s.reply_ms, 90),
    });
    v["duration_ms"] = json!({ "p50": percentile(&s.duration_ms, 50) });
    v["staff"] = Value::Array(staff);
    v["days"] = Value::Array(days);
    v
}

/// `1 h 2 min`, `3 min 5 s`, `42 s`, or `-` when there is no figure.
pub fn span(ms: Option<i64>) -> String {
    let Some(ms) = ms else { return "-".into() };
    let s = ms.max(0) / 1000;
    match s {
        0..=59 => format!("{s} s"),
        60..=3599 => format!("{} min {} s", s / 60, s % 60),
        _ => format!("{} h {} min", s / 3600, (s % 3600) / 60),
    }
}

pub fn to_text(f: &Filter, s: &Stats) -> String {
    let site = f
        .site
        .as_deref()
        .map_or("all sites".into(), |x| format!("site {}", one_line(x)));
    let since = f
        .since
        .as_deref()
        .map_or("ever".into(), |d| format!("since {d}"));
    let t = &s.total;
    let mut lines = vec![
        format!("Chats on {site}, {since} (days are UTC days):"),
        format!(
            "chats {}, answered {}, missed {}, open and unanswered {}",
            t.chats,
            t.answered,
            t.missed,
            t.chats.saturating_sub(t.answered + t.missed)
        ),
        format!(
            "first staff reply: p50 {}, p90 {} ({} answered)",
            span(percentile(&s.reply_ms, 50)),
            span(percentile(&s.reply_ms, 90)),
            s.reply_ms.len()
        ),
        format!(
            "chat duration: p50 {} ({} closed)",
            span(percentile(&s.duration_ms, 50)),
            s.duration_ms.len()
        ),
    ];
    if !s.staff.is_empty() {
        lines.push(String::new());
        lines.push(format!(
            "{:<32}  {:>5}  {:>13}  {:>15}",
            "STAFF", "CHATS", "FIRST REPLIES", "FIRST REPLY P50"
        ));
        for (jid, st) in &s.staff {
            lines.push(format!(
                "{:<32}  {:>5}  {:>13}  {:>15}",
                one_line(jid),
                st.chats,
                st.first_replies.len(),
                span(percentile(&st.first_replies, 50))
            ));
        }
    }
    if !s.days.is_empty() {
        lines.push(String::new());
        lines.push(format!(
            "{:<10}  {:>5}  {:>8}  {:>6}",
            "DAY", "CHATS", "ANSWERED", "MISSED"
        ));
        for (day, c) in &s.days {
            lines.push(format!(
                "{:<10}  {:>5}  {:>8}  {:>6}",
                one_line(day),
                c.chats,
                c.answered,
                c.missed
            ));
        }
    }
    lines.push(String::new());
    lines.join("\n")
}
