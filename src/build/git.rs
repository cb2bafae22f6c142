//! Source and revision of a project from git, for the `org.opencontainers.image.*` labels.
//! A work tree with uncommitted changes to tracked files is labelled `<revision>-dirty` (what
//! `git describe --dirty` says): HEAD alone would name sources the image was not built from.
//! Untracked files do not count (binpack's own `dist/` would make every second build dirty).

use std::path::Path;
use std::process::{Command, Stdio};

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Vcs {
    pub source: Option<String>,
    /// HEAD, with `-dirty` when tracked files have uncommitted changes.
    pub revision: Option<String>,
    /// The work tree, and the first tracked files with uncommitted changes, when there are any.
    pub dirty: Option<(std::path::PathBuf, Vec<String>)>,
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
    // Tracked files changed against HEAD, staged or not.
    let changed = git(&["diff", "--name-only", "HEAD"]);
    let dirty = changed.map(|c| {
        let top = git(&["rev-parse", "--show-toplevel"]).unwrap_or_default();
        let files = c.lines().take(5).map(str::to_string);
        (std::path::PathBuf::from(top), files.collect())
    });
    Vcs {
        revision: Some(match dirty {
            Some(_) => format!("{revision}-dirty"),
            None => revision,
        }),
        source: git(&["config", "--get", "remote.origin.url"]).and_then(|u| public_url(&u)),
        dirty,
    }
}

impl Vcs {
    /// The warning for a dirty work tree, naming it and what changed.
    pub fn dirty_warning(&self) -> Option<String> {
        let (top, files) = self.dirty.as_ref()?;
        Some(format!(
            "warning: the work tree {} has uncommitted changes ({}{}); the image is labelled revision {}, not a commit (commit them for an image traceable to its source)",
            top.display(),
            files.join(", "),
            if files.len() == 5 { ", ..." } else { "" },
            self.revision.as_deref().unwrap_or("?")
        ))
    }
}

/// The remote as a label: an https URL whatever the clone used (so SSH and HTTPS clones give
/// the same image), without credentials, and nothing for a local path (a host path must not
/// reach the image).
fn public_url(url: &str) -> Option<String> {
    let url = url.trim_end_matches('/');
    if let Some((scheme, _)) = url.split_once("://") {
        return match scheme {
            "https" | "http" | "ssh" | "git" => {
                let u = strip_credentials(url);
                let rest = u.split_once("://").map(|(_, r)| r).unwrap_or(&u);
                // ssh://host:22/path -> https://host/path
                let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
                let host = host.split(':').next().unwrap_or(host);
                Some(format!("https://{host}/{path}"))
            }
            _ => None,
        };
    }
    // scp-like: git@host:org/repo.git
    match url.split_once(':') {
        Some((user_host, path)) if !user_host.contains('/') && !path.starts_with('/') => {
            let host = user_host
                .rsplit_once('@')
                .map(|(_, h)| h)
                .unwrap_or(user_host);
            Some(format!("https://{host}/{path}"))
        }
        _ => None,
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
    fn remotes_become_public_https_urls() {
        for (input, want) in [
            (
                "git@example.test:org/repo.git",
                Some("https://example.test/org/repo.git"),
            ),
            (
                "ssh://git@example.test:22/org/repo.git",
                Some("https://example.test/org/repo.git"),
            ),
            (
                "https://u:tok@example.test/org/repo.git",
                Some("https://example.test/org/repo.git"),
            ),
            ("/home/alice/src/repo", None),
            ("../repo", None),
            ("file:///srv/repo", None),
        ] {
            assert_eq!(public_url(input).as_deref(), want, "{input}");
        }
    }

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
