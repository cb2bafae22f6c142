//! The pure half of `binpack.toml`: a file's text, and the long flags each command has, turned
//! into the arguments it stands for. Here, in the library, so that the parser of a file a
//! cloned repository brings can be fuzzed; the command line supplies the flag table from clap
//! and does the finding, reading and trust checks (`cli/config.rs`).

/// A config file's text that is not TOML, or holds a key, table or value binpack does not take.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(String);

type Result<T> = std::result::Result<T, ConfigError>;

macro_rules! bail {
    ($($t:tt)*) => { return Err(ConfigError(format!($($t)*))) };
}

/// What a flag takes, hence what TOML type its key needs.
#[derive(Clone, Copy, PartialEq, Debug)]
pub enum Takes {
    /// A switch (`--load`-like flags with an optional value take a string too).
    Switch { value_too: bool },
    /// One value.
    One,
    /// Repeatable: one value or a list.
    Many,
}

/// One long flag of a command.
#[derive(Clone, Debug)]
pub struct Flag {
    pub name: String,
    pub takes: Takes,
}

/// Each command that takes options from the file, with its long flags.
pub type Commands<'a> = [(&'a str, Vec<Flag>)];

/// Arguments for `command` from the file's text, and its default Cmd.
pub fn parse(text: &str, command: &str, flags: &Commands) -> Result<(Vec<String>, Vec<String>)> {
    let table: toml::Table = toml::from_str(text).map_err(|e| ConfigError(e.to_string()))?;
    options_for(&table, command, flags)
}

/// `context: cause`, as a chain of errors reads.
fn within<T>(r: Result<T>, context: String) -> Result<T> {
    r.map_err(|e| ConfigError(format!("{context}: {}", e.0)))
}

/// Arguments for `command` from the table, and its default Cmd.
pub fn options_for(
    table: &toml::Table,
    command: &str,
    flags: &Commands,
) -> Result<(Vec<String>, Vec<String>)> {
    let commands: Vec<&str> = flags.iter().map(|(c, _)| *c).collect();
    let Some((_, known)) = flags.iter().find(|(c, _)| *c == command) else {
        bail!("no command {command}");
    };
    let find = |key: &str| known.iter().find(|f| f.name == key);
    let mut out = (Vec::new(), Vec::new());
    for (key, value) in table {
        if commands.contains(&key.as_str()) {
            if !value.is_table() {
                bail!("{key} must be a table ([{key}])");
            }
        } else if key == "args" || find(key).is_some() {
            add(&mut out, key, find(key), value, "")?;
        } else if value.is_table() {
            bail!(
                "unknown table [{key}]: binpack's tables are {}{}",
                commands
                    .iter()
                    .map(|c| format!("[{c}]"))
                    .collect::<Vec<_>>()
                    .join(", "),
                nearest(key, commands.iter().copied())
                    .map(|k| format!(" (did you mean [{k}]?)"))
                    .unwrap_or_default()
            );
        } else if !flags.iter().any(|(_, f)| f.iter().any(|f| f.name == *key)) {
            // Top-level keys are for every command, so one this command lacks is skipped
            // (`ldflags` for bin); one that no command has is a typo.
            let all = flags
                .iter()
                .flat_map(|(_, f)| f.iter().map(|f| f.name.as_str()));
            bail!(
                "unknown key {key}: no binpack command has --{key}{}",
                hint(key, all.chain(["args"]))
            );
        }
    }
    // Every command's table is checked (a mistake in [go] is named on a `binpack bin` run
    // too); only this command's is used.
    for (name, flags) in flags {
        let Some(section) = table.get(*name).and_then(|s| s.as_table()) else {
            continue;
        };
        let mut scratch = (Vec::new(), Vec::new());
        let into = if *name == command {
            &mut out
        } else {
            &mut scratch
        };
        section_options(section, name, flags, into)?;
    }
    Ok(out)
}

/// The options of one command's table (`[go]`), into `out`.
fn section_options(
    section: &toml::Table,
    command: &str,
    known: &[Flag],
    out: &mut (Vec<String>, Vec<String>),
) -> Result<()> {
    let find = |key: &str| known.iter().find(|f| f.name == key);
    for (key, value) in section {
        if key != "args" && find(key).is_none() {
            let near = hint(key, known.iter().map(|f| f.name.as_str()).chain(["args"]));
            bail!("unknown key {command}.{key}: binpack {command} has no --{key}{near}");
        }
        add(out, key, find(key), value, &format!("{command}."))?;
    }
    Ok(())
}

/// Appends to the arguments the flags one known key stands for, or sets the Cmd for `args`.
/// A value of the wrong TOML type is named with its key and the type wanted.
fn add(
    (args, cmd): &mut (Vec<String>, Vec<String>),
    key: &str,
    flag: Option<&Flag>,
    value: &toml::Value,
    scope: &str,
) -> Result<()> {
    let Some(flag) = flag else {
        *cmd = within(strings(value), format!("{scope}args"))?;
        return Ok(());
    };
    let wrong = |wanted: &str| {
        ConfigError(format!(
            "{scope}{key}: expected {wanted}, got {} {value}",
            type_name(value)
        ))
    };
    match (flag.takes, value) {
        (Takes::Switch { .. }, toml::Value::Boolean(true)) => args.push(format!("--{key}")),
        (Takes::Switch { .. }, toml::Value::Boolean(false)) => {}
        (Takes::Switch { value_too: false }, _) => return Err(wrong("true or false")),
        (_, toml::Value::Boolean(_)) => return Err(wrong("a string")),
        (_, toml::Value::Table(_) | toml::Value::Datetime(_)) => {
            return Err(wrong("a string"));
        }
        // One --platform takes the whole list: `platform = ["linux/amd64", "linux/arm64"]`.
        (_, toml::Value::Array(_)) if key == "platform" => {
            let list = within(strings(value), format!("{scope}{key}"))?;
            args.push(format!("--{key}={}", list.join(",")));
        }
        (Takes::Many, _) => {
            for v in within(strings(value), format!("{scope}{key}"))? {
                args.push(format!("--{key}={v}"));
            }
        }
        (_, toml::Value::Array(_)) => return Err(wrong("one string (--{key} is not repeatable)")),
        (_, other) => args.push(format!(
            "--{key}={}",
            within(scalar(other), format!("{scope}{key}"))?
        )),
    }
    Ok(())
}

/// "a string", "a boolean", ... for an error message.
fn type_name(v: &toml::Value) -> &'static str {
    match v {
        toml::Value::String(_) => "the string",
        toml::Value::Integer(_) => "the integer",
        toml::Value::Float(_) => "the number",
        toml::Value::Boolean(_) => "the boolean",
        toml::Value::Datetime(_) => "the date",
        toml::Value::Array(_) => "the list",
        toml::Value::Table(_) => "the table",
    }
}

/// " (did you mean KEY?)" for the known key nearest a misspelt one, when one is near.
fn hint<'a>(key: &str, known: impl Iterator<Item = &'a str>) -> String {
    nearest(key, known)
        .map(|k| format!(" (did you mean {k}?)"))
        .unwrap_or_default()
}

/// The known word nearest `key`, when it is at most two edits away.
fn nearest<'a>(key: &str, known: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    known
        .map(|k| (distance(key, k), k))
        .filter(|&(d, _)| d <= 2)
        .min()
        .map(|(_, k)| k)
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

fn scalar(v: &toml::Value) -> Result<String> {
    Ok(match v {
        toml::Value::String(s) => s.clone(),
        toml::Value::Integer(i) => i.to_string(),
        toml::Value::Float(f) => f.to_string(),
        _ => bail!("expected a string, number or boolean"),
    })
}

fn strings(v: &toml::Value) -> Result<Vec<String>> {
    match v {
        toml::Value::Array(a) => a.iter().map(scalar).collect(),
        other => Ok(vec![scalar(other)?]),
    }
}
