//! Speed against size of binpack's gzip at every level, on the files given as arguments
//! (scripts/bench.sh passes a static Go binary and a node executable): the table behind
//! `layer::LEVEL`. `cargo bench --bench levels -- FILE...`
use binpack::compress::{gzip, Gzip};
use std::time::Instant;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
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
    println!("file                  level  MB/s 1 thread  MB/s {cores} threads  size (% of input)");
    for f in files {
        let data = std::fs::read(&f).unwrap_or_else(|e| panic!("reading {f}: {e}"));
        let name = std::path::Path::new(&f)
            .file_name()
            .unwrap()
            .to_string_lossy()
            .to_string();
        for level in 1..=9 {
            let run = |threads| {
                let opts = Gzip { level, threads };
                let t = Instant::now();
                let ((), _, sums) = gzip(std::io::sink(), opts, |w| w.write_all(&data)).unwrap();
                (t.elapsed().as_secs_f64(), sums.size)
            };
            let one = median((0..3).map(|_| run(1).0).collect());
            let all = median((0..3).map(|_| run(cores).0).collect());
            let size = run(cores).1;
            let mb = data.len() as f64 / 1e6;
            println!(
                "{name:<20}  {level:>5}  {:>13.0}  {:>14.0}  {:>9} ({:.1}%)",
                mb / one,
                mb / all,
                size,
                100.0 * size as f64 / data.len() as f64
            );
        }
    }
}
