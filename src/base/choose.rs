//! The base policy: which base image a binary gets, and why. One small function that later
//! bases (alpine, registry images) join.

use crate::elf::inspect::Linkage;
use crate::registry::reference::Reference;
use crate::support::printable::printable;
use serde::Serialize;
use std::fmt;
use std::str::FromStr;

/// What the user asked for with `--base`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum BaseRequest {
    /// From what the binary needs: static -> scratch, musl -> alpine, glibc -> closure.
    #[default]
    Auto,
    /// An empty filesystem (plus the files every binpack image carries).
    Scratch,
    /// The interpreter and every shared library the binary needs, copied from the build root.
    Closure,
    /// The pinned alpine (or `--alpine-base`).
    Alpine,
    /// Any image from a registry.
    Image(Reference),
}

impl FromStr for BaseRequest {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "auto" => BaseRequest::Auto,
            "scratch" => BaseRequest::Scratch,
            "closure" => BaseRequest::Closure,
            "alpine" => BaseRequest::Alpine,
            other => BaseRequest::Image(
                Reference::parse_pinned(other)
                    .map_err(|e| format!("{e} (or one of auto, scratch, closure, alpine)"))?,
            ),
        })
    }
}

/// The base the image is built on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Base {
    Scratch,
    Closure,
    /// Layers from a registry image.
    Image(Reference),
}

impl fmt::Display for Base {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Base::Scratch => f.write_str("scratch"),
            Base::Closure => f.write_str("closure"),
            Base::Image(r) => write!(f, "{r}"),
        }
    }
}

impl Serialize for Base {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// A decision and the sentence that explains it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Choice {
    pub base: Base,
    pub reason: String,
    /// When the base is an image that may not be reachable (offline): the closure serves
    /// instead, and this says why that is fine.
    pub fallback: Option<String>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ChooseError {
    #[error("--base scratch cannot run this binary: it is dynamically linked and scratch has none of what it needs: {}; use --base closure (or auto)", missing.join(", "))]
    ScratchCannotRun { missing: Vec<String> },
}

/// Decides the base for a binary with `linkage`; `alpine` is the alpine image to use.
pub fn choose(
    linkage: &Linkage,
    request: &BaseRequest,
    alpine: &Reference,
) -> Result<Choice, ChooseError> {
    let needs = || -> String {
        let libc = linkage.libc().unwrap_or("no libc");
        format!(
            "{libc} dynamic binary: interpreter {} and {} needed {}",
            printable(linkage.interpreter.as_deref().unwrap_or("(none)")),
            linkage.needed.len(),
            if linkage.needed.len() == 1 {
                "library"
            } else {
                "libraries"
            }
        )
    };
    let choice = |base, reason: String| Choice {
        base,
        reason,
        fallback: None,
    };
    Ok(match request {
        BaseRequest::Auto if linkage.is_static => choice(
            Base::Scratch,
            "static binary (no interpreter, no needed libraries): nothing else to ship".into(),
        ),
        BaseRequest::Auto if linkage.libc() == Some("musl") => Choice {
            base: Base::Image(alpine.clone()),
            reason: format!("{}: alpine is built on musl", needs()),
            fallback: Some(format!(
                "{}: the alpine base cannot be had, so its musl closure is copied instead",
                needs()
            )),
        },
        BaseRequest::Auto => choice(
            Base::Closure,
            format!("{}: copying exactly those and what they need", needs()),
        ),
        BaseRequest::Scratch if linkage.is_static => choice(
            Base::Scratch,
            "forced by --base scratch; the binary is static".into(),
        ),
        BaseRequest::Scratch => {
            let missing = linkage
                .interpreter
                .iter()
                .chain(linkage.needed.iter())
                .map(|n| printable(n).into_owned())
                .collect();
            return Err(ChooseError::ScratchCannotRun { missing });
        }
        BaseRequest::Closure => choice(
            Base::Closure,
            if linkage.is_static {
                "forced by --base closure; the binary is static, so the closure is empty".into()
            } else {
                format!("forced by --base closure; {}", needs())
            },
        ),
        BaseRequest::Alpine => choice(
            Base::Image(alpine.clone()),
            "forced by --base alpine".into(),
        ),
        BaseRequest::Image(r) => choice(Base::Image(r.clone()), "forced by --base".into()),
    })
}

/// The alpine binpack uses when none is configured (`runtimes/bases.json`).
pub fn default_alpine() -> Reference {
    let bases: serde_json::Value = serde_json::from_str(include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/runtimes/bases.json"
    )))
    .expect("runtimes/bases.json is valid JSON");
    Reference::parse_pinned(
        bases["alpine"]["reference"]
            .as_str()
            .expect("alpine pinned"),
    )
    .expect("the pinned alpine reference parses")
}

/// What `binpack inspect` shows too: the ELF as read, its platform, and the base decision.
#[derive(Clone, Debug)]
pub struct Plan {
    pub linkage: Linkage,
    pub platform: crate::support::platform::Platform,
    pub choice: Choice,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::support::platform::Platform;

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

    fn alpine() -> Reference {
        Reference::parse("127.0.0.1:5000/alpine:3").unwrap()
    }

    #[test]
    fn policy_table() {
        let stat = linkage(None, &[]);
        let glibc = linkage(Some("/lib64/ld-linux-x86-64.so.2"), &["libc.so.6"]);
        let musl = linkage(Some("/lib/ld-musl-x86_64.so.1"), &["libc.musl-x86_64.so.1"]);
        let cases = [
            (&stat, BaseRequest::Auto, Ok(Base::Scratch)),
            (&glibc, BaseRequest::Auto, Ok(Base::Closure)),
            (&musl, BaseRequest::Auto, Ok(Base::Image(alpine()))),
            (&glibc, BaseRequest::Alpine, Ok(Base::Image(alpine()))),
            (
                &stat,
                BaseRequest::Image(Reference::parse("x/y:1").unwrap()),
                Ok(Base::Image(Reference::parse("x/y:1").unwrap())),
            ),
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
            let got = choose(l, &req, &alpine())
                .map(|c| c.base)
                .map_err(|e| match e {
                    ChooseError::ScratchCannotRun { missing } => missing,
                });
            let want = want.map_err(|m| m.iter().map(|s| s.to_string()).collect::<Vec<_>>());
            assert_eq!(got, want, "{req:?} on {:?}", l.interpreter);
        }
    }

    #[test]
    fn requests_parse_and_the_default_alpine_is_pinned() {
        assert_eq!("auto".parse::<BaseRequest>().unwrap(), BaseRequest::Auto);
        assert_eq!(
            "alpine".parse::<BaseRequest>().unwrap(),
            BaseRequest::Alpine
        );
        assert!(matches!(
            "gcr.io/distroless/static:nonroot".parse::<BaseRequest>(),
            Ok(BaseRequest::Image(_))
        ));
        assert!("Not A Ref"
            .parse::<BaseRequest>()
            .unwrap_err()
            .contains("auto, scratch, closure, alpine"));
        assert!(default_alpine().digest.is_some());
    }

    #[test]
    fn reasons_name_the_cause() {
        let glibc = linkage(Some("/lib64/ld-linux-x86-64.so.2"), &["libc.so.6"]);
        let c = choose(&glibc, &BaseRequest::Auto, &alpine()).unwrap();
        assert!(c.reason.contains("glibc dynamic binary"), "{}", c.reason);
        assert_eq!(c.fallback, None);
        let musl = linkage(Some("/lib/ld-musl-x86_64.so.1"), &["libc.so"]);
        let c = choose(&musl, &BaseRequest::Auto, &alpine()).unwrap();
        assert!(c.fallback.unwrap().contains("musl closure"));
        let e = choose(&glibc, &BaseRequest::Scratch, &alpine())
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("libc.so.6") && e.contains("--base closure"),
            "{e}"
        );
    }
}
