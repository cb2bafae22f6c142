//! `binpack python`: a CPython app in three layers (interpreter + stdlib, dependencies, app).

use super::report::Reporter;
use super::runner::{self, BuildArgs};
use binpack::build::python::{PythonBuild, PythonBuilder};
use binpack::build::toolchain::Kind;
use std::path::PathBuf;

/// Pack a Python app: the interpreter with its standard library and the shared libraries it
/// needs (one layer, the same for every app on that Python), the dependencies installed by
/// binpack (a second layer, the same while the requirements are), the app's own files (the
/// top layer). Every module is compiled to hash-based bytecode at build time.
///
/// PATH is the app's main script, run as `python /app/PATH`, its dependencies read from
/// requirements.txt or pyproject.toml in its directory or the nearest one above; or a project
/// directory whose pyproject.toml declares one console script ([project.scripts]), installed
/// with the project. The dependencies are installed with uv (pinned, installed once into
/// binpack's cache with the interpreter's pip) into a private directory: your virtual
/// environment is never shipped. The interpreter is the python3 on PATH or --python; its
/// layout is read from it (Debian's /usr/bin/python3.11, pyenv, python-build-standalone).
/// Without python3 on PATH, or with --toolchain docker|podman, the build runs in a toolchain
/// image (python:3.11-slim-bookworm, pinned; --toolchain-image names another) and packs that
/// image's interpreter, standard library and libraries.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The main script (app.py), or a directory with a pyproject.toml
    #[arg(default_value = ".", value_name = "PATH")]
    path: PathBuf,

    /// The interpreter on this machine [default: the python3 on PATH; in a toolchain container,
    /// the image's python3]
    #[arg(long, value_name = "PATH")]
    python: Option<PathBuf>,

    /// The file listing the dependencies (a requirements file or a pyproject.toml)
    /// [default: requirements.txt, else pyproject.toml, beside the script or above it]
    #[arg(long, short = 'r', value_name = "FILE")]
    requirements: Option<PathBuf>,

    #[command(flatten)]
    common: BuildArgs,
}

pub fn run(args: Args, reporter: &Reporter) -> anyhow::Result<()> {
    let request = args.common.toolchain_request();
    // Under --toolchain host, an image or a network is refused as for any command.
    let container = match request.kind {
        Kind::Host => false,
        Kind::Auto => request.image.is_some() || request.network.is_some(),
        Kind::Docker | Kind::Podman => true,
    };
    if let (Some(python), true) = (&args.python, container) {
        anyhow::bail!("--python {} names an interpreter on this machine, but the build runs in a toolchain container, which uses its image's python3: drop --python, or choose the image with --toolchain-image", python.display());
    }
    let builder = PythonBuilder {
        spec: PythonBuild {
            path: args.path,
            python: args.python,
            requirements: args.requirements,
        },
    };
    runner::run(&builder, &args.common, reporter)
}
