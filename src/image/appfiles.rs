//! The app's file tree stage: what binpack puts in its layer: the executable and the files
//! beside it, the closure's libraries, and, unless the base is an image that brings its own,
//! the essentials every image carries (CA bundle, passwd, /tmp) and the OS files the runtime
//! needs.

use crate::base::closure::{self, ClosureError, Origin, Resolved};
use crate::base::packages::Package;
use crate::base::rootfs;
use crate::base::ResolvedBase;
use crate::build::{Artifact, FileLayer};
use crate::elf::inspect::Linkage;
use crate::image::layer::{Content, LayerError, Tree};
use std::path::PathBuf;

use crate::base::rootfs::IMAGE_BASE_CA_PATH;
pub use crate::build::APP_DIR;

/// The files binpack writes, as layer trees bottom first, and the environment they need.
#[derive(Clone, Debug)]
pub struct AppFiles {
    pub trees: Vec<Tree>,
    /// What the files need (SSL_CERT_FILE), under the artifact's and the user's.
    pub env: Vec<String>,
    /// The libraries copied from the root: the closure's, then native addons'.
    pub libraries: Vec<Resolved>,
    /// Other packages of the root whose files are in the image (tzdata).
    pub packages: Vec<crate::base::packages::Package>,
}

#[derive(Debug, thiserror::Error)]
pub enum FilesError {
    #[error(transparent)]
    Layer(#[from] LayerError),
    #[error(transparent)]
    Closure(#[from] ClosureError),
    #[error("the native module {addon} is built for {has}, not {wants}: the project's dependencies were installed for the host; install them for {wants} (npm ci --cpu/--os, pip --platform, or in a toolchain container of that platform), or leave the module out")]
    ForeignAddon {
        addon: String,
        has: String,
        wants: String,
    },
    #[error("the CA bundle {}: {source}", path.display())]
    CaBundle {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// The executable's path in the image.
pub fn entrypoint_of(name: &str) -> String {
    format!("{APP_DIR}/{name}")
}

/// Where `artifact`'s executable goes: where it asks, else `/app/<name>`.
pub fn entrypoint_for(artifact: &Artifact) -> String {
    artifact
        .image_path
        .clone()
        .unwrap_or_else(|| entrypoint_of(&artifact.name))
}

/// The tree of `artifact` on `base`, its executable at `entrypoint`; `ca_bundle` replaces the
/// pinned CA bundle; with `zoneinfo`, the root's time zone files (not on an image base: it
/// has its own, or chose to have none).
pub fn app_files(
    artifact: &Artifact,
    base: &ResolvedBase,
    entrypoint: &str,
    ca_bundle: Option<&PathBuf>,
    zoneinfo: bool,
) -> Result<AppFiles, FilesError> {
    let mut tree = Tree::new();
    closure::add_to_tree(&artifact.root, base.libraries(), &mut tree)?;
    let packages: Vec<_> = match zoneinfo && base.image().is_none() {
        true => crate::base::zoneinfo::add(&artifact.root, &mut tree)?
            .into_iter()
            .collect(),
        false => vec![],
    };
    add_package_metadata(&artifact.root, base.libraries(), &packages, &mut tree, true)?;
    let ca = match ca_bundle {
        Some(p) => {
            std::fs::metadata(p).map_err(|source| FilesError::CaBundle {
                path: p.clone(),
                source,
            })?;
            Some(Content::Host(p.clone()))
        }
        None => None,
    };
    let mut env = match (base.image(), ca) {
        // An image base brings its own users, certificates and hosts file. A bundle the user
        // gave still goes in, beside the app: written over the base's /etc/ssl/certs, its
        // directory entries would replace a symlink there (Fedora's points into /etc/pki).
        (Some(_), None) => vec![],
        (Some(_), Some(ca)) => {
            tree.file(IMAGE_BASE_CA_PATH, ca, 0o644)?;
            vec![format!("SSL_CERT_FILE={IMAGE_BASE_CA_PATH}")]
        }
        (None, ca) => {
            let ca = ca.unwrap_or_else(|| Content::Bytes(rootfs::DEFAULT_CA_BUNDLE.to_vec()));
            rootfs::add_essentials(&mut tree, ca)?;
            for (path, bytes) in &artifact.os_files {
                tree.file(path, Content::Bytes(bytes.clone()), 0o644)?;
            }
            rootfs::default_env()
        }
    };
    env.extend(ca_aliases(&env, &artifact.ca_env));
    add_files(&mut tree, &artifact.files.files)?;
    tree.file(
        entrypoint,
        Content::Host(artifact.executable.clone()),
        0o755,
    )?;
    let (trees, libraries) = with_layers(artifact, base, tree)?;
    let conf_only = closure::conf_only_dirs(&artifact.root, &libraries);
    if !conf_only.is_empty() {
        env.push(format!("LD_LIBRARY_PATH={}", conf_only.join(":")));
    }
    Ok(AppFiles {
        trees,
        env,
        libraries,
        packages,
    })
}

/// The trees of `runtime` (the executable's layer) and the artifact's layers above it, each
/// with the libraries its native modules need beyond those below; and all the libraries.
fn with_layers(
    artifact: &Artifact,
    base: &ResolvedBase,
    runtime: Tree,
) -> Result<(Vec<Tree>, Vec<Resolved>), FilesError> {
    let mut libraries = base.libraries().to_vec();
    let mut shipped: Vec<String> = Vec::new();
    let mut trees = Vec::new();
    let mut runtime = Some(runtime);
    for layer in std::iter::once(&artifact.files).chain(&artifact.layers) {
        // The executable's layer holds the runtime already; each layer above is its own.
        let mut tree = match runtime.take() {
            Some(t) => t,
            None => Tree::new(),
        };
        if !trees.is_empty() {
            add_files(&mut tree, &layer.files)?;
        }
        shipped.extend(layer.files.iter().map(|(p, _)| p.clone()));
        if base.image().is_none() {
            let modules = natives(artifact, layer)?;
            let mut libs = native_libraries(artifact, &modules, &shipped, &libraries)?;
            // The libraries' packages and the modules' own, from one reading of the database.
            let in_root: Vec<String> = (modules.iter())
                .filter_map(|m| Origin::root_path_of(&artifact.root, &m.host))
                .collect();
            let db = closure::set_owners_and(&artifact.root, &mut libs, &in_root);
            closure::add_to_tree(&artifact.root, &libs, &mut tree)?;
            let owners = module_owners(&db, &in_root, &libraries);
            native_package_metadata(&artifact.root, &libraries, &libs, &owners, &mut tree)?;
            libraries.extend(libs);
        }
        trees.push(tree);
    }
    Ok((trees, libraries))
}

/// Copies `files` (absolute image path, host path) into `tree`.
fn add_files(tree: &mut Tree, files: &[(String, PathBuf)]) -> Result<(), LayerError> {
    for (dest, host) in files {
        tree.copy_from_host(dest, host)?;
    }
    Ok(())
}

/// A native module of a layer: where it is in the image and on the host, what it links.
struct Native {
    image_path: String,
    host: PathBuf,
    linkage: Linkage,
}

/// The host path of the image path `want` among `files`, which may name directories.
fn host_path_of(files: &[(String, PathBuf)], want: &str) -> Option<PathBuf> {
    files.iter().find_map(|(dest, host)| {
        let rest = want.strip_prefix(dest.as_str())?;
        match rest {
            "" => Some(host.clone()),
            r if r.starts_with('/') => Some(host.join(r.trim_start_matches('/'))),
            _ => None,
        }
    })
}

/// The layer's native modules, each read once. One of another machine than the image's (the
/// host's addon in an arm64 image built on amd64) is refused: it would fail when loaded. One
/// that is not an ELF is the runtime's to refuse when it loads it.
fn natives(artifact: &Artifact, layer: &FileLayer) -> Result<Vec<Native>, FilesError> {
    let mut out = Vec::new();
    for image_path in &layer.native {
        let Some(host) = host_path_of(&layer.files, image_path) else {
            continue;
        };
        let Ok(linkage) = crate::elf::inspect::inspect_shared_object(&host) else {
            continue;
        };
        if let Some(wants) = &artifact.provenance.platform {
            let has = &linkage.platform;
            if has.os != wants.os || has.arch != wants.arch {
                return Err(FilesError::ForeignAddon {
                    addon: image_path.clone(),
                    has: has.to_string(),
                    wants: wants.to_string(),
                });
            }
        }
        out.push(Native {
            image_path: image_path.clone(),
            host,
            linkage,
        });
    }
    Ok(out)
}

/// The libraries the layer's native modules need beyond `have` (the layers' below), resolved
/// from the root as the loader would: an addon built against a system library
/// (better-sqlite3 against libsqlite3) finds it. `shipped`: the image paths in the image so
/// far; a library among them is there already. Their packages are the caller's to look up.
fn native_libraries(
    artifact: &Artifact,
    modules: &[Native],
    shipped: &[String],
    have: &[Resolved],
) -> Result<Vec<Resolved>, FilesError> {
    let mut out: Vec<Resolved> = Vec::new();
    for module in modules {
        // $ORIGIN is the module's directory in the project (sharp's libvips is in a package
        // beside it, `$ORIGIN/../../sharp-libvips-linux-x64/lib`), seen at its image path.
        let root_path = Origin::root_path_of(&artifact.root, &module.host);
        let origin = Origin {
            image_path: &module.image_path,
            root_path: root_path.as_deref(),
        };
        for lib in closure::resolve_unowned(&artifact.root, &module.linkage, &origin)? {
            let known = |l: &Resolved| l.path == lib.path;
            let seen = (lib.image_path.as_ref()).is_some_and(|p| {
                shipped
                    .iter()
                    .any(|s| p == s || p.starts_with(&format!("{s}/")))
            });
            if !seen && !have.iter().any(known) && !out.iter().any(known) {
                out.push(lib);
            }
        }
    }
    Ok(out)
}

/// The packages of the native modules at `in_root` (CPython's lib-dynload modules belong to
/// libpython3.X-minimal and -stdlib), but those `have` lists already: scanners see them as
/// they see the libraries'.
fn module_owners(
    db: &crate::base::packages::Db,
    in_root: &[String],
    have: &[Resolved],
) -> Vec<Package> {
    let listed = |p: &Package| have.iter().any(|l| l.package.as_ref() == Some(p));
    let mut owners: Vec<Package> = Vec::new();
    for pkg in in_root.iter().filter_map(|p| db.owner(p)) {
        if !listed(pkg) && !owners.contains(pkg) {
            owners.push(pkg.clone());
        }
    }
    owners
}

/// The package entries of the native modules' libraries `libs` and of the modules' own
/// `owners`, in their layer, beside the ones of `closure` in the layers below.
fn native_package_metadata(
    root: &std::path::Path,
    closure: &[Resolved],
    libs: &[Resolved],
    owners: &[Package],
    app: &mut Tree,
) -> Result<(), LayerError> {
    // apk keeps one database file: the app layer's copy, laid over, must list all.
    let mut found = libs.iter().filter_map(|l| l.package.as_ref());
    let apk = found.any(|p| p.manager == crate::base::packages::Manager::Apk);
    let listed: Vec<Resolved> = match apk {
        true => closure.iter().chain(libs).cloned().collect(),
        false => libs.to_vec(),
    };
    // os-release is in the runtime layer already when a closure library has an owner.
    let os_release = closure.iter().all(|l| l.package.is_none());
    add_package_metadata(root, &listed, owners, app, os_release)
}

/// `NAME=<bundle>` for each of `names`, the bundle being what SSL_CERT_FILE names in `env`.
fn ca_aliases(env: &[String], names: &[String]) -> Vec<String> {
    let bundle = env.iter().find_map(|kv| kv.strip_prefix("SSL_CERT_FILE="));
    match bundle {
        Some(path) => names.iter().map(|n| format!("{n}={path}")).collect(),
        None => vec![],
    }
}

/// What scanners read to see the OS packages of `libs` and `more`: their database entries
/// (distroless-style `status.d/<pkg>`, or apk's db) and, with `os_release`, the root's
/// `/etc/os-release`.
fn add_package_metadata(
    root: &std::path::Path,
    libs: &[closure::Resolved],
    more: &[crate::base::packages::Package],
    tree: &mut Tree,
    os_release: bool,
) -> Result<(), LayerError> {
    let owners: Vec<_> = (libs.iter().filter_map(|l| l.package.as_ref()))
        .chain(more)
        .collect();
    if owners.is_empty() {
        return Ok(());
    }
    for (path, bytes) in crate::base::packages::database_files(&owners) {
        tree.file(&path, Content::Bytes(bytes), 0o644)?;
    }
    match crate::base::packages::os_release(root) {
        Some(os) if os_release => {
            tree.file("/etc/os-release", Content::Bytes(os.into_bytes()), 0o644)?
        }
        _ => {}
    }
    Ok(())
}

/// Puts the database entry of one more package (the executable's own) where scanners read:
/// a dpkg `status.d` file (apk keeps one file for all, written with the closure's).
pub fn add_package_entry(
    files: &mut AppFiles,
    pkg: &crate::base::packages::Package,
) -> Result<(), LayerError> {
    let Some(tree) = files.trees.last_mut() else {
        return Ok(());
    };
    if pkg.manager != crate::base::packages::Manager::Dpkg {
        return Ok(());
    }
    for (path, bytes) in crate::base::packages::database_files(&[pkg]) {
        tree.file(&path, Content::Bytes(bytes), 0o644)?;
    }
    Ok(())
}

/// Puts the SBOM of the program `name` into the image's top layer, where scanners look.
pub fn add_sbom(files: &mut AppFiles, name: &str, sbom: Vec<u8>) -> Result<(), LayerError> {
    let path = crate::sbom::path_in_image(name);
    match files.trees.last_mut() {
        Some(tree) => tree.file(&path, Content::Bytes(sbom), 0o644),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ca_bundle_aliases_follow_ssl_cert_file() {
        let env = vec!["PATH=/bin".to_string(), "SSL_CERT_FILE=/x/ca.crt".into()];
        let names = vec!["NODE_EXTRA_CA_CERTS".to_string()];
        assert_eq!(ca_aliases(&env, &names), ["NODE_EXTRA_CA_CERTS=/x/ca.crt"]);
        assert!(ca_aliases(&env[..1], &names).is_empty());
    }
}
