//! `--add SRC:DEST`: files and directories the user ships beside the program (ko calls them
//! kodata): a helper program, a config file, zoneinfo. Owned by root, modes normalized
//! (0755 or 0644) and sorted like every other file binpack writes, so the digest stays stable.

use crate::image::layer::{LayerError, Node, Tree};
use std::path::PathBuf;

/// One `--add`: a host file or directory and its absolute path in the image.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Addition {
    pub src: PathBuf,
    pub dest: String,
}

#[derive(Debug, thiserror::Error)]
pub enum AddError {
    #[error("--add {0:?}: expected SRC:DEST, DEST an absolute path in the image")]
    Syntax(String),
    #[error("--add {}:{dest}: DEST must be an absolute path in the image (e.g. /etc/app/{dest})", src.display())]
    Relative { src: PathBuf, dest: String },
    #[error("--add {}:{dest}: {}: {source}", src.display(), src.display())]
    Source {
        src: PathBuf,
        dest: String,
        source: std::io::Error,
    },
    #[error("--add {}:{dest}: a file of /proc or /sys has no fixed content (it reads as empty in an image); copy what you need into a file and add that", src.display())]
    Virtual { src: PathBuf, dest: String },
    #[error("--add {}:{dest}: /{path} is a file binpack writes itself (or another --add does); choose another DEST", src.display())]
    Collides {
        src: PathBuf,
        dest: String,
        path: String,
    },
    #[error("--add {}:{dest}: {source}", src.display())]
    Layer {
        src: PathBuf,
        dest: String,
        source: LayerError,
    },
}

impl std::str::FromStr for Addition {
    type Err = AddError;

    /// `SRC:DEST`, split at the last colon (a host path may hold one; an image path may not).
    fn from_str(s: &str) -> Result<Addition, AddError> {
        let (src, dest) = s
            .rsplit_once(':')
            .filter(|(src, dest)| !src.is_empty() && !dest.is_empty())
            .ok_or_else(|| AddError::Syntax(s.to_string()))?;
        if !dest.starts_with('/') {
            return Err(AddError::Relative {
                src: src.into(),
                dest: dest.into(),
            });
        }
        Ok(Addition {
            src: src.into(),
            dest: dest.into(),
        })
    }
}

impl Addition {
    /// Refuses a missing source before any work is done.
    pub fn check(&self) -> Result<(), AddError> {
        let err = |source| AddError::Source {
            src: self.src.clone(),
            dest: self.dest.clone(),
            source,
        };
        std::fs::symlink_metadata(&self.src).map_err(err)?;
        // /proc and /sys files say they are empty and change as they are read: the image
        // would get an empty file (or a torn one).
        let real = std::fs::canonicalize(&self.src).map_err(err)?;
        if ["/proc", "/sys"].iter().any(|k| real.starts_with(k)) {
            return Err(AddError::Virtual {
                src: self.src.clone(),
                dest: self.dest.clone(),
            });
        }
        Ok(())
    }
}

/// Adds every addition to the last of `trees` (binpack's app layer). A path binpack (or an
/// earlier `--add`) put in any of them is refused, except directories both want.
pub fn add_all(trees: &mut [Tree], additions: &[Addition]) -> Result<(), AddError> {
    let Some((tree, below)) = trees.split_last_mut() else {
        return Ok(());
    };
    for a in additions {
        a.check()?;
        let layer = |source| AddError::Layer {
            src: a.src.clone(),
            dest: a.dest.clone(),
            source,
        };
        // A symlink named on the command line is followed (as COPY does); links inside a
        // directory are kept.
        let src = a.src.canonicalize().map_err(|source| AddError::Source {
            src: a.src.clone(),
            dest: a.dest.clone(),
            source,
        })?;
        let mut own = Tree::new();
        own.copy_from_host(&dest_of(a, &src), &src).map_err(layer)?;
        for (path, node) in own.iter() {
            let there = tree
                .get(path)
                .or_else(|| below.iter().find_map(|t| t.get(path)));
            match (there, node) {
                (None, _) | (Some(Node::Dir { .. }), Node::Dir { .. }) => {}
                _ => {
                    return Err(AddError::Collides {
                        src: a.src.clone(),
                        dest: a.dest.clone(),
                        path: path.to_string(),
                    })
                }
            }
        }
        for (path, node) in own.iter() {
            let done = match node {
                // A directory binpack already has keeps its mode and owner (/tmp, a home).
                Node::Dir { .. } if tree.get(path).is_some() => Ok(()),
                Node::Dir { mode, owner } => tree.dir_owned(path, *mode, *owner),
                Node::File { content, mode } => tree.file(path, content.clone(), *mode),
                Node::Symlink { target } => tree.symlink(path, target),
            };
            done.map_err(layer)?;
        }
    }
    Ok(())
}

/// DEST, or for a file given with `DEST/`, the file in that directory (as COPY does).
fn dest_of(a: &Addition, src: &std::path::Path) -> String {
    match (a.dest.ends_with('/') && !src.is_dir(), src.file_name()) {
        (true, Some(name)) => format!("{}{}", a.dest, name.to_string_lossy()),
        _ => a.dest.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::layer::Content;

    #[test]
    fn parses_and_refuses() {
        let a: Addition = "a:b:/etc/x".parse().unwrap();
        assert_eq!((a.src, a.dest.as_str()), (PathBuf::from("a:b"), "/etc/x"));
        let e = "conf:etc/x".parse::<Addition>().unwrap_err().to_string();
        assert!(e.contains("DEST must be an absolute path"), "{e}");
        assert!("nodest".parse::<Addition>().is_err());
        assert!(":/x".parse::<Addition>().is_err());
    }

    #[test]
    fn adds_a_directory_and_refuses_collisions_and_missing_sources() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("d")).unwrap();
        std::fs::write(dir.path().join("d/f"), "x").unwrap();
        let mut tree = Tree::new();
        tree.file("/etc/passwd", Content::Bytes(b"root".to_vec()), 0o644)
            .unwrap();
        tree.dir("/tmp", 0o1777).unwrap();
        let add = |s: &str| -> Addition { s.parse().unwrap() };
        let d = dir.path().join("d").display().to_string();
        std::os::unix::fs::symlink(dir.path().join("d/f"), dir.path().join("link")).unwrap();
        let link = dir.path().join("link").display().to_string();
        add_all(
            std::slice::from_mut(&mut tree),
            &[add(&format!("{d}:/tmp")), add(&format!("{link}:/etc/f"))],
        )
        .unwrap();
        assert!(matches!(
            tree.get("etc/f"),
            Some(Node::File { mode: 0o644, .. })
        ));
        assert!(matches!(
            tree.get("tmp"),
            Some(Node::Dir { mode: 0o1777, .. })
        ));
        assert!(matches!(
            tree.get("tmp/f"),
            Some(Node::File { mode: 0o644, .. })
        ));
        let e = add_all(
            std::slice::from_mut(&mut tree),
            &[add(&format!("{d}/f:/etc/passwd"))],
        )
        .unwrap_err();
        assert!(
            e.to_string()
                .contains("/etc/passwd is a file binpack writes"),
            "{e}"
        );
        let e = add_all(std::slice::from_mut(&mut tree), &[add("/no/such:/x")]).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("--add /no/such:/x: /no/such: No such file"),
            "{e}"
        );
    }

    #[test]
    fn a_dest_ending_in_a_slash_is_a_directory_and_a_fifo_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("app.toml");
        std::fs::write(&f, "x").unwrap();
        let mut trees = vec![Tree::new(), Tree::new()];
        trees[0]
            .file("/etc/passwd", Content::Bytes(b"root".to_vec()), 0o644)
            .unwrap();
        let add = |s: String| -> Addition { s.parse().unwrap() };
        add_all(&mut trees, &[add(format!("{}:/etc/app/", f.display()))]).unwrap();
        assert!(matches!(
            trees[1].get("etc/app/app.toml"),
            Some(Node::File { .. })
        ));
        // A file of a lower layer (the node runtime layer's /etc/passwd) is binpack's too.
        let e = add_all(&mut trees, &[add(format!("{}:/etc/passwd", f.display()))]).unwrap_err();
        assert!(matches!(e, AddError::Collides { .. }), "{e}");
        let fifo = dir.path().join("fifo");
        assert!(std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success());
        let e = add_all(&mut trees, &[add(format!("{}:/x", dir.path().display()))]).unwrap_err();
        assert!(e.to_string().contains("not a regular file"), "{e}");
    }

    #[test]
    fn proc_and_sys_files_are_refused() {
        for src in ["/proc/self/status", "/proc/cpuinfo", "/sys/kernel/hostname"] {
            let a: Addition = format!("{src}:/x").parse().unwrap();
            if std::path::Path::new(src).exists() {
                let e = a.check().unwrap_err().to_string();
                assert!(e.contains("/proc or /sys"), "{e}");
            }
        }
    }
}
