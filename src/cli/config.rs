//! `binpack.toml`: the same options as the flags, so a Makefile target or pipeline step is one
//! short line. Top-level keys apply to every command; a `[go]`, `[node]`, `[bin]` or `[cargo]`
//! table to that command only. Keys are the long flag names (`tag`, `push`, `env`,
//! `ldflags`, ...); `args` is the default Cmd. Flags on the command line win.
//!
//! The file is turned into arguments placed before the user's, and clap lets a later
//! occurrence of a flag override an earlier one.

use anyhow::{anyhow, bail, Context};
use binpack::support::config_toml::{self, Flag, Takes};
use clap::{CommandFactory, Parser};
use std::ffi::{OsStr, OsString};
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

const FILE: &str = "binpack.toml";

/// The commands that take options from the file: every subcommand that packs, as clap knows
/// them (a new language's is one without touching this file); not `inspect` nor hidden ones.
fn commands() -> &'static [&'static str] {
    static NAMES: std::sync::OnceLock<Vec<&'static str>> = std::sync::OnceLock::new();
    NAMES.get_or_init(|| {
        let cli = super::Cli::command();
        let packs = |c: &clap::Command| c.get_arguments().any(|a| a.get_id() == "push");
        // Named once for the program's lifetime: clap's names borrow a temporary command.
        let mut names: Vec<&'static str> = (cli.get_subcommands())
            .filter(|c| !c.is_hide_set() && packs(c))
            .map(|c| &*Box::leak(c.get_name().to_string().into_boxed_str()))
            .collect();
        names.sort_unstable();
        names
    })
}

mod trust;

/// `binpack.toml` in the current directory or the nearest parent that has one, up to the
/// project root (the git work tree's top) and never above: a file planted in a shared parent
/// such as /tmp must not choose where the image goes. Outside a work tree, the current
/// directory only.
fn find(start: &Path) -> Option<PathBuf> {
    let top = start
        .ancestors()
        .find(|d| d.join(".git").exists())
        .unwrap_or(start);
    start
        .ancestors()
        .take_while(|d| d.starts_with(top))
        .map(|d| d.join(FILE))
        .find(|p| p.is_file())
}

/// The most a config file may hold: a real one is a few hundred bytes.
const LIMIT: u64 = 1 << 20;

/// Reads the config file `path`: a regular file, bounded. A found one (not named with
/// --config) is refused when someone else could have written it: owned by another user, or
/// writable by group or others. The check and the read are on the same descriptor, so the
/// file cannot be swapped between them.
fn read(path: &Path, found: bool) -> anyhow::Result<String> {
    use binpack::support::bounded;
    use std::os::unix::fs::MetadataExt;
    let flag = if found { "" } else { "--config " };
    let named = |e: bounded::ReadError| anyhow!("{flag}{}: {e}", path.display());
    let (file, meta) = bounded::open_regular(path).map_err(named)?;
    if found && Some(meta.uid()) != binpack::support::cleanup::effective_uid() {
        bail!(
            "{}: not using it: it belongs to another user (uid {}); use --config FILE to read it anyway",
            path.display(),
            meta.uid()
        );
    }
    if found && meta.mode() & 0o022 != 0 {
        bail!(
            "{}: not using it: others can write to it (mode {:o}); `chmod go-w {}` if it is yours",
            path.display(),
            meta.mode() & 0o7777,
            path.display()
        );
    }
    let bytes = bounded::read_to_limit(file, LIMIT).map_err(named)?;
    String::from_utf8(bytes).map_err(|_| anyhow!("{flag}{}: not UTF-8 text", path.display()))
}

/// "binpack: options from PATH: --tag=a:1 ..." on stderr, unless the final command line says
/// --quiet: the user sees what a file chose for them.
fn announce(path: &Path, options: &[String], args: &[OsString]) {
    let quiet = super::Cli::try_parse_from(args).is_ok_and(|c| c.quiet);
    if !quiet {
        // An environment value may be a secret: its name is enough to see where it came from.
        let hide = |o: &String| match o.strip_prefix("--env=").and_then(|kv| kv.split_once('=')) {
            Some((k, _)) => format!("--env={k}=..."),
            None => o.clone(),
        };
        let shown: Vec<String> = options.iter().map(|o| shell_word(&hide(o))).collect();
        // Best effort, as progress is: a full stderr must not stop the build.
        let _ = match shown.is_empty() {
            true => writeln!(
                std::io::stderr(),
                "binpack: options from {}",
                path.display()
            ),
            false => writeln!(
                std::io::stderr(),
                "binpack: options from {}: {}",
                path.display(),
                shown.join(" ")
            ),
        };
    }
}

/// `word` as a shell would need it, quoted when it holds anything but plain characters.
fn shell_word(word: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "-_=./:,@+%".contains(c);
    if !word.is_empty() && word.chars().all(plain) {
        return word.to_string();
    }
    let quoted = word.replace('\'', r"'\''");
    format!("'{}'", binpack::support::printable::printable(&quoted))
}

/// The command line with the config file's options inserted after the subcommand.
pub fn expand_args(args: Vec<OsString>) -> anyhow::Result<Vec<OsString>> {
    let (Some(pos), explicit) = scan(&args) else {
        return Ok(args);
    };
    let command = args[pos].to_string_lossy().into_owned();
    // Other commands (inspect) take no options from the file.
    if !commands().contains(&command.as_str()) {
        return Ok(args);
    }
    let cwd = std::env::current_dir().context("the current directory")?;
    let (path, found) = match explicit {
        Some(p) => (p, false),
        None => match find(&cwd) {
            Some(p) => (p, true),
            None => return Ok(args),
        },
    };
    let text = read(&path, found)?;
    let (extra, cmd) = parse(&text, &command).with_context(|| path.display().to_string())?;
    let project = std::path::absolute(&path)
        .ok()
        .and_then(|p| p.parent().map(Path::to_path_buf))
        .unwrap_or_else(|| cwd.clone());
    check_trust(&extra, &project, &cwd).with_context(|| path.display().to_string())?;
    let mut out: Vec<OsString> = args[..=pos].to_vec();
    let extra = super::pack_args::unless_given(extra, &args[pos + 1..]);
    out.extend(extra.iter().map(OsString::from));
    let rest = &args[pos + 1..];
    out.extend(rest.iter().cloned());
    // The config's Cmd only when the command line has none.
    if !cmd.is_empty() && !rest.iter().any(|a| a == "--") {
        out.push("--".into());
        out.extend(cmd.into_iter().map(OsString::from));
    }
    announce(&path, &extra, &out);
    Ok(out)
}

/// Checks the file's options ([`trust`]), grouped by flag: `--key=value` or `--key`.
fn check_trust(extra: &[String], project: &Path, cwd: &Path) -> anyhow::Result<()> {
    let mut by_key: Vec<(&str, Vec<String>)> = Vec::new();
    for a in extra {
        let body = a.trim_start_matches('-');
        let (key, value) = body.split_once('=').unwrap_or((body, ""));
        match by_key.iter_mut().find(|(k, _)| *k == key) {
            Some((_, v)) => v.push(value.to_string()),
            None => by_key.push((key, vec![value.to_string()])),
        }
    }
    for (key, values) in &by_key {
        trust::check(key, values, project, cwd).map_err(|why| anyhow!("{key}: {why}"))?;
    }
    Ok(())
}

/// The subcommand's position and the `--config` value given before it. Of the top-level
/// options only `--config` takes a value, as `--config FILE` or `--config=FILE`; the last
/// one wins, as in clap. `None` for the position when there is no subcommand: clap says so.
fn scan(args: &[OsString]) -> (Option<usize>, Option<PathBuf>) {
    let mut config = None;
    let mut i = 1;
    while let Some(a) = args.get(i) {
        let bytes = a.as_bytes();
        if let Some(inline) = config_flag(a) {
            let given = inline.is_some();
            config = inline.or_else(|| args.get(i + 1).map(PathBuf::from));
            i += if given { 1 } else { 2 };
        } else if a == "--" {
            return (None, config);
        } else if bytes.starts_with(b"-") {
            i += 1;
        } else {
            // `--config` may follow the subcommand too, as `-q` may (up to `--`).
            return (Some(i), after_command(&args[i + 1..]).or(config));
        }
    }
    (None, config)
}

/// The last `--config` given after the subcommand, before `--`.
fn after_command(args: &[OsString]) -> Option<PathBuf> {
    let mut config = None;
    let mut rest = args.iter().take_while(|a| *a != "--");
    while let Some(a) = rest.next() {
        if let Some(inline) = config_flag(a) {
            config = inline.or_else(|| rest.next().map(PathBuf::from));
        }
    }
    config
}

/// `--config=FILE`: Some(Some(FILE)); `--config` (its value is the next argument):
/// Some(None); anything else: None.
fn config_flag(a: &OsStr) -> Option<Option<PathBuf>> {
    if a == "--config" {
        return Some(None);
    }
    let v = a.as_bytes().strip_prefix(b"--config=")?;
    Some(Some(PathBuf::from(OsStr::from_bytes(v))))
}

/// Arguments for `command` from the file's text, and its default Cmd.
fn parse(text: &str, command: &str) -> anyhow::Result<(Vec<String>, Vec<String>)> {
    Ok(config_toml::parse(text, command, &flags())?)
}

/// Each config command's long flags, globals (`quiet`) included: `build` propagates them.
/// `help` is no option to set from a file.
fn flags() -> Vec<(&'static str, Vec<Flag>)> {
    let mut cli = super::Cli::command();
    cli.build();
    let takes = |a: &clap::Arg| match a.get_action() {
        clap::ArgAction::SetTrue | clap::ArgAction::SetFalse => Takes::Switch { value_too: false },
        clap::ArgAction::Append => Takes::Many,
        _ if a.get_num_args().is_some_and(|n| n.min_values() == 0) => {
            Takes::Switch { value_too: true }
        }
        _ => Takes::One,
    };
    let longs = |c: &str| -> Vec<Flag> {
        cli.find_subcommand(c)
            .into_iter()
            .flat_map(|sub| sub.get_arguments())
            .filter_map(|a| Some((a.get_long()?, takes(a))))
            .filter(|(l, _)| *l != "help")
            .map(|(l, takes)| Flag {
                name: l.to_string(),
                takes,
            })
            .collect()
    };
    commands().iter().map(|&c| (c, longs(c))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(toml_text: &str, command: &str) -> anyhow::Result<(Vec<String>, Vec<String>)> {
        let table = toml::from_str(toml_text).unwrap();
        Ok(config_toml::options_for(&table, command, &flags())?)
    }

    #[test]
    fn keys_become_flags() {
        let text = r#"
            tag = "app:1"
            env = ["A=1", "B=2"]
            load = true
            json = false
            args = ["serve"]
            [go]
            ldflags = "-X main.v=1"
            [node]
            node-version = "22"
        "#;
        let (args, cmd) = run(text, "go").unwrap();
        assert_eq!(
            args,
            [
                "--env=A=1",
                "--env=B=2",
                "--load",
                "--tag=app:1",
                "--ldflags=-X main.v=1"
            ]
        );
        assert_eq!(cmd, ["serve"]);
        let (args, _) = run(text, "node").unwrap();
        assert!(args.contains(&"--node-version=22".to_string()));
        assert!(!args.iter().any(|a| a.starts_with("--ldflags")));
    }

    #[test]
    fn platform_takes_a_list() {
        let (args, _) = run("platform = [\"linux/amd64\", \"linux/arm64\"]\n", "go").unwrap();
        assert_eq!(args, ["--platform=linux/amd64,linux/arm64"]);
        let (args, _) = run("[node]\nplatform = \"all\"\n", "node").unwrap();
        assert_eq!(args, ["--platform=all"]);
    }

    #[test]
    fn unknown_keys_are_named() {
        let e = run("[go]\nnode-version = \"22\"\n", "go")
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown key go.node-version"), "{e}");
        // A top-level key is for every command: one only go has is skipped for bin...
        let (args, _) = run("ldflags = \"-s\"\ntag = \"a:1\"\n", "bin").unwrap();
        assert_eq!(args, ["--tag=a:1"]);
        // ...but one no command has is a typo, named with the nearest known key.
        let e = run("tagg = \"x\"\n", "bin").unwrap_err().to_string();
        assert!(
            e.contains("unknown key tagg") && e.contains("did you mean tag?"),
            "{e}"
        );
        let e = run("[bin]\narg = [\"x\"]\n", "bin")
            .unwrap_err()
            .to_string();
        assert!(e.contains("did you mean args?"), "{e}");
        // Globals are options of every command.
        assert_eq!(run("quiet = true\n", "go").unwrap().0, ["--quiet"]);
    }

    #[test]
    fn config_flag_in_both_spellings() {
        let argv = |s: &str| s.split(' ').map(OsString::from).collect::<Vec<_>>();
        let c = |p: &str| Some(PathBuf::from(p));
        assert_eq!(
            scan(&argv("binpack --config a.toml go .")),
            (Some(3), c("a.toml"))
        );
        assert_eq!(
            scan(&argv("binpack -q --config=a.toml go .")),
            (Some(3), c("a.toml"))
        );
        // A file named like a command is still the value; the last --config wins.
        assert_eq!(
            scan(&argv("binpack --config go --config=b bin x")),
            (Some(4), c("b"))
        );
        assert_eq!(scan(&argv("binpack --config a.toml")), (None, c("a.toml")));
        assert_eq!(
            scan(&argv("binpack go --config a.toml")),
            (Some(1), c("a.toml"))
        );
    }

    #[test]
    fn a_misspelt_table_and_a_wrong_type_are_named() {
        let e = run("[goo]\nldflags = \"-s\"\n", "go")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("unknown table [goo]") && e.contains("did you mean [go]?"),
            "{e}"
        );
        let e = run("[go]\nno-tzdata = \"yes\"\n", "go")
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "go.no-tzdata: expected true or false, got the string \"yes\""
        );
        let e = run("tag = true\n", "go").unwrap_err().to_string();
        assert_eq!(e, "tag: expected a string, got the boolean true");
        // -t repeats: a list is several tags.
        let tags = run("tag = [\"a:1\", \"b:2\"]\n", "bin").unwrap().0;
        assert_eq!(tags, ["--tag=a:1", "--tag=b:2"]);
        // --load takes an engine or nothing.
        assert_eq!(run("load = true\n", "bin").unwrap().0, ["--load"]);
        assert_eq!(
            run("load = \"podman\"\n", "bin").unwrap().0,
            ["--load=podman"]
        );
    }
}
