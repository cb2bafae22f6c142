//! Source and revision of a project from git, for the `org.opencontainers.image.*` labels.

use std::path::Path;
use std::process::{Command, Stdio};

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Vcs {
    pub source: Option<String>,
    pub revision: Option<String>,
}

/// What git says about the repository holding `dir`; empty when it is not one (or no git).
pub fn describe(dir: &Path) -> Vcs {
    let git = |args: &[&str]| -> Option<String> {
        let out = Command::new("git")
            .arg("-C")
            .arg(dir)
            .args(args)
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .output()
            .ok()?;
        let s = String::from_utf8(out.stdout).ok()?.trim().to_string();
        (out.status.success() && !s.is_empty()).then_some(s)
    };
    let Some(revision) = git(&["rev-parse", "HEAD"]) else {
        return Vcs::default();
    };
    Vcs {
        revision: Some(revision),
        source: git(&["config", "--get", "remote.origin.url"]).map(|u| strip_credentials(&u)),
    }
}

/// A remote URL may carry `user:token@`; it must never end up in an image label.
fn strip_credentials(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => {
            let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
            let host = authority
                .rsplit_once('@')
                .map(|(_, h)| h)
                .unwrap_or(authority);
            if path.is_empty() {
                format!("{scheme}://{host}")
            } else {
                format!("{scheme}://{host}/{path}")
            }
        }
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_stripped() {
        for (input, want) in [
            (
                "https://user:tok@example.test/org/repo.git",
                "https://example.test/org/repo.git",
            ),
            (
                "https://example.test/org/repo",
                "https://example.test/org/repo",
            ),
            ("ssh://git@example.test/repo", "ssh://example.test/repo"),
            (
                "git@example.test:org/repo.git",
                "git@example.test:org/repo.git",
            ),
        ] {
            assert_eq!(strip_credentials(input), want);
        }
    }

    #[test]
    fn not_a_repository() {
        let d = tempfile::tempdir().unwrap();
        assert_eq!(describe(d.path()), Vcs::default());
    }
}
