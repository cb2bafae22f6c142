//! The SBOM: an SPDX 2.3 JSON document of what binpack put in the image (Go modules and Go
//! version, npm packages and the node runtime, crates, the closure's OS packages and unowned
//! libraries, the CA bundle, the base image by digest), written from plain inputs. It is
//! deterministic: its time is SOURCE_DATE_EPOCH (or the epoch), its namespace a hash of its
//! content, its lists sorted.

use crate::base::closure::Resolved;
use crate::base::packages;
use crate::base::packages::{Manager, Package};
use crate::base::rootfs::DEFAULT_CA_BUNDLE;
use crate::base::rootfs::IMAGE_BASE_CA_PATH;
use crate::base::ResolvedBase;
use crate::build::{Artifact, Component, Ecosystem};
use crate::elf::goinfo::GoInfo;
use crate::elf::inspect::Linkage;
use serde::Serialize;
use sha1::Sha1;
use sha2::{Digest as _, Sha256};
use std::path::{Path, PathBuf};
use std::time::{Duration, UNIX_EPOCH};

/// Where the SBOM goes in the image: Wolfi/Chainguard images keep their SPDX files in this
/// directory, outside the app directory (no clash with the app's files) and named
/// `*.spdx.json`, which syft's SBOM cataloguer and trivy pick up.
pub const SBOM_DIR: &str = "/var/lib/db/sbom";

/// Where the SBOM of the program `name` is in its image.
pub fn path_in_image(name: &str) -> String {
    let file = crate::registry::reference::Reference::for_program(name).repository;
    format!("{}/{file}.spdx.json", SBOM_DIR)
}

/// The media type of the SBOM blob and of the referrer artifact.
pub const MEDIA_TYPE: &str = "application/spdx+json";

/// What the pinned CA bundle is (runtimes/README.md).
const CA_PACKAGE: (&str, &str) = ("ca-certificates", "20230311+deb12u1");

/// A file in the image listed by itself (a library no package owns, the CA bundle).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct File {
    pub path: String,
    pub sha1: String,
    pub sha256: String,
}

impl File {
    /// `bytes` at `path` in the image.
    pub fn of_bytes(path: &str, bytes: &[u8]) -> File {
        File {
            path: path.to_string(),
            sha1: hex(&Sha1::digest(bytes)),
            sha256: hex(&Sha256::digest(bytes)),
        }
    }

    /// The host file `host` at `path` in the image.
    pub fn of_host(path: &str, host: &Path) -> std::io::Result<File> {
        File::of_reader(path, std::fs::File::open(host)?)
    }

    /// The bytes `r` reads, at `path` in the image; streamed (a library may be large).
    fn of_reader(path: &str, mut r: impl std::io::Read) -> std::io::Result<File> {
        let (mut sha1, mut sha256) = (Sha1::new(), Sha256::new());
        let mut buf = vec![0; 64 * 1024];
        loop {
            match r.read(&mut buf)? {
                0 => break,
                n => {
                    sha1.update(&buf[..n]);
                    sha256.update(&buf[..n]);
                }
            }
        }
        Ok(File {
            path: path.to_string(),
            sha1: hex(&sha1.finalize()),
            sha256: hex(&sha256.finalize()),
        })
    }

    /// The library at `lib` in `root` (symlinks followed inside the root, as the closure
    /// resolved it), at `path` in the image.
    fn of_root(path: &str, root: &Path, lib: &str) -> Result<File, SbomError> {
        let (file, host) =
            crate::base::closure::open_in_root(root, lib).map_err(|e| SbomError {
                path: root.join(lib.trim_start_matches('/')),
                source: std::io::Error::other(e.to_string()),
            })?;
        File::of_reader(path, file).map_err(|source| SbomError { path: host, source })
    }
}

/// The base image, when there is one.
#[derive(Clone, Debug)]
pub struct BaseImage {
    pub reference: String,
    pub digest: String,
}

/// Everything the SBOM describes.
#[derive(Clone, Debug, Default)]
pub struct Input<'a> {
    /// The program's name (not the image's tag: the same image may go under several).
    pub name: String,
    pub go: Option<&'a GoInfo>,
    pub components: &'a [Component],
    pub packages: Vec<&'a Package>,
    /// `ID` and `VERSION_ID` of the root's os-release, for OS package URLs.
    pub os_release: Option<&'a str>,
    pub files: Vec<File>,
    /// True when the image carries binpack's pinned CA bundle.
    pub default_ca: bool,
    pub base: Option<BaseImage>,
    pub created: u64,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Document {
    spdx_version: &'static str,
    data_license: &'static str,
    #[serde(rename = "SPDXID")]
    spdx_id: &'static str,
    name: String,
    document_namespace: String,
    creation_info: CreationInfo,
    packages: Vec<SpdxPackage>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    files: Vec<SpdxFile>,
    relationships: Vec<Relationship>,
}

#[derive(Serialize)]
struct CreationInfo {
    created: String,
    creators: Vec<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SpdxPackage {
    name: String,
    #[serde(rename = "SPDXID")]
    spdx_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    version_info: Option<String>,
    download_location: &'static str,
    files_analyzed: bool,
    license_concluded: &'static str,
    license_declared: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    source_info: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    primary_package_purpose: Option<&'static str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    external_refs: Vec<ExternalRef>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ExternalRef {
    reference_category: &'static str,
    reference_type: &'static str,
    reference_locator: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SpdxFile {
    file_name: String,
    #[serde(rename = "SPDXID")]
    spdx_id: String,
    checksums: Vec<Checksum>,
    license_concluded: &'static str,
}

#[derive(Serialize)]
struct Checksum {
    algorithm: &'static str,
    #[serde(rename = "checksumValue")]
    value: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Relationship {
    spdx_element_id: String,
    relationship_type: &'static str,
    related_spdx_element: String,
}

/// `--no-sbom` (`--sbom FILE` is an output, `emit::SbomFile`).
#[derive(Clone, Debug, Default)]
pub struct SbomOptions {
    pub disabled: bool,
}

#[derive(Debug, thiserror::Error)]
#[error("the SBOM: reading {}: {source}", path.display())]
pub struct SbomError {
    path: PathBuf,
    source: std::io::Error,
}

/// What of the root is in an image: its base, the libraries copied from the root (the
/// closure's and a native addon's), and the package owning the executable, if any.
pub struct FromRoot<'a> {
    pub base: &'a ResolvedBase,
    pub libraries: &'a [Resolved],
    pub exe_package: Option<&'a Package>,
    /// Other packages whose files are in the image (tzdata).
    pub packages: &'a [Package],
}

/// The SBOM of the image of the program `name`, `artifact` with what it takes `from` the
/// root: `linkage` for the Go build info, `ca_bundle` when the user gave one.
pub fn for_image(
    name: &str,
    artifact: &Artifact,
    linkage: &Linkage,
    from: &FromRoot,
    ca_bundle: Option<&PathBuf>,
    created: u64,
) -> Result<Vec<u8>, SbomError> {
    let err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| SbomError { path, source }
    };
    let (base, libs, exe_package) = (from.base, from.libraries, from.exe_package);
    let mut files = Vec::new();
    for lib in libs.iter().filter(|l| l.package.is_none()) {
        let at = lib.image_path.as_deref().unwrap_or(&lib.path);
        files.push(File::of_root(at, &artifact.root, &lib.path)?);
    }
    let ca_path = match base.image() {
        Some(_) => IMAGE_BASE_CA_PATH,
        None => "/etc/ssl/certs/ca-certificates.crt",
    };
    match ca_bundle {
        Some(p) => files.push(File::of_host(ca_path, p).map_err(err(p))?),
        None if base.image().is_none() => files.push(File::of_bytes(ca_path, DEFAULT_CA_BUNDLE)),
        None => {}
    }
    let os_release = (!libs.is_empty() || exe_package.is_some() || !from.packages.is_empty())
        .then(|| packages::os_release(&artifact.root))
        .flatten();
    let input = Input {
        name: name.to_string(),
        go: linkage.go.as_ref(),
        components: &artifact.provenance.components,
        packages: libs
            .iter()
            .filter_map(|l| l.package.as_ref())
            .chain(exe_package)
            .chain(from.packages)
            .collect(),
        os_release: os_release.as_deref(),
        files,
        default_ca: ca_bundle.is_none() && base.image().is_none(),
        base: base.image().map(|b| BaseImage {
            reference: b.reference.clone(),
            digest: b.manifest_digest.to_string(),
        }),
        created,
    };
    Ok(spdx(&input))
}

/// One package before it gets its SPDX id.
struct Item {
    name: String,
    version: String,
    purl: Option<String>,
    license: Option<String>,
    source: Option<String>,
    purpose: Option<&'static str>,
}

/// The SPDX 2.3 JSON document of `input`, compact.
pub fn spdx(input: &Input) -> Vec<u8> {
    let mut items = items(input);
    items.sort_by(|a, b| (&a.purl, &a.name, &a.version).cmp(&(&b.purl, &b.name, &b.version)));
    items.dedup_by(|a, b| (&a.purl, &a.name, &a.version) == (&b.purl, &b.name, &b.version));
    let mut files = input.files.clone();
    files.sort();
    files.dedup();
    let root = "SPDXRef-Image".to_string();
    let mut packages = vec![SpdxPackage {
        name: input.name.clone(),
        spdx_id: root.clone(),
        version_info: None,
        download_location: "NOASSERTION",
        files_analyzed: false,
        license_concluded: "NOASSERTION",
        license_declared: "NOASSERTION".into(),
        source_info: Some("built by binpack".into()),
        primary_package_purpose: Some("CONTAINER"),
        external_refs: vec![],
    }];
    let mut relationships = vec![Relationship {
        spdx_element_id: "SPDXRef-DOCUMENT".into(),
        relationship_type: "DESCRIBES",
        related_spdx_element: root.clone(),
    }];
    let contains = |id: &str| Relationship {
        spdx_element_id: root.clone(),
        relationship_type: "CONTAINS",
        related_spdx_element: id.to_string(),
    };
    for (i, it) in items.into_iter().enumerate() {
        let id = format!("SPDXRef-Package-{}-{i}", spdx_id_part(&it.name));
        relationships.push(contains(&id));
        packages.push(spdx_package(it, id));
    }
    let spdx_files: Vec<SpdxFile> = files
        .into_iter()
        .enumerate()
        .map(|(i, f)| {
            let id = format!("SPDXRef-File-{i}");
            // Not "image CONTAINS file": a package whose files are not analyzed lists none.
            relationships.push(Relationship {
                spdx_element_id: "SPDXRef-DOCUMENT".into(),
                relationship_type: "DESCRIBES",
                related_spdx_element: id.clone(),
            });
            spdx_file(f, id)
        })
        .collect();
    let mut doc = Document {
        spdx_version: "SPDX-2.3",
        data_license: "CC0-1.0",
        spdx_id: "SPDXRef-DOCUMENT",
        name: input.name.clone(),
        document_namespace: String::new(),
        creation_info: CreationInfo {
            created: humantime::format_rfc3339_seconds(
                UNIX_EPOCH + Duration::from_secs(input.created),
            )
            .to_string(),
            creators: vec![format!("Tool: binpack-{}", env!("CARGO_PKG_VERSION"))],
        },
        packages,
        files: spdx_files,
        relationships,
    };
    // The namespace is unique per content, and the same for the same content.
    let h = Sha256::digest(serde_json::to_vec(&doc).expect("serializable"));
    doc.document_namespace = format!("urn:uuid:{}", uuid_of(&h));
    serde_json::to_vec(&doc).expect("serializable")
}

fn spdx_package(it: Item, spdx_id: String) -> SpdxPackage {
    SpdxPackage {
        name: it.name,
        spdx_id,
        version_info: Some(it.version),
        download_location: "NOASSERTION",
        files_analyzed: false,
        license_concluded: "NOASSERTION",
        license_declared: it
            .license
            .as_deref()
            .and_then(license_expression)
            .unwrap_or_else(|| "NOASSERTION".into()),
        source_info: it.source,
        primary_package_purpose: it.purpose,
        external_refs: it
            .purl
            .map(|p| ExternalRef {
                reference_category: "PACKAGE-MANAGER",
                reference_type: "purl",
                reference_locator: p,
            })
            .into_iter()
            .collect(),
    }
}

fn spdx_file(f: File, spdx_id: String) -> SpdxFile {
    SpdxFile {
        file_name: format!(".{}", f.path),
        spdx_id,
        checksums: vec![
            Checksum {
                algorithm: "SHA1",
                value: f.sha1,
            },
            Checksum {
                algorithm: "SHA256",
                value: f.sha256,
            },
        ],
        license_concluded: "NOASSERTION",
    }
}

/// Every package of `input`, unsorted.
fn items(input: &Input) -> Vec<Item> {
    let mut out = Vec::new();
    let item = |name: &str, version: &str, purl: Option<String>| Item {
        name: name.to_string(),
        version: version.to_string(),
        purl,
        license: None,
        source: None,
        purpose: Some("LIBRARY"),
    };
    if let Some(go) = input.go {
        if let Some(v) = &go.version {
            let bare = v.strip_prefix("go").unwrap_or(v);
            out.push(item("stdlib", v, Some(format!("pkg:golang/stdlib@{bare}"))));
        }
        for m in go.main.iter().chain(&go.deps) {
            let m = m.replace.as_deref().unwrap_or(m);
            let purl = format!("pkg:golang/{}@{}", m.path, enc(&m.version));
            out.push(item(&m.path, &m.version, Some(purl)));
        }
    }
    for c in input.components {
        let mut it = item(&c.name, &c.version, Some(component_purl(c)));
        it.license = c.license.clone();
        if c.ecosystem == Ecosystem::Runtime {
            it.purpose = Some("APPLICATION");
        }
        out.push(it);
    }
    out.extend(os_items(input));
    if input.default_ca {
        let (n, v) = CA_PACKAGE;
        let purl = format!("pkg:deb/debian/{n}@{}?arch=all", enc(v));
        let mut it = item(n, v, Some(purl));
        it.purpose = Some("OTHER");
        out.push(it);
    }
    if let Some(b) = &input.base {
        let (repo, _) = b.reference.split_once('@').unwrap_or((&b.reference, ""));
        let repo = repo
            .rsplit_once(':')
            .filter(|(_, t)| !t.contains('/'))
            .map_or(repo, |(r, _)| r);
        let last = repo.rsplit('/').next().unwrap_or(repo);
        let purl = format!(
            "pkg:oci/{}@{}?repository_url={}",
            enc(last),
            enc(&b.digest),
            enc(repo)
        );
        let mut it = item(&b.reference, &b.digest, Some(purl));
        it.purpose = Some("CONTAINER");
        out.push(it);
    }
    out
}

/// The closure's OS packages, with Debian/Alpine package URLs.
fn os_items(input: &Input) -> Vec<Item> {
    let mut out = Vec::new();
    let (os_id, os_version) = os_ids(input.os_release);
    for p in &input.packages {
        let (ty, ns) = match p.manager {
            Manager::Dpkg => ("deb", os_id.as_deref().unwrap_or("debian")),
            Manager::Apk => ("apk", os_id.as_deref().unwrap_or("alpine")),
        };
        let mut q = format!("arch={}", enc(&p.architecture));
        if let Some(s) = p.source.as_ref().filter(|s| **s != p.name) {
            q.push_str(&format!("&upstream={}", enc(s)));
        }
        if let (Some(id), Some(v)) = (&os_id, &os_version) {
            q.push_str(&format!("&distro={id}-{v}"));
        }
        let purl = format!("pkg:{ty}/{ns}/{}@{}?{q}", enc(&p.name), enc(&p.version));
        out.push(Item {
            name: p.name.clone(),
            version: p.version.clone(),
            purl: Some(purl),
            license: None,
            source: p.source.as_ref().map(|s| format!("source package {s}")),
            purpose: Some("LIBRARY"),
        });
    }
    out
}

fn component_purl(c: &Component) -> String {
    let v = enc(&c.version);
    match c.ecosystem {
        Ecosystem::Npm => format!("pkg:npm/{}@{v}", enc(&c.name).replace("%2F", "/")),
        Ecosystem::Golang => format!("pkg:golang/{}@{v}", c.name),
        Ecosystem::Cargo => format!("pkg:cargo/{}@{v}", enc(&c.name)),
        // The purl spec's PyPI names: lower case, `_` as `-`.
        Ecosystem::Pypi => format!(
            "pkg:pypi/{}@{v}",
            enc(&c.name.to_lowercase().replace('_', "-"))
        ),
        Ecosystem::Runtime => format!("pkg:generic/{}@{v}", enc(&c.name)),
    }
}

/// `ID` and `VERSION_ID` of an os-release file.
fn os_ids(os_release: Option<&str>) -> (Option<String>, Option<String>) {
    let get = |k: &str| {
        os_release?.lines().find_map(|l| {
            let v = l.strip_prefix(k)?.strip_prefix('=')?;
            Some(v.trim_matches('"').to_string())
        })
    };
    (get("ID"), get("VERSION_ID"))
}

/// A declared license as an SPDX expression, when it reads as one (cargo's old `A/B` is
/// `A OR B`); anything else is left out rather than making the document invalid.
fn license_expression(l: &str) -> Option<String> {
    let l = l.replace('/', " OR ");
    let ok = l.split([' ', '(', ')']).filter(|t| !t.is_empty()).all(|t| {
        t.chars()
            .all(|c| c.is_ascii_alphanumeric() || ".-+".contains(c))
    });
    (ok && !l.trim().is_empty()).then(|| l.trim().to_string())
}

/// Percent-encodes a package URL component (unreserved characters stay, as do `+` and `.`).
fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'.' | b'-' | b'_' | b'~' | b'+' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Letters, digits, `.` and `-` only, as SPDX ids allow.
fn spdx_id_part(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A version-5-shaped UUID from the first 16 bytes of a hash.
fn uuid_of(h: &[u8]) -> String {
    let mut b = [0u8; 16];
    b.copy_from_slice(&h[..16]);
    b[6] = (b[6] & 0x0f) | 0x50;
    b[8] = (b[8] & 0x3f) | 0x80;
    let x = hex(&b);
    format!(
        "{}-{}-{}-{}-{}",
        &x[..8],
        &x[8..12],
        &x[12..16],
        &x[16..20],
        &x[20..]
    )
}

#[cfg(test)]
mod tests;
