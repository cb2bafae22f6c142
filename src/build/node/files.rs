//! The files layout: a stock node at a fixed path (the runtime layer every app shares) and
//! the app's traced files at their project paths under /app, with the packages whose code
//! hides files from the tracer shipped whole; and what any layout writes into the artifact.

use super::checks::{self, Construct};
use super::entry::{entry_in_mount, Entry};
use super::layout::{refuse_typescript, shell_note, trace_more};
use super::runtime::{stripped_node, Runtime};
use super::{optional, path_str, reach, trace, with_runtime, Ctx, Made, NodeError, NODE_PATH};
use crate::build::{Component, Ecosystem};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// What the layout made, written into the artifact: its files, env, notes and components.
pub(super) fn describe(
    artifact: &mut crate::build::Artifact,
    made: Made,
    runtime: &Runtime,
    assets: Vec<(String, PathBuf)>,
    entry: &Entry,
    mount: &Path,
) {
    artifact.os_files.push(crate::base::rootfs::hosts_file());
    artifact.ca_env = vec!["NODE_EXTRA_CA_CERTS".into()];
    artifact.notes = made.notes;
    artifact
        .notes
        .extend(dotenv_note(made.layout, &made.components, &assets));
    artifact.provenance.layout = Some(made.layout.into());
    artifact.provenance.layout_reason = Some(made.reason);
    artifact.provenance.components = with_runtime(made.components, runtime);
    match made.traced {
        None => {
            artifact.files.files = (assets.into_iter())
                .map(|(rel, host)| (format!("{APP}/{rel}"), host))
                .collect()
        }
        Some(traced) => lay_out_files(artifact, (traced, made.fetched), assets, entry, mount),
    }
}

const APP: &str = crate::build::APP_DIR;

/// What to say of an app that reads `.env` through dotenv: binpack does not ship it unasked
/// (it usually holds secrets), and under sea the working directory is `/`, where dotenv looks.
pub(super) fn dotenv_note(
    layout: &str,
    components: &[Component],
    assets: &[(String, PathBuf)],
) -> Option<String> {
    let dotenv = |c: &Component| c.ecosystem == Ecosystem::Npm && c.name == "dotenv";
    if !components.iter().any(dotenv) {
        return None;
    }
    let shipped = assets.iter().any(|(rel, _)| rel == ".env");
    Some(match (layout, shipped) {
        ("files", true) => return None,
        ("files", false) => "the app uses dotenv: .env is not shipped (it usually holds secrets); give --asset .env to ship it, or pass its variables with docker run --env-file .env".into(),
        _ => "the app uses dotenv, which reads .env from the working directory: in a sea image that is /, not the app's directory, so even --asset .env is not found there; pass the variables with docker run --env-file .env, or use --layout files --asset .env".into(),
    })
}

/// The files layout: node at its fixed path running the entry under /app, from the project's
/// directory; the traced files (relative to the mount root) and the assets in the app layer.
fn lay_out_files(
    artifact: &mut crate::build::Artifact,
    (traced, fetched): (Vec<String>, Vec<(String, PathBuf)>),
    assets: Vec<(String, PathBuf)>,
    entry: &Entry,
    mount: &Path,
) {
    let app = |rel: &str| format!("{APP}/{rel}");
    artifact.image_path = Some(NODE_PATH.into());
    artifact.args = vec![app(&path_str(&entry_in_mount(entry, mount)))];
    let project = path_str(entry.project.strip_prefix(mount).unwrap_or(Path::new("")));
    artifact.workdir = Some(app(&project).trim_end_matches('/').to_string());
    let files: Vec<(String, PathBuf)> = (traced.into_iter())
        .map(|rel| (app(&rel), mount.join(&rel)))
        .chain(fetched.into_iter().map(|(rel, host)| (app(&rel), host)))
        .chain(
            (assets.into_iter())
                .map(|(rel, host)| (app(&path_str(&Path::new(&project).join(rel))), host)),
        )
        .collect();
    // Native addons: the back half resolves their libraries like any ELF's.
    let native = (files.iter())
        .filter(|(dest, _)| dest.ends_with(".node"))
        .map(|(dest, _)| dest.clone())
        .collect();
    artifact.layers = vec![crate::build::FileLayer { files, native }];
}

/// The files layout: the stock node and the `traced` files, with the packages whose code
/// hides files from the tracer (`found` by the bundle, relative to the project, or in the
/// traced files) whole.
pub(super) fn files(
    ctx: &Ctx,
    reason: String,
    found: &[Construct],
    traced: Vec<String>,
) -> Result<Made, NodeError> {
    refuse_typescript(ctx.entry, &reason)?;
    let (traced, mut notes) = with_whole_packages(ctx, traced, found)?;
    let mut files: BTreeSet<String> = traced.into_iter().collect();
    let platforms = optional::platform_packages(ctx, &files)?;
    files.extend(platforms.add);
    for dir in &platforms.drop {
        files.retain(|f| !f.starts_with(&format!("{dir}/")));
    }
    notes.extend(platforms.notes);
    let manifests = package_jsons(ctx.mount, &files);
    files.extend(manifests);
    let traced: Vec<String> = files.into_iter().collect();
    let mut components = trace::components(ctx.mount, &traced);
    let fetched = platforms.fetched;
    let manifests = fetched.iter().filter(|(rel, _)| is_manifest(rel));
    components.extend(manifests.filter_map(|(_, host)| trace::component(host)));
    Ok(Made {
        executable: stripped_node(ctx)?,
        layout: "files",
        reason,
        notes,
        components,
        traced: Some(traced),
        fetched,
    })
}

/// A package's own package.json (`node_modules/x/package.json`, `node_modules/@s/x/package.json`).
fn is_manifest(rel: &str) -> bool {
    rel.strip_suffix("/package.json")
        .is_some_and(|dir| trace::package_dir(&format!("{dir}/x")).as_deref() == Some(dir))
}

/// Every package.json on the way from each of `files` up to its package's root (the mount
/// root for the app's own files): node reads them for `"type"`, `"exports"` and `"imports"`,
/// and package-up helpers (read-package-up, pkg-dir) read them for the program.
pub(super) fn package_jsons(mount: &Path, files: &BTreeSet<String>) -> Vec<String> {
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::new();
    for f in files {
        let root = trace::package_dir(f).unwrap_or_default();
        let mut dir = Path::new(f).parent();
        while let Some(d) = dir {
            if !seen.insert(d.to_path_buf()) {
                break; // This directory and all above it are done.
            }
            let pj = d.join("package.json");
            if mount.join(&pj).is_file() {
                out.push(path_str(&pj));
            }
            if path_str(d) == root || d.file_name().is_some_and(|n| n == "node_modules") {
                break;
            }
            dir = d.parent();
        }
    }
    out
}

/// The traced files and every file of each package under node_modules in which the bundle's
/// diagnostics or a scan of the traced code find a construct that reaches files the tracer
/// cannot follow (moment's locales by an aliased require, typescript's lib.*.d.ts beside its
/// code); a note for each such package.
pub(super) fn with_whole_packages(
    ctx: &Ctx,
    traced: Vec<String>,
    found: &[Construct],
) -> Result<(Vec<String>, Vec<String>), NodeError> {
    let code: Vec<String> = traced
        .iter()
        .filter(|f| f.contains("node_modules/") && is_script(f))
        .cloned()
        .collect();
    let mut all: Vec<Construct> = found
        .iter()
        .map(|c| c.rebased(&ctx.entry.project, ctx.mount))
        .collect();
    all.extend(checks::scan_sources(ctx.mount, &code));
    let mut files: BTreeSet<String> = traced.into_iter().collect();
    let mut notes = own_reach(ctx, &all, &mut files)?;
    notes.extend(shell_notes(&all));
    for (dir, why) in trace::hiding_packages(&all) {
        let before = files.len();
        files.extend(trace::package_files(ctx.mount, &dir)?);
        notes.push(format!(
            "{dir} is shipped whole ({} more files): the tracer cannot follow {}",
            files.len() - before,
            why.sentence()
        ));
    }
    Ok((files.into_iter().collect(), notes))
}

/// The app's own module files its computed imports can reach, and what those import, added to
/// `files`; a note for each such import.
fn own_reach(
    ctx: &Ctx,
    found: &[Construct],
    files: &mut BTreeSet<String>,
) -> Result<Vec<String>, NodeError> {
    let project = ctx
        .entry
        .project
        .strip_prefix(ctx.mount)
        .unwrap_or(Path::new(""));
    let reach = reach::own_reach(ctx.mount, project, found)?;
    let new: BTreeSet<&String> = (reach.iter())
        .flat_map(|r| &r.files)
        .filter(|f| !files.contains(*f))
        .collect();
    let hosts: Vec<PathBuf> = (new.iter())
        .filter(|f| is_script(f))
        .map(|f| ctx.mount.join(f))
        .collect();
    let entries: Vec<&Path> = hosts.iter().map(PathBuf::as_path).collect();
    let more = match entries.is_empty() {
        true => vec![],
        false => trace_more(ctx, &entries)?,
    };
    files.extend(new.into_iter().cloned().collect::<Vec<_>>());
    files.extend(more);
    Ok(reach.iter().map(reach::Reach::note).collect())
}

/// A note for the first command run through a shell in each package (or in the app's code).
fn shell_notes(found: &[Construct]) -> Vec<String> {
    let mut seen = BTreeSet::new();
    (found.iter())
        .filter(|c| c.kind == checks::Kind::ShellCommand)
        .filter(|c| seen.insert(trace::package_dir(c.file()).unwrap_or_default()))
        .map(shell_note)
        .collect()
}

fn is_script(file: &str) -> bool {
    [".js", ".cjs", ".mjs"].iter().any(|e| file.ends_with(e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn package_jsons_up_to_each_package_root() {
        let d = tempfile::tempdir().unwrap();
        let m = d.path();
        for f in [
            "package.json",
            "src/package.json",
            "node_modules/x/package.json",
            "node_modules/x/dist/esm/package.json",
            "node_modules/@s/y/package.json",
        ] {
            std::fs::create_dir_all(m.join(f).parent().unwrap()).unwrap();
            std::fs::write(m.join(f), "{}").unwrap();
        }
        let files: BTreeSet<String> = [
            "src/cli/main.js",
            "node_modules/x/dist/esm/deep/i.js",
            "node_modules/@s/y/lib/a.js",
        ]
        .map(String::from)
        .into();
        let mut found = package_jsons(m, &files);
        found.sort();
        assert_eq!(
            found,
            [
                "node_modules/@s/y/package.json",
                "node_modules/x/dist/esm/package.json",
                "node_modules/x/package.json",
                "package.json",
                "src/package.json",
            ]
        );
    }
}
