//! Credentials the way docker finds them: `$DOCKER_CONFIG/config.json` (else
//! `~/.docker/config.json`): `credHelpers`, `auths`, `credsStore` through
//! `docker-credential-<helper> get` (the docker_credential crate reads the file and runs the
//! helpers). Secrets never reach Debug output or error messages.

use base64::Engine;
use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;

/// A secret for one registry.
pub enum Credential {
    UsernamePassword(String, String),
    /// An identity token (a helper answering with username `<token>`): sent as the password
    /// of the token request, which registries that issue such tokens accept.
    IdentityToken(String),
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Credential::UsernamePassword(u, _) => write!(f, "UsernamePassword({u:?}, <redacted>)"),
            Credential::IdentityToken(_) => f.write_str("IdentityToken(<redacted>)"),
        }
    }
}

impl Credential {
    /// `Basic base64(user:secret)`.
    pub fn basic_header(&self) -> String {
        let pair = match self {
            Credential::UsernamePassword(u, p) => format!("{u}:{p}"),
            Credential::IdentityToken(t) => format!("<token>:{t}"),
        };
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(pair)
        )
    }
}

/// What was found for a registry, and where binpack looked (for error messages).
#[derive(Debug)]
pub struct Credentials {
    pub credential: Option<Credential>,
    pub looked: String,
}

/// The Docker config file docker itself would read.
pub fn config_path() -> PathBuf {
    match std::env::var_os("DOCKER_CONFIG").filter(|d| !d.is_empty()) {
        Some(d) => PathBuf::from(d).join("config.json"),
        None => {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".docker/config.json")
        }
    }
}

impl Credentials {
    pub fn for_registry(registry: &str) -> Credentials {
        let path = config_path();
        let looked = path.display().to_string();
        let Ok(file) = std::fs::File::open(&path) else {
            return Credentials {
                credential: None,
                looked: format!("{looked} (not found)"),
            };
        };
        let text = std::io::read_to_string(file).unwrap_or_default();
        // Docker Hub's entry is keyed by its v1 URL; others by host[:port], sometimes with a scheme.
        let keys: Vec<String> = if matches!(registry, "docker.io" | "index.docker.io") {
            vec!["https://index.docker.io/v1/".into(), "docker.io".into()]
        } else {
            vec![
                registry.to_string(),
                format!("https://{registry}"),
                format!("http://{registry}"),
            ]
        };
        for key in keys {
            match docker_credential::get_credential_from_reader(text.as_bytes(), &key) {
                Ok(docker_credential::DockerCredential::UsernamePassword(u, p)) => {
                    return Credentials {
                        credential: Some(Credential::UsernamePassword(u, p)),
                        looked,
                    }
                }
                Ok(docker_credential::DockerCredential::IdentityToken(t)) => {
                    return Credentials {
                        credential: Some(Credential::IdentityToken(t)),
                        looked,
                    }
                }
                Err(_) => continue,
            }
        }
        Credentials {
            credential: None,
            looked,
        }
    }
}

/// Parses `realm="...",service="...",scope="..."`.
pub fn parse_challenge(params: &str) -> HashMap<String, String> {
    let mut out = HashMap::new();
    let mut rest = params.trim();
    while !rest.is_empty() {
        let Some((key, after)) = rest.split_once('=') else {
            break;
        };
        let key = key
            .trim()
            .trim_start_matches(',')
            .trim()
            .to_ascii_lowercase();
        let (value, after) = if let Some(q) = after.strip_prefix('"') {
            match q.find('"') {
                Some(end) => (&q[..end], &q[end + 1..]),
                None => (q, ""),
            }
        } else {
            match after.find(',') {
                Some(end) => (&after[..end], &after[end..]),
                None => (after, ""),
            }
        };
        out.insert(key, value.to_string());
        rest = after.trim_start_matches(',').trim();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges() {
        let p = parse_challenge(
            r#"realm="https://auth.example.test/token",service="registry.example.test",scope="repository:a/b:pull,push""#,
        );
        assert_eq!(p["realm"], "https://auth.example.test/token");
        assert_eq!(p["service"], "registry.example.test");
        assert_eq!(p["scope"], "repository:a/b:pull,push");
        assert_eq!(parse_challenge("realm=x, service=y")["service"], "y");
    }

    #[test]
    fn secrets_stay_out_of_debug_output() {
        let c = Credential::UsernamePassword("alice".into(), "hunter2".into());
        let shown = format!("{c:?}");
        assert!(
            shown.contains("alice") && !shown.contains("hunter2"),
            "{shown}"
        );
        assert_eq!(c.basic_header(), "Basic YWxpY2U6aHVudGVyMg==");
        let t = Credential::IdentityToken("s3cret".into());
        assert!(!format!("{t:?}").contains("s3cret"));
    }
}
