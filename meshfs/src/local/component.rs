//! A name from the server as one local path component. Folder and entry
//! names come from other people (through a server that may be old or
//! hostile), so meshfs never takes one as a path: a name becomes exactly
//! one component, the way rclone's `encoder` does it for the local file
//! system (its `Base` encoding, `Zero|Slash|Dot`): `/` is written as
//! U+FF0F FULLWIDTH SOLIDUS, NUL as U+2400 SYMBOL FOR NULL, a name that is
//! `.` or `..` as U+FF0E FULLWIDTH FULL STOP once or twice. An empty name
//! is shown as U+2400 too, and a name longer than a component may be is
//! cut at [`MAX_NAME_LEN`] bytes. Names that need none of it are left as
//! they are, and so is every encoded name, so it can be applied twice.
//! The mapping is one way: a name a user types (`mkdir`, `mv`) is sent
//! as typed.

use mesh_protocol::folder::MAX_NAME_LEN;
use std::path::{Component, Path, PathBuf};

const SOLIDUS: char = '\u{ff0f}';
const NULL: char = '\u{2400}';
const FULL_STOP: &str = "\u{ff0e}";

/// `name` as one path component that a local file system and the kernel
/// accept.
pub fn component(name: &str) -> String {
    let mut out = match name {
        "" => NULL.to_string(),
        "." => FULL_STOP.to_owned(),
        ".." => FULL_STOP.repeat(2),
        _ => name
            .chars()
            .map(|c| match c {
                '/' => SOLIDUS,
                '\0' => NULL,
                c => c,
            })
            .collect(),
    };
    if out.len() > MAX_NAME_LEN {
        let mut end = MAX_NAME_LEN;
        while !out.is_char_boundary(end) {
            end -= 1;
        }
        out.truncate(end);
    }
    out
}

/// `base/NAME` with `name` made one [`component`], checked to be a direct
/// child of `base`: the only way meshfs puts a server's name on disk.
pub fn join(base: &Path, name: &str) -> std::io::Result<PathBuf> {
    let one = component(name);
    let path = base.join(&one);
    let mut parts = Path::new(&one).components();
    match (parts.next(), parts.next()) {
        (Some(Component::Normal(part)), None)
            if part == one.as_str() && path.parent() == Some(base) =>
        {
            Ok(path)
        }
        _ => Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("the name {name:?} is not one path component"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_names_are_kept() {
        for name in [
            "Photos",
            "report (conflict from laptop 2026-11-27).docx",
            "...",
            ".hidden",
            "a\\b",
            "日本",
        ] {
            assert_eq!(component(name), name);
        }
    }

    #[test]
    fn unrepresentable_names_are_escaped() {
        assert_eq!(component("a/b"), "a\u{ff0f}b");
        assert_eq!(component("/tmp/x"), "\u{ff0f}tmp\u{ff0f}x");
        assert_eq!(component("../../x"), "..\u{ff0f}..\u{ff0f}x");
        assert_eq!(component("."), "\u{ff0e}");
        assert_eq!(component(".."), "\u{ff0e}\u{ff0e}");
        assert_eq!(component(""), "\u{2400}");
        assert_eq!(component("a\0b"), "a\u{2400}b");
    }

    #[test]
    fn escaping_twice_changes_nothing_more() {
        for name in ["a/b", "..", ".", "", "x\0", &"/".repeat(255)] {
            let once = component(name);
            assert_eq!(component(&once), once, "{name:?}");
        }
    }

    #[test]
    fn a_long_name_is_cut_to_a_component_s_length() {
        let long = component(&"/".repeat(255));
        assert!(long.len() <= MAX_NAME_LEN && long.chars().all(|c| c == SOLIDUS));
        assert_eq!(component(&"é".repeat(200)).len(), 254);
    }

    #[test]
    fn a_joined_name_stays_directly_under_its_base() {
        let base = Path::new("/home/ann/.local/share/meshfs/recovered");
        for name in ["../../x", "/tmp/x", "..", ".", "", "a/b", "x\0y", "Photos"] {
            let path = join(base, name).unwrap();
            assert_eq!(path.parent(), Some(base), "{name:?}");
            assert!(path.starts_with(base));
            assert!(
                path.components()
                    .all(|c| matches!(c, Component::RootDir | Component::Normal(_))),
                "{name:?} gave {}",
                path.display()
            );
        }
    }
}
