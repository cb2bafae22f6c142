//! Running a toolchain's commands: [`Exec`], the seam a builder's tests fake, and
//! [`Runner`], the host or a container with the project mounted in.

use super::*;

/// What of a command's output reaches the user; the rest is returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Show {
    /// Nothing: stdout is returned, stderr dropped.
    Nothing,
    /// Its stderr; stdout is returned.
    Stderr,
    /// All of it, on binpack's stderr so that `--json` keeps stdout clean; only the status
    /// is returned.
    All,
    /// Nothing: stdout and stderr are both returned.
    Captured,
}

/// Runs a toolchain's commands: the seam between a builder and the processes it starts, so
/// that its tests can answer with canned output and need no toolchain.
pub trait Exec {
    /// `program args` run from `cwd` with `env` added (see [`Runner::command`]). An error is
    /// a command that could not start, named by the program actually spawned.
    fn run(
        &self,
        program: &OsStr,
        args: &[OsString],
        cwd: &Path,
        env: &[(&str, String)],
        show: Show,
    ) -> Result<Output, FileError>;
}

/// The real [`Exec`]: a [`Runner`]'s commands, with the caller's variables named in
/// `pass_env` passed into a container.
pub struct Commands<'a> {
    pub runner: &'a Runner,
    pub pass_env: &'a [&'a str],
}

impl Exec for Commands<'_> {
    fn run(
        &self,
        program: &OsStr,
        args: &[OsString],
        cwd: &Path,
        env: &[(&str, String)],
        show: Show,
    ) -> Result<Output, FileError> {
        let mut cmd = self.runner.command(program, args, cwd, env, self.pass_env);
        match show {
            Show::Nothing => cmd.stderr(Stdio::null()),
            Show::Stderr => cmd.stderr(Stdio::inherit()),
            Show::Captured => &mut cmd,
            Show::All => cmd
                .stdout(Stdio::from(io::stderr()))
                .stderr(Stdio::inherit()),
        };
        let spawned = PathBuf::from(cmd.get_program());
        cmd.output().map_err(file_error("running", &spawned))
    }
}

/// Builds commands for one build, on the host or in the container.
#[derive(Debug)]
pub enum Runner {
    Host,
    Container {
        container: Container,
        src: PathBuf,
        out: PathBuf,
        volume: String,
        owner: Option<(u32, u32)>,
    },
}

/// A container that sees each host directory of `mounts` at its own path (read-only unless
/// marked writable), so that a command's arguments are the host's paths as they are: for a
/// builder whose files are spread over the project, binpack's cache and a temporary directory
/// (python). It runs as the caller, so what it writes is theirs.
#[derive(Clone, Debug)]
pub struct Mirrored {
    pub container: Container,
    pub mounts: Vec<(PathBuf, bool)>,
}

/// Proxy settings every toolchain needs to reach its registries: always passed in.
const PROXY_ENV: &[&str] = &[
    "HTTPS_PROXY",
    "https_proxy",
    "HTTP_PROXY",
    "http_proxy",
    "NO_PROXY",
    "no_proxy",
];

const SRC: &str = "/src";
const OUT: &str = "/out";

impl Runner {
    /// `program args` run from `cwd` (a host path inside the source or output directory)
    /// with `env` added. On the host `program` is a path; in a container it is looked up on
    /// the image's PATH, paths in `args` must come from [`Runner::path`], and the caller's
    /// variables named in `pass_env` (and the proxy settings) are passed in.
    pub fn command(
        &self,
        program: &OsStr,
        args: &[OsString],
        cwd: &Path,
        env: &[(&str, String)],
        pass_env: &[&str],
    ) -> Command {
        match self {
            Runner::Host => {
                let mut c = Command::new(program);
                c.args(args).current_dir(cwd).stdin(Stdio::null());
                for (k, v) in env {
                    c.env(k, v);
                }
                c
            }
            Runner::Container {
                container,
                src,
                out,
                volume,
                owner,
            } => {
                let mut c = run_command(container, false);
                c.arg("--mount")
                    .arg(bind(src, SRC, true))
                    .arg("--mount")
                    .arg(bind(out, OUT, false))
                    .arg("--mount")
                    .arg(format!("type=volume,source={volume},target=/cache"))
                    .arg("--workdir")
                    .arg(self.path(cwd));
                // git refuses repositories owned by another user; go build asks git for VCS
                // stamping when the module is a repository.
                let fixed = [
                    ("GIT_CONFIG_COUNT", "1".to_string()),
                    ("GIT_CONFIG_KEY_0", "safe.directory".into()),
                    ("GIT_CONFIG_VALUE_0", "*".into()),
                ];
                env_args(&mut c, fixed.iter().chain(env), pass_env);
                c.arg(&container.image);
                // A root container would leave root-owned files: give /out back to the caller
                // whatever the program's status, and keep that status.
                if let Some((uid, gid)) = owner {
                    c.args([
                        "sh",
                        "-c",
                        &format!("\"$@\"; s=$?; chown -R {uid}:{gid} {OUT}; exit $s"),
                        "sh",
                    ]);
                }
                c.arg(program).args(args).stdin(Stdio::null());
                c
            }
        }
    }

    /// A shell script (the image's `sh`), for steps that are easier said in shell.
    pub fn script(&self, script: &str, cwd: &Path, pass_env: &[&str]) -> Command {
        let args = [OsString::from("-c"), OsString::from(script)];
        self.command(OsStr::new("sh"), &args, cwd, &[], pass_env)
    }

    /// `host` (inside the source or output directory) as the command sees it.
    pub fn path(&self, host: &Path) -> PathBuf {
        match self {
            Runner::Host => host.to_path_buf(),
            Runner::Container { src, out, .. } => {
                // Outside both mounts the path does not exist in the container: kept as it is,
                // so the tool's own "no such file" names it.
                map_path(host, &[(out, OUT), (src, SRC)]).unwrap_or_else(|| host.to_path_buf())
            }
        }
    }

    /// A path the command printed, back on the host.
    pub fn host_path(&self, seen: &Path) -> PathBuf {
        match self {
            Runner::Host => seen.to_path_buf(),
            Runner::Container { src, out, .. } => map_path(
                seen,
                &[
                    (Path::new(OUT), out.as_os_str()),
                    (Path::new(SRC), src.as_os_str()),
                ],
            )
            .unwrap_or_else(|| seen.to_path_buf()),
        }
    }

    pub fn in_container(&self) -> bool {
        matches!(self, Runner::Container { .. })
    }
}

impl Mirrored {
    /// `program args` run in the container from `cwd` (None: the image's) with `env` added: `-i` so that a
    /// program can read what the caller pipes in; the caller's uid and gid (a rootless engine
    /// maps root to the caller already), with a HOME that user can write.
    pub fn command(
        &self,
        program: &OsStr,
        args: &[OsString],
        cwd: Option<&Path>,
        env: &[(&str, String)],
    ) -> Command {
        let container = &self.container;
        let mut c = run_command(container, true);
        if !container.rootless {
            let (uid, gid) = (rustix::process::getuid(), rustix::process::getgid());
            c.arg("--user")
                .arg(format!("{}:{}", uid.as_raw(), gid.as_raw()));
        }
        for (dir, writable) in &self.mounts {
            c.arg("--mount")
                .arg(bind(dir, &dir.to_string_lossy(), !writable));
        }
        if let Some(cwd) = cwd {
            c.arg("--workdir").arg(cwd);
        }
        let home = [("HOME", "/tmp".to_string())];
        env_args(&mut c, home.iter().chain(env), &[]);
        c.arg(&container.image).arg(program).args(args);
        c.stdin(Stdio::null());
        c
    }
}

/// `<engine> run --rm [-i] --pull never --name <unique> [--network=N]`: how every toolchain
/// container's command starts.
fn run_command(container: &Container, interactive: bool) -> Command {
    let mut c = Command::new(container.engine.to_string());
    let name = container_name(container.engine);
    c.args(["run", "--rm"]);
    if interactive {
        c.arg("-i");
    }
    c.args(["--pull", "never", "--name", &name]);
    if let Some(n) = &container.network {
        c.arg(format!("--network={n}"));
    }
    c
}

/// `--env K=V` for each of `env`, then for each variable of `pass` and the proxy settings that
/// the caller has set.
fn env_args<'e>(c: &mut Command, env: impl Iterator<Item = &'e (&'e str, String)>, pass: &[&str]) {
    for (k, v) in env {
        c.arg("--env").arg(format!("{k}={v}"));
    }
    for k in PROXY_ENV.iter().chain(pass) {
        if let Some(v) = std::env::var_os(k) {
            let mut kv = OsString::from(format!("{k}="));
            kv.push(v);
            c.arg("--env").arg(kv);
        }
    }
}

/// A unique name for a container of this run, registered so that a signal removes it.
pub(super) fn container_name(engine: Engine) -> String {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let name = format!("binpack-{}-{n}", std::process::id());
    crate::support::cleanup::track_container(&engine.to_string(), &name);
    name
}

/// The named volume for a toolchain's caches: `$BINPACK_VOLUME_PREFIX-<what>`, the prefix
/// `binpack` unless set (a project or a test can keep its caches apart).
pub fn volume(what: &str) -> String {
    let prefix = std::env::var("BINPACK_VOLUME_PREFIX")
        .ok()
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| "binpack".into());
    format!("{prefix}-{what}")
}

fn bind(host: &Path, target: &str, readonly: bool) -> OsString {
    // --mount takes comma-separated fields (CSV): a field with a comma or a quote is quoted,
    // its quotes doubled.
    let field = |key: &str, value: &OsStr| {
        let text = value.to_string_lossy();
        if text.contains([',', '"']) {
            OsString::from(format!("\"{key}={}\"", text.replace('"', "\"\"")))
        } else {
            let mut s = OsString::from(format!("{key}="));
            s.push(value);
            s
        }
    };
    let mut s = OsString::from("type=bind,");
    s.push(field("source", host.as_os_str()));
    s.push(",");
    s.push(field("target", OsStr::new(target)));
    if readonly {
        s.push(",readonly");
    }
    s
}

/// `path` with the first matching prefix replaced.
fn map_path(path: &Path, table: &[(&Path, impl AsRef<OsStr>)]) -> Option<PathBuf> {
    table.iter().find_map(|(from, to)| {
        path.strip_prefix(from)
            .ok()
            .map(|rest| Path::new(to.as_ref()).join(rest))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_command_that_cannot_start_names_its_program() {
        let commands = Commands {
            runner: &Runner::Host,
            pass_env: &[],
        };
        let missing = OsStr::new("/nonexistent/bin/go");
        let err = commands
            .run(missing, &[], Path::new("/"), &[], Show::Nothing)
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "running /nonexistent/bin/go: No such file or directory (os error 2)"
        );
        let ok = commands
            .run(
                OsStr::new("sh"),
                &["-c".into(), "echo $X; echo e >&2".into()],
                Path::new("/"),
                &[("X", "1".into())],
                Show::Nothing,
            )
            .unwrap();
        assert_eq!(
            (ok.status.success(), ok.stdout.as_slice()),
            (true, &b"1\n"[..])
        );
    }

    #[test]
    fn bind_mounts_quote_what_csv_needs() {
        for (path, want) in [
            ("/a/b", "type=bind,source=/a/b,target=/src,readonly"),
            ("/a,b", "type=bind,\"source=/a,b\",target=/src,readonly"),
            ("/a\"b", "type=bind,\"source=/a\"\"b\",target=/src,readonly"),
        ] {
            assert_eq!(bind(Path::new(path), "/src", true), OsString::from(want));
        }
    }

    #[test]
    fn paths_map_both_ways() {
        let r = Runner::Container {
            container: Container {
                engine: Engine::Docker,
                image: "golang:1".into(),
                id: "sha256:00".into(),
                network: None,
                rootless: false,
            },
            src: PathBuf::from("/home/u/proj"),
            out: PathBuf::from("/tmp/binpack-go-1"),
            volume: "v".into(),
            owner: Some((1000, 1000)),
        };
        assert_eq!(
            r.path(Path::new("/home/u/proj/cmd/app")),
            PathBuf::from("/src/cmd/app")
        );
        assert_eq!(
            r.path(Path::new("/tmp/binpack-go-1/app")),
            PathBuf::from("/out/app")
        );
        assert_eq!(
            r.host_path(Path::new("/src/cmd/app")),
            PathBuf::from("/home/u/proj/cmd/app")
        );
        let cmd = r.command(
            OsStr::new("go"),
            &["version".into()],
            Path::new("/home/u/proj/cmd/app"),
            &[("CGO_ENABLED", "0".into())],
            &[],
        );
        let args: Vec<String> = cmd
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        let joined = args.join(" ");
        assert!(
            joined.starts_with("run --rm --pull never --name binpack-"),
            "{joined}"
        );
        assert!(
            joined.contains("type=bind,source=/home/u/proj,target=/src,readonly"),
            "{joined}"
        );
        assert!(joined.contains("--workdir /src/cmd/app --env"), "{joined}");
        assert!(
            joined.contains("--env CGO_ENABLED=0 golang:1 sh -c"),
            "{joined}"
        );
        assert!(
            joined.ends_with("chown -R 1000:1000 /out; exit $s sh go version"),
            "{joined}"
        );
    }
}
