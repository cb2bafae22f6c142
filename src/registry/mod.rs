//! A small blocking client for the OCI distribution API: push (HEAD, cross-repository mount,
//! streamed upload, manifest last) and pull (index -> platform manifest -> config + layers),
//! with Docker-config credentials, bearer and basic auth, and retries with backoff.

pub mod auth;
pub mod pull;
pub mod push;
pub mod records;
pub mod reference;
pub mod referrers;
mod scheme;
mod send;
mod tls;
mod token;

use send::*;
pub use tls::{check_ca_bundle, trust_roots};

use crate::registry::reference::Reference;
use auth::Credentials;
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};
use ureq::http;

/// Where images are pushed to and pulled from, and how to talk to it.
#[derive(Clone, Debug, Default)]
pub struct RegistryOptions {
    /// Registries (host[:port]) that may be spoken to over plain HTTP besides the loopback.
    pub insecure: Vec<String>,
    /// Attempts for one request before giving up (5xx, 429, dropped connections).
    pub attempts: Option<u32>,
    /// How long to wait on a registry.
    pub timeouts: Timeouts,
    /// PEM files of CAs trusted besides the system's (a private registry's CA).
    pub ca_files: Vec<PathBuf>,
}

/// How long binpack waits on a registry before it gives up.
#[derive(Clone, Debug)]
pub struct Timeouts {
    /// To open a connection (TCP and TLS).
    pub connect: Duration,
    /// The longest one read or write may block: a registry silent this long has stalled.
    pub stall: Duration,
    /// Every request's deadline: this, plus the time its bytes take at `min_rate`.
    pub base: Duration,
    /// Bytes per second a transfer must average once `base` has passed.
    pub min_rate: u64,
    /// The longest `Retry-After` waited out; a registry asking for more is an error.
    pub max_retry_after: Duration,
    /// The most all `Retry-After` waits of this process may add up to: a registry answering
    /// 429 to every request cannot hold a run for attempts x requests x the cap.
    pub max_total_retry_after: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            connect: Duration::from_secs(10),
            stall: Duration::from_secs(20),
            base: Duration::from_secs(30),
            min_rate: 256 * 1024,
            max_retry_after: Duration::from_secs(60),
            max_total_retry_after: Duration::from_secs(180),
        }
    }
}

impl Timeouts {
    /// The time `bytes` take at the slowest acceptable rate.
    fn transfer(&self, bytes: u64) -> Duration {
        Duration::from_secs_f64(bytes as f64 / self.min_rate.max(1) as f64)
    }

    /// The deadline of a request that moves `bytes`.
    pub fn deadline(&self, bytes: u64) -> Duration {
        self.base + self.transfer(bytes)
    }
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
    #[error("{registry}: {what} failed after {attempts} attempts in {}: {last}", secs(*elapsed))]
    Unavailable {
        registry: String,
        what: String,
        attempts: u32,
        elapsed: Duration,
        last: String,
    },
    #[error("{registry}: {what}: the registry asked binpack to come back in {}, more than the {} it waits", secs(*asked), secs(*cap))]
    Throttled {
        registry: String,
        what: String,
        asked: Duration,
        cap: Duration,
    },
    #[error("{registry}: {what}: the registry keeps asking binpack to come back later; {} waited already in this run, and binpack waits at most {} in all", secs(*waited), secs(*cap))]
    ThrottledTooLong {
        registry: String,
        what: String,
        waited: Duration,
        cap: Duration,
    },
    #[error("{registry}: {what}: refusing to send credentials to the token service {realm}: it is plain HTTP and not this machine")]
    InsecureRealm {
        registry: String,
        what: String,
        realm: String,
    },
    #[error("{registry}: {what}: refusing to send credentials over plain HTTP: it is not this machine; serve it over TLS (and give --registry-ca FILE for a private CA)")]
    PlainCredentials { registry: String, what: String },
    #[error("{registry} speaks TLS with a certificate binpack does not trust ({why}); a registry with a private CA needs --registry-ca FILE (or SSL_CERT_FILE)")]
    Untrusted { registry: String, why: String },
    #[error("--registry-ca {}: {why}", path.display())]
    Trust { path: PathBuf, why: String },
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

/// A connection to one repository of one registry.
pub struct Client {
    agent: ureq::Agent,
    /// The same, never through a proxy: for this machine (`NO_PROXY` for the loopback, so a
    /// loopback registry's credentials never leave it through `HTTP(S)_PROXY`).
    direct: ureq::Agent,
    /// `host[:port]` as the user wrote it (docker.io for Docker Hub).
    pub registry: String,
    base: String,
    /// A registry on this machine with no --registry-ca and not listed with
    /// --insecure-registry: whether it speaks TLS or plain HTTP is found by its first request
    /// ([`scheme::race`]); `base` is http until then.
    upgradable: bool,
    /// Whether that was found (held while it is being found: parallel uploads wait for it).
    chosen: Mutex<bool>,
    /// It speaks TLS: every URL of `base` is now https.
    upgraded: std::sync::atomic::AtomicBool,
    pub repository: String,
    /// Read when the registry first asks for them: running a credential helper for nothing
    /// is slow, and may prompt.
    credentials: OnceLock<Credentials>,
    /// The Authorization header that last worked.
    authorization: Mutex<Option<String>>,
    attempts: u32,
    timeouts: Timeouts,
}

/// Docker Hub's API lives elsewhere than its name.
fn endpoint(registry: &str) -> &str {
    match registry {
        "docker.io" | "index.docker.io" => "registry-1.docker.io",
        other => other,
    }
}

/// Whole seconds, for messages.
fn secs(d: Duration) -> String {
    format!("{} s", d.as_secs_f64().round())
}

/// The host of `host[:port]` (an IPv6 address in brackets loses them).
fn host_of(registry: &str) -> &str {
    if let Some(rest) = registry.strip_prefix('[') {
        return rest.split_once(']').map_or(rest, |(h, _)| h);
    }
    registry.rsplit_once(':').map_or(registry, |(h, _)| h)
}

/// This machine: 127.0.0.0/8 written as an address, `localhost` or `::1`. A name such as
/// `127.mycorp.example` is not: anyone can point it anywhere.
pub fn is_loopback(registry: &str) -> bool {
    let host = host_of(registry);
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Whether a 400's body is a TLS server's answer to plain HTTP: Go's servers (the registry
/// itself, Caddy, Traefik) say "Client sent an HTTP request to an HTTPS server", nginx (a
/// registry behind it) "The plain HTTP request was sent to HTTPS port".
fn says_tls_only(body: &[u8]) -> bool {
    const MARKERS: [&[u8]; 2] = [
        b"HTTP request to an HTTPS server",
        b"plain HTTP request was sent to HTTPS port",
    ];
    MARKERS
        .iter()
        .any(|m| memchr::memmem::find(body, m).is_some())
}

impl Client {
    pub fn new(reference: &Reference, opts: &RegistryOptions) -> Result<Client, RegistryError> {
        let registry = reference
            .registry
            .clone()
            .unwrap_or_else(|| "docker.io".to_string());
        let repository = reference.repository_path();
        // --registry-ca implies TLS; for the loopback, TLS and plain HTTP are raced by the
        // first request (`choose`).
        let listed = opts.insecure.contains(&registry);
        let loopback_plain = is_loopback(&registry) && opts.ca_files.is_empty();
        let scheme = if listed || loopback_plain {
            "http"
        } else {
            "https"
        };
        let t = &opts.timeouts;
        let tls = ureq::tls::TlsConfig::builder()
            .root_certs(trust_roots(opts)?)
            .build();
        // Phases and single reads are bounded here; each request's overall deadline is set
        // where its size is known.
        let config = |proxy: Option<ureq::Proxy>| -> ureq::Agent {
            ureq::Agent::config_builder()
                .http_status_as_error(false)
                .max_redirects(5)
                .tls_config(tls.clone())
                .proxy(proxy)
                .timeout_connect(Some(t.connect))
                .timeout_per_read(Some(t.stall))
                .timeout_per_write(Some(t.stall))
                .timeout_recv_response(Some(t.base))
                .build()
                .into()
        };
        Ok(Client {
            agent: config(ureq::Proxy::try_from_env()),
            direct: config(None),
            base: format!("{scheme}://{}", endpoint(&registry)),
            upgradable: loopback_plain && !listed,
            chosen: Mutex::new(false),
            upgraded: Default::default(),
            credentials: OnceLock::new(),
            registry,
            repository,
            authorization: Mutex::new(None),
            attempts: opts.attempts.unwrap_or(6).max(1),
            timeouts: t.clone(),
        })
    }

    fn credentials(&self) -> &Credentials {
        self.credentials
            .get_or_init(|| Credentials::for_registry(&self.registry))
    }

    /// The agent for `url`: direct for this machine, else through the environment's proxy.
    fn agent_for(&self, url: &str) -> &ureq::Agent {
        let authority = url
            .split_once("://")
            .map_or(url, |(_, rest)| rest)
            .split(['/', '?', '#'])
            .next()
            .unwrap_or("");
        let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
        if is_loopback(host) {
            &self.direct
        } else {
            &self.agent
        }
    }

    /// Credentials go to the registry over TLS, or to this machine: over plain HTTP to
    /// anything else (an `--insecure-registry`), anyone on the path could read them.
    fn check_plain(&self, what: &str) -> Result<(), RegistryError> {
        if self.base().starts_with("http://") && !is_loopback(&self.registry) {
            return Err(RegistryError::PlainCredentials {
                registry: self.registry.clone(),
                what: what.to_string(),
            });
        }
        Ok(())
    }

    fn url(&self, path: &str) -> String {
        format!("{}/v2/{}/{path}", self.base(), self.repository)
    }

    /// `http://REGISTRY` or `https://REGISTRY`, as spoken to now.
    fn base(&self) -> String {
        self.rebase(&self.base)
    }

    /// `url` with https once the registry on this machine turned out to speak TLS.
    fn rebase(&self, url: &str) -> String {
        use std::sync::atomic::Ordering;
        match url.strip_prefix("http://") {
            Some(rest)
                if self.upgraded.load(Ordering::Relaxed) && url.starts_with(self.base.as_str()) =>
            {
                format!("https://{rest}")
            }
            _ => url.to_string(),
        }
    }

    /// Finds, once, whether a registry on this machine speaks TLS or plain HTTP
    /// ([`scheme::race`]), within `left` of the request that asks. `None` once known (or
    /// when there is nothing to find); a failure worth another attempt is a [`Step::Retry`],
    /// and the next attempt races again.
    fn choose(&self, what: &str, left: Duration) -> Result<Option<Step>, RegistryError> {
        if !self.upgradable {
            return Ok(None);
        }
        let mut chosen = self.chosen.lock().unwrap_or_else(|e| e.into_inner());
        if *chosen {
            return Ok(None);
        }
        let authority = endpoint(&self.registry);
        match scheme::race(&self.direct, authority, &self.timeouts, left) {
            Ok(scheme::Scheme::Https) => self
                .upgraded
                .store(true, std::sync::atomic::Ordering::Relaxed),
            Ok(scheme::Scheme::Http) => {}
            Err(scheme::Unchosen::Untrusted(why)) => {
                return Err(RegistryError::Untrusted {
                    registry: self.registry.clone(),
                    why,
                })
            }
            Err(scheme::Unchosen::Failed { why, transient }) if transient => {
                return Ok(Some(Step::Retry(why, None)))
            }
            Err(scheme::Unchosen::Failed { why, .. }) => return Err(self.protocol(what, why)),
        }
        *chosen = true;
        Ok(None)
    }

    /// A Location header made absolute.
    fn absolute(&self, location: &str) -> String {
        if location.starts_with("http://") || location.starts_with("https://") {
            location.to_string()
        } else {
            format!("{}{location}", self.base())
        }
    }

    fn protocol(&self, what: &str, e: impl std::fmt::Display) -> RegistryError {
        RegistryError::Protocol {
            registry: self.registry.clone(),
            what: what.to_string(),
            why: e.to_string(),
        }
    }

    /// Reads an answer's body as text for an error message: bounded, and with control
    /// characters escaped (a registry's terminal escapes are shown, not obeyed).
    pub(crate) fn text(resp: &mut http::Response<ureq::Body>) -> String {
        let mut bytes = Vec::new();
        let _ = resp
            .body_mut()
            .as_reader()
            .take(2000)
            .read_to_end(&mut bytes);
        let text = String::from_utf8_lossy(&bytes);
        crate::support::printable::printable(text.trim()).into_owned()
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

#[cfg(test)]
mod tests {
    use super::token::token_url;
    use super::*;

    #[test]
    fn a_tls_server_answering_plain_http_is_recognised() {
        let go = b"Client sent an HTTP request to an HTTPS server.\n";
        let nginx = b"<html><head><title>400 The plain HTTP request was sent to HTTPS port</title>";
        assert!(says_tls_only(go) && says_tls_only(nginx));
        assert!(!says_tls_only(
            b"{\"errors\":[{\"code\":\"MANIFEST_INVALID\"}]}"
        ));
    }

    #[test]
    fn only_real_loopback_is_loopback() {
        for r in [
            "127.0.0.1",
            "127.0.0.1:5000",
            "127.8.9.10:1",
            "localhost:5000",
            "[::1]:5000",
        ] {
            assert!(is_loopback(r), "{r}");
        }
        for r in [
            "127.mycorp.example",
            "127.mycorp.example:5000",
            "127.0.0.1.example",
            "10.0.0.1:5000",
            "localhost.example",
        ] {
            assert!(!is_loopback(r), "{r}");
        }
    }

    #[test]
    fn credentials_go_only_to_tls_or_loopback_realms() {
        let reference = Reference::parse("registry.example/team/app:1").unwrap();
        let client = Client::new(&reference, &RegistryOptions::default()).unwrap();
        for ok in [
            "https://auth.example/token",
            "http://127.0.0.1:5001/token",
            "http://localhost/token",
        ] {
            assert!(client.check_realm(ok, "x").is_ok(), "{ok}");
        }
        for bad in [
            "http://auth.example/token",
            "HTTP://auth.example/t",
            "http://127.0.0.1@auth.example/t",
            "http://127.mycorp.example/t",
        ] {
            let e = client.check_realm(bad, "x").unwrap_err().to_string();
            assert!(e.contains(bad) && e.contains("plain HTTP"), "{e}");
        }
    }

    #[test]
    fn deadlines_scale_with_the_bytes() {
        let t = Timeouts::default();
        assert_eq!(t.deadline(0), Duration::from_secs(30));
        assert_eq!(t.deadline(256 << 20), Duration::from_secs(30 + 1024));
    }

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

    #[test]
    fn retry_after_waits_are_capped_per_run() {
        let mut opts = RegistryOptions::default();
        opts.timeouts.max_retry_after = Duration::from_secs(60);
        opts.timeouts.max_total_retry_after = Duration::from_secs(100);
        let reference = Reference::parse("127.0.0.1:1/app:1").unwrap();
        let client = Client::new(&reference, &opts).unwrap();
        let asked = Some(Duration::from_secs(40));
        assert_eq!(client.honour(asked, "x").unwrap(), asked);
        assert_eq!(client.honour(asked, "x").unwrap(), asked);
        // A third 40 s would make 120 s in this process: refused, naming what was waited.
        let e = client.honour(asked, "x").unwrap_err().to_string();
        assert!(
            e.contains("80 s waited already") && e.contains("100 s"),
            "{e}"
        );
    }
}
