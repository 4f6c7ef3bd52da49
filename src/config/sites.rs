//! The `[[sites]]` checker: each site's id, name, staff and token secret, and no id twice.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use toml::{Table, Value};
use xmpp_parsers::jid::BareJid;

use super::read::{Checker, InlineOrFile};
use super::{Site, StaffProfile, MIN_TOKEN_SECRET};
use crate::address::SiteId;
use crate::token::TokenSecret;

impl Checker {
    /// `[[sites]]`: at least one, ids unique. `component` is the component's domain when it
    /// was valid (staff cannot be on it).
    pub(super) fn sites(
        &mut self,
        root: &Table,
        base: &Path,
        component: Option<&BareJid>,
    ) -> Option<Vec<Site>> {
        let arr = match root.get("sites") {
            Some(Value::Array(a)) if !a.is_empty() => a,
            Some(Value::Array(_)) | None => {
                self.problem(
                    "sites",
                    "no sites: add at least one [[sites]] with id, name and staff",
                );
                return None;
            }
            Some(_) => {
                self.problem("sites", "must be an array of tables: [[sites]]");
                return None;
            }
        };
        let mut sites = Vec::new();
        let mut seen = BTreeSet::new();
        let mut ok = true;
        for (i, v) in arr.iter().enumerate() {
            let prefix = format!("sites[{i}]");
            let Value::Table(t) = v else {
                self.problem(prefix, "must be a table");
                ok = false;
                continue;
            };
            match self.site(t, &prefix, base, component) {
                Some(site) => {
                    if !seen.insert(site.id.clone()) {
                        self.problem(
                            format!("{prefix}.id"),
                            format!("site {:?} is listed twice", site.id.as_str()),
                        );
                        ok = false;
                    }
                    sites.push(site);
                }
                None => ok = false,
            }
        }
        ok.then_some(sites)
    }

    fn site(
        &mut self,
        t: &Table,
        prefix: &str,
        base: &Path,
        component: Option<&BareJid>,
    ) -> Option<Site> {
        self.unknown_keys(
            t,
            prefix,
            &[
                "id",
                "name",
                "staff",
                "token_secret",
                "token_secret_file",
                "max_chats_per_staff",
                "routing",
                "offer_timeout_secs",
                "canned",
                "hours",
                "timezone",
                "prechat",
            ],
        );
        let token_secret = self.token_secret(t, prefix, base);
        let id = self.string(t, prefix, "id", true).and_then(|s| match SiteId::new(&s) {
            Ok(id) => Some(id),
            Err(_) => {
                self.problem(
                    format!("{prefix}.id"),
                    format!("{s:?} must use only a-z, 0-9 and '-' (rooms are <visitor>_<site>, so never '_')"),
                );
                None
            }
        });
        let name = self.string(t, prefix, "name", false);
        let mut profiles = BTreeMap::new();
        let staff = self.accounts(t, prefix, "staff", component, Some(&mut profiles));
        let desk = self.desk(t, prefix);
        let id = id?;
        Some(Site {
            name: name.unwrap_or_else(|| id.as_str().to_string()),
            id,
            staff: staff?,
            profiles,
            desk: desk?,
            token_secret: token_secret?,
        })
    }

    /// A list of accounts (bare JIDs) under `key`: the admins, or a site's staff, none twice.
    /// With `profiles`, an entry may also be a table with `jid` and a staff profile. A bad
    /// entry is reported and left out; only a list that is not an array makes it unusable.
    pub(super) fn accounts(
        &mut self,
        t: &Table,
        prefix: &str,
        key: &str,
        component: Option<&BareJid>,
        profiles: Option<&mut BTreeMap<BareJid, StaffProfile>>,
    ) -> Option<Vec<BareJid>> {
        let staff_key = if prefix.is_empty() {
            key.to_string()
        } else {
            format!("{prefix}.{key}")
        };
        let a = match t.get(key) {
            None => return Some(Vec::new()),
            Some(Value::Array(a)) => a,
            Some(_) => {
                self.problem(staff_key, "must be an array of bare JIDs");
                return None;
            }
        };
        let mut out = Vec::new();
        let mut dup = BTreeMap::new();
        let mut found = BTreeMap::new();
        for (j, v) in a.iter().enumerate() {
            let key = format!("{staff_key}[{j}]");
            let Some((s, profile, jid_key)) = self.account_entry(v, &key, profiles.is_some())
            else {
                continue;
            };
            match BareJid::new(s) {
                Ok(jid) if jid.node().is_some() => {
                    if component.is_some_and(|c| c.domain() == jid.domain()) {
                        self.problem(jid_key, format!("{s:?} is on the component's own domain; staff are accounts on the XMPP server"));
                    } else if dup.insert(jid.clone(), j).is_some() {
                        self.problem(jid_key, format!("{s:?} is listed twice"));
                    } else {
                        if let Some(p) = profile {
                            found.insert(jid.clone(), p);
                        }
                        out.push(jid);
                    }
                }
                _ => self.problem(
                    jid_key,
                    format!(
                        "{s:?} must be a bare JID such as \"alice_acme@example.com\" (no resource)"
                    ),
                ),
            }
        }
        if let Some(p) = profiles {
            p.extend(found);
        }
        Some(out)
    }

    /// One entry of an accounts list at `key`: its JID text, its staff profile if it is a
    /// table (allowed only with `tables`), and the key to name its JID by.
    fn account_entry<'v>(
        &mut self,
        v: &'v Value,
        key: &str,
        tables: bool,
    ) -> Option<(&'v str, Option<StaffProfile>, String)> {
        match (v, tables) {
            (Value::String(s), _) => Some((s.as_str(), None, key.to_string())),
            (Value::Table(tb), true) => {
                let profile = self.staff_profile(tb, key);
                self.string(tb, key, "jid", true)?;
                let s = tb.get("jid").and_then(Value::as_str).unwrap_or("");
                Some((s, Some(profile), format!("{key}.jid")))
            }
            (_, true) => {
                self.problem(key, "must be a bare JID string, or a table such as { jid = \"bob@example.com\", name = \"Bob\" }");
                None
            }
            (_, false) => {
                self.problem(key, "must be a string (a bare JID)");
                None
            }
        }
    }

    /// `token_secret` or `token_secret_file` (read now, so check-config finds a bad one).
    fn token_secret(
        &mut self,
        t: &Table,
        prefix: &str,
        base: &Path,
    ) -> Option<Option<TokenSecret>> {
        let (key, text) =
            match self.inline_or_file(t, prefix, "token_secret", "token_secret", base)? {
                None => return Some(None),
                Some(InlineOrFile::Inline(s)) => (format!("{prefix}.token_secret"), s),
                Some(InlineOrFile::File(path)) => {
                    let key = format!("{prefix}.token_secret_file");
                    self.secret_files.push((key.clone(), path.clone()));
                    match std::fs::read_to_string(&path) {
                        Ok(text) => (key, text.trim_end_matches(['\n', '\r']).to_string()),
                        Err(e) => {
                            self.problem(key, format!("cannot read {}: {e}", path.display()));
                            return None;
                        }
                    }
                }
            };
        if text.len() < MIN_TOKEN_SECRET {
            self.problem(
                key,
                format!("must be at least {MIN_TOKEN_SECRET} bytes (e.g. the output of `openssl rand -hex 32`): a short secret can be guessed"),
            );
            return None;
        }
        Some(Some(TokenSecret::new(text.into_bytes())))
    }
}
