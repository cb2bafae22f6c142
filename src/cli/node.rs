//! `binpack node`: a Node.js app as a single executable in the smallest image that runs it.

use super::report::Reporter;
use super::runner::{self, BuildArgs};
use binpack::build::node::{Layout, NodeBuilder, Packer};
use std::path::PathBuf;

/// Pack a Node.js app in one of two layouts. `sea`: the app bundled by esbuild (ESM and
/// TypeScript converted to CommonJS) into one executable (Node's single executable
/// applications, written natively). `files`: a stock node in its own layer (the same for every
/// app on that node version) and, in a layer above, exactly the files the app reads at run
/// time (traced by @vercel/nft) at their project paths under /app, run as `node /app/ENTRY`.
/// Either way: the libraries node needs, /etc/hosts, certificates (NODE_EXTRA_CA_CERTS points
/// at them) and a writable /tmp.
///
/// `--layout auto` takes sea when the bundle holds the whole app, and files when it cannot
/// (computed require or import(), require.resolve, workers or forks by path, native addons,
/// top-level await, data files read from node_modules), and says which and why.
///
/// node, esbuild and the tracer come from the host, or from a node toolchain container
/// (--toolchain). esbuild comes from the project's node_modules, else PATH, else is installed
/// (pinned) into binpack's cache with npm, as the tracer is. `--platform all`: linux/amd64 and
/// linux/arm64, the official node of each from npm, the same app in each.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// A .js/.cjs/.mjs/.ts/.mts/.cts file, or a directory whose package.json names the entry (bin, else main)
    #[arg(default_value = ".", value_name = "ENTRY")]
    entry: PathBuf,

    /// Use the official node X (e.g. 22 or 22.12.0), fetched with npm, verified and cached
    /// [default: the node on PATH]
    #[arg(long, value_name = "X")]
    node_version: Option<String>,

    /// How to make the executable
    #[arg(long, value_enum, default_value_t = Packer::Sea)]
    packer: Packer,

    /// How the app goes into the image: one executable (sea), node + the app's files (files),
    /// or sea when the bundle holds the whole app, else files (auto)
    #[arg(long, value_enum, default_value_t = Layout::Auto)]
    layout: Layout,

    /// File or directory shipped under /app at its project path (beside the executable, or
    /// with the traced files), for files the app reads that no code names (repeatable)
    #[arg(long = "asset", value_name = "PATH")]
    assets: Vec<PathBuf>,

    #[command(flatten)]
    common: BuildArgs,
}

pub fn run(args: Args, reporter: &Reporter) -> anyhow::Result<()> {
    let builder = NodeBuilder {
        entry: args.entry,
        node_version: args.node_version,
        packer: args.packer,
        layout: args.layout,
        assets: args.assets,
    };
    runner::run(&builder, &args.common, reporter)
}
