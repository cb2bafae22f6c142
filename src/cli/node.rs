//! `binpack node`: a Node.js app as a single executable in the smallest image that runs it.

use super::pack_args::PackArgs;
use super::report::{self, Reporter};
use super::toolchain_args::ToolchainArgs;
use binpack::build::node::{self, NodeBuild, Packer};
use binpack::build::toolchain::Toolchain;
use binpack::pack;
use binpack::progress::Progress;
use std::path::PathBuf;

/// Bundle a Node.js app (esbuild, ESM converted to CommonJS), turn it into one executable
/// (Node's single executable applications, written natively) and pack it with exactly the
/// libraries that executable needs, /etc/hosts, certificates and a writable /tmp.
///
/// node and esbuild come from the host, or from a node toolchain container (--toolchain).
/// esbuild comes from the project's node_modules, else PATH, else is installed (pinned) into
/// binpack's cache with npm. A require() with a computed name in your code, or a native addon,
/// is refused by name: a bundle cannot hold them.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// A .js/.cjs/.mjs file, or a directory whose package.json names the entry (bin, else main)
    #[arg(default_value = ".", value_name = "ENTRY")]
    entry: PathBuf,

    /// Use the official node X (e.g. 22 or 22.12.0), fetched with npm, verified and cached
    /// [default: the node on PATH]
    #[arg(long, value_name = "X")]
    node_version: Option<String>,

    /// How to make the executable
    #[arg(long, value_enum, default_value_t = Packer::Sea)]
    packer: Packer,

    /// File or directory shipped beside the executable, for code that reads files relative to
    /// __dirname (repeatable)
    #[arg(long = "asset", value_name = "PATH")]
    assets: Vec<PathBuf>,

    #[command(flatten)]
    toolchain: ToolchainArgs,

    #[command(flatten)]
    pack: PackArgs,
}

pub fn run(args: Args, reporter: &Reporter) -> anyhow::Result<()> {
    let spec = NodeBuild {
        entry: args.entry.clone(),
        node_version: args.node_version.clone(),
        packer: args.packer,
        assets: args.assets.clone(),
    };
    let toolchain = Toolchain::select(&args.toolchain.request(), "node", node::INSTALL, reporter)?;
    let built = node::build(&spec, &toolchain, reporter)?;
    let artifact = &built.artifact;
    reporter.finish_stage();
    let outputs = args.pack.outputs(&artifact.name)?;
    let summary = pack::pack(artifact, &args.pack.options()?, &outputs, reporter)?;
    report::print_summary(&summary, args.pack.json)
}
