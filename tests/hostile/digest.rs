//! Hostile text through the digest: no mail header, no markup.

use super::*;
use marketplace_leads::digest::Outcome;
use testkit::shared_maildev;

/// Leads whose every field tries to become markup, a mail header, an SMTP
/// command or a control character in the digest.
pub(crate) fn hostile_leads() -> Vec<Value> {
    let markup = [
        "<script>alert('FirstName')</script>",
        "<img src=x onerror=alert('LastName')>",
        "\"><svg onload=alert(1)>@evil.example",
        "<a href=\"javascript:alert(1)\">call</a>",
        "</td></tr></table><script>alert(2)</script>",
        "<iframe src=\"//evil.example\"></iframe>",
        "<body onload=alert(3)>",
    ];
    let crlf = |field: &str| {
        format!(
            "x\r\nBcc: injected-{field}@evil.example\r\nX-Injected: {field}\r\nSubject: injected\r\n\r\n<b>part</b>"
        )
    };
    let user = |values: &dyn Fn(usize, &str) -> String| -> Map<String, Value> {
        CUSTOMER_FIELDS
            .iter()
            .enumerate()
            .map(|(i, f)| ((*f).to_owned(), json!(values(i, f))))
            .collect()
    };
    vec![
        json!({
            "UserDetails": user(&|i, _| markup[i].to_owned()),
            "LeadSource": "SPZA-PLT|<script>alert(4)</script>",
            "ActionCode": "<img src=x onerror=alert(5)>",
            "OfferTitle": "<style>*{display:none}</style>",
            "Description": "{{ v.subject }} {% if true %}x{% endif %} <!-- ]]> <![CDATA[ onerror=alert(6) ]]>",
        }),
        json!({
            "UserDetails": user(&|_, f| crlf(f)),
            "LeadSource": crlf("LeadSource"),
            "ActionCode": crlf("ActionCode"),
            "OfferTitle": crlf("OfferTitle"),
            "Description": crlf("Description"),
        }),
        json!({
            "UserDetails": {"FirstName": "Smuggler", "LastName": "lf\n.\nlone-lf-dot", "Company": "cr\r.\rlone-cr-dot"},
            "OfferTitle": "O",
            "Description": "hello\r\n.\r\nMAIL FROM:<smuggler@evil.example>\r\nRCPT TO:<smuggled@evil.example>\r\nDATA\r\nSubject: smuggled\r\n\r\nsmuggled\r\n.\r\nafter-the-dot",
        }),
        json!({
            "UserDetails": {"FirstName": "Nul\u{0}Ctl\u{1}\u{1f}\u{7f}\u{9f}end", "Company": "\u{0}"},
            "OfferTitle": "Control",
            "Description": "bell\u{7} escape\u{1b}[31m backspace\u{8}",
        }),
    ]
}

#[tokio::test]
pub(crate) async fn hostile_text_reaches_no_mail_header_and_no_markup() {
    watch_panics();
    let panics_before = PANICS.load(Ordering::SeqCst);
    let app = spawn_app().await;
    let maildev = shared_maildev();
    let leads = hostile_leads();
    for lead in &leads {
        let response = app.post_lead(lead.to_string()).await;
        assert_eq!(response.status(), 201, "{lead}");
    }

    // Stored as sent (trimmed), not escaped: escaping is the reader's job.
    let rows = app.lead_rows().await;
    assert_eq!(rows.len(), leads.len());
    for lead in &leads {
        let row = rows
            .iter()
            .find(|r| r["RawBody"].as_str() == Some(lead.to_string().as_str()))
            .unwrap_or_else(|| panic!("a row for {lead}"));
        for field in CUSTOMER_FIELDS {
            if let Some(value) = lead["UserDetails"][field].as_str() {
                assert_eq!(row[field], value.trim(), "{field} of {lead}");
            }
        }
        for (field, column) in [("Description", "Description"), ("OfferTitle", "OfferTitle")] {
            assert_eq!(row[column], lead[field].as_str().unwrap().trim());
        }
    }

    let report = app.run_digest().await.expect("digest run");
    assert!(matches!(report.outcome, Outcome::Sent { .. }), "{report:?}");
    assert_eq!(report.lead_count, leads.len());

    let emails = maildev.emails_to(&app.recipient).await;
    assert_eq!(emails.len(), 1, "one digest, nothing split off");
    let email = &emails[0];

    // Headers: ours only.
    let subject = email["subject"].as_str().unwrap();
    assert!(
        subject.starts_with("4 new marketplace leads · "),
        "{subject}"
    );
    assert_eq!(email["to"].as_array().map(Vec::len), Some(1), "{email}");
    for list in ["cc", "bcc"] {
        assert!(
            email[list].as_array().is_none_or(Vec::is_empty),
            "{list}: {email}"
        );
    }
    let source = message_source(email).await;
    let headers = &source[..source.find("\r\n\r\n").expect("a header block")];
    for canary in [
        "evil.example",
        "injected",
        "Injected",
        "smuggled",
        "<script",
    ] {
        assert!(
            !headers.contains(canary),
            "{canary} in the headers:\n{headers}"
        );
    }
    assert!(
        email["headers"]
            .as_object()
            .is_some_and(|h| !h.keys().any(|k| k.eq_ignore_ascii_case("x-injected"))),
        "{}",
        email["headers"]
    );
    // No second message smuggled through SMTP, to anyone.
    let everything: Vec<Value> =
        reqwest::get(format!("http://127.0.0.1:{}/email", maildev.web_port))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
    for other in &everything {
        let recipients = format!(
            "{} {} {} {}",
            other["to"], other["cc"], other["bcc"], other["envelope"]
        );
        assert!(!recipients.contains("evil.example"), "{other}");
    }
    assert!(
        email["attachments"].as_array().is_none_or(Vec::is_empty),
        "no extra MIME parts: {}",
        email["attachments"]
    );

    // HTML: customer text only ever as escaped text.
    let html = email["html"].as_str().unwrap();
    for tag in tags(html) {
        let name = tag
            .trim_start_matches(['<', '/'])
            .split(|c: char| c.is_whitespace() || c == '>' || c == '/')
            .next()
            .unwrap_or_default()
            .to_ascii_lowercase();
        assert!(ALLOWED_TAGS.contains(&name.as_str()), "tag {tag}");
        let lower = tag.to_ascii_lowercase();
        for word in ["script", "onerror", "onload", "javascript:", "evil.example"] {
            assert!(!lower.contains(word), "{word} inside the tag {tag}");
        }
        if name == "a" {
            assert!(
                lower.starts_with("<a href=\"mailto:") || lower.starts_with("<a href=\"tel:"),
                "{tag}"
            );
        }
    }
    assert!(
        html.contains("&lt;script&gt;alert("),
        "customer text is shown"
    );
    assert!(html.contains("onerror=alert("), "as text");
    assert!(
        html.contains("{{ v.subject }}"),
        "template syntax is plain text"
    );

    // The plain part is whole: the lone dots did not end the message.
    let text = email["text"].as_str().unwrap();
    for shown in ["after-the-dot", "lone-lf-dot", "lone-cr-dot", "Nul", "end"] {
        assert!(text.contains(shown), "{shown} missing from:\n{text}");
    }

    let ready = app.client.get(&app.address).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    assert_eq!(
        PANICS.load(Ordering::SeqCst),
        panics_before,
        "nothing panicked"
    );
    app.stop().await;
}

/// Every tag the digest template writes (`style` holds only its own
/// dark-mode rules).
pub(crate) const ALLOWED_TAGS: [&str; 22] = [
    "!doctype", "html", "head", "meta", "title", "style", "body", "h1", "h2", "table", "thead",
    "tbody", "tr", "th", "td", "a", "p", "strong", "code", "div", "span", "br",
];

/// Every `<…>` in an HTML text.
pub(crate) fn tags(html: &str) -> Vec<&str> {
    let mut tags = Vec::new();
    let mut rest = html;
    while let Some(start) = rest.find('<') {
        let end = rest[start..]
            .find('>')
            .map_or(rest.len(), |e| start + e + 1);
        tags.push(&rest[start..end]);
        rest = &rest[end..];
    }
    tags
}

/// The message as MailDev received it, headers and all.
pub(crate) async fn message_source(email: &Value) -> String {
    let id = email["id"].as_str().unwrap();
    reqwest::get(format!(
        "http://127.0.0.1:{}/email/{id}/source",
        shared_maildev().web_port
    ))
    .await
    .unwrap()
    .text()
    .await
    .unwrap()
}

#[cfg(test)]
mod self_tests {
    use super::*;

    #[test]
    fn tag_scan_sees_every_tag() {
        let html = "<p>a &lt;b&gt; <a href=\"mailto:x@y.z\">x</a></p>";
        assert_eq!(
            tags(html),
            ["<p>", "<a href=\"mailto:x@y.z\">", "</a>", "</p>"]
        );
    }
}
