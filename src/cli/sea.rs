//! `binpack sea`: plumbing that makes a single executable from a node binary and a CommonJS
//! script (the SEA stage alone, as `binpack node` runs it; the benchmark times it).

use binpack::sea::{blob::Blob, inject};
use std::path::PathBuf;

/// Make a Node single executable from NODE and SCRIPT (blob + injection, symbols dropped).
#[derive(Debug, clap::Args)]
pub struct Args {
    /// A stock node binary (20 or later)
    #[arg(value_name = "NODE")]
    node: PathBuf,
    /// The CommonJS script the executable runs
    #[arg(value_name = "SCRIPT")]
    script: PathBuf,
    /// Where to write the executable
    #[arg(short, long, value_name = "FILE")]
    output: PathBuf,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let code = std::fs::read(&args.script)
        .map_err(|e| anyhow::anyhow!("{}: {e}", args.script.display()))?;
    let blob = Blob {
        main_path: args
            .script
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        code,
        ..Default::default()
    };
    // Written beside the output under a temporary name, renamed only when whole.
    let dir = match args.output.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let tmp = binpack::support::cleanup::Tracked::new(
        tempfile::Builder::new()
            .prefix(&binpack::support::cleanup::beside_prefix())
            .suffix(".tmp")
            .tempfile_in(&dir)
            .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", args.output.display()))?,
    );
    let stats = inject::make_executable(&args.node, tmp.path(), &blob)?;
    tmp.into_inner()
        .persist(&args.output)
        .map_err(|e| anyhow::anyhow!("cannot write {}: {}", args.output.display(), e.error))?;
    eprintln!(
        "binpack: {} ({} bytes; {} bytes of symbols and debug info dropped)",
        args.output.display(),
        stats.output_size,
        stats.dropped
    );
    Ok(())
}
