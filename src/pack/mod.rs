//! The script of the back half, and `summary`, what a run reports.
//!
//! The back half of the pipeline, shared by every command: a short script over the stages
//! inspect -> choose -> resolve the base -> the app's files -> layers -> run config -> image
//! -> outputs -> summary. Each stage owns one job and hands the next a small plain value.

pub mod summary;

use crate::base::choose::{self, BaseRequest, ChooseError};
use crate::base::{self, BaseError, ResolvedBase};
use crate::build::Artifact;
use crate::elf::inspect::{self, InspectError, Linkage};
use crate::emit::{self, Emit, EmitError, Output, Staging};
use crate::image::appfiles::{self, entrypoint_for, FilesError};
use crate::image::layer::LayerStats;
use crate::image::layers::{self, LayerCache, LayersError};
use crate::image::runconfig::{self, RunConfigError, RunOptions};
use crate::image::{self, BaseLayers, Image, ImageError, Packed};
use crate::pack::summary::Summary;
use crate::registry::pull::{PullError, PulledBase};
use crate::registry::reference::Reference;
use crate::registry::RegistryOptions;
use crate::support::platform::Platform;
use crate::support::progress::Progress;
use std::path::{Path, PathBuf};

pub use crate::image::appfiles::APP_DIR;

/// Everything the user can say about the image besides where it goes.
#[derive(Clone, Debug, Default)]
pub struct PackOptions {
    pub base: BaseRequest,
    /// The alpine image for musl binaries (default: pinned in runtimes/bases.json).
    pub alpine: Option<Reference>,
    /// The image's name; defaults to `<name>:latest`.
    pub reference: Option<Reference>,
    pub run: RunOptions,
    /// A CA bundle to carry instead of the pinned one.
    pub ca_bundle: Option<PathBuf>,
    /// How to reach the registry of an image base.
    pub registry: RegistryOptions,
    pub layer_cache: LayerCache,
    /// `--add SRC:DEST`: the user's files, in binpack's layer.
    pub add: Vec<crate::image::addfiles::Addition>,
    /// Whether an SBOM goes into the image, and where else.
    pub sbom: crate::sbom::SbomOptions,
    /// How binpack's layers are compressed (a pulled base's layers stay as they are).
    pub compression: crate::image::layer::Compression,
}

#[derive(Debug, thiserror::Error)]
pub enum PackError {
    #[error(transparent)]
    Inspect(#[from] InspectError),
    #[error(transparent)]
    Choose(#[from] ChooseError),
    #[error(transparent)]
    Base(#[from] BaseError),
    #[error(transparent)]
    Files(#[from] FilesError),
    #[error(transparent)]
    Layers(#[from] LayersError),
    #[error(transparent)]
    RunConfig(#[from] RunConfigError),
    #[error(transparent)]
    Image(#[from] ImageError),
    #[error(transparent)]
    Pull(#[from] PullError),
    #[error(transparent)]
    Emit(#[from] EmitError),
    #[error(transparent)]
    Add(#[from] crate::image::addfiles::AddError),
    #[error(transparent)]
    Sbom(#[from] crate::sbom::SbomError),
    #[error("{}: two outputs would write it ({first}; {second}); choose another path", path.display())]
    SameOutput {
        path: PathBuf,
        first: String,
        second: String,
    },
    #[error("nothing to write: give -o FILE, --oci-layout DIR, --push REF or --load")]
    NoOutput,
    #[error("refusing to write {}: it would overwrite the input {}; choose another output path", output.display(), input.display())]
    OutputIsInput { output: PathBuf, input: PathBuf },
}

pub use crate::base::choose::Plan;

/// Inspect -> choose.
pub fn plan(artifact: &Artifact, opts: &PackOptions) -> Result<Plan, PackError> {
    let linkage = inspect::inspect_file(&artifact.executable)?;
    let platform = platform_of(&linkage, artifact);
    let alpine = opts.alpine.clone().unwrap_or_else(choose::default_alpine);
    let choice = choose::choose(&linkage, &opts.base, &alpine)?;
    Ok(Plan {
        linkage,
        platform,
        choice,
    })
}

/// The ELF's platform, with the variant the build asked for when it is the same machine: the
/// header cannot tell arm v6 from v7.
fn platform_of(linkage: &Linkage, artifact: &Artifact) -> Platform {
    let elf = &linkage.platform;
    match &artifact.provenance.platform {
        Some(p) if p.os == elf.os && p.arch == elf.arch => Platform {
            variant: p.variant.clone().or_else(|| elf.variant.clone()),
            ..p.clone()
        },
        _ => elf.clone(),
    }
}

/// One platform's image, and what went into it.
#[derive(Clone, Debug)]
pub struct PlatformImage {
    pub image: Image,
    pub plan: Plan,
    pub base: ResolvedBase,
    pub entrypoint: String,
    pub layers: Vec<LayerStats>,
    /// The SPDX document inside the image (none with `--no-sbom`).
    pub sbom: Option<Vec<u8>>,
}

/// Whether the root's time zone files go in: the program reads them, carries none of its own
/// (a Go binary built with `timetzdata` does), and no `--add` puts them there already.
fn wants_zoneinfo(artifact: &Artifact, linkage: &Linkage, opts: &PackOptions) -> bool {
    let tags = linkage.go.as_ref().and_then(|g| g.settings.get("-tags"));
    let embedded = tags.is_some_and(|t| t.split(',').any(|t| t == "timetzdata"));
    let dir = Path::new(crate::base::zoneinfo::DIR);
    let added = (opts.add.iter())
        .map(|a| Path::new(&a.dest))
        .any(|d| dir.starts_with(d) || d.starts_with(dir));
    !artifact.own_tzdata
        && !embedded
        && !added
        && crate::base::zoneinfo::wanted(&artifact.executable)
}

/// Builds the image of `artifact`, its blobs in `staging`.
pub fn image_of(
    artifact: &Artifact,
    opts: &PackOptions,
    staging: &Staging,
    progress: &dyn Progress,
) -> Result<PlatformImage, PackError> {
    progress.stage(&format!("inspecting {}", artifact.executable.display()));
    let plan = plan(artifact, opts)?;
    let entrypoint = entrypoint_for(artifact);
    let base = base::resolve(&plan, artifact, &entrypoint, &opts.registry, progress)?;
    let zoneinfo = wants_zoneinfo(artifact, &plan.linkage, opts);
    let ca = opts.ca_bundle.as_ref();
    let mut files = appfiles::app_files(artifact, &base, &entrypoint, ca, zoneinfo)?;
    crate::image::strip::strip_trees(
        &mut files.trees,
        &artifact.executable,
        staging.path(),
        opts.layer_cache.dir(),
    );
    crate::image::addfiles::add_all(&mut files.trees, &opts.add)?;
    let exe_package = executable_package_into(&mut files, artifact, &base)?;
    let sbom = sbom_into(
        &mut files,
        artifact,
        &plan,
        &base,
        opts,
        exe_package.as_ref(),
    )?;
    let mtime = opts.run.mtime();
    let layers = layers::write_layers_as(
        &files.trees,
        mtime,
        opts.compression,
        staging,
        &opts.layer_cache,
        progress,
    )?;
    // An image base without a config object still counts as one: its user is "", not ours.
    let base_config = base
        .image()
        .map(|b| b.config.config().clone().unwrap_or_default());
    runconfig::check_user(&opts.run, &files.trees, &base)?;
    let run = runconfig::run_config(
        artifact,
        &entrypoint,
        &files.env,
        &opts.run,
        base_config.as_ref(),
    )?;
    let base_layers = stage_base(base.image(), staging)?;
    let image = image::build(&run, &plan.platform, &base_layers, &layers)?;
    Ok(PlatformImage {
        image,
        plan,
        base,
        entrypoint,
        layers,
        sbom,
    })
}

/// The image's SBOM, put into `files` (unless `--no-sbom`).
fn sbom_into(
    files: &mut appfiles::AppFiles,
    artifact: &Artifact,
    plan: &Plan,
    base: &ResolvedBase,
    opts: &PackOptions,
    exe_package: Option<&crate::base::packages::Package>,
) -> Result<Option<Vec<u8>>, PackError> {
    if opts.sbom.disabled {
        return Ok(None);
    }
    let (name, ca, mtime) = (&artifact.name, opts.ca_bundle.as_ref(), opts.run.mtime());
    let linkage = &plan.linkage;
    let from = crate::sbom::FromRoot {
        base,
        libraries: &files.libraries,
        exe_package,
        packages: &files.packages,
    };
    let doc = crate::sbom::for_image(name, artifact, linkage, &from, ca, mtime)?;
    appfiles::add_sbom(files, name, doc.clone()).map_err(FilesError::from)?;
    Ok(Some(doc))
}

/// On a closure, the package of the root that owns the executable (`binpack bin
/// /usr/bin/curl`), its status.d entry put into `files` for scanners.
fn executable_package_into(
    files: &mut appfiles::AppFiles,
    artifact: &Artifact,
    base: &ResolvedBase,
) -> Result<Option<crate::base::packages::Package>, PackError> {
    if base.libraries().is_empty() {
        return Ok(None);
    }
    let Some(pkg) = crate::base::packages::executable_owner(&artifact.root, &artifact.executable)
    else {
        return Ok(None);
    };
    appfiles::add_package_entry(files, &pkg).map_err(FilesError::from)?;
    Ok(Some(pkg))
}

/// An image base's layers, linked into `staging` from the cache.
fn stage_base(base: Option<&PulledBase>, staging: &Staging) -> Result<BaseLayers, PackError> {
    let Some(b) = base else {
        return Ok(BaseLayers::default());
    };
    for l in &b.layers {
        staging.link_blob(&l.digest, &PulledBase::blob_path(&l.digest))?;
    }
    Ok(b.base_layers()?)
}

/// Packs `artifact` into an image and writes it to `outputs`.
pub fn pack(
    artifact: &Artifact,
    opts: &PackOptions,
    outputs: &[Box<dyn Output>],
    progress: &dyn Progress,
) -> Result<Summary, PackError> {
    pack_all(&[artifact], opts, outputs, progress)
}

/// Packs one artifact per platform: one image, or for several an index of them.
pub fn pack_all(
    artifacts: &[&Artifact],
    opts: &PackOptions,
    outputs: &[Box<dyn Output>],
    progress: &dyn Progress,
) -> Result<Summary, PackError> {
    if outputs.is_empty() {
        return Err(PackError::NoOutput);
    }
    check_outputs(artifacts, opts, outputs)?;
    // A run killed with SIGKILL cleaned up nothing: its temporaries go now.
    emit::sweep_staging();
    outputs
        .iter()
        .filter_map(|o| o.destination())
        .for_each(emit::sweep_beside);
    let staging = Staging::new()?;
    let mut built = Vec::new();
    for a in artifacts {
        built.push(image_of(a, opts, &staging, progress)?);
    }
    let packed = match built.as_slice() {
        [one] => Packed::Image(one.image.clone()),
        _ => Packed::Index(image::index(
            built.iter().map(|b| b.image.clone()).collect(),
        )?),
    };
    staging.documents(&packed)?;
    let reference = opts
        .reference
        .clone()
        .unwrap_or_else(|| Reference::for_program(&artifacts[0].name));
    let sboms: Vec<_> = built
        .iter()
        .filter_map(|b| Some((b.image.manifest_blob.digest.clone(), b.sbom.clone()?)))
        .collect();
    let emit = Emit {
        packed: &packed,
        reference: &reference,
        staging: &staging,
        mtime: opts.run.mtime(),
        sboms: &sboms,
    };
    let outcomes = emit::emit_all(outputs, &emit, progress)?;
    Ok(Summary::new(
        &reference, &packed, artifacts, &built, &outcomes,
    ))
}

/// Refuses, before anything is written, an output that is one of the inputs (or, for a
/// layout directory, holds one): it would be replaced by the image made from it; and one
/// that exists and is not what binpack writes there (`-o main.go`).
fn check_outputs(
    artifacts: &[&Artifact],
    opts: &PackOptions,
    outputs: &[Box<dyn Output>],
) -> Result<(), PackError> {
    let inputs = artifacts
        .iter()
        .flat_map(|a| {
            let layers = std::iter::once(&a.files).chain(&a.layers);
            std::iter::once(&a.executable)
                .chain(layers.flat_map(|l| l.files.iter().map(|(_, p)| p)))
        })
        .chain(opts.ca_bundle.as_ref())
        .chain(opts.add.iter().map(|a| &a.src));
    let inputs: Vec<(&PathBuf, PathBuf)> =
        inputs.filter_map(|p| Some((p, canonical(p)?))).collect();
    // Two outputs on one path (`--sbom` naming the archive): the second would replace the first.
    let mut seen: Vec<(PathBuf, &Box<dyn Output>)> = Vec::new();
    for o in outputs {
        let Some(dest) = o.destination().and_then(canonical) else {
            continue;
        };
        if let Some((_, first)) = seen.iter().find(|(d, _)| *d == dest) {
            return Err(PackError::SameOutput {
                path: o.destination().unwrap_or(&dest).to_path_buf(),
                first: first.describe(),
                second: o.describe(),
            });
        }
        seen.push((dest, o));
    }
    for out in outputs.iter().filter_map(|o| o.destination()) {
        let Some(dest) = canonical(out) else { continue };
        if let Some((input, _)) = inputs.iter().find(|(_, c)| c.starts_with(&dest)) {
            return Err(PackError::OutputIsInput {
                output: out.to_path_buf(),
                input: input.to_path_buf(),
            });
        }
    }
    for o in outputs {
        o.check()?;
    }
    Ok(())
}

/// `p` with links and `..` resolved; for a path that does not exist yet, its parent's
/// (None when the parent does not exist either: then it is no input).
fn canonical(p: &Path) -> Option<PathBuf> {
    if let Ok(c) = std::fs::canonicalize(p) {
        return Some(c);
    }
    let name = p.file_name()?;
    let parent = match p.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    std::fs::canonicalize(parent).ok().map(|d| d.join(name))
}
