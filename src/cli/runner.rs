//! The one runner every language subcommand goes through: the flags every builder shares
//! (platforms, roots, toolchain, image and outputs), then platforms -> toolchain -> build each
//! -> outputs -> pack -> summary. A language's file holds only its own flags and the
//! [`Builder`] they make.

use super::pack_args::PackArgs;
use super::report::{self, Reporter};
use super::toolchain_args::ToolchainArgs;
use anyhow::bail;
use binpack::base::choose::BaseRequest;
use binpack::build::toolchain::{Kind, Toolchain};
use binpack::build::{self, BuildCx, Builder, Targets};
use binpack::pack;
use binpack::support::platform::{Platform, Platforms};
use std::path::PathBuf;

/// The flags of every command that builds.
#[derive(Debug, clap::Args)]
pub struct BuildArgs {
    /// Target platforms, comma-separated (linux/amd64,linux/arm64,linux/arm/v7,
    /// linux/amd64/v3), or `all` (every platform this command builds for). Several make an
    /// image index, one image per platform [default: linux/<host arch>]
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
    pub pack: PackArgs,
}

impl BuildArgs {
    /// Where the user asked the build to run.
    pub fn toolchain_request(&self) -> binpack::build::toolchain::Request {
        self.toolchain.request()
    }
}

/// Builds with `builder` for every platform asked for and packs the result.
pub fn run(builder: &dyn Builder, args: &BuildArgs, reporter: &Reporter) -> anyhow::Result<()> {
    let options = args.pack.options()?;
    // The outputs' preconditions (--load's engine) before a long build.
    args.pack.preflight()?;
    let targets = targets(builder, args, &options.base);
    let toolchain = toolchain(builder, args, reporter)?;
    let cx = BuildCx {
        toolchain: &toolchain,
        progress: reporter,
        cache: options.layer_cache.dir(),
        explicit_platform: args.platform.is_some(),
        roots: &args.roots,
    };
    let built = build::build_all(builder, &targets, &cx)?;
    let artifacts: Vec<_> = built.iter().map(|b| &b.artifact).collect();
    let outputs = args.pack.outputs(&artifacts[0].name)?;
    let summary = pack::pack_all(&artifacts, &options, &outputs, reporter)?;
    report::print_summary(&summary, args.pack.json)
}

/// The platforms asked for (`all`: the builder's), their roots, and whether the base needs
/// them.
fn targets(builder: &dyn Builder, args: &BuildArgs, base: &BaseRequest) -> Targets {
    let platforms = match &args.platform {
        Some(p) => p.resolve(&Platform::known(builder.platforms())),
        None => vec![Platform::host()],
    };
    Targets {
        platforms,
        roots: args.roots.clone(),
        base_from_root: matches!(base, BaseRequest::Auto | BaseRequest::Closure),
    }
}

/// Where the builder's tool runs: host or container, as asked; a builder without a tool
/// builds on the host.
fn toolchain(
    builder: &dyn Builder,
    args: &BuildArgs,
    reporter: &Reporter,
) -> anyhow::Result<Toolchain> {
    let request = args.toolchain.request();
    match builder.tool() {
        Some(tool) => Ok(Toolchain::select(&request, &tool, reporter)?),
        None if request.kind == Kind::Auto || request.kind == Kind::Host => {
            if request.image.is_some() || request.network.is_some() {
                bail!("binpack {} builds on the host only: --toolchain-image and --network need a toolchain container", builder.name());
            }
            Ok(Toolchain::Host)
        }
        None => bail!(
            "binpack {} builds on the host only: it has no toolchain container (--toolchain {})",
            builder.name(),
            format!("{:?}", request.kind).to_lowercase()
        ),
    }
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
