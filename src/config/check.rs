//! The checkers of the whole file and of its sections `[component]`, `[store]`, `[roster]` and
//! `[limits]`; `[[sites]]` is in `sites`.

use std::ops::RangeInclusive;
use std::path::Path;

use toml::{Table, Value};
use xmpp_parsers::jid::BareJid;

use super::read::{Checker, InlineOrFile};
use super::{
    ComponentConfig, Config, HttpUrl, Limits, MetricsConfig, RosterConfig, RosterMode,
    RosterVisitors, SecretSource, StoreConfig, DEFAULT_CHECK_STAFF_SECS, DEFAULT_REMOVE_AFTER_SECS,
};
use crate::store::Durability;

/// One key of `[limits]`: its name (the field's), the values it accepts, and how to read and
/// write its field of `Limits`. The defaults are `Limits::default()`.
struct LimitKey {
    key: &'static str,
    range: RangeInclusive<i64>,
    get: fn(&Limits) -> i64,
    set: fn(&mut Limits, i64),
}

/// A `LimitKey` for a field of `Limits`, named after it, so a key cannot write another field.
macro_rules! limit {
    ($field:ident, $range:expr) => {
        LimitKey {
            key: stringify!($field),
            range: $range,
            get: |l| i64::try_from(l.$field).unwrap_or(i64::MAX),
            // The value was checked against the key's range, which fits the field; a value
            // that did not fit would leave the default rather than panic on a file's contents.
            set: |l, n| {
                if let Ok(v) = n.try_into() {
                    l.$field = v;
                }
            },
        }
    };
}

const U32_MAX: i64 = u32::MAX as i64;

/// Every key of `[limits]`, in the order `unknown key` messages list them. `stanza_bytes` also
/// has `MIN_STANZA_BYTES`, checked after the others with its own message.
static LIMIT_KEYS: &[LimitKey] = &[
    limit!(stanza_bytes, 1..=U32_MAX),
    limit!(depth, 1..=U32_MAX),
    limit!(children, 1..=U32_MAX),
    limit!(body_chars, 1..=U32_MAX),
    limit!(nick_chars, 1..=U32_MAX),
    limit!(rooms_per_visitor, 1..=U32_MAX),
    limit!(sessions, 1..=U32_MAX),
    limit!(sessions_per_site, 1..=U32_MAX),
    limit!(messages_per_minute, 1..=U32_MAX),
    limit!(message_burst, 1..=U32_MAX),
    limit!(joins_per_minute, 1..=U32_MAX),
    limit!(join_burst, 1..=U32_MAX),
    limit!(presence_per_minute, 1..=U32_MAX),
    limit!(presence_burst, 1..=U32_MAX),
    limit!(status_chars, 1..=U32_MAX),
    limit!(history_bytes, 1..=U32_MAX),
];

/// Smallest `[limits] stanza_bytes`: joins and ordinary messages need that much.
const MIN_STANZA_BYTES: usize = 4096;

impl Checker {
    /// The whole file; `None` if anything is wrong (then `problems` says what).
    pub(super) fn config(&mut self, root: &Table, path: &Path, base: &Path) -> Option<Config> {
        self.unknown_keys(
            root,
            "",
            &[
                "component",
                "store",
                "roster",
                "limits",
                "log",
                "sites",
                "admins",
                "metrics",
            ],
        );
        let component = self.component(root, base);
        let store = self.store(root, base);
        let roster = self.roster(root);
        let limits = self.limits(root);
        let log = self.log(root);
        let sites = self.sites(root, base, component.as_ref().map(|c| &c.jid));
        let admins = self.accounts(root, "", "admins", component.as_ref().map(|c| &c.jid), None);
        let metrics = self.metrics(root);
        Some(Config {
            path: path.to_path_buf(),
            component: component?,
            store: store?,
            roster: roster?,
            limits: limits?,
            log: log?,
            sites: sites?,
            admins: admins?,
            secret_files: std::mem::take(&mut self.secret_files),
            metrics: metrics?,
        })
    }

    fn component(&mut self, root: &Table, base: &Path) -> Option<ComponentConfig> {
        let t = self.table(root, "component")?;
        self.unknown_keys(t, "component", &["jid", "server", "secret", "secret_file"]);
        let jid = self.string(t, "component", "jid", true).and_then(|s| {
            match BareJid::new(&s) {
                Ok(j) if j.node().is_none() => Some(j),
                _ => {
                    self.problem(
                        "component.jid",
                        format!("{s:?} must be a plain domain such as \"chat.example.com\" (no '@' or '/')"),
                    );
                    None
                }
            }
        });
        let server = self.string(t, "component", "server", true).and_then(|s| {
            match s.rsplit_once(':').map(|(h, p)| (h, p.parse::<u16>())) {
                Some((h, Ok(p))) if !h.is_empty() && p != 0 => Some(s),
                _ => {
                    self.problem(
                        "component.server",
                        format!("{s:?} must be host:port of the server's component listener, e.g. \"127.0.0.1:5347\""),
                    );
                    None
                }
            }
        });
        let secret = self.component_secret(t, base);
        Some(ComponentConfig {
            jid: jid?,
            server: server?,
            secret: secret?,
        })
    }

    /// `secret` or `secret_file`. The file is read (and its absence reported) only when the
    /// secret is needed, so that `FRONTDESK_SECRET` can stand in for it as documented.
    fn component_secret(&mut self, t: &Table, base: &Path) -> Option<SecretSource> {
        // `secret = ""` is what a template leaves for FRONTDESK_SECRET: the same as no key.
        if matches!(t.get("secret"), Some(Value::String(s)) if s.trim().is_empty()) {
            let mut rest = t.clone();
            rest.remove("secret");
            return self.component_secret(&rest, base);
        }
        match self.inline_or_file(t, "component", "secret", "component.secret", base)? {
            Some(InlineOrFile::Inline(s)) => Some(SecretSource::Inline(s)),
            Some(InlineOrFile::File(p)) => {
                self.secret_files
                    .push(("component.secret_file".into(), p.clone()));
                Some(SecretSource::File(p))
            }
            // Allowed: FRONTDESK_SECRET may supply it; `run` says so if it does not.
            None => Some(SecretSource::Unset),
        }
    }

    fn store(&mut self, root: &Table, base: &Path) -> Option<StoreConfig> {
        let t = self.table(root, "store")?;
        self.unknown_keys(t, "store", &["path", "synchronous", "retain_days"]);
        let path = self.string(t, "store", "path", true);
        let synchronous = match self.string(t, "store", "synchronous", false).as_deref() {
            None => Some(Durability::default()),
            Some("normal") => Some(Durability::Normal),
            Some("full") => Some(Durability::Full),
            Some(other) => {
                self.problem(
                    "store.synchronous",
                    format!("{other:?} must be \"normal\" (a commit survives frontdesk crashing) or \"full\" (it also survives the machine losing power; each commit waits for the disk)"),
                );
                None
            }
        };
        // 0 is the default: keep everything.
        let retain = self.int_in(
            t,
            "store",
            "retain_days",
            0..=36_500,
            0,
            "must be a whole number of days from 1 to 36500, or 0 (the default) to keep every closed session",
        );
        Some(StoreConfig {
            path: base.join(path?),
            synchronous: synchronous?,
            retain_days: u32::try_from(retain?).ok().filter(|d| *d > 0),
        })
    }

    /// `[roster]`'s `remove_after_secs` and `check_staff_secs`; false if either is bad.
    fn roster_timings(&mut self, t: &Table, r: &mut RosterConfig) -> bool {
        let remove = self.int_in(
            t,
            "roster",
            "remove_after_secs",
            0..=i64::MAX,
            DEFAULT_REMOVE_AFTER_SECS as i64,
            "must be a whole number of seconds, 0 or more",
        );
        let check = self.int_in(
            t,
            "roster",
            "check_staff_secs",
            5..=86_400,
            DEFAULT_CHECK_STAFF_SECS as i64,
            "must be a whole number of seconds from 5 to 86400",
        );
        // Both at least 0, so the casts keep them.
        if let Some(n) = remove {
            r.remove_after_secs = n as u64;
        }
        if let Some(n) = check {
            r.check_staff_secs = n as u64;
        }
        remove.is_some() && check.is_some()
    }

    fn roster(&mut self, root: &Table) -> Option<RosterConfig> {
        let Some(t) = self.optional_table(root, "roster")? else {
            return Some(RosterConfig::default());
        };
        self.unknown_keys(
            t,
            "roster",
            &[
                "mode",
                "ejabberd_api",
                "remove_after_secs",
                "check_staff_secs",
                "visitors",
            ],
        );
        let mut r = RosterConfig::default();
        let mut ok = true;
        if let Some(m) = self.string(t, "roster", "mode", false) {
            match RosterMode::parse(&m) {
                Some(mode) => r.mode = mode,
                None => {
                    self.problem(
                        "roster.mode",
                        format!("{m:?} is not one of {}", RosterMode::WORDS.join(", ")),
                    );
                    ok = false;
                }
            }
        }
        if let Some(u) = self.string(t, "roster", "ejabberd_api", false) {
            match HttpUrl::parse(&u) {
                Ok(url) => r.ejabberd_api = Some(url),
                Err(e) => {
                    self.problem("roster.ejabberd_api", e);
                    ok = false;
                }
            }
        }
        if let Some(v) = self.string(t, "roster", "visitors", false) {
            match RosterVisitors::parse(&v) {
                Some(visitors) => r.visitors = visitors,
                None => {
                    self.problem(
                        "roster.visitors",
                        format!("{v:?} is not one of {}", RosterVisitors::WORDS.join(", ")),
                    );
                    ok = false;
                }
            }
        }
        ok &= self.roster_timings(t, &mut r);
        if r.mode == RosterMode::EjabberdApi && r.ejabberd_api.is_none() {
            self.problem(
                "roster.ejabberd_api",
                "missing: mode = \"ejabberd-api\" needs the API's URL, e.g. \"http://127.0.0.1:5280/api\"",
            );
            ok = false;
        }
        ok.then_some(r)
    }

    fn metrics(&mut self, root: &Table) -> Option<MetricsConfig> {
        let Some(t) = self.optional_table(root, "metrics")? else {
            return Some(MetricsConfig::default());
        };
        self.unknown_keys(t, "metrics", &["listen"]);
        let Some(s) = self.string(t, "metrics", "listen", false) else {
            return Some(MetricsConfig::default());
        };
        match s.parse::<std::net::SocketAddr>() {
            Ok(a) if a.port() != 0 => Some(MetricsConfig { listen: Some(a) }),
            _ => {
                self.problem(
                    "metrics.listen",
                    format!("{s:?} must be an IP address and port, e.g. \"127.0.0.1:9105\" (keep it on loopback or a private network: the endpoint has no authentication)"),
                );
                None
            }
        }
    }

    fn limits(&mut self, root: &Table) -> Option<Limits> {
        let Some(t) = self.optional_table(root, "limits")? else {
            return Some(Limits::default());
        };
        let known: Vec<&str> = LIMIT_KEYS.iter().map(|k| k.key).collect();
        self.unknown_keys(t, "limits", &known);
        let mut l = Limits::default();
        let mut ok = true;
        for k in LIMIT_KEYS {
            let message = format!(
                "must be a whole number from {} to {}",
                k.range.start(),
                k.range.end()
            );
            let default = (k.get)(&l);
            match self.int_in(t, "limits", k.key, k.range.clone(), default, &message) {
                Some(n) => (k.set)(&mut l, n),
                None => ok = false,
            }
        }
        if l.stanza_bytes < MIN_STANZA_BYTES {
            self.problem(
                "limits.stanza_bytes",
                format!("must be at least {MIN_STANZA_BYTES}: joins and ordinary messages need that much"),
            );
            ok = false;
        }
        ok.then_some(l)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each key writes its own field and no other, and together the keys cover every field.
    #[test]
    fn each_limit_key_sets_exactly_its_own_field() {
        let default = Limits::default();
        let value = |i: usize| 1_000 + i as i64;
        for (i, k) in LIMIT_KEYS.iter().enumerate() {
            let mut l = default;
            (k.set)(&mut l, value(i));
            for (j, other) in LIMIT_KEYS.iter().enumerate() {
                let want = if i == j {
                    value(i)
                } else {
                    (other.get)(&default)
                };
                let (got, key, other) = ((other.get)(&l), k.key, other.key);
                assert_eq!(got, want, "{other} after setting only {key}");
            }
            for n in [*k.range.start(), *k.range.end()] {
                let mut l = default;
                (k.set)(&mut l, n);
                assert_eq!((k.get)(&l), n, "{} does not hold {n}", k.key);
            }
        }
        let mut l = default;
        for (i, k) in LIMIT_KEYS.iter().enumerate() {
            (k.set)(&mut l, value(i));
        }
        // Exhaustive, so a new field fails to compile here until it has a key.
        let Limits {
            stanza_bytes,
            depth,
            children,
            body_chars,
            nick_chars,
            rooms_per_visitor,
            sessions,
            sessions_per_site,
            messages_per_minute,
            message_burst,
            joins_per_minute,
            join_burst,
            presence_per_minute,
            presence_burst,
            status_chars,
            history_bytes,
        } = l;
        let mut fields = vec![
            stanza_bytes,
            depth,
            children,
            body_chars,
            nick_chars,
            rooms_per_visitor,
            sessions,
            sessions_per_site,
            messages_per_minute as usize,
            message_burst as usize,
            joins_per_minute as usize,
            join_burst as usize,
            presence_per_minute as usize,
            presence_burst as usize,
            status_chars,
            history_bytes,
        ];
        fields.sort_unstable();
        let want: Vec<usize> = (0..LIMIT_KEYS.len()).map(|i| value(i) as usize).collect();
        assert_eq!(fields, want, "every field set by exactly one key");
    }

    #[test]
    fn limits_are_parsed_through_the_table() {
        let mut text = String::from("stanza_bytes = 5000\n");
        for (i, k) in LIMIT_KEYS.iter().enumerate().skip(1) {
            text += &format!("{} = {}\n", k.key, i + 1);
        }
        let root: Table = format!("[limits]\n{text}").parse().unwrap();
        let mut c = Checker::default();
        let l = c.limits(&root).unwrap();
        assert!(c.problems.is_empty(), "{:?}", c.problems);
        let want = Limits {
            stanza_bytes: 5000,
            depth: 2,
            children: 3,
            body_chars: 4,
            nick_chars: 5,
            rooms_per_visitor: 6,
            sessions: 7,
            sessions_per_site: 8,
            messages_per_minute: 9,
            message_burst: 10,
            joins_per_minute: 11,
            join_burst: 12,
            presence_per_minute: 13,
            presence_burst: 14,
            status_chars: 15,
            history_bytes: 16,
        };
        assert_eq!(l, want);
    }
}
