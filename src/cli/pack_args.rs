//! The image and output flags shared by every command that packs.

use anyhow::{bail, Context};
use binpack::base::choose::BaseRequest;
use binpack::emit::{Archive, Load, OciLayout, Output, Push, SbomFile};
use binpack::image::addfiles::Addition;
use binpack::image::layers::LayerCache;
use binpack::image::runconfig::RunOptions;
use binpack::pack::PackOptions;
use binpack::registry::reference::Reference;
use binpack::registry::RegistryOptions;
use binpack::support::engine::Engine;
use std::collections::BTreeMap;
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
#[command(next_help_heading = "Image and output")]
pub struct PackArgs {
    /// Write the image archive here (OCI layout + Docker manifest.json in one tar, loadable by
    /// docker, podman and skopeo) [default: dist/<name>.tar, unless --oci-layout, --push or
    /// --load is given]
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,

    /// Also (or only) write an OCI image layout directory
    #[arg(long, value_name = "DIR")]
    oci_layout: Option<PathBuf>,

    /// Name of the image, [registry/]repository[:tag] (repeatable: the archive, the layout and
    /// --load keep every name) [default: <name>:latest]
    #[arg(short, long = "tag", value_name = "REF", value_parser = parse_reference)]
    tag: Vec<Reference>,

    /// Base: auto (scratch for a static binary, alpine for musl, the library closure for
    /// glibc), scratch, closure, alpine, or any image reference (e.g. gcr.io/distroless/base)
    #[arg(long, value_name = "BASE", default_value = "auto", value_parser = parse_base)]
    base: BaseRequest,

    /// The alpine image for musl binaries [default: alpine:3.20, pinned by digest]
    #[arg(long, value_name = "REF", env = "BINPACK_ALPINE_BASE", value_parser = parse_pinned)]
    alpine_base: Option<Reference>,

    /// User the container runs as [default: 65532, "nonroot"]
    #[arg(long, value_name = "USER[:GROUP]")]
    user: Option<String>,

    /// Environment variable in the image (repeatable)
    #[arg(long = "env", value_name = "KEY=VALUE", value_parser = parse_key_value)]
    env: Vec<(String, String)>,

    /// Label on the image (repeatable; overrides binpack's org.opencontainers.image.* labels)
    #[arg(long = "label", value_name = "KEY=VALUE", value_parser = parse_key_value)]
    label: Vec<(String, String)>,

    /// CA certificate bundle to ship [default: the Mozilla roots pinned in binpack]
    #[arg(long, value_name = "FILE")]
    ca_certs: Option<PathBuf>,

    /// Push the image to a registry (OCI distribution API; credentials from the Docker config).
    /// Repeatable: blobs go once per repository, every REF gets the manifest; stdout then has
    /// one REF@sha256:... line per REF
    #[arg(long, value_name = "REF", value_parser = parse_reference)]
    push: Vec<Reference>,

    /// A registry (host[:port]) that may be spoken to over plain HTTP; this machine
    /// (127.0.0.0/8, localhost, ::1) always may (repeatable)
    #[arg(long = "insecure-registry", value_name = "HOST[:PORT]")]
    insecure_registry: Vec<String>,

    /// A CA certificate (PEM) a registry's TLS certificate may chain to, trusted besides the
    /// system's (SSL_CERT_FILE, else the distribution's bundle) (repeatable)
    #[arg(long = "registry-ca", value_name = "FILE")]
    registry_ca: Vec<PathBuf>,

    /// Load the image into the local engine: docker if on PATH, else podman (or name one)
    #[arg(long, value_enum, value_name = "ENGINE", num_args = 0..=1, require_equals = true, default_missing_value = "auto")]
    load: Option<LoadEngine>,

    /// Compress every layer again instead of taking a known one from the cache (binpack node:
    /// trace and strip node again too)
    #[arg(long)]
    no_layer_cache: bool,

    /// Ship a host file or directory at an absolute path in the image, root-owned, modes 0755
    /// or 0644 (repeatable), e.g. --add conf/app.toml:/etc/app.toml
    #[arg(long = "add", value_name = "SRC:DEST", value_parser = parse_addition)]
    add: Vec<Addition>,
    /// Layer compression: gzip (every engine reads it) or zstd (faster and smaller; docker 23+,
    /// podman and containerd read it; --load into an older docker is refused)
    #[arg(long, value_enum, value_name = "ALGORITHM", default_value = "gzip")]
    compression: binpack::image::layer::Compression,

    /// Print the result as one JSON object on stdout
    #[arg(long)]
    pub json: bool,

    /// Also write the image's SBOM (SPDX 2.3 JSON, the same bytes the image carries at
    /// /var/lib/db/sbom/<name>.spdx.json) to this file. ko's spellings work too: `none` is
    /// --no-sbom, `spdx` (or `spdx-json`) is the default SPDX SBOM in the image; a file of
    /// one of those names is `./none`
    #[arg(long, value_name = "FILE", conflicts_with = "no_sbom")]
    sbom: Option<PathBuf>,

    /// Put no SBOM in the image (and attach none on --push). Scanners then miss the npm
    /// packages, the node runtime and the crates inside the executable, the CA bundle, unowned
    /// libraries and the base image's digest; they still see the Go build info and, for a
    /// closure, the OS packages' status.d entries
    #[arg(long)]
    no_sbom: bool,

    /// Default arguments for the program (the image's Cmd), after `--`
    #[arg(last = true, value_name = "ARGS")]
    cmd: Vec<String>,
}

/// The repeatable names (`-t`, `--push`) the config file gives, dropped when the command
/// line gives its own: the file's are defaults, and flags win (the file's `--tag=...` would
/// otherwise add a name). `extra` is the file's options as `--key=value`, `given` the command
/// line after the subcommand.
pub fn unless_given(extra: Vec<String>, given: &[std::ffi::OsString]) -> Vec<String> {
    let flags: Vec<String> = (given.iter())
        .take_while(|a| *a != "--")
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let on_command_line = |long: &str, short: Option<&str>| {
        flags.iter().any(|f| {
            f == long
                || f.starts_with(&format!("{long}="))
                || short.is_some_and(|s| f.starts_with(s) && !f.starts_with("--"))
        })
    };
    let tag = on_command_line("--tag", Some("-t"));
    let push = on_command_line("--push", None);
    extra
        .into_iter()
        .filter(|e| (!tag || !e.starts_with("--tag=")) && (!push || !e.starts_with("--push=")))
        .collect()
}

/// `--load`, `--load=docker`, `--load=podman`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum LoadEngine {
    Auto,
    Docker,
    Podman,
}

fn parse_addition(s: &str) -> Result<Addition, String> {
    s.parse()
        .map_err(|e: binpack::image::addfiles::AddError| e.to_string())
}

fn parse_base(s: &str) -> Result<BaseRequest, String> {
    s.parse()
}

fn parse_pinned(s: &str) -> Result<Reference, String> {
    Reference::parse_pinned(s).map_err(|e| e.to_string())
}

fn parse_reference(s: &str) -> Result<Reference, String> {
    Reference::parse(s).map_err(|e| e.to_string())
}

fn parse_key_value(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(format!("expected KEY=VALUE, got {s:?}")),
    }
}

/// SOURCE_DATE_EPOCH, the reproducible-builds convention for "the time of this source".
fn source_date_epoch() -> anyhow::Result<Option<u64>> {
    match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(v) if !v.trim().is_empty() => {
            let secs = v
                .trim()
                .parse()
                .with_context(|| format!("SOURCE_DATE_EPOCH={v:?} is not a number of seconds"))?;
            Ok(Some(secs))
        }
        _ => Ok(None),
    }
}

impl PackArgs {
    /// `--sbom`: a file to write, or one of ko's format words: (disabled, file).
    fn sbom_choice(&self) -> anyhow::Result<(bool, Option<PathBuf>)> {
        let Some(f) = &self.sbom else {
            return Ok((self.no_sbom, None));
        };
        match f.to_str() {
            Some("none") => Ok((true, None)),
            Some("spdx" | "spdx-json") => Ok((false, None)),
            Some(w @ ("cyclonedx" | "cyclonedx-json" | "go.version-m" | "syft-json")) => bail!(
                "--sbom {w}: binpack writes SPDX 2.3 JSON only (--sbom spdx, the default, or --sbom FILE to also write it to a file; ./{w} for a file of that name)"
            ),
            _ => Ok((false, Some(f.clone()))),
        }
    }

    /// The library's options for a program called `name`.
    pub fn options(&self) -> anyhow::Result<PackOptions> {
        let (no_sbom, sbom_file) = self.sbom_choice()?;
        if let Some(f) = sbom_file.as_ref().filter(|f| f.is_dir()) {
            bail!(
                "--sbom {}: it is a directory; --sbom names the SBOM file",
                f.display()
            );
        }
        if let Some(ca) = &self.ca_certs {
            binpack::registry::check_ca_bundle(ca)
                .map_err(|why| anyhow::anyhow!("--ca-certs {}: {why}", ca.display()))?;
        }
        for a in &self.add {
            a.check()?;
        }
        // A wrong CA file is refused before any work, not after the image is built.
        if !self.registry_ca.is_empty() {
            binpack::registry::trust_roots(&self.registry())?;
        }
        Ok(PackOptions {
            base: self.base.clone(),
            alpine: self.alpine_base.clone(),
            reference: self.tag.first().or(self.push.first()).cloned(),
            run: RunOptions {
                user: self.user.clone(),
                env: self.env.iter().map(|(k, v)| format!("{k}={v}")).collect(),
                labels: self.label.iter().cloned().collect::<BTreeMap<_, _>>(),
                cmd: self.cmd.clone(),
                source_date_epoch: source_date_epoch()?,
            },
            ca_bundle: self.ca_certs.clone(),
            registry: self.registry(),
            layer_cache: if self.no_layer_cache {
                LayerCache::off()
            } else {
                LayerCache::default_dir()
            },
            add: self.add.clone(),
            sbom: binpack::sbom::SbomOptions { disabled: no_sbom },
            compression: self.compression,
        })
    }

    /// Whether `--base` names an image (which may bring a runtime binpack would refuse).
    pub fn base_is_image(&self) -> bool {
        matches!(self.base, BaseRequest::Image(_))
    }

    /// Whether `--add` ships any file.
    pub fn adds_files(&self) -> bool {
        !self.add.is_empty()
    }

    fn registry(&self) -> RegistryOptions {
        RegistryOptions {
            insecure: self.insecure_registry.clone(),
            attempts: None,
            timeouts: Default::default(),
            ca_files: self.registry_ca.clone(),
        }
    }

    /// Refuses, before anything is built, outputs that cannot be written: `--load` with no
    /// engine answering (or zstd layers for a docker before 23), a `-o` that is a source
    /// file. The generic runner calls it before the build; [`pack`](binpack::pack) checks the
    /// outputs again before it writes.
    pub fn preflight(&self) -> anyhow::Result<()> {
        // The default archive's name is the program's, not known yet.
        let placeholder = PathBuf::from("dist").join("app.tar");
        for o in self.outputs("app")? {
            if self.output.is_some() || o.destination() != Some(placeholder.as_path()) {
                o.check()?;
            }
        }
        Ok(())
    }

    /// Where the image of a program called `name` goes, in order: the archive (by default
    /// `dist/<name>.tar`, unless another output was asked for), the layout, the engine (from
    /// the archive when there is one), the registry.
    pub fn outputs(&self, name: &str) -> anyhow::Result<Vec<Box<dyn Output>>> {
        let other = self.oci_layout.is_some() || !self.push.is_empty() || self.load.is_some();
        let archive = match &self.output {
            Some(o) => Some(o.clone()),
            None if other => None,
            None => Some(PathBuf::from("dist").join(format!("{name}.tar"))),
        };
        // Refuse an impossible output before any work is done.
        if let Some(o) = self.output.as_ref().filter(|o| o.is_dir()) {
            bail!(
                "cannot write {}: it is a directory; -o names the archive file",
                o.display()
            );
        }
        let mut outputs: Vec<Box<dyn Output>> = Vec::new();
        if let Some(path) = &archive {
            outputs.push(Box::new(Archive {
                path: path.clone(),
                names: self.tag.clone(),
            }));
        }
        if let Some(dir) = &self.oci_layout {
            outputs.push(Box::new(OciLayout {
                dir: dir.clone(),
                names: self.tag.clone(),
            }));
        }
        if let Some(l) = self.load {
            let engine = match l {
                LoadEngine::Auto => None,
                LoadEngine::Docker => Some(Engine::Docker),
                LoadEngine::Podman => Some(Engine::Podman),
            };
            let zstd = self.compression == binpack::image::layer::Compression::Zstd;
            outputs.push(Box::new(Load::new(engine, archive, self.tag.clone(), zstd)));
        }
        if !self.push.is_empty() {
            outputs.push(Box::new(Push {
                targets: self.push.clone(),
                registry: self.registry(),
            }));
        }
        // `--sbom FILE` last: it writes the SBOMs of the images the others wrote.
        if let (_, Some(path)) = self.sbom_choice()? {
            outputs.push(Box::new(SbomFile { path }));
        }
        Ok(outputs)
    }
}
