//! `binpack.toml`: the same options as the flags, so a Makefile target or pipeline step is one
//! short line. Top-level keys apply to every command; a `[go]`, `[node]`, `[bin]` or `[cargo]`
//! table to that command only. Keys are the long flag names (`tag`, `push`, `env`,
//! `ldflags`, ...); `args` is the default Cmd. Flags on the command line win.
//!
//! The file is turned into arguments placed before the user's, and clap lets a later
//! occurrence of a flag override an earlier one.

use anyhow::{anyhow, bail, Context};
use clap::CommandFactory;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

const FILE: &str = "binpack.toml";
const COMMANDS: &[&str] = &["go", "node", "bin", "cargo"];

/// `binpack.toml` in the current directory or the nearest ancestor that has one.
fn find(start: &Path) -> Option<PathBuf> {
    start
        .ancestors()
        .map(|d| d.join(FILE))
        .find(|p| p.is_file())
}

/// The command line with the config file's options inserted after the subcommand.
pub fn expand_args(args: Vec<OsString>) -> anyhow::Result<Vec<OsString>> {
    let Some(pos) = args
        .iter()
        .position(|a| a.to_str().is_some_and(|a| COMMANDS.contains(&a)))
    else {
        return Ok(args);
    };
    // A `--` before the subcommand would mean it is not one: keep it simple, only look before.
    if args[..pos].iter().any(|a| a == "--") {
        return Ok(args);
    }
    let explicit = args[..pos]
        .iter()
        .position(|a| a == "--config")
        .and_then(|i| args.get(i + 1))
        .map(PathBuf::from);
    let path = match explicit {
        Some(p) => p,
        None => match find(&std::env::current_dir()?) {
            Some(p) => p,
            None => return Ok(args),
        },
    };
    let command = args[pos].to_string_lossy().into_owned();
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let table: toml::Table =
        toml::from_str(&text).map_err(|e| anyhow!("{}: {e}", path.display()))?;
    let (extra, cmd) =
        options_for(&table, &command).map_err(|e| anyhow!("{}: {e}", path.display()))?;
    let mut out: Vec<OsString> = args[..=pos].to_vec();
    out.extend(extra.into_iter().map(OsString::from));
    let rest = &args[pos + 1..];
    out.extend(rest.iter().cloned());
    // The config's Cmd only when the command line has none.
    if !cmd.is_empty() && !rest.iter().any(|a| a == "--") {
        out.push("--".into());
        out.extend(cmd.into_iter().map(OsString::from));
    }
    Ok(out)
}

/// Arguments for `command` from the table, and its default Cmd.
fn options_for(table: &toml::Table, command: &str) -> anyhow::Result<(Vec<String>, Vec<String>)> {
    let cli = super::Cli::command();
    let sub = cli
        .find_subcommand(command)
        .ok_or_else(|| anyhow!("no command {command}"))?;
    let known: Vec<String> = sub
        .get_arguments()
        .filter_map(|a| a.get_long().map(String::from))
        .collect();
    let mut args = Vec::new();
    let mut cmd = Vec::new();
    let mut add = |key: &str, value: &toml::Value, scope: &str| -> anyhow::Result<()> {
        if key == "args" {
            cmd = strings(value).with_context(|| format!("{scope}args"))?;
            return Ok(());
        }
        if !known.iter().any(|k| k == key) {
            bail!("unknown key {scope}{key}: binpack {command} has no --{key}");
        }
        match value {
            toml::Value::Boolean(true) => args.push(format!("--{key}")),
            toml::Value::Boolean(false) => {}
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
    };
    for (key, value) in table {
        if COMMANDS.contains(&key.as_str()) {
            continue;
        }
        // Top-level keys are for every command: skip those this one does not have.
        if key == "args"
            || sub
                .get_arguments()
                .any(|a| a.get_long() == Some(key.as_str()))
        {
            add(key, value, "")?;
        }
    }
    if let Some(section) = table.get(command) {
        let section = section
            .as_table()
            .ok_or_else(|| anyhow!("[{command}] must be a table"))?;
        for (key, value) in section {
            add(key, value, &format!("{command}."))?;
        }
    }
    Ok((args, cmd))
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
    fn unknown_keys_are_named() {
        let e = run("[go]\nnode-version = \"22\"\n", "go")
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown key go.node-version"), "{e}");
        // A top-level key no command has is ignored for this one, not an error... unless
        // no command has it at all, which the user would want to know: checked in the section.
        assert!(run("tag = 3\n", "bin").is_ok());
    }
}
