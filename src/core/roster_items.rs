//! The items frontdesk has put into staff rosters (mirrors the `roster_items` table).
//!
//! With `[roster] visitors = "all"` every present visitor is a contact of every staff member of
//! its site, so a set of (staff, contact) pairs repeats both addresses once per item. Here each
//! contact is kept once, with the numbers of the staff who have it; staff are numbered once.

use std::collections::BTreeMap;
use std::sync::Arc;

use xmpp_parsers::jid::BareJid;

#[derive(Debug, Default)]
pub struct RosterItems {
    /// Staff by number; numbers are never reused, so the table only grows with staff ever
    /// configured or restored from the store (a handful), never with visitors. Shared with
    /// the admin API calls waiting for ejabberd.
    staff: Vec<Arc<BareJid>>,
    numbers: BTreeMap<BareJid, u32>,
    /// Contact -> the numbers of the staff who have it, sorted.
    by_contact: BTreeMap<BareJid, Vec<u32>>,
}

impl RosterItems {
    /// From (staff, contact) pairs, as the store has them.
    pub fn from_pairs(pairs: &[(BareJid, BareJid)]) -> RosterItems {
        let mut items = RosterItems::default();
        for (staff, contact) in pairs {
            items.insert(staff, contact);
        }
        items
    }

    pub fn contains(&self, staff: &BareJid, contact: &BareJid) -> bool {
        let (Some(n), Some(holders)) = (self.numbers.get(staff), self.by_contact.get(contact))
        else {
            return false;
        };
        holders.binary_search(n).is_ok()
    }

    /// True if it was not there yet.
    pub fn insert(&mut self, staff: &BareJid, contact: &BareJid) -> bool {
        let n = self.number(staff);
        let holders = match self.by_contact.get_mut(contact) {
            Some(h) => h,
            None => self.by_contact.entry(contact.clone()).or_default(),
        };
        match holders.binary_search(&n) {
            Ok(_) => false,
            Err(at) => {
                holders.insert(at, n);
                true
            }
        }
    }

    /// True if it was there.
    pub fn remove(&mut self, staff: &BareJid, contact: &BareJid) -> bool {
        let Some(n) = self.numbers.get(staff) else {
            return false;
        };
        let Some(holders) = self.by_contact.get_mut(contact) else {
            return false;
        };
        let Ok(at) = holders.binary_search(n) else {
            return false;
        };
        holders.remove(at);
        if holders.is_empty() {
            self.by_contact.remove(contact);
        }
        true
    }

    /// Who has this number.
    pub fn staff(&self, n: u32) -> Option<&Arc<BareJid>> {
        self.staff.get(n as usize)
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.by_contact.values().map(Vec::len).sum()
    }

    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.by_contact.is_empty()
    }

    /// Every (staff, contact) pair, by contact.
    pub fn pairs(&self) -> impl Iterator<Item = (&BareJid, &BareJid)> {
        self.by_contact.iter().flat_map(move |(contact, holders)| {
            holders
                .iter()
                .filter_map(move |n| Some((&**self.staff.get(*n as usize)?, contact)))
        })
    }

    fn number(&mut self, staff: &BareJid) -> u32 {
        self.numbered(staff).0
    }

    /// The staff member's number and shared address, given now if they have none yet.
    pub fn numbered(&mut self, staff: &BareJid) -> (u32, Arc<BareJid>) {
        if let Some(n) = self.numbers.get(staff) {
            if let Some(s) = self.staff.get(*n as usize) {
                return (*n, Arc::clone(s));
            }
        }
        let n = u32::try_from(self.staff.len()).unwrap_or(u32::MAX);
        let shared = Arc::new(staff.clone());
        self.staff.push(Arc::clone(&shared));
        self.numbers.insert(staff.clone(), n);
        (n, shared)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jid(s: &str) -> BareJid {
        BareJid::new(s).unwrap()
    }

    #[test]
    fn behaves_as_a_set_of_pairs() {
        let (a, b) = (jid("alice@example.com"), jid("bob@example.com"));
        let (v1, v2) = (
            jid("v1_acme@chat.example.com"),
            jid("v2_acme@chat.example.com"),
        );
        let mut items = RosterItems::from_pairs(&[(b.clone(), v1.clone())]);
        assert!(items.insert(&a, &v1));
        assert!(!items.insert(&a, &v1));
        assert!(items.insert(&a, &v2));
        assert_eq!(items.len(), 3);
        assert!(items.contains(&a, &v1) && items.contains(&b, &v1) && !items.contains(&b, &v2));
        let pairs: Vec<_> = items.pairs().collect();
        assert_eq!(pairs, vec![(&b, &v1), (&a, &v1), (&a, &v2)]);
        assert!(items.remove(&b, &v1));
        assert!(!items.remove(&b, &v1));
        assert!(!items.remove(&jid("carol@example.com"), &v2));
        assert!(items.remove(&a, &v1) && items.remove(&a, &v2));
        assert!(items.is_empty() && items.by_contact.is_empty());
    }
}
