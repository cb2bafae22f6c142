//! Extension modules of the standard library that a program only reaches by naming them: not
//! in the interpreter's layer, but in the layer of the dependencies or the app that names
//! them, and left out when none does.
//!
//! Why these five: together with their libraries they were a tenth of a flask image (4.8 MB:
//! Berkeley DB for `_dbm`, Kerberos and Sun RPC for `nis`, ncurses and readline), and none is
//! imported by the rest of the standard library except behind a fallback: `dbm` falls back to
//! `dbm.dumb`, and `pdb`, `cmd`, `code`, `rlcompleter` and `site` run without `readline`. `nis`
//! is deprecated (PEP 594, gone in 3.13); curses and readline serve a terminal, which a
//! container's program rarely has.
//!
//! The evidence is textual and errs towards keeping: an `import` line naming the module, or
//! the name as a string literal (`importlib.import_module("curses")`, `"dbm.ndbm"`), anywhere
//! in the app's or the dependencies' Python sources keeps it. A name built at run time from
//! outside input cannot be seen; the note says how to keep the module (name it in the code).

use super::Files;
use std::collections::BTreeSet;

/// (extension module, the names whose mention keeps it).
const BY_NAME_ONLY: &[(&str, &[&str])] = &[
    ("_dbm", &["dbm", "_dbm", "shelve"]),
    ("nis", &["nis"]),
    ("_curses", &["curses", "_curses"]),
    ("_curses_panel", &["curses", "_curses_panel"]),
    ("readline", &["readline"]),
];

/// Takes the optional extension modules out of `runtime`, whose layer is then the same for
/// every app on the interpreter, and puts each one back in the first layer above that names
/// it: the dependencies' (which stays the same while the requirements do) or the app's.
/// Their libraries follow them, since the closure of each layer's native modules is resolved
/// in that layer. Returns a note listing the modules no layer names.
pub fn place(runtime: &mut Files, dependencies: &mut Files, app: &mut Files) -> Option<String> {
    let optional = |image: &str| {
        let module = super::stdlib::module_name(image);
        image.ends_with(".so") && BY_NAME_ONLY.iter().any(|(m, _)| *m == module)
    };
    let (taken, kept): (Vec<_>, Vec<_>) = std::mem::take(&mut runtime.files)
        .into_iter()
        .partition(|(i, _)| optional(i));
    runtime.files = kept;
    runtime.native.retain(|i| !optional(i));
    let mut left = BTreeSet::new();
    let by_deps = names_in(dependencies);
    let by_app = names_in(app);
    for (image, host) in taken {
        let module = super::stdlib::module_name(&image);
        let keeping = |named: &BTreeSet<&str>| {
            let names = BY_NAME_ONLY
                .iter()
                .find(|(m, _)| *m == module)
                .map(|(_, n)| *n);
            names.unwrap_or_default().iter().any(|n| named.contains(n))
        };
        let layer = match (keeping(&by_deps), keeping(&by_app)) {
            (true, _) => &mut *dependencies,
            (false, true) => &mut *app,
            _ => {
                left.insert(module.to_string());
                continue;
            }
        };
        layer.native.push(image.clone());
        layer.files.push((image, host));
        layer.files.sort();
    }
    (!left.is_empty()).then(|| {
        format!(
            "left out the standard library's {} (nothing in the app or its dependencies \
             imports them; to keep one, import it in the app, e.g. `import readline`)",
            left.into_iter().collect::<Vec<_>>().join(", ")
        )
    })
}

/// The keeping names (of [`BY_NAME_ONLY`]) that some Python source of `layer` mentions.
fn names_in(layer: &Files) -> BTreeSet<&'static str> {
    let mut found = BTreeSet::new();
    let all: BTreeSet<&'static str> = BY_NAME_ONLY
        .iter()
        .flat_map(|(_, n)| n.iter().copied())
        .collect();
    for (image, host) in &layer.files {
        if !image.ends_with(".py") || found.len() == all.len() {
            continue;
        }
        let Ok(text) = std::fs::read_to_string(host) else {
            continue;
        };
        found.extend(all.iter().filter(|n| mentions(&text, n)));
    }
    found
}

/// Whether `text` imports `name` on an `import` line, or holds it as a string literal (alone
/// or as a dotted module path's first part).
fn mentions(text: &str, name: &str) -> bool {
    for quote in ['"', '\''] {
        for end in [quote, '.'] {
            if text.contains(&format!("{quote}{name}{end}")) {
                return true;
            }
        }
    }
    text.lines()
        .filter(|l| l.contains("import"))
        .any(|l| words(l).any(|w| w == name))
}

/// The first parts of a line's dotted names, an attribute (`f.readline`, `).readline`) not
/// counting: `import readline, os` names readline, `line = f.readline()` does not.
fn words(line: &str) -> impl Iterator<Item = &str> {
    line.split(|c: char| !(c.is_alphanumeric() || c == '_' || c == '.'))
        .filter(|w| !w.is_empty() && !w.starts_with('.'))
        .map(|w| w.split('.').next().unwrap_or(w))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_import_or_a_string_keeps_a_module() {
        assert!(mentions("import readline\n", "readline"));
        assert!(mentions("import os, readline\n", "readline"));
        assert!(mentions("from curses import wrapper\n", "curses"));
        assert!(mentions("m = importlib.import_module('dbm.ndbm')\n", "dbm"));
        assert!(mentions("__import__(\"nis\")\n", "nis"));
    }

    #[test]
    fn a_method_of_the_same_name_does_not() {
        assert!(!mentions("line = f.readline()\n", "readline"));
        assert!(!mentions(
            "import io\nline = io.StringIO().readline()\n",
            "readline"
        ));
        assert!(!mentions("# ncurses is a library\n", "curses"));
        assert!(!mentions("import gdbm_helper\n", "dbm"));
    }
}
