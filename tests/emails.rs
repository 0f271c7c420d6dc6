//! The emails as the people who receive them see them: the per-lead email
//! and the digest rendered by a real headless browser (Debian's Chromium)
//! at a phone's width, 375 px, and on a desktop, 1,200 px.
//!
//! Headless Chromium will not make a window narrower than 500 px, so the
//! email is laid out in an iframe of the phone's width inside the window —
//! the same as a phone's viewport to everything in the email.
//!
//! At 375 px nothing may be wider than the screen (no sideways scrolling),
//! the customer's note must be there and inside the screen, and so must the
//! reply button. Screenshots go to `target/email-screenshots/` for a person
//! to look at (the README's are copies of them, under `docs/`).

use marketplace_leads::digest::card::LeadEmail;
use marketplace_leads::digest::render::Digest;
use marketplace_leads::domain::Lead;
use marketplace_leads::store::{DeadLetter, LeadId, StoredLead};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use time::macros::datetime;

const PHONE: u32 = 375;
/// A phone's first screen (iPhone SE: 375 × 667): the rating and the note
/// must both be on it.
const PHONE_SCREEN: u64 = 667;
const DESKTOP: u32 = 1200;
const NOTE: &str = "Please contact me about pricing for 500 seats. We run Contoso Analytics \
    in two regions and need SSO with our Entra ID tenant before the end of the quarter.";

fn stored(id: &str, body: Value, minute: u8) -> StoredLead {
    StoredLead {
        id: LeadId::parse(id).unwrap(),
        received_at: datetime!(2026-11-22 10:00 UTC) + time::Duration::minutes(minute.into()),
        // Rated, as LeadIngest stores it.
        lead: Lead::parse(body.to_string().as_bytes()).unwrap().rated(),
    }
}

/// An install from a personal mailbox, no company: the lead to call last.
fn sam() -> StoredLead {
    stored(
        "20261122-5a5a5a5a5a5a5a5a",
        serde_json::json!({
            "UserDetails": {"FirstName": "Sam", "LastName": "Lee", "Email": "sam.lee.1987@gmail.com",
                "Country": "United States"},
            "LeadSource": "AzureMarketplace-INS|fabrikamsoftware.contoso-analytics",
            "OfferTitle": "Contoso Analytics", "Description": NOTE,
        }),
        12,
    )
}

fn zoe() -> StoredLead {
    stored(
        "20261122-3f9a0c1d2e4b5a69",
        serde_json::json!({
            "UserDetails": {"FirstName": "Zoë", "LastName": "Nakamura-O'Brien",
                "Email": "zoe.nakamura@fabrikam.co.jp", "Phone": "+81 3-1234-5678",
                "Country": "Japan", "Company": "Fabrikam 株式会社", "Title": "VP, Data & AI"},
            "LeadSource": "SPZA-PLT|fabrikamsoftware.contoso-analytics", "ActionCode": "PLT",
            "OfferTitle": "Contoso Analytics", "Description": NOTE,
        }),
        7,
    )
}

/// A digest's worth: long unbroken values (which must wrap, not widen the
/// page), an install, a do-not-contact lead, a test lead, a dead delivery.
fn digest() -> Digest {
    let leads = vec![
        sam(),
        zoe(),
        stored(
            "20261122-00aa11bb22cc33dd",
            serde_json::json!({
                "UserDetails": {"FirstName": "Bartholomew", "LastName": "Vandenberghe-Oppenheimer",
                    "Email": "bartholomew.vandenberghe-oppenheimer@an-unusually-long-domain-name.example.com",
                    "Company": "Wolfeschlegelsteinhausenbergerdorff Industrieversicherungsgesellschaft"},
                "LeadSource": "AzureMarketplace-INS|fabrikamsoftware.contoso-gateway",
                "OfferTitle": "Contoso Gateway",
                "Description": "x".repeat(300),
            }),
            21,
        ),
        stored(
            "20261122-44ee55ff66aa77bb",
            serde_json::json!({
                "UserDetails": {"FirstName": "Quinn", "LastName": "Reyes", "Email": "quinn@contoso.example"},
                "LeadSource": "SPZA-DNC|fabrikamsoftware.contoso-analytics",
                "OfferTitle": "Contoso Analytics",
            }),
            33,
        ),
        stored(
            "20261122-8899aabbccddeeff",
            serde_json::json!({
                "UserDetails": {"FirstName": "MSFT_TEST_636573304831318844", "LastName": "lead",
                    "Email": "msft_test_636573304831318844@test.com"},
                "LeadSource": "AzureMarketplace", "OfferTitle": "Contoso Analytics",
            }),
            40,
        ),
    ];
    let mut digest = Digest::of(&leads);
    digest.add_dead_letter(
        "20261122-00aa11bb22cc33dd",
        &DeadLetter {
            destination: "hubspot".into(),
            last_status: "HTTP 403".into(),
            excerpt: "This app hasn't been granted all required scopes: crm.objects.contacts.write"
                .into(),
            died_at: datetime!(2026-11-22 10:25 UTC),
        },
    );
    digest
}

fn out_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/email-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn chromium() -> PathBuf {
    for candidate in ["/usr/bin/chromium", "/usr/bin/chromium-browser"] {
        if Path::new(candidate).exists() {
            return candidate.into();
        }
    }
    panic!(
        "Chromium is needed to render the emails as a phone shows them: \
         `sudo apt-get install -y chromium` (scripts/setup-dev does it where it can)"
    );
}

/// Runs headless Chromium at `width` with `args`; its stdout.
fn run_chromium(width: u32, height: u32, args: &[String]) -> String {
    let profile = tempfile::tempdir().unwrap();
    let output = Command::new(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            "--force-device-scale-factor=1",
            &format!("--user-data-dir={}", profile.path().display()),
            &format!("--window-size={width},{height}"),
        ])
        .args(args)
        .output()
        .expect("chromium runs");
    assert!(
        output.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Measures `html` as laid out at `width`: appended to a copy of it, a
/// script (never in the email itself) writes what it found into the page,
/// which `--dump-dom` prints.
fn measure(name: &str, html: &str, width: u32) -> Value {
    const PROBE: &str = r#"<script>
(function () {
  var width = window.innerWidth;
  var wide = [];
  document.querySelectorAll('body *').forEach(function (e) {
    var r = e.getBoundingClientRect();
    if (r.width > 0 && (r.right > width + 0.5 || r.left < -0.5)) {
      wide.push(e.tagName + ' ' + Math.round(r.left) + '..' + Math.round(r.right) + ' ' +
        (e.textContent || '').trim().slice(0, 40));
    }
  });
  var note = Array.prototype.find.call(document.querySelectorAll('.note'), function () { return true; });
  var reply = Array.prototype.filter.call(document.querySelectorAll('a.button'), function (a) {
    return a.getAttribute('href').indexOf('mailto:') === 0;
  });
  var inside = function (e) { var r = e.getBoundingClientRect(); return r.left >= 0 && r.right <= width; };
  var result = {
    viewport: width,
    scrollWidth: document.documentElement.scrollWidth,
    wide: wide.slice(0, 10),
    note: note ? note.textContent : null,
    noteInside: note ? inside(note) : false,
    replies: reply.map(function (a) { return a.textContent; }),
    repliesInside: reply.every(inside),
    noteTop: note ? Math.round(note.getBoundingClientRect().top) : null,
    ratings: Array.prototype.map.call(document.querySelectorAll('.rating'), function (e) {
      return { text: e.textContent.trim(), top: Math.round(e.getBoundingClientRect().top) };
    }),
    headings: Array.prototype.map.call(document.querySelectorAll('.card h2'), function (e) {
      return e.textContent.trim();
    })
  };
  var pre = parent.document.createElement('pre');
  pre.id = 'probe-result';
  pre.textContent = btoa(unescape(encodeURIComponent(JSON.stringify(result))));
  parent.document.body.appendChild(pre);
})();
</script>"#;
    let probed = html.replace("</body>", &format!("{PROBE}</body>"));
    let path = out_dir().join(format!("{name}-probe.html"));
    std::fs::write(&path, framed(&probed, width, 1000)).unwrap();
    let dom = run_chromium(
        width.max(MIN_WINDOW),
        1000,
        &["--dump-dom".into(), format!("file://{}", path.display())],
    );
    let start = dom
        .find("<pre id=\"probe-result\">")
        .expect("the probe ran")
        + 23;
    let end = start + dom[start..].find("</pre>").unwrap();
    use base64::Engine;
    let json = base64::engine::general_purpose::STANDARD
        .decode(dom[start..end].trim())
        .unwrap();
    serde_json::from_slice(&json).unwrap()
}

/// The narrowest window headless Chromium makes.
const MIN_WINDOW: u32 = 500;

/// A page showing `html` in an iframe `width` px wide: its viewport.
fn framed(html: &str, width: u32, height: u32) -> String {
    let escaped = html.replace('&', "&amp;").replace('"', "&quot;");
    format!(
        "<!DOCTYPE html><html><head><meta charset=\"utf-8\"></head>\
         <body style=\"margin:0;background:#c8ccd2;\">\
         <iframe style=\"border:0;display:block;width:{width}px;height:{height}px;\" \
         srcdoc=\"{escaped}\"></iframe></body></html>"
    )
}

fn screenshot(name: &str, html: &str, width: u32, height: u32) -> PathBuf {
    let page = out_dir().join(format!("{name}-{width}.html"));
    std::fs::write(&page, framed(html, width, height)).unwrap();
    let shot = out_dir().join(format!("{name}-{width}.png"));
    run_chromium(
        width.max(MIN_WINDOW),
        height,
        &[
            format!("--screenshot={}", shot.display()),
            format!("file://{}", page.display()),
        ],
    );
    assert!(
        std::fs::metadata(&shot)
            .map(|m| m.len() > 1_000)
            .unwrap_or(false),
        "no screenshot at {}",
        shot.display()
    );
    shot
}

fn assert_fits_a_phone(name: &str, measured: &Value) {
    assert_eq!(measured["viewport"], PHONE, "{name}: {measured}");
    assert!(
        measured["scrollWidth"].as_u64().unwrap() <= u64::from(PHONE),
        "{name} is wider than a phone: {measured:#}"
    );
    assert_eq!(
        measured["wide"],
        serde_json::json!([]),
        "{name}: {measured:#}"
    );
}

#[test]
fn the_per_lead_email_reads_on_a_phone() {
    let email = LeadEmail::of(&[zoe()]);
    assert!(
        email.subject.starts_with("Hot lead: Zoë"),
        "{}",
        email.subject
    );
    let measured = measure("lead", &email.html, PHONE);
    assert_fits_a_phone("the per-lead email", &measured);
    assert_eq!(measured["note"], NOTE, "{measured:#}");
    assert_eq!(measured["noteInside"], true);
    assert_eq!(measured["replies"], serde_json::json!(["Reply to Zoë"]));
    assert_eq!(measured["repliesInside"], true);
    assert_rating_above_the_note(
        &measured,
        "HOT asked to be contacted · company email domain · phone given · job title given · \
         wrote a note",
    );
    let phone = screenshot("lead", &email.html, PHONE, 900);
    let desktop = screenshot("lead", &email.html, DESKTOP, 900);
    println!(
        "per-lead email: {} px wide at {PHONE} px, rating at {} px, note at {} px; screenshots {} \
         and {}",
        measured["scrollWidth"],
        measured["ratings"][0]["top"],
        measured["noteTop"],
        phone.display(),
        desktop.display()
    );
}

#[test]
fn a_cold_lead_says_why_on_a_phone() {
    let email = LeadEmail::of(&[sam()]);
    assert!(
        email.subject.starts_with("Sam Lee – Contoso Analytics"),
        "{}",
        email.subject
    );
    let measured = measure("lead-cold", &email.html, PHONE);
    assert_fits_a_phone("a cold lead's email", &measured);
    assert_rating_above_the_note(
        &measured,
        "COLD installed only · personal mailbox (gmail.com) · no company · wrote a note",
    );
    let phone = screenshot("lead-cold", &email.html, PHONE, 900);
    println!("cold per-lead email: screenshot {}", phone.display());
}

/// The (first) rating reads `text`, above the note, and both are on a
/// phone's first screen.
fn assert_rating_above_the_note(measured: &Value, text: &str) {
    let rating = &measured["ratings"][0];
    assert_eq!(rating["text"], text, "{measured:#}");
    let (rating_top, note_top) = (
        rating["top"].as_u64().unwrap(),
        measured["noteTop"].as_u64().unwrap(),
    );
    assert!(rating_top < note_top, "{measured:#}");
    assert!(
        note_top < PHONE_SCREEN,
        "the note on the first screen: {measured:#}"
    );
}

#[test]
fn the_digest_reads_on_a_phone() {
    let digest = digest();
    let html = digest.html();
    let measured = measure("digest", &html, PHONE);
    assert_fits_a_phone("the digest", &measured);
    assert_eq!(
        measured["note"], NOTE,
        "the first card's note: {measured:#}"
    );
    assert_eq!(measured["noteInside"], true);
    // Hot first, then warm, then cold; each level as the leads came (Sam
    // arrived before Bartholomew). Test leads are listed apart.
    assert_eq!(
        measured["headings"],
        serde_json::json!([
            "Zoë Nakamura-O'Brien · Fabrikam 株式会社",
            "Bartholomew Vandenberghe-Oppenheimer · Wolfeschlegelsteinhausenbergerdorff \
             Industrieversicherungsgesellschaft",
            "Sam Lee",
            "Quinn Reyes",
        ]),
        "{measured:#}"
    );
    let levels: Vec<&str> = measured["ratings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["text"].as_str().unwrap().split(' ').next().unwrap())
        .collect();
    assert_eq!(levels, ["HOT", "WARM", "COLD", "COLD"]);
    // Zoë, Bartholomew and Sam can be replied to; Quinn asked not to be
    // contacted.
    assert_eq!(
        measured["replies"],
        serde_json::json!(["Reply to Zoë", "Reply to Bartholomew", "Reply to Sam"])
    );
    assert_eq!(measured["repliesInside"], true);
    let phone = screenshot("digest", &html, PHONE, 1600);
    let desktop = screenshot("digest", &html, DESKTOP, 1200);
    println!(
        "digest: {} px wide at {PHONE} px; screenshots {} and {}",
        measured["scrollWidth"],
        phone.display(),
        desktop.display()
    );
}

/// The measurement itself can fail: a page with a 600 px table (as the
/// emails were, before their cards) is caught, naming the element.
#[test]
fn the_probe_finds_what_is_wider_than_a_phone() {
    let wide = "<!DOCTYPE html><html><body><table style=\"width:600px\"><tr><td>wide</td></tr>\
                </table></body></html>";
    let measured = measure("too-wide", wide, PHONE);
    assert!(
        measured["scrollWidth"].as_u64().unwrap() > u64::from(PHONE),
        "{measured}"
    );
    assert!(
        measured["wide"][0]
            .as_str()
            .unwrap()
            .starts_with("TABLE 8..608"),
        "{measured}"
    );
    assert_eq!(measured["note"], Value::Null);
}
