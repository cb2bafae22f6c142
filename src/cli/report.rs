//! Progress on stderr while binpack works, and the final summary.

use binpack::pack::summary::Summary;
use binpack::support::printable::printable;
use binpack::support::progress::Progress;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::cell::RefCell;
use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

/// Shows what runs now. On a terminal: one live line, a spinner with the stage's elapsed time
/// (a byte bar while bytes are counted), left as a plain line when the next stage starts.
/// Without one (CI logs): a line per stage stamped with the time since binpack started,
/// `[  12.3s] binpack: ...`, and one saying how long a stage took when it took a while.
pub struct Reporter {
    quiet: bool,
    tty: bool,
    start: Instant,
    bar: RefCell<Option<ProgressBar>>,
    /// The stage running now, and since when (for the lines without a terminal).
    current: RefCell<Option<(String, Instant)>>,
}

/// A stage that takes longer than this gets a line saying so when it ends (no terminal).
const SLOW: Duration = Duration::from_secs(5);

impl Reporter {
    pub fn new(quiet: bool) -> Reporter {
        Reporter {
            quiet,
            tty: std::io::stderr().is_terminal(),
            start: Instant::now(),
            bar: RefCell::new(None),
            current: RefCell::new(None),
        }
    }

    /// `[  12.3s] binpack: line`.
    fn stamped(&self, line: &str) {
        let t = self.start.elapsed().as_secs_f64();
        say(&format!("[{t:>6.1}s] binpack: {line}"));
    }
}

impl Progress for Reporter {
    fn stage(&self, message: &str) {
        self.finish_stage();
        if self.quiet {
            return;
        }
        if !self.tty {
            self.stamped(message);
            *self.current.borrow_mut() = Some((message.to_string(), Instant::now()));
            return;
        }
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
        bar.set_style(
            ProgressStyle::with_template("{spinner} {msg} ({elapsed})").expect("valid template"),
        );
        bar.set_message(message.to_string());
        bar.enable_steady_tick(Duration::from_millis(100));
        *self.bar.borrow_mut() = Some(bar);
    }

    fn bytes(&self, done: u64, total: u64) {
        if let Some(bar) = self.bar.borrow().as_ref() {
            if bar.length() != Some(total) {
                bar.set_length(total);
                bar.set_style(
                    ProgressStyle::with_template(
                        "{spinner} {msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} ({elapsed})",
                    )
                    .expect("valid template")
                    .progress_chars("=> "),
                );
            }
            bar.set_position(done.min(total));
        }
    }

    fn finish_stage(&self) {
        if let Some((msg, since)) = self.current.borrow_mut().take() {
            let took = since.elapsed();
            if took >= SLOW {
                self.stamped(&format!("{msg}: took {:.1}s", took.as_secs_f64()));
            }
        }
        if let Some(bar) = self.bar.borrow_mut().take() {
            let (msg, took) = (bar.message(), bar.elapsed());
            bar.finish_and_clear();
            say(&format!("binpack: {msg} ({:.1}s)", took.as_secs_f64()));
        }
    }
}

/// One progress line on stderr. Progress is best-effort: a stderr that cannot be written
/// (`2> /dev/full`) must not stop the build, so the error is dropped (eprintln! would panic).
fn say(line: &str) {
    let _ = writeln!(std::io::stderr(), "{line}");
}

use binpack::support::progress::human_bytes as human;

/// Prints the result. stdout carries what a script reads: with `--json` one JSON object,
/// else the image's reference with its digest, one `REF@sha256:...` line per pushed
/// reference (as ko prints it), `IMG=$(binpack ...)`; the readable summary goes to stderr.
/// A failed write on stdout is a [`StdoutError`](super::StdoutError), not println!'s panic.
pub fn print_summary(s: &Summary, json: bool) -> anyhow::Result<()> {
    for n in &s.notes {
        match n.strip_prefix("warning: ") {
            Some(w) => say(&format!("binpack: warning: {w}")),
            None => say(&format!("binpack: note: {n}")),
        }
    }
    let text = if json {
        format!("{}\n", serde_json::to_string(s)?)
    } else {
        let _ = std::io::stderr().write_all(summary_text(s).as_bytes());
        // `-o /dev/stdout`: stdout is the archive; a line after it would damage it.
        let fd1 = ["/dev/stdout", "/dev/fd/1", "/proc/self/fd/1"].map(std::path::Path::new);
        match &s.outputs.output {
            Some(o) if fd1.contains(&o.as_path()) => String::new(),
            _ => script_lines(s),
        }
    };
    super::print_out(&text)?;
    Ok(())
}

/// `REF@sha256:...` for each pushed reference; without a push, the image's name@digest.
fn script_lines(s: &Summary) -> String {
    match s.outputs.pushed.as_slice() {
        [] => format!("{}@{}\n", s.reference, s.digest),
        pushed => pushed.iter().map(|p| format!("{p}\n")).collect(),
    }
}

/// The readable summary, one line per fact.
fn summary_text(s: &Summary) -> String {
    let mut t = String::new();
    // Writing to a String cannot fail.
    let mut line = |l: String| {
        t.push_str(&l);
        t.push('\n');
    };
    line(format!("{}  {}", s.reference, s.digest));
    line(format!(
        "  base       {}: {}",
        s.image.base, s.image.base_reason
    ));
    if !s.image.libraries.is_empty() {
        // Library names come from the ELF: escaped, like everything read from it.
        let names: Vec<&str> = s.image.libraries.iter().map(|l| l.name.as_str()).collect();
        line(format!("  libraries  {}", printable(&names.join(", "))));
    }
    if let Some(r) = &s.image.runtime {
        line(format!("  runtime    {r}"));
    }
    if let Some(tc) = &s.image.toolchain {
        line(format!("  built on   {tc}"));
    }
    if let Some(l) = &s.image.layout {
        let why = s.image.layout_reason.as_deref().unwrap_or_default();
        line(format!("  layout     {l}: {why}"));
    }
    line(format!("  platform   {}", s.platforms.join(", ")));
    line(format!("  entrypoint {}", s.image.entrypoint));
    if let Some(sbom) = &s.image.sbom {
        line(format!("  sbom       {sbom}"));
    }
    line(format!(
        "  size       {} compressed, {} uncompressed (binary {})",
        human(s.size.compressed),
        human(s.size.uncompressed),
        human(s.image.binary_size)
    ));
    manifests_text(s, &mut line);
    outputs_text(s, &mut line);
    t
}

/// An index's images, one line each.
fn manifests_text(s: &Summary, line: &mut impl FnMut(String)) {
    for m in &s.manifests {
        line(format!(
            "  manifest   {}  {}  ({} compressed)",
            m.platform,
            m.digest,
            human(m.size.compressed)
        ));
    }
}

/// The lines saying where the image went.
fn outputs_text(s: &Summary, line: &mut impl FnMut(String)) {
    let o = &s.outputs;
    if let Some(p) = &o.output {
        line(format!(
            "  output     {}  (docker load -i {})",
            p.display(),
            p.display()
        ));
        if !s.manifests.is_empty() {
            // docker 20.10 reads manifest.json, which names one image.
            line(format!(
                "             the index for podman and skopeo; docker load gets {} only",
                s.image.linkage.platform
            ));
        }
    }
    if let Some(p) = &o.oci_layout {
        line(format!("  oci layout {}", p.display()));
    }
    if let Some(st) = &o.push {
        for p in &o.pushed {
            line(format!("  pushed     {p}"));
        }
        line(format!(
            "             {} blobs uploaded, {} mounted, {} already there",
            st.uploaded, st.mounted, st.skipped
        ));
    }
    if let Some(l) = &o.loaded {
        line(format!("  loaded     {}: {}", l.engine, l.image));
    }
}
