//! Addresses read back out of the database's text. One that does not parse makes its row
//! unusable for resuming: the snapshot leaves the row out and logs it, while the listings
//! (`frontdesk sessions`, transcripts) show the text as it is.

use xmpp_parsers::jid::{BareJid, FullJid, Jid};

use crate::address::SiteId;

/// A column whose text is not the address it should be.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{column} {value:?} is not {expected}")]
pub struct Unusable {
    pub column: &'static str,
    pub value: String,
    pub expected: &'static str,
}

fn parse<T, E>(
    column: &'static str,
    value: &str,
    expected: &'static str,
    f: impl FnOnce(&str) -> Result<T, E>,
) -> Result<T, Unusable> {
    f(value).map_err(|_| Unusable {
        column,
        value: value.to_string(),
        expected,
    })
}

pub fn bare_jid(column: &'static str, value: &str) -> Result<BareJid, Unusable> {
    parse(column, value, "a bare JID", BareJid::new)
}

pub fn full_jid(column: &'static str, value: &str) -> Result<FullJid, Unusable> {
    parse(column, value, "a full JID", FullJid::new)
}

pub fn jid(column: &'static str, value: &str) -> Result<Jid, Unusable> {
    parse(column, value, "a JID", Jid::new)
}

pub fn site_id(column: &'static str, value: &str) -> Result<SiteId, Unusable> {
    parse(column, value, "a site id", SiteId::new)
}
