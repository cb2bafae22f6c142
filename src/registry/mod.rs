//! A small blocking client for the OCI distribution API: push (HEAD, cross-repository mount,
//! streamed upload, manifest last) and pull (index -> platform manifest -> config + layers),
//! with Docker-config credentials, bearer and basic auth, and retries with backoff.

pub mod auth;
pub mod pull;
pub mod push;
pub mod records;

use crate::reference::Reference;
use auth::Credentials;
use std::cell::{OnceCell, RefCell};
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;
use ureq::http;

/// Where images are pushed to and pulled from, and how to talk to it.
#[derive(Clone, Debug, Default)]
pub struct RegistryOptions {
    /// Registries (host[:port]) that may be spoken to over plain HTTP besides 127.0.0.1/localhost.
    pub insecure: Vec<String>,
    /// Attempts for one request before giving up (5xx, 429, dropped connections).
    pub attempts: Option<u32>,
}

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("{registry} refused {what} ({status}): {}; credentials were looked for in {looked}", if *had_credentials { "the credentials found there were not accepted" } else { "no credentials for it were found" })]
    Auth {
        registry: String,
        what: String,
        status: u16,
        looked: String,
        had_credentials: bool,
    },
    #[error("{registry}: {what} failed after {attempts} attempts: {last}")]
    Unavailable {
        registry: String,
        what: String,
        attempts: u32,
        last: String,
    },
    #[error("{registry}: {what}: unexpected answer {status}: {body}")]
    Status {
        registry: String,
        what: String,
        status: u16,
        body: String,
    },
    #[error("{registry}: {what}: {why}")]
    Protocol {
        registry: String,
        what: String,
        why: String,
    },
    #[error("{0} has no image {1}")]
    NotFound(String, String),
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("credentials for {registry}: {why}")]
    Credentials { registry: String, why: String },
}

/// What a request sends.
pub(crate) enum Body<'a> {
    Empty,
    Bytes(&'a [u8]),
    /// Streamed from disk (reopened on each attempt).
    File(&'a Path),
}

/// A connection to one repository of one registry.
pub struct Client {
    agent: ureq::Agent,
    /// `host[:port]` as the user wrote it (docker.io for Docker Hub).
    pub registry: String,
    base: String,
    pub repository: String,
    /// Read when the registry first asks for them: running a credential helper for nothing
    /// is slow, and may prompt.
    credentials: OnceCell<Credentials>,
    /// The Authorization header that last worked.
    authorization: RefCell<Option<String>>,
    attempts: u32,
}

/// Docker Hub's API lives elsewhere than its name.
fn endpoint(registry: &str) -> &str {
    match registry {
        "docker.io" | "index.docker.io" => "registry-1.docker.io",
        other => other,
    }
}

/// Plain HTTP only for the loopback and registries the user listed.
fn is_insecure(registry: &str, opts: &RegistryOptions) -> bool {
    let host = registry
        .rsplit_once(':')
        .map(|(h, _)| h)
        .unwrap_or(registry);
    host == "localhost"
        || host.starts_with("127.")
        || host == "[::1]"
        || opts.insecure.iter().any(|r| r == registry)
}

impl Client {
    pub fn new(reference: &Reference, opts: &RegistryOptions) -> Result<Client, RegistryError> {
        let registry = reference
            .registry
            .clone()
            .unwrap_or_else(|| "docker.io".to_string());
        let repository = reference.repository_path();
        let scheme = if is_insecure(&registry, opts) {
            "http"
        } else {
            "https"
        };
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(5)
            .timeout_connect(Some(Duration::from_secs(10)))
            .timeout_recv_response(Some(Duration::from_secs(120)))
            .build()
            .into();
        Ok(Client {
            agent,
            base: format!("{scheme}://{}", endpoint(&registry)),
            credentials: OnceCell::new(),
            registry,
            repository,
            authorization: RefCell::new(None),
            attempts: opts.attempts.unwrap_or(6).max(1),
        })
    }

    fn credentials(&self) -> &Credentials {
        self.credentials
            .get_or_init(|| Credentials::for_registry(&self.registry))
    }

    fn url(&self, path: &str) -> String {
        format!("{}/v2/{}/{path}", self.base, self.repository)
    }

    /// A Location header made absolute.
    fn absolute(&self, location: &str) -> String {
        if location.starts_with("http://") || location.starts_with("https://") {
            location.to_string()
        } else {
            format!("{}{location}", self.base)
        }
    }

    /// Sends one request: authenticates when challenged, retries 5xx, 429 and dropped
    /// connections with exponential backoff. Returns any other answer to the caller.
    pub(crate) fn send(
        &self,
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        body: &Body,
        what: &str,
    ) -> Result<http::Response<ureq::Body>, RegistryError> {
        let mut last = String::new();
        let mut authenticated = false;
        let mut attempt = 0;
        while attempt < self.attempts {
            if attempt > 0 {
                // 0.2 s, 0.4 s, 0.8 s ... capped at 5 s.
                let wait = Duration::from_millis(200u64 << (attempt - 1).min(5));
                std::thread::sleep(wait.min(Duration::from_secs(5)));
            }
            attempt += 1;
            let mut req = http::Request::builder().method(method).uri(url);
            for (k, v) in headers {
                req = req.header(*k, *v);
            }
            if let Some(a) = self.authorization.borrow().as_ref() {
                req = req.header("Authorization", a);
            }
            let result = match body {
                Body::Empty => self.agent.run(
                    req.header("Content-Length", "0")
                        .body(&b""[..])
                        .map_err(|e| self.protocol(what, e))?,
                ),
                Body::Bytes(b) => self
                    .agent
                    .run(req.body(*b).map_err(|e| self.protocol(what, e))?),
                Body::File(p) => {
                    let f = File::open(p).map_err(|source| RegistryError::Io {
                        path: p.to_path_buf(),
                        source,
                    })?;
                    self.agent
                        .run(req.body(f).map_err(|e| self.protocol(what, e))?)
                }
            };
            let resp = match result {
                Ok(r) => r,
                // A dropped or refused connection, or a timeout, may pass; a name that does not
                // resolve or a malformed request will not.
                // (getaddrinfo failures arrive as I/O errors too; only their text tells them apart.)
                Err(
                    e @ (ureq::Error::Io(_)
                    | ureq::Error::Timeout(_)
                    | ureq::Error::ConnectionFailed),
                ) if !e.to_string().contains("failed to lookup address") => {
                    last = e.to_string();
                    continue;
                }
                Err(e) => return Err(self.protocol(what, e)),
            };
            let status = resp.status().as_u16();
            if status == 401 && !authenticated {
                authenticated = true;
                let challenge = resp
                    .headers()
                    .get("WWW-Authenticate")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .to_string();
                self.authenticate(&challenge, what)?;
                attempt -= 1; // the challenge is not a failed attempt
                continue;
            }
            if status == 401 || status == 403 {
                return Err(self.auth_error(what, status));
            }
            if status >= 500 || status == 429 {
                last = format!("HTTP {status}");
                continue;
            }
            return Ok(resp);
        }
        Err(RegistryError::Unavailable {
            registry: self.registry.clone(),
            what: what.to_string(),
            attempts: self.attempts,
            last,
        })
    }

    fn protocol(&self, what: &str, e: impl std::fmt::Display) -> RegistryError {
        RegistryError::Protocol {
            registry: self.registry.clone(),
            what: what.to_string(),
            why: e.to_string(),
        }
    }

    fn auth_error(&self, what: &str, status: u16) -> RegistryError {
        RegistryError::Auth {
            registry: self.registry.clone(),
            what: what.to_string(),
            status,
            looked: self.credentials().looked.clone(),
            had_credentials: self.credentials().credential.is_some(),
        }
    }

    /// Answers a 401 challenge: Basic with the credentials, or Bearer through the token
    /// endpoint (with the credentials when there are some, anonymously otherwise).
    fn authenticate(&self, challenge: &str, what: &str) -> Result<(), RegistryError> {
        let (scheme, params) = challenge.split_once(' ').unwrap_or((challenge, ""));
        let cred = self.credentials().credential.as_ref();
        if scheme.eq_ignore_ascii_case("basic") {
            let Some(c) = cred else {
                return Err(self.auth_error(what, 401));
            };
            *self.authorization.borrow_mut() = Some(c.basic_header());
            return Ok(());
        }
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Err(self.auth_error(what, 401));
        }
        let params = auth::parse_challenge(params);
        let realm = params
            .get("realm")
            .ok_or_else(|| self.protocol(what, "bearer challenge without a realm"))?;
        let url = token_url(
            realm,
            params.get("service").map(String::as_str),
            &self.repository,
            params.get("scope").map(String::as_str),
        );
        let mut req = self.agent.get(&url);
        if let Some(c) = cred {
            req = req.header("Authorization", &c.basic_header());
        }
        let mut resp = req.call().map_err(|e| self.protocol(what, e))?;
        let status = resp.status().as_u16();
        if status == 401 || status == 403 {
            return Err(self.auth_error(what, status));
        }
        let token: serde_json::Value = resp
            .body_mut()
            .read_json()
            .map_err(|e| self.protocol(what, format!("token endpoint: {e}")))?;
        let token = token["token"]
            .as_str()
            .or_else(|| token["access_token"].as_str())
            .ok_or_else(|| self.protocol(what, "token endpoint returned no token"))?;
        *self.authorization.borrow_mut() = Some(format!("Bearer {token}"));
        Ok(())
    }

    /// Reads an answer's body as text (for error messages; bounded).
    pub(crate) fn text(resp: &mut http::Response<ureq::Body>) -> String {
        let mut s = String::new();
        let _ = resp
            .body_mut()
            .as_reader()
            .take(2000)
            .read_to_string(&mut s);
        s.trim().to_string()
    }

    pub(crate) fn unexpected(
        &self,
        what: &str,
        mut resp: http::Response<ureq::Body>,
    ) -> RegistryError {
        RegistryError::Status {
            registry: self.registry.clone(),
            what: what.to_string(),
            status: resp.status().as_u16(),
            body: Self::text(&mut resp),
        }
    }
}

/// The token request for a bearer challenge: push and pull on our repository, plus whatever the
/// challenge asks for (a cross-repository mount needs pull on the source repository).
fn token_url(realm: &str, service: Option<&str>, repository: &str, asked: Option<&str>) -> String {
    let mut scopes = vec![format!("repository:{repository}:pull,push")];
    for s in asked.unwrap_or("").split(' ').filter(|s| !s.is_empty()) {
        if !scopes.iter().any(|have| have == s) {
            scopes.push(s.to_string());
        }
    }
    let mut url = format!("{realm}?");
    if let Some(service) = service {
        url.push_str(&format!("service={service}&"));
    }
    let scopes: Vec<String> = scopes.iter().map(|s| format!("scope={s}")).collect();
    url.push_str(&scopes.join("&"));
    url
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_requests_add_the_challenge_scope() {
        let own = "team/app";
        for (asked, want) in [
            (None, "https://auth.example/token?service=reg&scope=repository:team/app:pull,push"),
            (
                Some("repository:team/app:pull,push"),
                "https://auth.example/token?service=reg&scope=repository:team/app:pull,push",
            ),
            (
                Some("repository:team/app:pull,push repository:team/base:pull"),
                "https://auth.example/token?service=reg&scope=repository:team/app:pull,push&scope=repository:team/base:pull",
            ),
        ] {
            assert_eq!(
                token_url("https://auth.example/token", Some("reg"), own, asked),
                want
            );
        }
    }
}
