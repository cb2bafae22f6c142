//! Progress on stderr while binpack works, and the final summary.

use binpack::printable::printable;
use binpack::progress::Progress;
use binpack::summary::Summary;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::cell::RefCell;
use std::io::{IsTerminal, Write};
use std::time::Duration;

/// Shows each stage: a spinner or byte bar on a terminal, one line per stage otherwise.
pub struct Reporter {
    quiet: bool,
    tty: bool,
    bar: RefCell<Option<ProgressBar>>,
}

impl Reporter {
    pub fn new(quiet: bool) -> Reporter {
        Reporter {
            quiet,
            tty: std::io::stderr().is_terminal(),
            bar: RefCell::new(None),
        }
    }
}

impl Progress for Reporter {
    fn stage(&self, message: &str) {
        self.finish_stage();
        if self.quiet {
            return;
        }
        if !self.tty {
            say(&format!("binpack: {message}"));
            return;
        }
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
        bar.set_style(ProgressStyle::with_template("{spinner} {msg}").expect("valid template"));
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
                        "{spinner} {msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec}",
                    )
                    .expect("valid template")
                    .progress_chars("=> "),
                );
            }
            bar.set_position(done.min(total));
        }
    }

    fn finish_stage(&self) {
        if let Some(bar) = self.bar.borrow_mut().take() {
            let msg = bar.message();
            bar.finish_and_clear();
            say(&format!("binpack: {msg}"));
        }
    }
}

/// One progress line on stderr. Progress is best-effort: a stderr that cannot be written
/// (`2> /dev/full`) must not stop the build, so the error is dropped (eprintln! would panic).
fn say(line: &str) {
    let _ = writeln!(std::io::stderr(), "{line}");
}

fn human(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut v = bytes as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

/// Prints the result: readable lines, or one JSON object with `--json`. A failed write is a
/// [`StdoutError`](super::StdoutError), not println!'s panic.
pub fn print_summary(s: &Summary, json: bool) -> anyhow::Result<()> {
    for n in &s.notes {
        say(&format!("binpack: note: {n}"));
    }
    let text = if json {
        format!("{}\n", serde_json::to_string(s)?)
    } else {
        summary_text(s)
    };
    super::print_out(&text)?;
    Ok(())
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
    line(format!("  platform   {}", s.platform));
    line(format!("  entrypoint {}", s.image.entrypoint));
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
    if let (Some(p), Some(st)) = (&o.pushed, &o.push) {
        line(format!(
            "  pushed     {p}  ({} uploaded, {} mounted, {} already there)",
            st.uploaded, st.mounted, st.skipped
        ));
    }
    if let Some(l) = &o.loaded {
        line(format!("  loaded     {l}"));
    }
}
