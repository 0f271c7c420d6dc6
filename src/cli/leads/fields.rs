//! The fields the list and exports show for one stored row: from the lead
//! parsed out of the raw body, or from the stored split columns for a row
//! whose raw body is gone.

use crate::domain::lead::full_name;
use crate::domain::Level;
use crate::store::ExportRow;
use serde_json::Value;

/// The fields exports and the list show, from the lead parsed out of the raw
/// body; from the stored split columns for a row whose raw body is gone.
pub(super) struct Fields<'a> {
    pub(super) first_name: Option<&'a str>,
    pub(super) last_name: Option<&'a str>,
    pub(super) email: Option<&'a str>,
    pub(super) phone: Option<&'a str>,
    pub(super) company: Option<&'a str>,
    pub(super) title: Option<&'a str>,
    pub(super) country: Option<&'a str>,
    pub(super) description: Option<&'a str>,
    pub(super) offer: Option<&'a str>,
    pub(super) action: Option<&'a str>,
    pub(super) source: Option<&'a str>,
    pub(super) lead_id: Option<&'a str>,
    /// As stored when the lead arrived (none for leads stored before
    /// ratings, until `handler leads rate --apply`).
    pub(super) rating: Option<Level>,
    pub(super) rating_reasons: Option<&'a str>,
}

impl<'a> Fields<'a> {
    pub(super) fn of(row: &'a ExportRow) -> Self {
        let column = |name: &str| row.columns.get(name).and_then(Value::as_str);
        let lead_id = column("LeadId");
        let rating = column("Rating").and_then(Level::parse);
        let rating_reasons = column("RatingReasons");
        match &row.lead {
            Some(lead) => {
                let c = &lead.customer;
                Self {
                    first_name: c.first_name.as_deref(),
                    last_name: c.last_name.as_deref(),
                    email: c.email.as_deref(),
                    phone: c.phone.as_deref(),
                    company: c.company.as_deref(),
                    title: c.title.as_deref(),
                    country: c.country.as_deref(),
                    description: lead.description.as_deref(),
                    offer: lead.offer_title.as_deref(),
                    action: lead
                        .action_code
                        .as_deref()
                        .or(lead.source.as_ref().map(|s| s.action.as_str())),
                    source: lead.lead_source.as_deref(),
                    lead_id,
                    rating,
                    rating_reasons,
                }
            }
            None => Self {
                first_name: column("FirstName"),
                last_name: column("LastName"),
                email: column("Email"),
                phone: column("Phone"),
                company: column("Company"),
                title: column("Title"),
                country: column("Country"),
                description: column("Description"),
                offer: column("OfferTitle"),
                action: column("ActionCode").or(column("LeadSourceAction")),
                source: column("LeadSource"),
                lead_id,
                rating,
                rating_reasons,
            },
        }
    }

    pub(super) fn name(&self) -> String {
        full_name(self.first_name, self.last_name).unwrap_or_default()
    }
}
