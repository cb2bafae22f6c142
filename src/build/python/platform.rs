//! Another platform's interpreter (`--platform linux/arm64 --root linux/arm64=DIR`), taken
//! from a root of that platform without running it: an arm64 interpreter cannot run on an
//! amd64 host, except under emulation, which binpack never relies on at build time.
//!
//! What the running interpreter would say of its layout is read from the root's own
//! `_sysconfigdata__linux_<triplet>.py` (plain data: a dict literal, read with `ast.literal_eval`
//! by the host's interpreter): its stdlib, lib-dynload and extension suffix. The host's
//! interpreter of the same version does everything that runs: it drives uv (which installs
//! the target platform's wheels, and only wheels: nothing can be compiled for it here) and
//! compiles the bytecode (a `.pyc` depends on the Python version, not on the machine).

use super::interp::Interp;
use crate::support::platform::Platform;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum PlatformError {
    #[error("{} has no python{minor} for {platform} ({} {found}); binpack takes another platform's interpreter from its root: give --root {platform}=DIR, a Debian root with python{minor}-minimal:{arch} and libpython{minor}-stdlib:{arch} (the README's Python section says how to make one from Debian's packages), or build with a host python of the root's version (--python)", root.display(), exe.display())]
    NoPython {
        root: PathBuf,
        exe: PathBuf,
        minor: String,
        platform: Platform,
        arch: String,
        found: String,
    },
    #[error("{}: {why}; the root's python{minor} cannot be packed without its layout (install libpython{minor}-stdlib:{arch} into the root)", file.display())]
    NoSysconfig {
        file: PathBuf,
        minor: String,
        arch: String,
        why: String,
    },
}

/// Reads a `_sysconfigdata_*.py` file's `build_time_vars` without executing it.
const SCRIPT: &str = r#"
import ast, json, sys
tree = ast.parse(open(sys.argv[1], encoding="utf-8").read())
for node in tree.body:
    if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "build_time_vars":
        v = ast.literal_eval(node.value)
        keys = ("EXT_SUFFIX", "LIBDEST", "DESTSHARED", "BINDIR", "SOABI", "VERSION", "prefix")
        print(json.dumps({k: str(v.get(k, "")) for k in keys}))
        break
else:
    sys.exit("no build_time_vars in it")
"#;

/// The interpreter that packs for `platform` from `root`: the host's `host` itself when the
/// platform is the host interpreter's and the root is the host's, else the root's interpreter
/// of the same version, with `host` as its runner.
pub fn interp(
    host: Interp,
    platform: &Platform,
    root: &Path,
) -> Result<Interp, Box<PlatformError>> {
    if root == Path::new("/") && machine(platform) == host.machine {
        return Ok(host);
    }
    let minor = host.minor().to_string();
    let usr = root.join("usr");
    let exe = usr.join("bin").join(format!("python{minor}"));
    let arch_ok = crate::elf::inspect::inspect_file(&exe)
        .map(|l| l.platform.arch == platform.arch)
        .unwrap_or(false);
    if !arch_ok {
        return Err(Box::new(PlatformError::NoPython {
            found: found(root, &exe, platform),
            root: root.to_path_buf(),
            exe: exe.strip_prefix(root).unwrap_or(&exe).to_path_buf(),
            minor,
            platform: platform.clone(),
            arch: platform.arch.clone(),
        }));
    }
    let vars = sysconfig(&host, root, platform, &minor)?;
    let in_root = |p: &str| root.join(p.trim_start_matches('/'));
    let stdlib = in_root(&vars.libdest);
    let version = micro_version(&exe, &minor);
    Ok(Interp {
        build: format!("{version}, {platform}, from the root {}", root.display()),
        version,
        implementation: "cpython".into(),
        cache_tag: host.cache_tag.clone(),
        site: site_dirs(&stdlib, &vars.prefix, &minor)
            .into_iter()
            .map(|d| in_root(&d).to_string_lossy().into_owned())
            .collect(),
        stdlib: stdlib.to_string_lossy().into_owned(),
        dynload: vec![in_root(&vars.destshared).to_string_lossy().into_owned()],
        ext_suffix: vars.ext_suffix,
        machine: machine(platform).to_string(),
        prefix: vars.prefix,
        executable: exe,
        runner: host.runner.clone(),
        root: root.to_path_buf(),
    })
}

/// `uname -m` of a platform, as `platform.machine()` says it.
pub fn machine(platform: &Platform) -> &str {
    match platform.arch.as_str() {
        "amd64" => "x86_64",
        "arm64" => "aarch64",
        "arm" => "armv7l",
        "386" => "i686",
        other => other,
    }
}

/// What the root has instead, for the refusal: its `usr/bin/python3*` or none.
fn found(root: &Path, exe: &Path, platform: &Platform) -> String {
    if exe.is_file() {
        return format!("is not a {platform} program");
    }
    let mut names: Vec<String> = std::fs::read_dir(root.join("usr/bin"))
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("python3.") && !n.contains('-'))
        .collect();
    names.sort();
    match names.as_slice() {
        [] => "is missing, and so is any other python3".into(),
        n => format!("is missing; it has {}", n.join(", ")),
    }
}

#[derive(serde::Deserialize)]
struct Vars {
    #[serde(rename = "EXT_SUFFIX")]
    ext_suffix: String,
    #[serde(rename = "LIBDEST")]
    libdest: String,
    #[serde(rename = "DESTSHARED")]
    destshared: String,
    prefix: String,
}

/// The root's build-time layout, from its sysconfigdata.
fn sysconfig(
    host: &Interp,
    root: &Path,
    platform: &Platform,
    minor: &str,
) -> Result<Vars, Box<PlatformError>> {
    let name = format!("_sysconfigdata__linux_{}.py", platform.multiarch_triplet());
    let file = root
        .join("usr/lib")
        .join(format!("python{minor}"))
        .join(name);
    let failed = |why: String| {
        Box::new(PlatformError::NoSysconfig {
            file: file.clone(),
            minor: minor.to_string(),
            arch: platform.arch.clone(),
            why,
        })
    };
    let real = std::fs::canonicalize(&file).map_err(|e| failed(e.to_string()))?;
    let real_root = std::fs::canonicalize(root).map_err(|e| failed(e.to_string()))?;
    if !real.starts_with(&real_root) {
        return Err(failed(format!(
            "it links out of the root, to {}",
            real.display()
        )));
    }
    let out = (host.runner.python(None, &[]))
        .args(["-I", "-c", SCRIPT])
        .arg(&real)
        .output()
        .map_err(|e| failed(format!("running {}: {e}", host.runner.python.display())))?;
    if !out.status.success() {
        return Err(failed(String::from_utf8_lossy(&out.stderr).trim().into()));
    }
    let vars: Vars = serde_json::from_slice(&out.stdout).map_err(|e| failed(e.to_string()))?;
    if vars.libdest.is_empty() || vars.destshared.is_empty() {
        return Err(failed("it names no LIBDEST or DESTSHARED".into()));
    }
    Ok(vars)
}

/// Where `site` looks for packages in that interpreter: Debian's patched site.py uses
/// dist-packages (/usr/local/lib/python3.X/dist-packages first); a stock one
/// `<prefix>/lib/python3.X/site-packages`.
fn site_dirs(stdlib: &Path, prefix: &str, minor: &str) -> Vec<String> {
    let site_py = std::fs::read_to_string(stdlib.join("site.py")).unwrap_or_default();
    if site_py.contains("dist-packages") && prefix == "/usr" {
        return vec![
            format!("/usr/local/lib/python{minor}/dist-packages"),
            "/usr/lib/python3/dist-packages".into(),
            format!("/usr/lib/python{minor}/dist-packages"),
        ];
    }
    vec![format!("{prefix}/lib/python{minor}/site-packages")]
}

/// `3.11.2`: the version string compiled into the interpreter (`PY_VERSION`), found next to
/// NUL bytes in its data; `minor` when it cannot be found.
fn micro_version(exe: &Path, minor: &str) -> String {
    let Ok(bytes) = std::fs::read(exe) else {
        return minor.to_string();
    };
    let needle = format!("\0{minor}.");
    let found = bytes
        .windows(needle.len())
        .enumerate()
        .filter(|(_, w)| *w == needle.as_bytes())
        .find_map(|(i, _)| {
            let rest = &bytes[i + needle.len()..];
            let end = rest.iter().position(|b| *b == 0)?;
            let micro = std::str::from_utf8(&rest[..end]).ok()?;
            (!micro.is_empty() && micro.bytes().all(|b| b.is_ascii_digit())).then_some(micro)
        });
    match found {
        Some(micro) => format!("{minor}.{micro}"),
        None => minor.to_string(),
    }
}

/// uv's `--python-platform` for `platform` and a root: manylinux at the root's glibc version
/// (Debian 12's 2.36), so that wheels built for any glibc the root's can run are taken; 2.28
/// when it cannot be read.
pub fn python_platform(platform: &Platform, root: &Path) -> String {
    let glibc = glibc_minor(root, platform).unwrap_or(28);
    let tag = match glibc {
        g if g >= 40 => "2_40".to_string(),
        g if g >= 31 => format!("2_{g}"),
        g if g >= 28 => "2_28".to_string(),
        _ => "2_17".to_string(),
    };
    format!("{}-manylinux_{tag}", machine(platform))
}

/// The highest `GLIBC_2.N` version the root's libc.so.6 defines.
fn glibc_minor(root: &Path, platform: &Platform) -> Option<u32> {
    let triplet = platform.multiarch_triplet();
    let libc = ["lib", "usr/lib"]
        .iter()
        .map(|d| root.join(d).join(triplet).join("libc.so.6"))
        .find(|p| p.is_file())?;
    let bytes = std::fs::read(libc).ok()?;
    let needle = b"GLIBC_2.";
    bytes
        .windows(needle.len())
        .enumerate()
        .filter(|(_, w)| *w == needle)
        .filter_map(|(i, _)| {
            let rest = &bytes[i + needle.len()..];
            let end = rest.iter().position(|b| !b.is_ascii_digit())?;
            std::str::from_utf8(&rest[..end]).ok()?.parse().ok()
        })
        .max()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_micro_version_from_the_binary() {
        let t = tempfile::tempdir().unwrap();
        let exe = t.path().join("python3.11");
        std::fs::write(&exe, b"\x7fELF...\x003.11.2\x00main\x003.11\x00").unwrap();
        assert_eq!(micro_version(&exe, "3.11"), "3.11.2");
        std::fs::write(&exe, b"nothing here").unwrap();
        assert_eq!(micro_version(&exe, "3.11"), "3.11");
    }

    #[test]
    fn manylinux_follows_the_roots_glibc() {
        let t = tempfile::tempdir().unwrap();
        let arm = Platform::parse("linux/arm64").unwrap();
        assert_eq!(
            python_platform(&arm, t.path()),
            "aarch64-manylinux_2_28",
            "no libc: the default"
        );
        let lib = t.path().join("lib/aarch64-linux-gnu");
        std::fs::create_dir_all(&lib).unwrap();
        std::fs::write(
            lib.join("libc.so.6"),
            b"\0GLIBC_2.17\0GLIBC_2.36\0GLIBC_2.4\0",
        )
        .unwrap();
        assert_eq!(python_platform(&arm, t.path()), "aarch64-manylinux_2_36");
    }

    #[test]
    fn a_root_without_the_interpreter_is_refused_naming_what_it_has() {
        let t = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(t.path().join("usr/bin")).unwrap();
        std::fs::write(t.path().join("usr/bin/python3.12"), b"").unwrap();
        let arm = Platform::parse("linux/arm64").unwrap();
        let exe = t.path().join("usr/bin/python3.11");
        assert_eq!(found(t.path(), &exe, &arm), "is missing; it has python3.12");
    }
}
