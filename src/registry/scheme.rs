//! Which scheme a registry on this machine speaks, found once per client by racing a TLS and
//! a plain-HTTP `GET /v2/` (docker tries HTTPS first and falls back to plain HTTP for the
//! loopback). Neither alone will do: a TLS-only server may just close on a plain request,
//! and a plain server may wait forever on a ClientHello that holds no newline. One port
//! speaks one protocol, so the first probe that gets an answer decides, and the other is left
//! to end on its own timeouts.

use super::*;
use std::sync::mpsc;

/// What a registry on this machine speaks.
#[derive(Debug, PartialEq)]
pub(super) enum Scheme {
    Http,
    Https,
}

/// Why no scheme was chosen.
#[derive(Debug)]
pub(super) enum Unchosen {
    /// It speaks TLS with a certificate that is not trusted: the problem, as rustls names it.
    Untrusted(String),
    /// Neither probe got an answer: why, and whether another try may fare better.
    Failed { why: String, transient: bool },
}

/// Why one probe got no answer in its scheme.
struct Miss {
    why: String,
    transient: bool,
}

/// What one probe found.
enum Found {
    Scheme(Scheme),
    Untrusted(String),
    Nothing(Miss),
}

/// Races `GET /v2/` over TLS and over plain HTTP to `authority` (through `agent`, which must
/// not use a proxy), each bounded by `t` and by `left` of the request that asks (a small
/// request's deadline at most, whatever that request carries): the first answer decides (a
/// TLS certificate problem too); both failing is [`Unchosen::Failed`] with both causes.
pub(super) fn race(
    agent: &ureq::Agent,
    authority: &str,
    t: &Timeouts,
    left: Duration,
) -> Result<Scheme, Unchosen> {
    let left = left.min(t.deadline(0));
    let (tx, rx) = mpsc::channel();
    for https in [false, true] {
        let (agent, tx, t) = (agent.clone(), tx.clone(), t.clone());
        let url = format!("{}://{authority}/v2/", if https { "https" } else { "http" });
        // A probe that cannot start is a miss like any other: the channel says so.
        let _ = std::thread::Builder::new()
            .name("registry-probe".into())
            .spawn(move || {
                let _ = tx.send((https, probe(&agent, &url, https, &t, left)));
            });
    }
    drop(tx);
    // The probes end by their own deadlines; this bound only guards against a lost thread.
    let end = Instant::now() + left + Duration::from_secs(1);
    let mut misses: [Option<Miss>; 2] = [None, None];
    while let Ok((https, found)) = rx.recv_timeout(end.saturating_duration_since(Instant::now())) {
        match found {
            Found::Scheme(s) => return Ok(s),
            Found::Untrusted(why) => return Err(Unchosen::Untrusted(why)),
            Found::Nothing(miss) => misses[usize::from(https)] = Some(miss),
        }
    }
    let [plain, tls] = misses.map(|m| {
        m.unwrap_or(Miss {
            why: format!("no answer in {}", secs(left)),
            transient: true,
        })
    });
    let why = if plain.why == tls.why {
        plain.why
    } else {
        format!("plain HTTP: {}; TLS: {}", plain.why, tls.why)
    };
    Err(Unchosen::Failed {
        why,
        transient: plain.transient || tls.transient,
    })
}

/// One `GET /v2/`, redirects not followed, all of it (the body too) within `left`.
fn probe(agent: &ureq::Agent, url: &str, https: bool, t: &Timeouts, left: Duration) -> Found {
    let result = agent
        .get(url)
        .config()
        .max_redirects(0)
        .timeout_global(Some(left))
        .timeout_connect(Some(t.connect.min(left)))
        .timeout_recv_response(Some(t.base.min(left)))
        .build()
        .call();
    match result {
        Ok(_) if https => Found::Scheme(Scheme::Https),
        Ok(mut resp) => {
            if says_tls_only(&head_of_400(&mut resp)) {
                Found::Nothing(Miss {
                    why: "it answered plain HTTP that it speaks only TLS".into(),
                    transient: false,
                })
            } else {
                Found::Scheme(Scheme::Http)
            }
        }
        Err(e) if https && certificate_problem(&e) => Found::Untrusted(e.to_string()),
        Err(e) => Found::Nothing(Miss {
            why: e.to_string(),
            transient: transient(&e),
        }),
    }
}

/// A TLS handshake refused over the server's certificate (unknown issuer, a name it is not
/// for, expired): rustls's errors for these all name the certificate, and ureq carries them
/// as text inside an I/O error.
fn certificate_problem(e: &ureq::Error) -> bool {
    e.to_string().contains("certificate")
}

/// The start of a 400's body (where a TLS server says it speaks only that); nothing for any
/// other answer.
fn head_of_400(resp: &mut http::Response<ureq::Body>) -> Vec<u8> {
    let mut bytes = Vec::new();
    if resp.status().as_u16() == 400 {
        let body = resp.body_mut().as_reader();
        let _ = body.take(4096).read_to_end(&mut bytes);
    }
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::net::{TcpListener, TcpStream};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    /// A server on 127.0.0.1 answering each plain request with `answer` and holding each
    /// TLS ClientHello unanswered until the client hangs up; how many clients hung up so.
    fn server(answer: String) -> (String, Arc<AtomicUsize>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let authority = listener.local_addr().unwrap().to_string();
        let gave_up = Arc::new(AtomicUsize::new(0));
        let counter = gave_up.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming().take(4) {
                let Ok(mut s) = conn else { continue };
                let (gave_up, answer) = (counter.clone(), answer.clone());
                std::thread::spawn(move || serve(&mut s, &answer, &gave_up));
            }
        });
        (authority, gave_up)
    }

    fn serve(s: &mut TcpStream, answer: &str, gave_up: &AtomicUsize) {
        let mut first = [0u8; 1];
        let _ = s.set_read_timeout(Some(Duration::from_secs(30)));
        if s.peek(&mut first).is_ok() && first[0] == 0x16 {
            let _ = s.read_to_end(&mut Vec::new());
            gave_up.fetch_add(1, Ordering::SeqCst);
            return;
        }
        let _ = s.read(&mut [0u8; 4096]);
        let _ = s.write_all(answer.as_bytes());
    }

    fn agent() -> ureq::Agent {
        ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into()
    }

    const LEFT: Duration = Duration::from_secs(30);

    #[test]
    fn a_plain_answer_decides_while_the_client_hello_is_still_unanswered() {
        let (authority, gave_up) =
            server("HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n".into());
        let chosen = race(&agent(), &authority, &Timeouts::default(), LEFT);
        assert_eq!(chosen.unwrap(), Scheme::Http);
        // The TLS probe gives up only at its 10 s connect timeout: not yet, unless waited for.
        let gave_up = gave_up.load(Ordering::SeqCst);
        assert_eq!(gave_up, 0, "the TLS probe was waited for");
    }

    #[test]
    fn a_tls_only_answer_to_plain_http_is_no_answer() {
        let body = "Client sent an HTTP request to an HTTPS server.\n";
        let answer = "HTTP/1.1 400 Bad Request\r\nContent-Length: 48\r\n\r\n";
        let (authority, _) = server(format!("{answer}{body}"));
        let short = Timeouts {
            connect: Duration::from_millis(300),
            ..Timeouts::default()
        };
        match race(&agent(), &authority, &short, LEFT) {
            Err(Unchosen::Failed { why, .. }) => {
                assert!(
                    why.contains("speaks only TLS") && why.contains("TLS: "),
                    "{why}"
                )
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn nothing_listening_is_one_transient_cause() {
        let authority = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        match race(&agent(), &authority.to_string(), &Timeouts::default(), LEFT) {
            Err(Unchosen::Failed { why, transient }) => {
                assert!(transient && !why.contains("plain HTTP:"), "{why}")
            }
            other => panic!("{other:?}"),
        }
    }
}
