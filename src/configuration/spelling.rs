//! Names that are nearly the name of a setting the handler reads. A typo
//! in an app setting's name is otherwise silent: `TEAMS_WEBHOK_URL` leaves
//! Teams off, `DIGEST_SCHEDUEL` leaves the digest hourly. Each near miss
//! becomes a start-up warning saying which name was probably meant.

use super::environment::LABEL_SEPARATOR;
use super::ConfigWarning;

/// Names the Functions platform, the host or the OS own: never ours, never
/// a typo of ours.
const NOT_OURS: &[&str] = &[
    "FUNCTIONS_",
    "AzureWebJobs",
    "AzureFunctionsJobHost",
    "AZURE_FUNCTIONS_",
    "WEBSITE",
    "APPSETTING_",
    "APPLICATIONINSIGHTS_",
    "IDENTITY_",
    "MSI_",
    "CONTAINER_",
    "SCM_",
];

/// A warning for each name in `written` that is not one of `known` but
/// nearly is (one or two letters off, or only its case differs), naming
/// the setting it probably meant. A `__<label>` on a name is kept: a typo
/// of `TEAMS_OFFERS__sales` is reported as such.
pub fn near_misses<'a>(
    written: impl IntoIterator<Item = &'a str>,
    known: &[String],
) -> Vec<ConfigWarning> {
    let mut warnings = Vec::new();
    for name in written {
        if known.iter().any(|k| k == name) {
            continue;
        }
        if let Some(meant) = known.iter().find(|k| k.eq_ignore_ascii_case(name)) {
            warnings.push(did_you_mean(name, meant));
            continue;
        }
        if NOT_OURS.iter().any(|prefix| name.starts_with(prefix)) {
            continue;
        }
        let (base, label) = match name.split_once(LABEL_SEPARATOR) {
            Some((base, label)) => (base, Some(label)),
            None => (name, None),
        };
        if known.iter().any(|k| k == base) {
            continue;
        }
        let nearest = known
            .iter()
            .filter(|k| !k.contains(LABEL_SEPARATOR))
            .map(|k| (distance(base, k), k))
            .filter(|(d, k)| is_close(*d, k))
            .min_by_key(|(d, _)| *d);
        if let Some((_, meant)) = nearest {
            let meant = match label {
                Some(label) => format!("{meant}{LABEL_SEPARATOR}{label}"),
                None => meant.clone(),
            };
            warnings.push(did_you_mean(name, &meant));
        }
    }
    warnings
}

/// The one of `candidates` that `word` is probably a typo of.
pub fn nearest<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    candidates
        .iter()
        .map(|c| (distance(word, c), *c))
        .filter(|(d, c)| *d == 0 || is_close(*d, c))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

fn did_you_mean(written: &str, meant: &str) -> ConfigWarning {
    ConfigWarning::new(
        written,
        format!("is not a setting this handler reads (ignored); did you mean {meant}?"),
    )
}

/// Close enough to be a typo rather than another name: one edit, or two
/// in a name long enough that two edits still leave it recognisable.
fn is_close(distance: usize, known: &str) -> bool {
    distance == 1 || (distance == 2 && known.len() >= 10)
}

/// Edits (insert, delete, replace, swap two neighbours) from `a` to `b`,
/// ignoring ASCII case: the optimal string alignment distance.
fn distance(a: &str, b: &str) -> usize {
    let a: Vec<u8> = a.bytes().map(|c| c.to_ascii_uppercase()).collect();
    let b: Vec<u8> = b.bytes().map(|c| c.to_ascii_uppercase()).collect();
    let width = b.len() + 1;
    let mut d = vec![0usize; (a.len() + 1) * width];
    for i in 0..=a.len() {
        d[i * width] = i;
    }
    for (j, cell) in d.iter_mut().enumerate().take(width) {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[(i - 1) * width + j] + 1)
                .min(d[i * width + j - 1] + 1)
                .min(d[(i - 1) * width + j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[(i - 2) * width + j - 2] + 1);
            }
            d[i * width + j] = best;
        }
    }
    d[a.len() * width + b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn known() -> Vec<String> {
        [
            "NOTIFY_TO",
            "TEAMS_WEBHOOK_URL",
            "TEAMS_OFFERS",
            "DIGEST_SCHEDULE",
            "DIGEST_TO",
            "AzureWebJobsStorage__accountName",
            "RUST_LOG",
        ]
        .map(String::from)
        .to_vec()
    }

    fn meant(written: &[&str]) -> Vec<String> {
        near_misses(written.iter().copied(), &known())
            .into_iter()
            .map(|w| {
                w.message
                    .rsplit("did you mean ")
                    .next()
                    .unwrap_or("")
                    .to_owned()
            })
            .collect()
    }

    #[test]
    fn typos_are_named_with_what_was_meant() {
        assert_eq!(
            meant(&[
                "NOTIFY_T0",
                "TEAMS_WEBHOK_URL",
                "TEAMS_OFFER__x",
                "DIGEST_SCHEDUEL",
                "notify_to",
                "AzureWebJobsStorage__AccountName",
            ]),
            [
                "NOTIFY_TO?",
                "TEAMS_WEBHOOK_URL?",
                "TEAMS_OFFERS__x?",
                "DIGEST_SCHEDULE?",
                "NOTIFY_TO?",
                "AzureWebJobsStorage__accountName?",
            ]
        );
    }

    #[test]
    fn other_names_are_left_alone() {
        assert!(meant(&[
            "NOTIFY_TO",
            "TEAMS_WEBHOOK_URL__sales",
            "PATH",
            "HOME",
            "FUNCTIONS_CUSTOMHANDLER_PORT",
            "AzureWebJobs.LeadDeliver.Disabled",
            "APPLICATIONINSIGHTS_CONNECTION_STRING",
            "RUST_BACKTRACE",
            "DIGEST",
        ])
        .is_empty());
    }

    #[test]
    fn distance_counts_swaps_as_one_edit() {
        assert_eq!(distance("SCHEDUEL", "SCHEDULE"), 1);
        assert_eq!(distance("abc", "ABC"), 0);
        assert_eq!(distance("", "abc"), 3);
        assert_eq!(distance("NOTIFY_TO", "DIGEST_TO"), 6);
    }
}
