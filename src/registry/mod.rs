//! A small blocking client for the OCI distribution API: push (HEAD, cross-repository mount,
//! streamed upload, manifest last) and pull (index -> platform manifest -> config + layers),
//! with Docker-config credentials, bearer and basic auth, and retries with backoff.

pub mod auth;
pub mod pull;
pub mod push;
pub mod records;
pub mod reference;
pub mod referrers;

use crate::reference::Reference;
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

/// What a request sends.
pub(crate) enum Body<'a> {
    Empty,
    Bytes(&'a [u8]),
    /// Streamed from disk (reopened on each attempt).
    File(&'a Path),
}

impl Body<'_> {
    /// The bytes it sends.
    fn len(&self) -> Result<u64, RegistryError> {
        match self {
            Body::Empty => Ok(0),
            Body::Bytes(b) => Ok(b.len() as u64),
            Body::File(p) => {
                std::fs::metadata(p)
                    .map(|m| m.len())
                    .map_err(|source| RegistryError::Io {
                        path: p.to_path_buf(),
                        source,
                    })
            }
        }
    }
}

/// An answer's body that fails once it falls behind the slowest acceptable rate, judged by
/// what arrives (each window of `timeouts.base` must bring `min_rate` bytes a second), never
/// by the size the registry declares: a layer declared at 1 GiB that drips a byte at a time
/// is dropped after one window, not allowed the hour its size would take. A silent registry
/// is ended by the agent's per-read limit.
struct Paced {
    inner: ureq::BodyReader<'static>,
    window_start: Instant,
    window_bytes: u64,
    timeouts: Timeouts,
    registry: String,
}

impl Read for Paced {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.window_bytes += n as u64;
        let took = self.window_start.elapsed();
        if n == 0 || took < self.timeouts.base {
            return Ok(n);
        }
        let needed = self.timeouts.min_rate as f64 * took.as_secs_f64();
        if (self.window_bytes as f64) < needed {
            return Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!(
                    "{} sent only {} bytes in {} (binpack needs {} KiB/s over every {})",
                    self.registry,
                    self.window_bytes,
                    secs(took),
                    self.timeouts.min_rate / 1024,
                    secs(self.timeouts.base)
                ),
            ));
        }
        self.window_start = Instant::now();
        self.window_bytes = 0;
        Ok(n)
    }
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
    /// Spoken to over plain HTTP for now, and switched to TLS when it answers that it is an
    /// HTTPS server: a registry on this machine with no --registry-ca and not listed with
    /// --insecure-registry.
    upgradable: bool,
    /// It did: every URL of `base` is now https.
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

/// The CAs a registry's certificate may chain to: the system's (`SSL_CERT_FILE`, else the
/// distribution's bundle, else the Mozilla roots pinned in binpack), plus `--registry-ca`.
pub fn trust_roots(opts: &RegistryOptions) -> Result<ureq::tls::RootCerts, RegistryError> {
    let mut certs = Vec::new();
    for path in &opts.ca_files {
        let found = pem_certs(path).map_err(|why| RegistryError::Trust {
            path: path.clone(),
            why,
        })?;
        certs.extend(found);
    }
    let system = std::env::var_os("SSL_CERT_FILE")
        .map(PathBuf::from)
        .into_iter()
        .chain(SYSTEM_BUNDLES.iter().map(PathBuf::from))
        .find_map(|p| pem_certs(&p).ok());
    match system {
        Some(s) => certs.extend(s),
        None => certs
            .extend(ureq::tls::parse_pem(crate::rootfs::DEFAULT_CA_BUNDLE).filter_map(cert_item)),
    }
    Ok(ureq::tls::RootCerts::new_with_certs(&certs))
}

/// Where Linux distributions keep their CA bundle (the list Go's crypto/x509 reads).
const SYSTEM_BUNDLES: &[&str] = &[
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/ca-bundle.pem",
    "/etc/pki/tls/cacert.pem",
    "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",
    "/etc/ssl/cert.pem",
];

fn cert_item(
    item: Result<ureq::tls::PemItem<'static>, ureq::Error>,
) -> Option<ureq::tls::Certificate<'static>> {
    match item {
        Ok(ureq::tls::PemItem::Certificate(c)) => Some(c),
        _ => None,
    }
}

/// The most a CA file may hold: Debian's whole bundle is about 220 KB.
const PEM_LIMIT: u64 = 16 << 20;

/// The certificates in a PEM file (a regular file, read bounded); none is an error (a wrong
/// file given).
fn pem_certs(path: &Path) -> Result<Vec<ureq::tls::Certificate<'static>>, String> {
    let bytes = crate::bounded::read(path, PEM_LIMIT).map_err(|e| e.to_string())?;
    let certs: Vec<_> = ureq::tls::parse_pem(&bytes).filter_map(cert_item).collect();
    if certs.is_empty() {
        return Err("no PEM certificate in it".into());
    }
    Ok(certs)
}

/// Checks a CA bundle to ship in an image (`--ca-certs`): a regular file of PEM certificates,
/// at least one and nothing else (a private key, a password file named by mistake or by a
/// hostile config, never goes into an image). Returns how many certificates it holds.
pub fn check_ca_bundle(path: &Path) -> Result<usize, String> {
    let bytes = crate::bounded::read(path, PEM_LIMIT).map_err(|e| e.to_string())?;
    let mut certs = 0;
    for item in ureq::tls::parse_pem(&bytes) {
        match item {
            Ok(ureq::tls::PemItem::Certificate(_)) => certs += 1,
            Ok(_) => return Err("it holds a PEM item that is not a certificate (a key?)".into()),
            Err(e) => return Err(format!("not a PEM certificate bundle: {e}")),
        }
    }
    if certs == 0 {
        return Err("no PEM certificate in it".into());
    }
    Ok(certs)
}

/// What one attempt at a request gave.
enum Step {
    Answer(http::Response<ureq::Body>),
    /// A 401 with this challenge.
    Challenged(String),
    /// Worth another attempt: why, and how long the registry asked to wait.
    Retry(String, Option<Duration>),
    /// The registry speaks only TLS: the same request again over https.
    Upgraded,
}

/// 0.2 s, 0.4 s, 0.8 s ... capped at 5 s before attempt `n` (counted from 1).
fn backoff(n: u32) -> Duration {
    Duration::from_millis(200u64 << (n - 1).min(5)).min(Duration::from_secs(5))
}

/// `Retry-After` in seconds (the HTTP-date form is rare from registries: backoff instead).
fn retry_after(resp: &http::Response<ureq::Body>) -> Option<Duration> {
    let v = resp.headers().get("Retry-After")?.to_str().ok()?;
    v.trim().parse().ok().map(Duration::from_secs)
}

/// An I/O failure that another attempt may not meet: the connection dropped or was refused.
/// A certificate the system does not trust, garbage, or a name that does not resolve will
/// fail the same way again.
fn transient(e: &ureq::Error) -> bool {
    use std::io::ErrorKind::*;
    match e {
        ureq::Error::Timeout(_) | ureq::Error::ConnectionFailed => true,
        ureq::Error::Io(io) => matches!(
            io.kind(),
            ConnectionReset
                | ConnectionAborted
                | ConnectionRefused
                | BrokenPipe
                | UnexpectedEof
                | TimedOut
                | WouldBlock
                | Interrupted
                | NotConnected
        ),
        _ => false,
    }
}

impl Client {
    pub fn new(reference: &Reference, opts: &RegistryOptions) -> Result<Client, RegistryError> {
        let registry = reference
            .registry
            .clone()
            .unwrap_or_else(|| "docker.io".to_string());
        let repository = reference.repository_path();
        // --registry-ca implies TLS; the loopback is tried in plain HTTP first and moves to
        // TLS when the registry says it speaks only that (Go's HTTPS servers answer so).
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

    /// `url` with https once the registry turned out to speak only TLS.
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

    /// A 400 that says the registry speaks only TLS ("Client sent an HTTP request to an
    /// HTTPS server", as Go's servers answer): from then on this client uses https. Any other
    /// answer is given back whole; `None` when the client moved to TLS.
    fn upgrade(&self, resp: http::Response<ureq::Body>) -> Option<http::Response<ureq::Body>> {
        let done = self.upgraded.load(std::sync::atomic::Ordering::Relaxed);
        if !self.upgradable || done || resp.status().as_u16() != 400 {
            return Some(resp);
        }
        let (parts, body) = resp.into_parts();
        let mut bytes = Vec::new();
        let _ = body.into_reader().take(4096).read_to_end(&mut bytes);
        if memchr::memmem::find(&bytes, b"HTTP request to an HTTPS server").is_some() {
            self.upgraded
                .store(true, std::sync::atomic::Ordering::Relaxed);
            return None;
        }
        let body = ureq::Body::builder().reader(std::io::Cursor::new(bytes));
        Some(http::Response::from_parts(parts, body))
    }

    /// A Location header made absolute.
    fn absolute(&self, location: &str) -> String {
        if location.starts_with("http://") || location.starts_with("https://") {
            location.to_string()
        } else {
            format!("{}{location}", self.base())
        }
    }

    /// Sends one request: authenticates when challenged, retries 5xx, 429 and dropped
    /// connections with backoff (or the wait the registry asks for), all within a deadline.
    /// Returns any other answer to the caller, its body held to the slowest acceptable rate.
    pub(crate) fn send(
        &self,
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        body: &Body,
        what: &str,
    ) -> Result<http::Response<ureq::Body>, RegistryError> {
        let start = Instant::now();
        let mut budget = self.timeouts.deadline(body.len()?);
        let (mut last, mut asked) = (String::new(), None);
        let mut authenticated = false;
        let mut attempt = 0;
        while attempt < self.attempts {
            if attempt > 0 {
                let pause = asked.take().unwrap_or_else(|| backoff(attempt));
                std::thread::sleep(pause);
            }
            let left = budget.checked_sub(start.elapsed());
            let Some(left) = left.filter(|l| !l.is_zero()) else {
                break;
            };
            attempt += 1;
            match self.attempt(method, &self.rebase(url), headers, body, what, left)? {
                Step::Answer(r) => return Ok(self.paced(r)),
                Step::Challenged(c) if !authenticated => {
                    authenticated = true;
                    self.authenticate(&c, what)?;
                    attempt -= 1; // the challenge is not a failed attempt
                }
                Step::Challenged(_) => return Err(self.auth_error(what, 401)),
                Step::Upgraded => attempt -= 1, // the same request again, over TLS
                Step::Retry(why, after) => {
                    last = why;
                    asked = self.honour(after, what)?;
                    // The registry's own wait is not a stall: it does not use up the deadline.
                    budget += asked.unwrap_or_default();
                }
            }
        }
        Err(RegistryError::Unavailable {
            registry: self.registry.clone(),
            what: what.to_string(),
            attempts: attempt,
            elapsed: start.elapsed(),
            last,
        })
    }

    /// The wait a `Retry-After` asks for, when binpack will wait that long (on its own, and
    /// with the waits already spent in this process).
    fn honour(
        &self,
        after: Option<Duration>,
        what: &str,
    ) -> Result<Option<Duration>, RegistryError> {
        static WAITED: Mutex<Duration> = Mutex::new(Duration::ZERO);
        if let Some(asked) = after.filter(|a| *a <= self.timeouts.max_retry_after) {
            let mut waited = WAITED.lock().unwrap_or_else(|e| e.into_inner());
            if *waited + asked > self.timeouts.max_total_retry_after {
                return Err(RegistryError::ThrottledTooLong {
                    registry: self.registry.clone(),
                    what: what.to_string(),
                    waited: *waited,
                    cap: self.timeouts.max_total_retry_after,
                });
            }
            *waited += asked;
        }
        match after {
            Some(asked) if asked > self.timeouts.max_retry_after => Err(RegistryError::Throttled {
                registry: self.registry.clone(),
                what: what.to_string(),
                asked,
                cap: self.timeouts.max_retry_after,
            }),
            other => Ok(other),
        }
    }

    /// One attempt, given `left` of the request's deadline.
    fn attempt(
        &self,
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        body: &Body,
        what: &str,
        left: Duration,
    ) -> Result<Step, RegistryError> {
        let mut req = http::Request::builder().method(method).uri(url);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if let Some(a) = self
            .authorization
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
        {
            req = req.header("Authorization", a);
        }
        let result = match body {
            Body::Empty => self.run(req.header("Content-Length", "0").body(&b""[..]), left),
            Body::Bytes(b) => self.run(req.body(*b), left),
            Body::File(p) => {
                let f = File::open(p).map_err(|source| RegistryError::Io {
                    path: p.to_path_buf(),
                    source,
                })?;
                self.run(req.body(f), left)
            }
        };
        let resp = match result {
            Ok(r) => r,
            Err(Ok(e)) if transient(&e) => return Ok(Step::Retry(e.to_string(), None)),
            Err(Ok(e)) => return Err(self.protocol(what, self.explain(e))),
            Err(Err(e)) => return Err(self.protocol(what, e)),
        };
        let status = resp.status().as_u16();
        if status == 401 {
            let challenge = resp.headers().get("WWW-Authenticate");
            let challenge = challenge.and_then(|v| v.to_str().ok()).unwrap_or("");
            return Ok(Step::Challenged(challenge.to_string()));
        }
        if status == 403 {
            return Err(self.auth_error(what, status));
        }
        let Some(resp) = self.upgrade(resp) else {
            return Ok(Step::Upgraded);
        };
        if status >= 500 || status == 429 {
            let after = matches!(status, 429 | 503)
                .then(|| retry_after(&resp))
                .flatten();
            return Ok(Step::Retry(format!("HTTP {status}"), after));
        }
        Ok(Step::Answer(resp))
    }

    /// Runs a built request with `left` as its deadline up to the answer's head (the body is
    /// paced by `paced`). The outer error is ureq's; the inner one a request that could not
    /// be built.
    #[allow(clippy::type_complexity)]
    fn run<B: ureq::AsSendBody>(
        &self,
        req: Result<http::Request<B>, http::Error>,
        left: Duration,
    ) -> Result<http::Response<ureq::Body>, Result<ureq::Error, http::Error>> {
        use ureq::RequestExt;
        let req = req.map_err(Err)?;
        let uri = req.uri().to_string();
        req.with_agent(self.agent_for(&uri))
            .configure()
            .timeout_recv_response(Some(left.min(self.timeouts.base)))
            .timeout_send_body(Some(left))
            .timeout_connect(Some(left.min(self.timeouts.connect)))
            .build()
            .run()
            .map_err(Ok)
    }

    /// A ureq error with a hint when it is about trust.
    fn explain(&self, e: ureq::Error) -> String {
        let text = e.to_string();
        if text.contains("certificate") {
            return format!(
                "{text}; a registry with a private CA needs --registry-ca FILE (or SSL_CERT_FILE)"
            );
        }
        text
    }

    /// The answer with its body held to the slowest acceptable rate ([`Paced`]).
    fn paced(&self, resp: http::Response<ureq::Body>) -> http::Response<ureq::Body> {
        let (parts, body) = resp.into_parts();
        let reader = Paced {
            inner: body.into_reader(),
            window_start: Instant::now(),
            window_bytes: 0,
            timeouts: self.timeouts.clone(),
            registry: self.registry.clone(),
        };
        http::Response::from_parts(parts, ureq::Body::builder().reader(reader))
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
            self.check_plain(what)?;
            *self.authorization.lock().unwrap_or_else(|e| e.into_inner()) = Some(c.basic_header());
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
        let mut req = self.agent_for(&url).get(&url);
        if let Some(c) = cred {
            self.check_realm(realm, what)?;
            self.check_plain(what)?;
            req = req.header("Authorization", &c.basic_header());
        }
        let req = req
            .config()
            .timeout_global(Some(self.timeouts.base))
            .build();
        let mut resp = req.call().map_err(|e| {
            self.protocol(what, format!("token service {realm}: {}", self.explain(e)))
        })?;
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
        *self.authorization.lock().unwrap_or_else(|e| e.into_inner()) =
            Some(format!("Bearer {token}"));
        Ok(())
    }

    /// Credentials go to a token service over TLS, or to this machine: over plain HTTP to
    /// anywhere else, anyone on the path could read them.
    fn check_realm(&self, realm: &str, what: &str) -> Result<(), RegistryError> {
        let Some(rest) = realm
            .get(..7)
            .filter(|s| s.eq_ignore_ascii_case("http://"))
            .map(|_| &realm[7..])
        else {
            return Ok(());
        };
        let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
        let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
        if is_loopback(host) {
            return Ok(());
        }
        Err(RegistryError::InsecureRealm {
            registry: self.registry.clone(),
            what: what.to_string(),
            realm: realm.to_string(),
        })
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
        crate::printable::printable(text.trim()).into_owned()
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
