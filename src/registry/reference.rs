//! Image references (`[registry/]repository[:tag]`), as given to `-t/--tag`.

use std::fmt;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reference {
    /// `host[:port]` when the first component names one.
    pub registry: Option<String>,
    pub repository: String,
    pub tag: String,
    /// `sha256:...` when the reference pins a digest (bases only; a new image has none yet).
    pub digest: Option<String>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid image reference {input:?}: {why}")]
pub struct ReferenceError {
    input: String,
    why: &'static str,
}

impl Reference {
    /// A name for a new image: `[registry/]repository[:tag]`.
    pub fn parse(input: &str) -> Result<Reference, ReferenceError> {
        if input.contains('@') {
            return Err(ReferenceError {
                input: input.to_string(),
                why: "a digest cannot be used as a name; give a tag",
            });
        }
        Reference::parse_pinned(input)
    }

    /// An existing image, possibly pinned: `[registry/]repository[:tag][@sha256:hex]`.
    pub fn parse_pinned(input: &str) -> Result<Reference, ReferenceError> {
        let err = |why| ReferenceError {
            input: input.to_string(),
            why,
        };
        let (input, digest) = match input.split_once('@') {
            Some((name, d)) => {
                let hex = d.strip_prefix("sha256:").unwrap_or("");
                if hex.len() != 64 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
                    return Err(err("a digest is sha256: and 64 hex digits"));
                }
                (name, Some(d.to_string()))
            }
            None => (input, None),
        };
        let (name, tag) = match input.rsplit_once(':') {
            Some((n, t)) if !t.contains('/') => (n, t),
            _ => (input, "latest"),
        };
        if !valid_tag(tag) {
            return Err(err(
                "a tag is 1-128 of [A-Za-z0-9_.-], not starting with . or -",
            ));
        }
        let (registry, repository) = match name.split_once('/') {
            Some((first, rest))
                if first.contains('.') || first.contains(':') || first == "localhost" =>
            {
                (Some(first.to_string()), rest)
            }
            _ => (None, name),
        };
        // The distribution spec's limit on a repository's name, as docker enforces it.
        if name.len() > 255 {
            return Err(err(
                "a name ([registry/]repository) is at most 255 characters",
            ));
        }
        if repository.is_empty() || !repository.split('/').all(valid_component) {
            return Err(err(
                "repository components are lowercase letters and digits, separated by . _ or -",
            ));
        }
        Ok(Reference {
            registry,
            repository: repository.to_string(),
            tag: tag.to_string(),
            digest,
        })
    }

    /// The default name for an image of program `name`: `<name>:latest`, made valid.
    pub fn for_program(name: &str) -> Reference {
        let mut repo = String::new();
        for c in name.chars().flat_map(char::to_lowercase) {
            let ok = c.is_ascii_lowercase() || c.is_ascii_digit();
            if ok {
                repo.push(c);
            } else if !repo.is_empty() && !repo.ends_with('-') {
                repo.push('-');
            }
        }
        let repo = repo.trim_end_matches('-');
        Reference {
            registry: None,
            repository: if repo.is_empty() { "app" } else { repo }.to_string(),
            tag: "latest".into(),
            digest: None,
        }
    }

    /// The repository's path on its registry: Docker Hub's official images live under
    /// `library/`.
    pub fn repository_path(&self) -> String {
        if self.registry.is_none() && !self.repository.contains('/') {
            format!("library/{}", self.repository)
        } else {
            self.repository.clone()
        }
    }

    /// The fully qualified name containerd and podman record (`docker.io/library/x:tag`).
    pub fn qualified(&self) -> String {
        match self.registry.as_deref() {
            Some("docker.io" | "index.docker.io") if !self.repository.contains('/') => {
                format!("docker.io/library/{}:{}", self.repository, self.tag)
            }
            Some(r) => format!("{r}/{}:{}", self.repository, self.tag),
            None if self.repository.contains('/') => {
                format!("docker.io/{}:{}", self.repository, self.tag)
            }
            None => format!("docker.io/library/{}:{}", self.repository, self.tag),
        }
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(r) = &self.registry {
            write!(f, "{r}/")?;
        }
        write!(f, "{}:{}", self.repository, self.tag)?;
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

fn valid_tag(t: &str) -> bool {
    !t.is_empty()
        && t.len() <= 128
        && !t.starts_with(['.', '-'])
        && t.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

/// Docker's grammar: `[a-z0-9]+` runs joined by one `.`, one or two `_`, or any number of `-`.
fn valid_component(c: &str) -> bool {
    let alnum = |ch: char| ch.is_ascii_lowercase() || ch.is_ascii_digit();
    if c.is_empty() || !c.starts_with(alnum) || !c.ends_with(alnum) {
        return false;
    }
    let mut sep = String::new();
    for ch in c.chars() {
        if alnum(ch) {
            let ok = matches!(sep.as_str(), "" | "." | "_" | "__") || sep.chars().all(|x| x == '-');
            if !ok {
                return false;
            }
            sep.clear();
        } else if matches!(ch, '.' | '_' | '-') {
            sep.push(ch);
        } else {
            return false;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_table() {
        let cases = [
            ("hello", "hello:latest", "docker.io/library/hello:latest"),
            ("hello:v1", "hello:v1", "docker.io/library/hello:v1"),
            ("me/hello:v1", "me/hello:v1", "docker.io/me/hello:v1"),
            (
                "127.0.0.1:5000/a/b:c",
                "127.0.0.1:5000/a/b:c",
                "127.0.0.1:5000/a/b:c",
            ),
            ("localhost/x", "localhost/x:latest", "localhost/x:latest"),
        ];
        for (input, shown, qualified) in cases {
            let r = Reference::parse(input).unwrap();
            assert_eq!(r.to_string(), shown);
            assert_eq!(r.qualified(), qualified);
        }
        assert_eq!(
            Reference::parse("docker.io/hello").unwrap().qualified(),
            "docker.io/library/hello:latest"
        );
        assert!(Reference::parse("a__b/c-----d/e.f").is_ok());
        for bad in [
            "",
            "Hello",
            "a:",
            "a:-x",
            "a@sha256:00",
            "a//b",
            "-a",
            "a..b",
            "a___b",
            "a._b",
        ] {
            assert!(Reference::parse(bad).is_err(), "{bad} accepted");
        }
        let d = format!("sha256:{}", "ab".repeat(32));
        let pinned = Reference::parse_pinned(&format!("alpine:3.20@{d}")).unwrap();
        assert_eq!(pinned.digest.as_deref(), Some(d.as_str()));
        assert_eq!(pinned.to_string(), format!("alpine:3.20@{d}"));
        assert!(Reference::parse(&format!("alpine@{d}")).is_err());
        assert!(Reference::parse_pinned("alpine@sha256:12").is_err());
    }

    #[test]
    fn program_names_become_valid_references() {
        for (name, want) in [
            ("hello", "hello:latest"),
            ("Hello_World.v2", "hello-world-v2:latest"),
            ("__", "app:latest"),
        ] {
            let r = Reference::for_program(name);
            assert_eq!(r.to_string(), want);
            assert_eq!(Reference::parse(&r.to_string()).unwrap(), r);
        }
    }

    #[test]
    fn names_over_255_characters_are_refused() {
        let long = format!("team/{}", "a".repeat(251));
        assert_eq!(long.len(), 256);
        let e = Reference::parse(&long).unwrap_err().to_string();
        assert!(e.contains("at most 255 characters"), "{e}");
        assert!(Reference::parse(&long[1..]).is_ok());
    }
}
