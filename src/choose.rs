//! The base policy: which base image a binary gets, and why. One small function that later
//! bases (alpine, registry images) join.

use crate::inspect::Linkage;
use serde::Serialize;
use std::fmt;

/// What the user asked for with `--base`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum BaseRequest {
    /// Pick from what the binary needs: static -> scratch, dynamic -> closure.
    #[default]
    Auto,
    /// An empty filesystem (plus the files every binpack image carries).
    Scratch,
    /// The interpreter and every shared library the binary needs, copied from the build root.
    Closure,
}

/// The base the image is built on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Base {
    Scratch,
    Closure,
}

impl fmt::Display for Base {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Base::Scratch => "scratch",
            Base::Closure => "closure",
        })
    }
}

/// A decision and the sentence that explains it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Choice {
    pub base: Base,
    pub reason: String,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ChooseError {
    #[error("--base scratch cannot run this binary: it is dynamically linked and scratch has none of what it needs: {}; use --base closure (or auto)", missing.join(", "))]
    ScratchCannotRun { missing: Vec<String> },
}

/// Decides the base for a binary with `linkage`.
pub fn choose(linkage: &Linkage, request: BaseRequest) -> Result<Choice, ChooseError> {
    let needs = || -> String {
        let libc = linkage.libc().unwrap_or("no libc");
        format!(
            "{libc} dynamic binary: interpreter {} and {} needed {}",
            linkage.interpreter.as_deref().unwrap_or("(none)"),
            linkage.needed.len(),
            if linkage.needed.len() == 1 {
                "library"
            } else {
                "libraries"
            }
        )
    };
    Ok(match request {
        BaseRequest::Auto if linkage.is_static => Choice {
            base: Base::Scratch,
            reason: "static binary (no interpreter, no needed libraries): nothing else to ship"
                .into(),
        },
        BaseRequest::Auto => Choice {
            base: Base::Closure,
            reason: format!("{}: copying exactly those and what they need", needs()),
        },
        BaseRequest::Scratch if linkage.is_static => Choice {
            base: Base::Scratch,
            reason: "forced by --base scratch; the binary is static".into(),
        },
        BaseRequest::Scratch => {
            let missing = linkage
                .interpreter
                .iter()
                .chain(linkage.needed.iter())
                .cloned()
                .collect();
            return Err(ChooseError::ScratchCannotRun { missing });
        }
        BaseRequest::Closure => Choice {
            base: Base::Closure,
            reason: if linkage.is_static {
                "forced by --base closure; the binary is static, so the closure is empty".into()
            } else {
                format!("forced by --base closure; {}", needs())
            },
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::platform::Platform;

    fn linkage(interp: Option<&str>, needed: &[&str]) -> Linkage {
        Linkage {
            platform: Platform::linux("amd64"),
            is_static: interp.is_none() && needed.is_empty(),
            interpreter: interp.map(String::from),
            needed: needed.iter().map(|s| s.to_string()).collect(),
            runpath: vec![],
            rpath: vec![],
            go: None,
        }
    }

    #[test]
    fn policy_table() {
        let stat = linkage(None, &[]);
        let glibc = linkage(Some("/lib64/ld-linux-x86-64.so.2"), &["libc.so.6"]);
        let musl = linkage(Some("/lib/ld-musl-x86_64.so.1"), &["libc.musl-x86_64.so.1"]);
        let cases = [
            (&stat, BaseRequest::Auto, Ok(Base::Scratch)),
            (&glibc, BaseRequest::Auto, Ok(Base::Closure)),
            (&musl, BaseRequest::Auto, Ok(Base::Closure)),
            (&stat, BaseRequest::Scratch, Ok(Base::Scratch)),
            (&stat, BaseRequest::Closure, Ok(Base::Closure)),
            (&glibc, BaseRequest::Closure, Ok(Base::Closure)),
            (
                &glibc,
                BaseRequest::Scratch,
                Err(vec!["/lib64/ld-linux-x86-64.so.2", "libc.so.6"]),
            ),
        ];
        for (l, req, want) in cases {
            let got = choose(l, req).map(|c| c.base).map_err(|e| match e {
                ChooseError::ScratchCannotRun { missing } => missing,
            });
            let want = want.map_err(|m| m.iter().map(|s| s.to_string()).collect::<Vec<_>>());
            assert_eq!(got, want, "{req:?} on {:?}", l.interpreter);
        }
    }

    #[test]
    fn reasons_name_the_cause() {
        let glibc = linkage(Some("/lib64/ld-linux-x86-64.so.2"), &["libc.so.6"]);
        let c = choose(&glibc, BaseRequest::Auto).unwrap();
        assert!(c.reason.contains("glibc dynamic binary"), "{}", c.reason);
        let e = choose(&glibc, BaseRequest::Scratch)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("libc.so.6") && e.contains("--base closure"),
            "{e}"
        );
    }
}
