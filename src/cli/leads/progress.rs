//! Counting for people: `12,345`, `1 lead`, `2 leads`, and the export's
//! progress line on stderr.

/// `12345` as `12,345`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

/// `1 lead`, `2 leads`.
pub fn count(n: u64, noun: &str) -> String {
    if n == 1 {
        return format!("1 {noun}");
    }
    // "delivery" → "deliveries", "body" → "bodies"; "lead" → "leads".
    let plural = match noun.strip_suffix('y') {
        Some(stem) if !stem.ends_with(['a', 'e', 'i', 'o', 'u']) => format!("{stem}ies"),
        _ => format!("{noun}s"),
    };
    format!("{} {plural}", thousands(n))
}

/// "exported 12,000 leads…" on stderr, rewritten in place after each page;
/// only when stderr is a terminal, so logs and pipes stay clean.
pub(super) struct Progress {
    on_terminal: bool,
    shown: bool,
}

impl Progress {
    pub(super) fn new(on_terminal: bool) -> Self {
        Self {
            on_terminal,
            shown: false,
        }
    }

    pub(super) fn update(&mut self, written: u64) {
        self.update_with("exported", written);
    }

    /// "<verb> 12,000 leads…".
    pub(super) fn update_with(&mut self, verb: &str, done: u64) {
        if self.on_terminal {
            eprint!("\r{verb} {}…", count(done, "lead"));
            self.shown = true;
        }
    }

    /// Ends the progress line, if any, before an error is printed.
    pub(super) fn abandon(&mut self) {
        if self.shown {
            eprintln!();
            self.shown = false;
        }
    }

    /// Replaces the progress line with `summary` (printed either way).
    pub(super) fn finish(&mut self, summary: &str) {
        if self.shown {
            // Clear what is left of the progress line.
            eprintln!("\r{summary}\x1b[K");
        } else {
            eprintln!("{summary}");
        }
        self.shown = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_have_thousands_separators() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1_000), "1,000");
        assert_eq!(thousands(100_000), "100,000");
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(count(1, "lead"), "1 lead");
        assert_eq!(count(12_000, "lead"), "12,000 leads");
        assert_eq!(count(2, "delivery"), "2 deliveries");
        assert_eq!(count(0, "body"), "0 bodies");
        assert_eq!(count(3, "day"), "3 days");
    }
}
