//! Programs that are not self-contained: interpreters and runtimes whose ELF is only the
//! start (python's standard library, java's libjava and modules, ...). binpack ships an ELF
//! and the libraries it links; these need a tree of files it cannot guess, and the image
//! would build and then fail when it starts. Recognised by the executable's name and its
//! DT_NEEDED libraries.

use crate::elf::inspect::Linkage;
use std::path::Path;

/// A runtime the program needs and binpack does not ship.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Runtime {
    /// "Python", "Perl", "Ruby", "Java", "Node.js".
    pub name: &'static str,
    /// What it reads at run time, e.g. "its standard library (/usr/lib/python3.11)".
    pub needs: String,
    /// A base image that has it.
    pub base: &'static str,
    /// The `--add` that ships it from this machine, when there is one directory to ship.
    pub add: Option<String>,
}

impl Runtime {
    /// The one-line refusal for `program`.
    pub fn refusal(&self, program: &Path) -> String {
        let add = match &self.add {
            Some(dir) => format!(", or ship it with --add {dir}:{dir}"),
            None => String::new(),
        };
        // A language binpack builds for: its command packs the runtime with the app.
        let command = match self.name {
            "Python" => "; to pack a Python app with its interpreter, use `binpack python APP.py`",
            "Node.js" => "; to pack a Node.js app with node, use `binpack node APP.js`",
            _ => "",
        };
        format!(
            "{} is the {} runtime, not a self-contained program: it needs {} at run time, which binpack does not ship{command}; use a base image that has {} (--base {}){add}, or pass --not-self-contained to pack it anyway",
            program.display(),
            self.name,
            self.needs,
            self.name,
            self.base,
        )
    }
}

/// The runtime `program` (an ELF already inspected as `linkage`) is, if it is one. `program`'s
/// symlinks are followed for its name (/usr/bin/python3 -> python3.11).
pub fn runtime_of(program: &Path, linkage: &Linkage) -> Option<Runtime> {
    let real = program.canonicalize().unwrap_or_else(|_| program.into());
    let name = real.file_name()?.to_string_lossy().into_owned();
    let needs = |prefix: &str| linkage.needed.iter().find(|n| n.starts_with(prefix));
    if let Some(version) = python_version(&name, needs("libpython").map(String::as_str)) {
        let lib = format!("/usr/lib/python{version}");
        return Some(Runtime {
            name: "Python",
            needs: format!("its standard library ({lib}; without it: No module named 'encodings')"),
            base: "python:3-slim",
            add: Path::new(&lib).is_dir().then_some(lib),
        });
    }
    if versioned(&name, "perl") || needs("libperl").is_some() {
        return Some(Runtime {
            name: "Perl",
            needs: "its modules (/usr/lib/x86_64-linux-gnu/perl*, /usr/share/perl*)".into(),
            base: "perl:slim",
            add: None,
        });
    }
    if versioned(&name, "ruby") || needs("libruby").is_some() {
        return Some(Runtime {
            name: "Ruby",
            needs: "its standard library (/usr/lib/ruby)".into(),
            base: "ruby:slim",
            add: Some("/usr/lib/ruby".into()).filter(|d| Path::new(d).is_dir()),
        });
    }
    if name == "java" || needs("libjli").is_some() || needs("libjvm").is_some() {
        // bin/java -> the JDK's home, two levels up.
        let home = real.parent().and_then(Path::parent);
        return Some(Runtime {
            name: "Java",
            needs: "the rest of its JDK (libjava.so, lib/modules)".into(),
            base: "eclipse-temurin:21-jre",
            add: home.map(|h| h.display().to_string()),
        });
    }
    if (name == "node" || name == "nodejs") && !is_sea(&real) {
        return Some(Runtime {
            name: "Node.js",
            needs:
                "your app's scripts (`binpack node ENTRY` packs node with them as one executable)"
                    .into(),
            base: "node:20-bookworm-slim",
            add: None,
        });
    }
    None
}

/// `python3.11` -> `3.11`; `python3` or a libpython3.11.so link -> the version when known.
fn python_version(name: &str, libpython: Option<&str>) -> Option<String> {
    let from_lib = libpython.map(|l| {
        l.trim_start_matches("libpython")
            .split(".so")
            .next()
            .unwrap_or("")
            .trim_end_matches(['d', 'm'])
            .to_string()
    });
    let digits = |v: &str| !v.is_empty() && v.chars().all(|c| c.is_ascii_digit() || c == '.');
    match name.strip_prefix("python") {
        Some("") => from_lib.or(Some("3".into())),
        Some(v) if digits(v) => Some(v.to_string()),
        _ => from_lib,
    }
}

/// A node single executable has its fuse flipped: the app is inside.
fn is_sea(path: &Path) -> bool {
    let mut fuse = crate::sea::inject::FUSE.to_vec();
    fuse.push(b'1');
    std::fs::read(path)
        .map(|bytes| memchr::memmem::find(&bytes, &fuse).is_some())
        .unwrap_or(false)
}

/// `perl`, `perl5.36.0`, `ruby3.1`: the runtime's name with only a version after it, not
/// a program that merely starts with it (`rubyfmt`).
fn versioned(name: &str, runtime: &str) -> bool {
    name.strip_prefix(runtime)
        .is_some_and(|v| v.bytes().all(|b| b.is_ascii_digit() || b == b'.'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::support::platform::Platform;

    fn linkage(needed: &[&str]) -> Linkage {
        Linkage {
            platform: Platform::host(),
            is_static: false,
            interpreter: Some("/lib64/ld-linux-x86-64.so.2".into()),
            needed: needed.iter().map(|s| s.to_string()).collect(),
            runpath: vec![],
            rpath: vec![],
            go: None,
        }
    }

    #[test]
    fn recognises_runtimes_by_name_and_library() {
        let none = linkage(&["libc.so.6"]);
        let of = |p: &str, l: &Linkage| runtime_of(Path::new(p), l).map(|r| r.name);
        assert_eq!(of("/nonexistent/python3.12", &none), Some("Python"));
        assert_eq!(
            of("/opt/app/embed", &linkage(&["libpython3.11.so.1.0"])),
            Some("Python")
        );
        assert_eq!(of("/x/perl5.36.0", &none), Some("Perl"));
        assert_eq!(
            of("/x/app", &linkage(&["libruby-3.1.so.3.1"])),
            Some("Ruby")
        );
        assert_eq!(of("/jdk/bin/java", &none), Some("Java"));
        assert_eq!(of("/x/launcher", &linkage(&["libjli.so"])), Some("Java"));
        assert_eq!(of("/x/python-config-helper", &none), None);
        assert_eq!(of("/x/server", &none), None);
        let r = runtime_of(Path::new("/x/python3.12"), &none).unwrap();
        assert!(r.needs.contains("/usr/lib/python3.12"), "{}", r.needs);
        assert!(r
            .refusal(Path::new("/x/python3.12"))
            .contains("--base python:3-slim"));
    }

    #[test]
    fn a_runtime_name_with_a_version_only() {
        assert!(versioned("perl5.36.0", "perl") && versioned("ruby3.1", "ruby"));
        assert!(versioned("ruby", "ruby"));
        assert!(!versioned("rubyfmt", "ruby") && !versioned("perltidy", "perl"));
    }
}
