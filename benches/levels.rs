//! Speed against size of the gzip candidates, on the files given as arguments (scripts/bench.sh
//! passes a static Go binary and a node executable): the table behind `layer::LEVEL`.
//! `cargo bench --bench levels -- FILE...`
//!
//! Rows: binpack's compressor (stock zlib in the block scheme, hashing both streams) at several
//! levels; zlib-rs in the same block scheme (compression only; binpack-layer/2 was its level
//! 6); and single-threaded GNU `gzip -6` and `pigz -6` when they are on PATH, the references
//! of the size target (<= gzip -6 + 1%).
use binpack::compress::{gzip, Gzip, BLOCK, WINDOW};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Median seconds of 3 runs, and the size the last one gave.
fn timed(mut run: impl FnMut() -> u64) -> (f64, u64) {
    let mut size = 0;
    let secs = (0..3)
        .map(|_| {
            let t = Instant::now();
            size = run();
            t.elapsed().as_secs_f64()
        })
        .collect();
    (median(secs), size)
}

fn binpack(data: &[u8], level: u32, threads: usize) -> u64 {
    let opts = Gzip { level, threads };
    let ((), _, sums) = gzip(std::io::sink(), opts, |w| w.write_all(data)).unwrap();
    sums.size
}

/// One block through zlib-rs as binpack-layer/2 did it: dictionary, sync flush, last finished.
fn zlib_rs_block(level: i32, dict: &[u8], data: &[u8], last: bool) -> usize {
    use zlib_rs::{Deflate, DeflateFlush, Status};
    let mut c = Deflate::new(level, false, 15);
    if !dict.is_empty() {
        c.set_dictionary(dict).unwrap();
    }
    let flush = if last {
        DeflateFlush::Finish
    } else {
        DeflateFlush::SyncFlush
    };
    let mut out = vec![0u8; data.len() + data.len() / 8 + 1024];
    let status = c.compress(data, &mut out, flush).unwrap();
    assert!(c.total_in() == data.len() as u64 && (!last || status == Status::StreamEnd));
    c.total_out() as usize
}

/// zlib-rs in the block scheme on `threads` threads: the gzip member's size.
fn zlib_rs(data: &[u8], level: i32, threads: usize) -> u64 {
    let blocks = data.len() / BLOCK + 1;
    let (next, total) = (AtomicUsize::new(0), AtomicUsize::new(0));
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= blocks {
                    return;
                }
                let at = i * BLOCK;
                let block = &data[at..(at + BLOCK).min(data.len())];
                let dict = &data[at.saturating_sub(WINDOW)..at];
                let n = zlib_rs_block(level, dict, block, i + 1 == blocks);
                total.fetch_add(n, Ordering::Relaxed);
            });
        }
    });
    (total.into_inner() + 18) as u64
}

/// A reference compressor's size and time (`tool -6 -c FILE`), if it is on PATH.
fn reference(tool: &str, file: &str) -> Option<(f64, u64)> {
    let run = || {
        let out = Command::new(tool)
            .args(["-6", "-c", file])
            .stderr(Stdio::null())
            .output()
            .ok()?;
        out.status.success().then_some(out.stdout.len() as u64)
    };
    run()?;
    Some(timed(|| run().unwrap_or(0)))
}

fn main() {
    // `cargo test --all-targets` runs benches too, with the test harness's arguments: a
    // measurement is only asked for by `cargo bench`, which passes --bench.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    // Flags are cargo's (--bench; the harness flags when cargo test runs it): not files.
    let files: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let cores = Gzip::new(6).threads;
    println!(
        "file                 compressor       MB/s 1 thr  MB/s {cores} thr  size (% of input, vs gzip -6)"
    );
    for f in files {
        let data = std::fs::read(&f).unwrap_or_else(|e| panic!("reading {f}: {e}"));
        let name = std::path::Path::new(&f)
            .file_name()
            .unwrap()
            .to_string_lossy();
        let mb = data.len() as f64 / 1e6;
        let gzip6 = reference("gzip", &f);
        let row = |what: &str, one: Option<f64>, all: Option<f64>, size: u64| {
            let speed =
                |secs: Option<f64>| secs.map_or("-".to_string(), |s| format!("{:.0}", mb / s));
            let (one, all) = (speed(one), speed(all));
            let vs = gzip6.map_or(String::new(), |(_, g)| {
                format!(", {:+.2}%", 100.0 * (size as f64 / g as f64 - 1.0))
            });
            let pct = 100.0 * size as f64 / data.len() as f64;
            println!("{name:<20} {what:<15} {one:>11}  {all:>10}  {size:>10} ({pct:.1}%{vs})");
        };
        if let Some((secs, size)) = gzip6 {
            row("gzip -6", Some(secs), None, size);
        }
        if let Some((secs, size)) = reference("pigz", &f) {
            row("pigz -6", None, Some(secs), size);
        }
        for level in [1, 3, 5, 6, 7, 9] {
            let (one, size) = timed(|| binpack(&data, level, 1));
            let (all, _) = timed(|| binpack(&data, level, cores));
            row(
                &format!("zlib {level} (binpack)"),
                Some(one),
                Some(all),
                size,
            );
        }
        for level in [6, 7, 8, 9] {
            let (one, size) = timed(|| zlib_rs(&data, level, 1));
            let (all, _) = timed(|| zlib_rs(&data, level, cores));
            row(&format!("zlib-rs {level}"), Some(one), Some(all), size);
        }
    }
}
