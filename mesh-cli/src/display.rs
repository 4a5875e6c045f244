//! Text from elsewhere (names, e-mail addresses, titles, a server's error
//! messages), made safe to print for people: control characters would
//! reach the terminal as they are — ESC retitles it or rewrites the screen,
//! a newline forges an output line — and bidirectional controls reorder
//! what is shown. [`escaped`] writes each such character as a visible
//! escape (`\n`, `\t`, `\r`, else `\u{1b}` as Rust writes it) and leaves
//! everything else alone. Every human-readable printer of `meshd` and
//! `meshfs` uses it for what it did not write itself; `--json` output is
//! exact JSON and needs none.

use std::borrow::Cow;

/// Whether `c` must not reach a terminal as it is: a control character
/// (C0, DEL, C1), a bidirectional formatting character, or a line or
/// paragraph separator.
fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{61c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}'
                | '\u{2028}' | '\u{2029}'
        )
}

/// `text` with every character that must not reach a terminal written as
/// a visible escape; borrowed when there is none.
pub fn escaped(text: &str) -> Cow<'_, str> {
    if !text.chars().any(needs_escape) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if needs_escape(c) => out.push_str(&format!("\\u{{{:x}}}", u32::from(c))),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// An error and its causes as one line for a person (`pinning X: access
/// denied`), made safe to print. An operating system error reads as its
/// description alone: its number (`os error 13`) says nothing to a person
/// and stays in the log.
pub fn error_line(error: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut next = Some(error);
    while let Some(e) = next {
        let text = match e.downcast_ref::<std::io::Error>() {
            Some(io) if io.raw_os_error().is_some() => {
                let text = io.to_string();
                match text.rfind(" (os error ") {
                    Some(at) => text[..at].to_owned(),
                    None => text,
                }
            }
            _ => e.to_string(),
        };
        // A cause whose text its context already holds adds nothing.
        if !parts.last().is_some_and(|p| p.ends_with(&text)) {
            parts.push(text);
        }
        next = e.source();
    }
    escaped(&parts.join(": ")).into_owned()
}

#[cfg(test)]
mod tests {
    use super::{error_line, escaped};

    #[derive(Debug)]
    struct Context(&'static str, std::io::Error);

    impl std::fmt::Display for Context {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(self.0)
        }
    }

    impl std::error::Error for Context {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.1)
        }
    }

    #[test]
    fn an_error_line_names_the_cause_without_its_number() {
        // 13 is EACCES on every Linux.
        let e = Context("pinning /tmp/x.tar", std::io::Error::from_raw_os_error(13));
        let line = error_line(&e);
        assert!(line.starts_with("pinning /tmp/x.tar: "), "{line}");
        assert!(!line.contains("os error"), "{line}");
        assert_eq!(
            error_line(&Context("a\u{1b}b", std::io::Error::other("why"))),
            "a\\u{1b}b: why"
        );
    }

    #[test]
    fn plain_text_is_left_alone() {
        for text in [
            "report.docx",
            "Fotos (von anna@example.org)",
            "日本語 ☺ 😀",
            "a\\b \"q\"",
        ] {
            assert!(matches!(escaped(text), std::borrow::Cow::Borrowed(t) if t == text));
        }
    }

    #[test]
    fn controls_become_visible_escapes() {
        assert_eq!(escaped("\u{1b}]0;owned\u{7}"), "\\u{1b}]0;owned\\u{7}");
        assert_eq!(escaped("a\nforged line\r\tx"), "a\\nforged line\\r\\tx");
        assert_eq!(
            escaped("nul\0 del\u{7f} csi\u{9b}"),
            "nul\\u{0} del\\u{7f} csi\\u{9b}"
        );
        assert_eq!(escaped("evil\u{202e}txt.exe"), "evil\\u{202e}txt.exe");
        assert_eq!(escaped("a\u{2028}b"), "a\\u{2028}b");
    }

    #[test]
    fn nothing_escaped_holds_a_control_character() {
        let all: String = (0u32..0x30000).filter_map(char::from_u32).collect();
        assert!(!escaped(&all).chars().any(super::needs_escape));
    }
}
