//! Addresses parsed once into typed values: site ids, visitor rooms (`<visitor>_<site>`), and
//! where on the component a stanza is addressed (the domain, a room, or an occupant).

use std::fmt;

use xmpp_parsers::jid::{BareJid, FullJid, Jid};

/// A site id from the config: `[a-z0-9-]+`, never containing `_`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SiteId(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddressError {
    #[error("site id {0:?} must be non-empty and use only a-z, 0-9 and '-'")]
    BadSiteId(String),
    #[error("room name {0:?} is not <visitor_id>_<site_id>")]
    NotARoom(String),
    #[error("visitor id {0:?} must be 1-64 characters of A-Z, a-z, 0-9, '.', '-' or '_'")]
    BadVisitorId(String),
}

impl SiteId {
    pub fn new(s: &str) -> Result<SiteId, AddressError> {
        let ok = !s.is_empty()
            && s.len() <= 64
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if ok {
            Ok(SiteId(s.to_string()))
        } else {
            Err(AddressError::BadSiteId(s.to_string()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SiteId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A visitor's room: the local part `<visitor_id>_<site_id>` of `<visitor_id>_<site_id>@<component>`.
/// Whether the site is configured is the core's question, not this type's.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RoomName {
    visitor: String,
    site: SiteId,
}

impl RoomName {
    /// Splits at the last `_`: the visitor id may itself contain `_`, a site id never does.
    pub fn parse(local: &str) -> Result<RoomName, AddressError> {
        let (visitor, site) = local
            .rsplit_once('_')
            .ok_or_else(|| AddressError::NotARoom(local.to_string()))?;
        let site = SiteId::new(site).map_err(|_| AddressError::NotARoom(local.to_string()))?;
        let visitor_ok = !visitor.is_empty()
            && visitor.len() <= 64
            && visitor
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'));
        if !visitor_ok {
            return Err(AddressError::BadVisitorId(visitor.to_string()));
        }
        Ok(RoomName {
            visitor: visitor.to_string(),
            site,
        })
    }

    pub fn visitor(&self) -> &str {
        &self.visitor
    }

    pub fn site(&self) -> &SiteId {
        &self.site
    }

    /// The room's bare JID on the given component domain.
    pub fn jid(&self, component: &BareJid) -> BareJid {
        // Both halves were validated to plain ASCII, so this cannot fail; fall back to the
        // domain rather than panic all the same.
        BareJid::new(&format!("{self}@{}", component.domain()))
            .unwrap_or_else(|_| component.clone())
    }
}

impl fmt::Display for RoomName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}_{}", self.visitor, self.site)
    }
}

/// Where on the component a stanza is addressed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// The component's own domain, e.g. `chat.example.com`.
    Domain,
    /// A room's bare JID.
    Room(RoomName),
    /// `room/nick`: an occupant (or a would-be occupant when joining).
    Occupant(RoomName, String),
    /// `something@component` that is not a well-formed room name.
    BadRoom(String),
    /// Not on our domain at all (the server should never route these to us).
    Elsewhere,
}

impl Target {
    pub fn of(to: &Jid, component: &BareJid) -> Target {
        if to.domain() != component.domain() {
            return Target::Elsewhere;
        }
        let Some(node) = to.node() else {
            // `chat.example.com/resource` is still the component itself.
            return Target::Domain;
        };
        match RoomName::parse(node.as_str()) {
            Ok(room) => match to.resource() {
                Some(nick) => Target::Occupant(room, nick.as_str().to_string()),
                None => Target::Room(room),
            },
            Err(_) => Target::BadRoom(node.as_str().to_string()),
        }
    }
}

/// The real sender of a stanza. Servers always stamp `from`; clients in rooms are full JIDs.
pub fn sender_full(from: Option<&Jid>) -> Option<FullJid> {
    from.and_then(|j| j.try_as_full().ok()).cloned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn component() -> BareJid {
        BareJid::new("chat.example.com").unwrap()
    }

    #[test]
    fn site_ids() {
        assert!(SiteId::new("acme").is_ok());
        assert!(SiteId::new("acme-2").is_ok());
        assert!(SiteId::new("").is_err());
        assert!(SiteId::new("ac_me").is_err());
        assert!(SiteId::new("Acme").is_err());
    }

    #[test]
    fn room_name_splits_at_last_underscore() {
        let r = RoomName::parse("v_42_acme").unwrap();
        assert_eq!(r.visitor(), "v_42");
        assert_eq!(r.site().as_str(), "acme");
        assert_eq!(r.to_string(), "v_42_acme");
        assert_eq!(
            r.jid(&component()).to_string(),
            "v_42_acme@chat.example.com"
        );
    }

    #[test]
    fn room_name_rejects() {
        assert!(RoomName::parse("noseparator").is_err());
        assert!(RoomName::parse("_acme").is_err());
        assert!(RoomName::parse("v1_").is_err());
        assert!(RoomName::parse("v1_ACME").is_err());
        assert!(RoomName::parse("v 1_acme").is_err());
        assert!(RoomName::parse(&format!("{}_acme", "x".repeat(65))).is_err());
    }

    #[test]
    fn targets() {
        let c = component();
        let t = |s: &str| Target::of(&Jid::new(s).unwrap(), &c);
        assert_eq!(t("chat.example.com"), Target::Domain);
        assert_eq!(t("chat.example.com/x"), Target::Domain);
        let room = RoomName::parse("v1_acme").unwrap();
        assert_eq!(t("v1_acme@chat.example.com"), Target::Room(room.clone()));
        assert_eq!(
            t("v1_acme@chat.example.com/Ann"),
            Target::Occupant(room, "Ann".into())
        );
        assert_eq!(t("lobby@chat.example.com"), Target::BadRoom("lobby".into()));
        assert_eq!(t("v1_acme@elsewhere.org"), Target::Elsewhere);
    }
}
