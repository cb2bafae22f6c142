//! The run config stage: how the container runs (entrypoint, Cmd, env, user, working
//! directory, labels), from the artifact, the user's options and the base image's config.

use crate::base::rootfs;
use crate::build::Artifact;
use oci_spec::image::Config;
use std::collections::BTreeMap;
use std::time::{Duration, UNIX_EPOCH};

/// Everything the config says besides its layers.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RunConfig {
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
    /// `K=V`, in order; later entries with the same key replace earlier ones.
    pub env: Vec<String>,
    pub user: String,
    pub workdir: String,
    pub labels: BTreeMap<String, String>,
    /// RFC 3339, from SOURCE_DATE_EPOCH or the epoch.
    pub created: String,
}

/// What the user said about how the container runs.
#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    /// Defaults to the unprivileged 65532 (or, on an image base, the base's user).
    pub user: Option<String>,
    pub env: Vec<String>,
    pub labels: BTreeMap<String, String>,
    /// Default arguments (the config's Cmd).
    pub cmd: Vec<String>,
    /// Timestamps in the tar and the config; None is the Unix epoch.
    pub source_date_epoch: Option<u64>,
}

impl RunOptions {
    pub fn mtime(&self) -> u64 {
        self.source_date_epoch.unwrap_or(0)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RunConfigError {
    #[error("invalid --env {0:?}: expected KEY=VALUE")]
    BadEnv(String),
    #[error("--user {user}: the image's /etc/{file} has no {kind} {name:?} (it has: {known}); the container would not start (`unable to find {kind}`). Give a numeric id (--user 65532), a name it has, or --add a {file} file that has it")]
    UnknownUser {
        user: String,
        file: &'static str,
        kind: &'static str,
        name: String,
        known: String,
    },
    #[error(transparent)]
    Base(#[from] crate::base::BaseError),
}

/// Refuses a `--user NAME[:GROUP]` whose name the image's `/etc/passwd` (group: `/etc/group`)
/// does not have: the engine looks it up only when the container starts. Numeric ids are
/// always allowed. The files are binpack's (or the user's `--add`), else the image base's.
pub fn check_user(
    opts: &RunOptions,
    trees: &[crate::image::layer::Tree],
    base: &crate::base::ResolvedBase,
) -> Result<(), RunConfigError> {
    let Some(user) = opts.user.as_deref() else {
        return Ok(());
    };
    let (name, group) = user.split_once(':').unwrap_or((user, ""));
    let named = |n: &str| !n.is_empty() && !n.chars().all(|c| c.is_ascii_digit());
    let base_files = match base.image() {
        Some(b) if named(name) || named(group) => Some(crate::base::BaseFiles::read(b)?),
        _ => None,
    };
    for (n, file, kind) in [(name, "passwd", "user"), (group, "group", "group")] {
        if !named(n) {
            continue;
        }
        let path = format!("/etc/{file}");
        let text = own_file(trees, &path)
            .or_else(|| {
                base_files
                    .as_ref()
                    .and_then(|f| f.contents(&path).map(<[u8]>::to_vec))
            })
            .unwrap_or_default();
        let text = String::from_utf8_lossy(&text);
        let names: Vec<&str> = text.lines().filter_map(|l| l.split(':').next()).collect();
        if !names.contains(&n) {
            return Err(RunConfigError::UnknownUser {
                user: user.to_string(),
                file,
                kind,
                name: n.to_string(),
                known: names.join(", "),
            });
        }
    }
    Ok(())
}

/// The bytes of `path` in binpack's layers (the last one that has it).
fn own_file(trees: &[crate::image::layer::Tree], path: &str) -> Option<Vec<u8>> {
    trees.iter().rev().find_map(|t| match t.get(path)? {
        crate::image::layer::Node::File { content, .. } => match content {
            crate::image::layer::Content::Bytes(b) => Some(b.clone()),
            crate::image::layer::Content::Host(p) => std::fs::read(p).ok(),
        },
        _ => None,
    })
}

/// RFC 3339 for a Unix time.
pub fn rfc3339(secs: u64) -> String {
    humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(secs)).to_string()
}

/// The run config of `artifact` started as `entrypoint`. `files_env` is what the files binpack
/// adds need (SSL_CERT_FILE); `base` is an image base's config, whose env, user, working
/// directory and labels stay unless overridden.
pub fn run_config(
    artifact: &Artifact,
    entrypoint: &str,
    files_env: &[String],
    opts: &RunOptions,
    base: Option<&Config>,
) -> Result<RunConfig, RunConfigError> {
    let created = rfc3339(opts.mtime());
    let empty = Vec::new();
    let base_env = base.and_then(|c| c.env().as_ref()).unwrap_or(&empty);
    let mut env = merge_env(base_env, files_env)?;
    env = merge_env(&env, &artifact.env)?;
    env = merge_env(&env, &opts.env)?;
    let user = match (&opts.user, base) {
        (Some(u), _) => u.clone(),
        (None, Some(c)) => c.user().clone().unwrap_or_default(),
        (None, None) => rootfs::NONROOT.to_string(),
    };
    // On binpack's own root the nonroot user starts in its home, as in distroless: a program
    // that writes beside itself (`./app.db`, a log) fails quietly in `/`, which only root
    // may write.
    let own_home = base.is_none() && user == rootfs::NONROOT.to_string();
    let workdir = artifact
        .workdir
        .clone()
        .or_else(|| base.and_then(|c| c.working_dir().clone()))
        .filter(|w| !w.is_empty())
        .unwrap_or_else(|| match own_home {
            true => rootfs::NONROOT_HOME.into(),
            false => "/".into(),
        });
    let mut labels: BTreeMap<String, String> = base
        .and_then(|c| c.labels().clone())
        .unwrap_or_default()
        .into_iter()
        .collect();
    labels.extend(own_labels(artifact, &created));
    labels.extend(opts.labels.clone());
    Ok(RunConfig {
        entrypoint: std::iter::once(entrypoint.to_string())
            .chain(artifact.args.iter().cloned())
            .collect(),
        cmd: opts.cmd.clone(),
        env,
        user,
        workdir,
        labels,
        created,
    })
}

/// binpack's `org.opencontainers.image.*` labels.
fn own_labels(artifact: &Artifact, created: &str) -> BTreeMap<String, String> {
    let key = |k: &str| format!("org.opencontainers.image.{k}");
    let mut labels = BTreeMap::from([
        (key("title"), artifact.name.clone()),
        (key("created"), created.to_string()),
    ]);
    let vcs = &artifact.provenance.vcs;
    if let Some(s) = &vcs.source {
        labels.insert(key("source"), s.clone());
    }
    if let Some(r) = &vcs.revision {
        labels.insert(key("revision"), r.clone());
    }
    labels
}

/// Merges `K=V` lists: a later key replaces an earlier one in place.
pub fn merge_env(base: &[String], extra: &[String]) -> Result<Vec<String>, RunConfigError> {
    let mut out: Vec<String> = base.to_vec();
    for kv in extra {
        let Some((k, _)) = kv.split_once('=').filter(|(k, _)| !k.is_empty()) else {
            return Err(RunConfigError::BadEnv(kv.clone()));
        };
        match out
            .iter_mut()
            .find(|e| e.split_once('=').map(|x| x.0) == Some(k))
        {
            Some(slot) => *slot = kv.clone(),
            None => out.push(kv.clone()),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn env_merge() {
        let base = vec!["PATH=/bin".to_string(), "A=1".to_string()];
        let got = merge_env(&base, &["A=2".into(), "B=x=y".into()]).unwrap();
        assert_eq!(got, ["PATH=/bin", "A=2", "B=x=y"]);
        assert!(merge_env(&base, &["novalue".into()]).is_err());
        assert!(merge_env(&base, &["=v".into()]).is_err());
    }

    #[test]
    fn an_image_base_keeps_its_settings_unless_overridden() {
        let base: Config = serde_json::from_value(serde_json::json!({
            "Env": ["PATH=/usr/bin", "LANG=C"],
            "User": "app",
            "WorkingDir": "/srv",
            "Labels": {"vendor": "x", "org.opencontainers.image.title": "base"},
        }))
        .unwrap();
        let a = Artifact::prebuilt(Path::new("/tmp/hello"), Path::new("/"));
        let opts = RunOptions {
            env: vec!["LANG=C.UTF-8".into()],
            ..RunOptions::default()
        };
        let rc = run_config(&a, "/app/hello", &[], &opts, Some(&base)).unwrap();
        assert_eq!(rc.env, ["PATH=/usr/bin", "LANG=C.UTF-8"]);
        assert_eq!((rc.user.as_str(), rc.workdir.as_str()), ("app", "/srv"));
        assert_eq!(rc.labels["vendor"], "x");
        assert_eq!(rc.labels["org.opencontainers.image.title"], "hello");
        // A runtime run with the app as its argument, from the app's directory.
        let mut node = a.clone();
        node.args = vec!["/app/server.js".into()];
        node.workdir = Some("/app".into());
        let rc = run_config(&node, "/usr/local/bin/node", &[], &opts, Some(&base)).unwrap();
        assert_eq!(rc.entrypoint, ["/usr/local/bin/node", "/app/server.js"]);
        assert_eq!(rc.workdir, "/app");
        let own = run_config(&a, "/app/hello", &[], &RunOptions::default(), None).unwrap();
        assert_eq!(
            (own.user.as_str(), own.workdir.as_str()),
            ("65532", "/home/nonroot")
        );
        let root = RunOptions {
            user: Some("0".into()),
            ..RunOptions::default()
        };
        let as_root = run_config(&a, "/app/hello", &[], &root, None).unwrap();
        assert_eq!(as_root.workdir, "/");
        assert_eq!(own.created, "1970-01-01T00:00:00Z");
    }
}
