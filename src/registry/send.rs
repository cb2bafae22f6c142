//! One request to a registry, retried and paced: transient failures and 429s retried with
//! backoff (Retry-After honoured within a budget), bodies read at a minimum rate.

use super::*;

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
pub(super) struct Paced {
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

/// What one attempt at a request gave.
pub(super) enum Step {
    Answer(http::Response<ureq::Body>),
    /// A 401 with this challenge.
    Challenged(String),
    /// Worth another attempt: why, and how long the registry asked to wait.
    Retry(String, Option<Duration>),
}

/// 0.2 s, 0.4 s, 0.8 s ... capped at 5 s before attempt `n` (counted from 1).
pub(super) fn backoff(n: u32) -> Duration {
    Duration::from_millis(200u64 << (n - 1).min(5)).min(Duration::from_secs(5))
}

/// `Retry-After` in seconds (the HTTP-date form is rare from registries: backoff instead).
pub(super) fn retry_after(resp: &http::Response<ureq::Body>) -> Option<Duration> {
    let v = resp.headers().get("Retry-After")?.to_str().ok()?;
    v.trim().parse().ok().map(Duration::from_secs)
}

/// An I/O failure that another attempt may not meet: the connection dropped or was refused.
/// A certificate the system does not trust, garbage, or a name that does not resolve will
/// fail the same way again.
pub(super) fn transient(e: &ureq::Error) -> bool {
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
            let step = match self.choose(what, left)? {
                Some(failed) => failed,
                None => self.attempt(method, &self.rebase(url), headers, body, what, left)?,
            };
            match step {
                Step::Answer(r) => return Ok(self.paced(r)),
                Step::Challenged(c) if !authenticated => {
                    authenticated = true;
                    self.authenticate(&c, what)?;
                    attempt -= 1; // the challenge is not a failed attempt
                }
                Step::Challenged(_) => return Err(self.auth_error(what, 401)),
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
    pub(super) fn honour(
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
    pub(super) fn attempt(
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
    pub(super) fn run<B: ureq::AsSendBody>(
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
    pub(super) fn explain(&self, e: ureq::Error) -> String {
        let text = e.to_string();
        if text.contains("certificate") {
            return format!(
                "{text}; a registry with a private CA needs --registry-ca FILE (or SSL_CERT_FILE)"
            );
        }
        text
    }

    /// The answer with its body held to the slowest acceptable rate ([`Paced`]).
    pub(super) fn paced(&self, resp: http::Response<ureq::Body>) -> http::Response<ureq::Body> {
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
}
