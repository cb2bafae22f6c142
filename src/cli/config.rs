//! `binpack.toml`: the same options as the flags, so a Makefile target or pipeline step is one
//! short line. Top-level keys apply to every command; a `[go]`, `[node]`, `[bin]` or `[cargo]`
//! table to that command only. Keys are the long flag names (`tag`, `push`, `env`,
//! `ldflags`, ...); `args` is the default Cmd. Flags on the command line win.
//!
//! The file is turned into arguments placed before the user's, and clap lets a later
//! occurrence of a flag override an earlier one.

use anyhow::{anyhow, bail, Context};
use clap::{CommandFactory, Parser};
use std::ffi::{OsStr, OsString};
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

const FILE: &str = "binpack.toml";
const COMMANDS: &[&str] = &["go", "node", "bin", "cargo"];

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

/// Refuses a found file that someone else could have written: owned by another user, or
/// writable by group or others.
fn check_owner(path: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(path).with_context(|| path.display().to_string())?;
    if Some(meta.uid()) != binpack::cleanup::effective_uid() {
        bail!(
            "{}: not using it: it belongs to another user (uid {}); use --config FILE to read it anyway",
            path.display(),
            meta.uid()
        );
    }
    if meta.mode() & 0o022 != 0 {
        bail!(
            "{}: not using it: others can write to it (mode {:o}); `chmod go-w {}` if it is yours",
            path.display(),
            meta.mode() & 0o7777,
            path.display()
        );
    }
    Ok(())
}

/// "binpack: options from PATH" on stderr, unless the final command line says --quiet.
fn announce(path: &Path, args: &[OsString]) {
    let quiet = super::Cli::try_parse_from(args).is_ok_and(|c| c.quiet);
    if !quiet {
        // Best effort, as progress is: a full stderr must not stop the build.
        let _ = writeln!(
            std::io::stderr(),
            "binpack: options from {}",
            path.display()
        );
    }
}

/// The command line with the config file's options inserted after the subcommand.
pub fn expand_args(args: Vec<OsString>) -> anyhow::Result<Vec<OsString>> {
    let (Some(pos), explicit) = scan(&args) else {
        return Ok(args);
    };
    let command = args[pos].to_string_lossy().into_owned();
    // Other commands (inspect) take no options from the file.
    if !COMMANDS.contains(&command.as_str()) {
        return Ok(args);
    }
    let (path, flag) = match explicit {
        Some(p) => (p, "--config "),
        None => match find(&std::env::current_dir().context("the current directory")?) {
            Some(p) => {
                check_owner(&p)?;
                (p, "")
            }
            None => return Ok(args),
        },
    };
    let text = read(&path).map_err(|e| anyhow!("{flag}{}: {e}", path.display()))?;
    let (extra, cmd) = parse(&text, &command).with_context(|| path.display().to_string())?;
    let mut out: Vec<OsString> = args[..=pos].to_vec();
    let extra = super::pack_args::unless_given(extra, &args[pos + 1..]);
    out.extend(extra.into_iter().map(OsString::from));
    let rest = &args[pos + 1..];
    out.extend(rest.iter().cloned());
    // The config's Cmd only when the command line has none.
    if !cmd.is_empty() && !rest.iter().any(|a| a == "--") {
        out.push("--".into());
        out.extend(cmd.into_iter().map(OsString::from));
    }
    announce(&path, &out);
    Ok(out)
}

/// The subcommand's position and the `--config` value given before it. Of the top-level
/// options only `--config` takes a value, as `--config FILE` or `--config=FILE`; the last
/// one wins, as in clap. `None` for the position when there is no subcommand: clap says so.
fn scan(args: &[OsString]) -> (Option<usize>, Option<PathBuf>) {
    let mut config = None;
    let mut i = 1;
    while let Some(a) = args.get(i) {
        let bytes = a.as_bytes();
        if a == "--config" {
            config = args.get(i + 1).map(PathBuf::from);
            i += 2;
        } else if let Some(v) = bytes.strip_prefix(b"--config=") {
            config = Some(PathBuf::from(OsStr::from_bytes(v)));
            i += 1;
        } else if a == "--" {
            return (None, config);
        } else if bytes.starts_with(b"-") {
            i += 1;
        } else {
            return (Some(i), config);
        }
    }
    (None, config)
}

/// The file's text; the error is the cause alone (the caller names the path), without the
/// "(os error N)" the user has no use for.
fn read(path: &Path) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|e| {
        let text = e.to_string();
        match text.split_once(" (os error ") {
            Some((cause, _)) => cause.to_string(),
            None => text,
        }
    })
}

/// Arguments for `command` from the file's text, and its default Cmd.
fn parse(text: &str, command: &str) -> anyhow::Result<(Vec<String>, Vec<String>)> {
    let table: toml::Table = toml::from_str(text)?;
    options_for(&table, command)
}

/// Each config command's long flag names, globals (`quiet`) included: `build` propagates
/// them. `help` is no option to set from a file.
fn flags() -> Vec<(&'static str, Vec<String>)> {
    let mut cli = super::Cli::command();
    cli.build();
    let longs = |c: &str| -> Vec<String> {
        cli.find_subcommand(c)
            .into_iter()
            .flat_map(|sub| sub.get_arguments())
            .filter_map(|a| a.get_long())
            .filter(|l| *l != "help")
            .map(String::from)
            .collect()
    };
    COMMANDS.iter().map(|&c| (c, longs(c))).collect()
}

/// Arguments for `command` from the table, and its default Cmd.
fn options_for(table: &toml::Table, command: &str) -> anyhow::Result<(Vec<String>, Vec<String>)> {
    let flags = flags();
    let known = flags
        .iter()
        .find(|(c, _)| *c == command)
        .map(|(_, f)| f)
        .ok_or_else(|| anyhow!("no command {command}"))?;
    let mut out = (Vec::new(), Vec::new());
    for (key, value) in table {
        if COMMANDS.contains(&key.as_str()) {
            if !value.is_table() {
                bail!("{key} must be a table ([{key}])");
            }
        } else if key == "args" || known.contains(key) {
            add(&mut out, key, value, "")?;
        } else if !flags.iter().any(|(_, f)| f.contains(key)) {
            // Top-level keys are for every command, so one this command lacks is skipped
            // (`ldflags` for bin); one that no command has is a typo.
            let all = flags.iter().flat_map(|(_, f)| f.iter().map(String::as_str));
            bail!(
                "unknown key {key}: no binpack command has --{key}{}",
                hint(key, all)
            );
        }
    }
    if let Some(section) = table.get(command).and_then(|s| s.as_table()) {
        for (key, value) in section {
            if key != "args" && !known.contains(key) {
                let near = hint(key, known.iter().map(String::as_str));
                bail!("unknown key {command}.{key}: binpack {command} has no --{key}{near}");
            }
            add(&mut out, key, value, &format!("{command}."))?;
        }
    }
    Ok(out)
}

/// Appends to the arguments the flags one known key stands for, or sets the Cmd for `args`.
fn add(
    (args, cmd): &mut (Vec<String>, Vec<String>),
    key: &str,
    value: &toml::Value,
    scope: &str,
) -> anyhow::Result<()> {
    if key == "args" {
        *cmd = strings(value).with_context(|| format!("{scope}args"))?;
        return Ok(());
    }
    match value {
        toml::Value::Boolean(true) => args.push(format!("--{key}")),
        toml::Value::Boolean(false) => {}
        // One --platform takes the whole list: `platform = ["linux/amd64", "linux/arm64"]`.
        toml::Value::Array(_) if key == "platform" => {
            let list = strings(value).with_context(|| format!("{scope}{key}"))?;
            args.push(format!("--{key}={}", list.join(",")));
        }
        toml::Value::Array(_) => {
            for v in strings(value).with_context(|| format!("{scope}{key}"))? {
                args.push(format!("--{key}={v}"));
            }
        }
        other => args.push(format!(
            "--{key}={}",
            scalar(other).with_context(|| format!("{scope}{key}"))?
        )),
    }
    Ok(())
}

/// " (did you mean KEY?)" for the known key nearest a misspelt one, when one is near.
fn hint<'a>(key: &str, known: impl Iterator<Item = &'a str>) -> String {
    known
        .chain(["args"])
        .map(|k| (distance(key, k), k))
        .filter(|&(d, _)| d <= 2)
        .min()
        .map(|(_, k)| format!(" (did you mean {k}?)"))
        .unwrap_or_default()
}

/// Levenshtein distance: edits (insert, delete, replace) from `a` to `b`.
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let replace = prev[j] + usize::from(ca != *cb);
            cur.push(replace.min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

fn scalar(v: &toml::Value) -> anyhow::Result<String> {
    Ok(match v {
        toml::Value::String(s) => s.clone(),
        toml::Value::Integer(i) => i.to_string(),
        toml::Value::Float(f) => f.to_string(),
        _ => bail!("expected a string, number or boolean"),
    })
}

fn strings(v: &toml::Value) -> anyhow::Result<Vec<String>> {
    match v {
        toml::Value::Array(a) => a.iter().map(scalar).collect(),
        other => Ok(vec![scalar(other)?]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(toml_text: &str, command: &str) -> anyhow::Result<(Vec<String>, Vec<String>)> {
        options_for(&toml::from_str(toml_text).unwrap(), command)
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
        assert_eq!(scan(&argv("binpack go --config a.toml")), (Some(1), None));
    }
}
