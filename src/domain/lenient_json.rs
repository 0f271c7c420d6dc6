//! Recovering JSON that is almost right. Some senders emit text a strict
//! parser refuses although its meaning is plain: a lone UTF-16 surrogate
//! escape (`"\ud800"`, half of an emoji cut in two) or a number too large
//! for a double (`1e400`). Such a lead must not be lost for it. [`repair`]
//! rewrites just those tokens — the surrogate as U+FFFD, the number as a
//! string of its digits — and leaves everything else, including every
//! other error, to the parser. The raw body is always kept as received.

/// The text with lone surrogate escapes and out-of-range numbers made
/// parseable; `None` when there was nothing to repair.
pub fn repair(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len() + 8);
    let mut changed = false;
    let mut i = 0;
    let mut in_string = false;
    while i < bytes.len() {
        let b = bytes[i];
        if in_string {
            match b {
                b'\\' if bytes.get(i + 1) == Some(&b'u') => {
                    let unit = hex4(bytes, i + 2);
                    match unit {
                        Some(high @ 0xD800..=0xDBFF) => {
                            let low = (bytes.get(i + 6) == Some(&b'\\')
                                && bytes.get(i + 7) == Some(&b'u'))
                            .then(|| hex4(bytes, i + 8))
                            .flatten();
                            if matches!(low, Some(0xDC00..=0xDFFF)) {
                                out.push_str(&text[i..i + 12]);
                                i += 12;
                            } else {
                                let _ = high;
                                out.push_str("\\uFFFD");
                                changed = true;
                                i += 6;
                            }
                        }
                        Some(0xDC00..=0xDFFF) => {
                            out.push_str("\\uFFFD");
                            changed = true;
                            i += 6;
                        }
                        _ => {
                            // An ordinary escape, or a broken one for the
                            // parser to report.
                            out.push_str(&text[i..i + 2]);
                            i += 2;
                        }
                    }
                }
                b'\\' => {
                    let end = (i + 2).min(bytes.len());
                    out.push_str(&text[i..end]);
                    i = end;
                }
                b'"' => {
                    in_string = false;
                    out.push('"');
                    i += 1;
                }
                _ => {
                    let end = next_char_boundary(text, i);
                    out.push_str(&text[i..end]);
                    i = end;
                }
            }
        } else if b == b'"' {
            in_string = true;
            out.push('"');
            i += 1;
        } else if b == b'-' || b.is_ascii_digit() {
            let end = i + bytes[i..]
                .iter()
                .take_while(|c| c.is_ascii_digit() || matches!(c, b'-' | b'+' | b'.' | b'e' | b'E'))
                .count();
            let token = &text[i..end];
            if token.parse::<f64>().is_ok_and(f64::is_infinite) {
                out.push('"');
                out.push_str(token);
                out.push('"');
                changed = true;
            } else {
                out.push_str(token);
            }
            i = end;
        } else {
            let end = next_char_boundary(text, i);
            out.push_str(&text[i..end]);
            i = end;
        }
    }
    changed.then_some(out)
}

fn hex4(bytes: &[u8], at: usize) -> Option<u32> {
    let digits = bytes.get(at..at + 4)?;
    let text = std::str::from_utf8(digits).ok()?;
    u32::from_str_radix(text, 16).ok()
}

fn next_char_boundary(text: &str, i: usize) -> usize {
    let mut end = i + 1;
    while !text.is_char_boundary(end) {
        end += 1;
    }
    end
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parses(text: &str) -> serde_json::Value {
        serde_json::from_str(text).expect(text)
    }

    #[test]
    fn lone_surrogates_become_the_replacement_character() {
        let repaired = repair(r#"{"a":"x\ud800y","b":"\udc00","c":"😀\ud83d\ude00"}"#).unwrap();
        let value = parses(&repaired);
        assert_eq!(value["a"], "x\u{FFFD}y");
        assert_eq!(value["b"], "\u{FFFD}");
        assert_eq!(value["c"], "😀😀", "a proper pair is kept");
        let cut = repair(r#"{"a":"\ud83d"}"#).unwrap();
        assert_eq!(parses(&cut)["a"], "\u{FFFD}");
    }

    #[test]
    fn numbers_beyond_a_double_become_strings() {
        let repaired = repair(r#"{"n":1e400,"m":-2E+999,"ok":12.5,"s":"1e400"}"#).unwrap();
        let value = parses(&repaired);
        assert_eq!(value["n"], "1e400");
        assert_eq!(value["m"], "-2E+999");
        assert_eq!(value["ok"], 12.5);
        assert_eq!(value["s"], "1e400", "text inside strings is untouched");
    }

    #[test]
    fn nothing_to_repair_and_other_errors_are_left_alone() {
        assert_eq!(repair(r#"{"a":"\\ud800 is text","b":1}"#), None);
        assert_eq!(
            repair(r#"{ "a": "x" "b": "y" }"#),
            None,
            "a missing comma is not guessed"
        );
        assert_eq!(repair("{\"a\":\"\\"), None);
        assert_eq!(repair("{\"é\":\"ü\\n\"}"), None);
    }
}
