//! Customer text made safe to show on one line — in a digest, a terminal
//! table, a log field. Customer-entered text is hostile: a line break could
//! fake another entry, an escape sequence could repaint a terminal, and a
//! bidirectional override (U+202E and friends) could make `evil.exe` read
//! as `exe.live`. Each such character becomes a space; everything else,
//! markup included, is left for the renderer to escape.

/// `text` with control and bidirectional-formatting characters replaced by
/// spaces. Borrowed when nothing needed replacing.
pub fn single_line(text: &str) -> std::borrow::Cow<'_, str> {
    if text.chars().any(is_unsafe) {
        text.chars()
            .map(|c| if is_unsafe(c) { ' ' } else { c })
            .collect::<String>()
            .into()
    } else {
        text.into()
    }
}

/// At most `max_chars` characters of `text`, ending in `…` when cut.
pub fn truncated(text: &str, max_chars: usize) -> std::borrow::Cow<'_, str> {
    match text.char_indices().nth(max_chars) {
        None => text.into(),
        Some(_) => {
            let keep: String = text.chars().take(max_chars.saturating_sub(1)).collect();
            format!("{keep}…").into()
        }
    }
}

/// At most `max_units` UTF-16 code units of `text` (how .NET, Dataverse and
/// Salesforce count length), ending in `…` when cut, never inside a
/// surrogate pair.
pub fn truncated_utf16(text: &str, max_units: usize) -> std::borrow::Cow<'_, str> {
    if text.encode_utf16().count() <= max_units {
        return text.into();
    }
    let budget = max_units.saturating_sub(1);
    let mut used = 0;
    let mut keep = String::new();
    for c in text.chars() {
        used += c.len_utf16();
        if used > budget {
            break;
        }
        keep.push(c);
    }
    if max_units > 0 {
        keep.push('…');
    }
    keep.into()
}

fn is_unsafe(c: char) -> bool {
    c.is_control() || is_bidi_control(c)
}

/// The Unicode bidirectional formatting characters: embeddings, overrides,
/// isolates and marks (UAX #9, table 1), plus the Arabic letter mark.
fn is_bidi_control(c: char) -> bool {
    matches!(
        c,
        '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}'
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_and_bidi_overrides_become_spaces() {
        assert_eq!(single_line("a\r\nb\u{0}c"), "a  b c");
        assert_eq!(single_line("red\x1b[31m"), "red [31m");
        assert_eq!(single_line("invoice\u{202E}exe.pdf"), "invoice exe.pdf");
        assert_eq!(single_line("\u{2066}x\u{2069}\u{200F}"), " x  ");
        assert_eq!(single_line("\u{85}next line"), " next line");
    }

    #[test]
    fn ordinary_text_is_borrowed_untouched() {
        for text in ["Zoë 株式会社", "<b>&amp;</b>", "😀 rocket 🚀", ""] {
            assert!(matches!(single_line(text), std::borrow::Cow::Borrowed(t) if t == text));
        }
    }

    #[test]
    fn truncation_counts_characters_and_marks_the_cut() {
        assert_eq!(truncated("abcdef", 6), "abcdef");
        assert_eq!(truncated("abcdefg", 6), "abcde…");
        assert_eq!(truncated("株式会社ファブリカム", 5), "株式会社…");
        assert_eq!(truncated("", 3), "");
    }

    #[test]
    fn utf16_truncation_never_splits_a_pair() {
        assert_eq!(truncated_utf16("abc", 3), "abc");
        assert_eq!(truncated_utf16("abcd", 3), "ab…");
        let emoji = "😀".repeat(50);
        let cut = truncated_utf16(&emoji, 50);
        assert_eq!(cut.encode_utf16().count(), 49);
        assert_eq!(cut.chars().filter(|&c| c == '😀').count(), 24);
        assert_eq!(truncated_utf16("a😀", 2), "a…");
        assert_eq!(truncated_utf16("😀😀", 0), "");
    }
}
