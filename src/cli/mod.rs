//! Command-line parsing and the subcommands, one file each.

/// `println!` that returns a [`StdoutError`] (with `?`) instead of panicking when stdout
/// cannot be written: a full disk (`> /dev/full`) or a closed pipe (`| head -1`).
macro_rules! outln {
    ($($arg:tt)*) => {
        $crate::cli::print_out(&format!("{}\n", format_args!($($arg)*)))?
    };
}

mod bin;
mod cargo;
pub mod config;
mod go;
mod inspect;
mod node;
mod pack_args;
mod python;
mod report;
mod runner;
mod sea;
mod toolchain_args;

use clap::{Parser, Subcommand};
use std::io::{self, Write};

const AFTER_HELP: &str = "\
Examples:
  binpack go ./cmd/server                 build and pack into dist/server.tar
  binpack go . -t registry.example/app:v1 -- --port 8080
  binpack node ./server.js                one executable, or node + the app's files
  binpack python app.py                   the interpreter, the dependencies, the app
  binpack bin ./prebuilt                  pack an ELF built elsewhere (its libraries too)
  binpack bin ./prebuilt --push 127.0.0.1:5000/app:1 --load
  binpack inspect ./prebuilt              what it needs and which base it would get
  docker load -i dist/server.tar          run it with any engine

Environment:
  SOURCE_DATE_EPOCH     timestamps in the image (default: the Unix epoch)
  BINPACK_CACHE         the cache: node runtimes, esbuild, base image blobs, known layers
                        (default: $XDG_CACHE_HOME/binpack or ~/.cache/binpack)
  BINPACK_ALPINE_BASE   the alpine image for musl binaries
  BINPACK_VOLUME_PREFIX prefix of the toolchain containers' cache volumes (default
                        binpack: binpack-go-cache, binpack-npm-cache)
  DOCKER_CONFIG         where registry credentials are read (config.json)

Config: binpack.toml in the current directory, or the nearest parent up to the project root
(the top of the git work tree; outside one, the current directory only), holds the same
options as the flags: top-level keys for every command, [go]/[node]/[bin]/[cargo]/[python] tables
for one, `args` for the default Cmd. Flags on the command line win.";

/// Turn a Go, Node.js, Rust or Python program (or any Linux ELF) into the smallest container image that runs it.
/// No Dockerfile, no daemon: binpack reads the binary, picks the base it needs (scratch for a
/// static binary, its exact shared-library closure for a dynamic one) and writes an image
/// archive that docker, podman and skopeo load.
#[derive(Debug, Parser)]
#[command(name = "binpack", version, after_help = AFTER_HELP, args_override_self = true)]
pub struct Cli {
    /// Show no progress (errors and the result are still printed).
    #[arg(short, long, global = true)]
    quiet: bool,

    /// Read options from this file instead of the nearest binpack.toml
    #[arg(long, value_name = "FILE", global = true)]
    config: Option<std::path::PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    Go(go::Args),
    Node(node::Args),
    Bin(bin::Args),
    Cargo(cargo::Args),
    Python(python::Args),
    Inspect(inspect::Args),
    #[command(hide = true)]
    Sea(sea::Args),
}

pub fn run(cli: Cli) -> anyhow::Result<()> {
    let reporter = report::Reporter::new(cli.quiet);
    binpack::support::cache_dir::checked()?;
    match cli.command {
        Command::Go(a) => go::run(a, &reporter),
        Command::Node(a) => node::run(a, &reporter),
        Command::Bin(a) => bin::run(a, &reporter),
        Command::Cargo(a) => cargo::run(a, &reporter),
        Command::Python(a) => python::run(a, &reporter),
        Command::Inspect(a) => inspect::run(a),
        Command::Sea(a) => sea::run(a),
    }
}

/// The result could not be written on stdout.
#[derive(Debug, thiserror::Error)]
#[error("cannot write the result to standard output: {0}")]
pub struct StdoutError(#[from] io::Error);

impl StdoutError {
    /// The reader closed the pipe (`| head -1`): it wanted no more output.
    pub fn is_closed_pipe(&self) -> bool {
        self.0.kind() == io::ErrorKind::BrokenPipe
    }
}

/// Writes `text` on stdout and flushes it, so that a failed write is seen here and returned.
pub fn print_out(text: &str) -> Result<(), StdoutError> {
    let mut out = io::stdout().lock();
    out.write_all(text.as_bytes())?;
    out.flush()?;
    Ok(())
}
