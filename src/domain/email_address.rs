//! An email address, and a list of recipients as Partner Center's
//! contact-email field takes them (`;` or `,` between addresses). Parsed with
//! `lettre`'s address grammar, so a value that could inject a header (a line
//! break, a second address) is never one.

use std::fmt;

/// A syntactically valid email address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmailAddress(String);

impl EmailAddress {
    pub fn parse(value: &str) -> Result<Self, String> {
        let value = value.trim();
        value
            .parse::<lettre::Address>()
            .map(|_| Self(value.to_owned()))
            .map_err(|_| "is not a valid email address".to_owned())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// A `mailto:` URL of this one address (RFC 6068), with a subject. Every
    /// character of the address but unreserved ones and its last `@` is
    /// percent-encoded: a valid address such as
    /// `a%40evil.io?bcc=b%40evil.io&body=x@fabrikam.example` stays one
    /// recipient, never a second one, a `bcc` or a body.
    pub fn mailto(&self, subject: Option<&str>) -> String {
        let (local, domain) = self.0.rsplit_once('@').unwrap_or((self.0.as_str(), ""));
        let mut url = format!(
            "mailto:{}@{}",
            percent_encode(local),
            percent_encode(domain)
        );
        if let Some(subject) = subject {
            url.push_str("?subject=");
            url.push_str(&percent_encode(subject));
        }
        url
    }

    /// What follows the last `@`: the sending domain of a sender address.
    pub fn domain(&self) -> &str {
        self.0.rsplit_once('@').map_or("", |(_, domain)| domain)
    }
}

/// Every byte but unreserved characters (`A-Z a-z 0-9 - . _ ~`) as `%XX`:
/// what RFC 6068 allows unencoded anywhere in a `mailto:` URL.
pub fn percent_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

impl fmt::Display for EmailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One or more addresses, written as Partner Center's contact-email field
/// takes them: separated by `;` or `,`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recipients(Vec<EmailAddress>);

/// ACS accepts at most 50 recipients per message.
const MAX_RECIPIENTS: usize = 50;

impl Recipients {
    pub fn parse(value: &str) -> Result<Self, String> {
        let addresses = value
            .split([';', ','])
            .map(str::trim)
            .filter(|a| !a.is_empty())
            .map(|a| {
                EmailAddress::parse(a).map_err(|_| format!("{a:?} is not a valid email address"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        match addresses.len() {
            0 => Err("lists no address".to_owned()),
            n if n > MAX_RECIPIENTS => {
                Err(format!("lists {n} addresses; at most {MAX_RECIPIENTS}"))
            }
            _ => Ok(Self(addresses)),
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = &EmailAddress> {
        self.0.iter()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A hostile but valid address opens one recipient, nothing else.
    #[test]
    fn a_mailto_url_is_one_recipient_whatever_the_address() {
        for (address, url) in [
            ("aiko@fabrikam.example", "mailto:aiko@fabrikam.example"),
            (
                "a%40evil.io?bcc=b%40evil.io&body=x@fabrikam.example",
                "mailto:a%2540evil.io%3Fbcc%3Db%2540evil.io%26body%3Dx@fabrikam.example",
            ),
            (
                "\"a@b\"@fabrikam.example",
                "mailto:%22a%40b%22@fabrikam.example",
            ),
            (
                "o'brien+leads@fabrikam.example",
                "mailto:o%27brien%2Bleads@fabrikam.example",
            ),
        ] {
            let parsed = EmailAddress::parse(address).unwrap();
            assert_eq!(parsed.mailto(None), url, "{address}");
            let query = parsed.mailto(Some("Re: 50% & more?"));
            assert_eq!(query.matches('?').count(), 1, "{query}");
            assert!(
                query.ends_with("?subject=Re%3A%2050%25%20%26%20more%3F"),
                "{query}"
            );
            assert!(!query.contains('&') && !query.contains('#'), "{query}");
        }
    }

    #[test]
    fn recipients_split_on_semicolons_and_commas() {
        let r = Recipients::parse(" a@contoso.com;b@contoso.com , c@contoso.com;; ").unwrap();
        let list: Vec<_> = r.iter().map(EmailAddress::as_str).collect();
        assert_eq!(list, ["a@contoso.com", "b@contoso.com", "c@contoso.com"]);
    }

    #[test]
    fn invalid_recipients_are_rejected() {
        assert!(Recipients::parse("").is_err());
        assert!(Recipients::parse(" ; , ").is_err());
        assert!(Recipients::parse("a@contoso.com; nope").is_err());
        assert!(Recipients::parse("a@b.c\r\nBcc: evil@x.y").is_err());
        let many = vec!["a@b.co"; 51].join(";");
        assert!(Recipients::parse(&many).is_err());
    }

    #[test]
    fn address_rejects_header_injection() {
        assert!(EmailAddress::parse("x@y.z\nBcc: a@b.c").is_err());
        assert!(EmailAddress::parse("DoNotReply@x.azurecomm.net").is_ok());
    }
}
