//! `binpack node`: a Node.js app as a single executable in the smallest image that runs it.

use super::pack_args::PackArgs;
use super::report::{self, Reporter};
use super::toolchain_args::ToolchainArgs;
use anyhow::bail;
use binpack::build::node::{self, Layout, NodeBuild, Packer};
use binpack::build::toolchain::Toolchain;
use binpack::choose::BaseRequest;
use binpack::pack;
use binpack::platform::{Platform, Platforms};
use binpack::progress::Progress;
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
/// (pinned) into binpack's cache with npm, as the tracer is.
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

    /// Target platforms, comma-separated (linux/amd64,linux/arm64), or `all` (linux/amd64,
    /// linux/arm64): the official node of each from npm, the same bundle injected into each.
    /// Several make an image index [default: linux/<host arch>]
    #[arg(long, value_name = "OS/ARCH,...", value_parser = Platforms::parse)]
    platform: Option<Platforms>,

    /// Where another platform's shared libraries come from, e.g. linux/arm64=/ (a Debian root
    /// with libc6:arm64 and libstdc++6:arm64) or a sysroot (repeatable) [default: the build's
    /// root, when it has that platform's loader]
    #[arg(long = "root", value_name = "OS/ARCH=DIR", value_parser = parse_root)]
    roots: Vec<(Platform, PathBuf)>,

    #[command(flatten)]
    toolchain: ToolchainArgs,

    #[command(flatten)]
    pack: PackArgs,
}

pub fn run(args: Args, reporter: &Reporter) -> anyhow::Result<()> {
    let platforms = match &args.platform {
        Some(p) => p.resolve(&Platform::known(&["linux/amd64", "linux/arm64"])),
        None => vec![Platform::host()],
    };
    if args.packer == Packer::Pkg && platforms.iter().any(|p| *p != Platform::host()) {
        bail!("--packer pkg builds for the host's platform only; the default packer (sea) builds for any --platform");
    }
    let options = args.pack.options()?;
    args.pack.preflight()?; // outputs' preconditions (--load's engine) before the build
    let toolchain = Toolchain::select(&args.toolchain.request(), "node", node::INSTALL, reporter)?;
    let mut built = Vec::new();
    for platform in platforms {
        let spec = NodeBuild {
            entry: args.entry.clone(),
            node_version: args.node_version.clone(),
            packer: args.packer,
            assets: args.assets.clone(),
            platform: Some(platform.clone()),
            layout: args.layout,
            cache: options.layer_cache.dir().map(Into::into),
        };
        let mut b = node::build(&spec, &toolchain, reporter)?;
        if let Some((_, dir)) = args.roots.iter().find(|(p, _)| *p == platform) {
            b.artifact.root = dir.clone();
        } else if platform != Platform::host() && needs_root(&options.base) {
            check_root(&b.artifact, &platform)?;
        }
        built.push(b);
    }
    reporter.finish_stage();
    let artifacts: Vec<_> = built.iter().map(|b| &b.artifact).collect();
    let outputs = args.pack.outputs(&artifacts[0].name)?;
    let summary = pack::pack_all(&artifacts, &options, &outputs, reporter)?;
    report::print_summary(&summary, args.pack.json)
}

/// `--root linux/arm64=/srv/arm64-root`.
fn parse_root(s: &str) -> Result<(Platform, PathBuf), String> {
    let (p, dir) = s
        .split_once('=')
        .ok_or_else(|| format!("expected OS/ARCH=DIR, got {s:?}"))?;
    let dir = PathBuf::from(dir);
    if !dir.is_dir() {
        return Err(format!("{}: no such directory", dir.display()));
    }
    Ok((Platform::parse(p)?, dir))
}

/// Whether the base takes the libraries from a root (an image base brings its own).
fn needs_root(base: &BaseRequest) -> bool {
    matches!(base, BaseRequest::Auto | BaseRequest::Closure)
}

/// Refuses another platform's node when its root has no loader of that platform: the
/// closure could not be made, and the user has to say where it comes from.
fn check_root(artifact: &binpack::build::Artifact, platform: &Platform) -> anyhow::Result<()> {
    let linkage = binpack::inspect::inspect_file(&artifact.executable)?;
    let Some(interp) = linkage.interpreter else {
        return Ok(());
    };
    let root = &artifact.root;
    if !root.join(interp.trim_start_matches('/')).exists() {
        bail!(
            "no {platform} libraries for node: {} has no {interp}; give --root {platform}=DIR \
             (a root with that platform's libc and libstdc++, e.g. Debian's libc6:{arch} \
             libstdc++6:{arch} after dpkg --add-architecture {arch}) or a --base image of {platform}",
            root.display(),
            arch = platform.arch
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roots_name_a_platform_and_a_directory() {
        let (p, dir) = parse_root("linux/arm64=/").unwrap();
        assert_eq!(p.to_string(), "linux/arm64/v8");
        assert_eq!(dir, PathBuf::from("/"));
        assert!(parse_root("/").unwrap_err().contains("OS/ARCH=DIR"));
        assert!(parse_root("linux/mips=/")
            .unwrap_err()
            .contains("linux/mips"));
        let missing = parse_root("linux/arm64=/no/such/dir").unwrap_err();
        assert!(
            missing.contains("/no/such/dir: no such directory"),
            "{missing}"
        );
    }
}
