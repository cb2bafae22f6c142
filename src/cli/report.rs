//! Progress on stderr while binpack works, and the final summary.

use binpack::progress::Progress;
use binpack::summary::Summary;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::cell::RefCell;
use std::io::IsTerminal;
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
            eprintln!("binpack: {message}");
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
            eprintln!("binpack: {msg}");
        }
    }
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

/// Prints the result: readable lines, or one JSON object with `--json`.
pub fn print_summary(s: &Summary, json: bool) -> anyhow::Result<()> {
    for n in &s.notes {
        eprintln!("binpack: note: {n}");
    }
    if json {
        println!("{}", serde_json::to_string(s)?);
        return Ok(());
    }
    println!("{}  {}", s.reference, s.digest);
    println!("  base       {}: {}", s.image.base, s.image.base_reason);
    if !s.image.libraries.is_empty() {
        let names: Vec<&str> = s.image.libraries.iter().map(|l| l.name.as_str()).collect();
        println!("  libraries  {}", names.join(", "));
    }
    if let Some(r) = &s.image.runtime {
        println!("  runtime    {r}");
    }
    if let Some(t) = &s.image.toolchain {
        println!("  built on   {t}");
    }
    println!("  platform   {}", s.platform);
    println!("  entrypoint {}", s.image.entrypoint);
    println!(
        "  size       {} compressed, {} uncompressed (binary {})",
        human(s.size.compressed),
        human(s.size.uncompressed),
        human(s.image.binary_size)
    );
    if let Some(o) = &s.outputs.output {
        println!(
            "  output     {}  (docker load -i {})",
            o.display(),
            o.display()
        );
    }
    if let Some(o) = &s.outputs.oci_layout {
        println!("  oci layout {}", o.display());
    }
    if let (Some(p), Some(st)) = (&s.outputs.pushed, &s.outputs.push) {
        println!(
            "  pushed     {p}  ({} uploaded, {} mounted, {} already there)",
            st.uploaded, st.mounted, st.skipped
        );
    }
    if let Some(l) = &s.outputs.loaded {
        println!("  loaded     {l}");
    }
    Ok(())
}
