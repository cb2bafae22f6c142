//! The loader's default search path of a root: its `ld.so.conf` with includes, and the
//! multiarch and legacy directories.

use super::*;

/// The directories the loader searches after the object's own paths.
pub(super) fn system_dirs(root: &Path, l: &Linkage) -> Vec<String> {
    if l.libc() == Some("musl") {
        // musl reads /etc/ld-musl-<arch>.path, else a fixed list.
        let arch = l
            .interpreter
            .as_deref()
            .and_then(|i| i.rsplit('/').next())
            .and_then(|f| f.strip_prefix("ld-musl-"))
            .and_then(|f| f.strip_suffix(".so.1"))
            .unwrap_or("");
        if let Ok(text) = read_in_root(root, &format!("/etc/ld-musl-{arch}.path")) {
            return text
                .split(['\n', ':'])
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect();
        }
        return vec!["/lib".into(), "/usr/local/lib".into(), "/usr/lib".into()];
    }
    let mut dirs = Vec::new();
    read_ld_so_conf(root, "/etc/ld.so.conf", &mut dirs, &mut HashSet::new(), 0);
    let triplet = l.platform.multiarch_triplet();
    dirs.push(format!("/lib/{triplet}"));
    dirs.push(format!("/usr/lib/{triplet}"));
    if is_64(l) {
        dirs.push("/lib64".into());
        dirs.push("/usr/lib64".into());
    }
    dirs.push("/lib".into());
    dirs.push("/usr/lib".into());
    dirs
}

/// The directories `/etc/ld.so.conf` of `root` lists, includes followed (for the fuzz target
/// and tools; the search order adds the default directories after these).
pub fn ld_so_conf_dirs(root: &Path) -> Vec<String> {
    let mut dirs = Vec::new();
    read_ld_so_conf(root, "/etc/ld.so.conf", &mut dirs, &mut HashSet::new(), 0);
    dirs
}

/// The directories of `libs` that the loader finds only through the root's ld.so.conf, not
/// among its own defaults (`/usr/local/lib`, where a python image's libpython is). The image
/// has no ld.so.cache (the root's lists every library of the build's machine, which would
/// change the digest with each one installed there), and without one glibc's loader searches
/// only its defaults: these go in the image's `LD_LIBRARY_PATH`.
pub fn conf_only_dirs(root: &Path, libs: &[Resolved]) -> Vec<String> {
    let conf = ld_so_conf_dirs(root);
    let mut dirs: Vec<String> = Vec::new();
    for lib in libs.iter().filter(|l| l.image_path.is_none()) {
        let Some((dir, _)) = lib.path.rsplit_once('/') else {
            continue;
        };
        let listed = conf.iter().any(|c| c.trim_end_matches('/') == dir);
        if listed && !is_default_dir(dir) && !dirs.iter().any(|d| d == dir) {
            dirs.push(dir.to_string());
        }
    }
    dirs
}

/// glibc's built-in directories (Debian's, with the multiarch ones), searched with no cache.
fn is_default_dir(dir: &str) -> bool {
    let legacy = [
        "/lib",
        "/usr/lib",
        "/lib64",
        "/usr/lib64",
        "/lib32",
        "/usr/lib32",
    ];
    let multiarch = ["/lib/", "/usr/lib/"].iter().any(|p| {
        dir.strip_prefix(p)
            .is_some_and(|t| !t.contains('/') && t.contains("-linux-gnu"))
    });
    legacy.contains(&dir) || multiarch
}

/// ld.so.conf: one directory per line, `include GLOB` lines, `#` comments. Each file is read
/// once and each pattern expanded once (`seen`): includes that name each other would
/// otherwise be read a number of times exponential in their count.
pub(super) fn read_ld_so_conf(
    root: &Path,
    file: &str,
    out: &mut Vec<String>,
    seen: &mut HashSet<String>,
    depth: usize,
) {
    // Read through the root's own symlinks, never the host's.
    let Ok(real) = walk(root, file, &mut |_, _| {}) else {
        return;
    };
    if depth > 8 || !seen.insert(real.clone()) {
        return;
    }
    let Ok(text) = read_in_root(root, &real) else {
        return;
    };
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("").trim();
        if let Some(pattern) = line.strip_prefix("include") {
            for inner in include_matches(root, file, pattern.trim(), seen) {
                read_ld_so_conf(root, &inner, out, seen, depth + 1);
            }
        } else if line.starts_with('/') {
            out.push(line.to_string());
        }
    }
}

/// The in-root paths an `include PATTERN` line of `file` names, sorted; none when the same
/// pattern was expanded before.
pub(super) fn include_matches(
    root: &Path,
    file: &str,
    pattern: &str,
    seen: &mut HashSet<String>,
) -> Vec<String> {
    let abs = if pattern.starts_with('/') {
        pattern.to_string()
    } else {
        let dir = file.rsplit_once('/').map(|(d, _)| d).unwrap_or("");
        format!("{dir}/{pattern}")
    };
    // The pattern's directory resolved inside the root, its file part globbed there.
    let (dir, file_glob) = abs.rsplit_once('/').unwrap_or(("", abs.as_str()));
    let Ok(real_dir) = walk(root, if dir.is_empty() { "/" } else { dir }, &mut |_, _| {}) else {
        return vec![];
    };
    let in_root = format!("{real_dir}/{file_glob}");
    if !seen.insert(format!("include {in_root}")) {
        return vec![];
    }
    let host_pattern = host_path(root, &in_root);
    let mut matches: Vec<PathBuf> = glob::glob(&host_pattern.to_string_lossy())
        .map(|paths| paths.filter_map(Result::ok).collect())
        .unwrap_or_default();
    matches.sort();
    matches
        .iter()
        .filter_map(|m| m.strip_prefix(root).ok())
        .map(|rel| format!("/{}", rel.to_string_lossy()))
        .collect()
}
