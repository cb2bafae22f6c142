//! Extension modules of the standard library that a program only reaches by naming them, left
//! out when nothing the app or its dependencies ship names them.
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

/// Removes from `runtime` the optional extension modules that no file of `shipped` names, and
/// returns a note listing them (none when all stay).
pub fn prune(runtime: &mut Files, shipped: &[&Files]) -> Option<String> {
    let named = names_in(shipped);
    let dropped: BTreeSet<&str> = BY_NAME_ONLY
        .iter()
        .filter(|(_, names)| !names.iter().any(|n| named.contains(*n)))
        .map(|(module, _)| *module)
        .collect();
    let is_dropped = |image: &str| {
        let module = super::stdlib::module_name(image);
        image.ends_with(".so") && dropped.contains(module)
    };
    let before = runtime.files.len();
    runtime.files.retain(|(i, _)| !is_dropped(i));
    runtime.native.retain(|i| !is_dropped(i));
    if runtime.files.len() == before {
        return None;
    }
    let list: Vec<&str> = dropped.into_iter().collect();
    Some(format!(
        "left out the standard library's {} (nothing in the app or its dependencies imports \
         them; to keep one, import it in the app, e.g. `import readline`)",
        list.join(", ")
    ))
}

/// The keeping names (of [`BY_NAME_ONLY`]) that some Python source among `layers` mentions.
fn names_in(layers: &[&Files]) -> BTreeSet<&'static str> {
    let mut found = BTreeSet::new();
    let all: BTreeSet<&'static str> = BY_NAME_ONLY
        .iter()
        .flat_map(|(_, n)| n.iter().copied())
        .collect();
    for (image, host) in layers.iter().flat_map(|l| l.files.iter()) {
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
