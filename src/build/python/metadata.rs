//! What the installed distributions say of themselves (`*.dist-info/METADATA`, which stays in
//! the image for scanners such as syft), for the SBOM and for errors that name the package an
//! extension module came from.

use std::path::PathBuf;

/// An installed distribution, as its METADATA names it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Distribution {
    pub name: String,
    pub version: String,
    pub license: Option<String>,
}

/// Reads the headers of a METADATA file (RFC 822 style; the body after the first blank
/// line is the description).
fn parse(text: &str) -> Option<Distribution> {
    let mut name = None;
    let mut version = None;
    let (mut expression, mut license) = (None, None);
    for line in text.lines() {
        if line.is_empty() {
            break;
        }
        let Some((k, v)) = line.split_once(':') else {
            continue;
        };
        let v = v.trim().to_string();
        match k {
            "Name" => name = Some(v),
            "Version" => version = Some(v),
            "License-Expression" => expression = Some(v),
            // A whole license text in the field is no name of one.
            "License" if !v.is_empty() && v.len() < 100 => license = Some(v),
            _ => {}
        }
    }
    Some(Distribution {
        name: name?,
        version: version?,
        license: expression.or(license),
    })
}

/// The distributions whose METADATA is among the files of `layers` directly under `site`,
/// sorted.
pub fn distributions(
    deps: &[(String, PathBuf)],
    app: &[(String, PathBuf)],
    site: &str,
) -> Vec<Distribution> {
    let mut out: Vec<Distribution> = deps
        .iter()
        .chain(app)
        .filter(|(image, _)| is_metadata(image, site))
        .filter_map(|(_, host)| parse(&std::fs::read_to_string(host).ok()?))
        .collect();
    out.sort();
    out.dedup();
    out
}

fn is_metadata(image: &str, site: &str) -> bool {
    let Some(rel) = image.strip_prefix(site).and_then(|r| r.strip_prefix('/')) else {
        return false;
    };
    matches!(rel.split_once('/'), Some((d, "METADATA")) if d.ends_with(".dist-info"))
}

/// The distribution whose RECORD lists the file `image` (under `site`), as `name version`;
/// else the top directory it is in.
pub fn owner(files: &[(String, PathBuf)], site: &str, image: &str) -> String {
    let rel = image
        .strip_prefix(site)
        .map(|r| r.trim_start_matches('/'))
        .unwrap_or(image);
    for (i, host) in files {
        let Some(dist) = i.strip_suffix("/RECORD") else {
            continue;
        };
        let Ok(record) = std::fs::read_to_string(host) else {
            continue;
        };
        if record.lines().any(|l| l.split(',').next() == Some(rel)) {
            let meta = host.with_file_name("METADATA");
            if let Some(d) = std::fs::read_to_string(meta).ok().and_then(|t| parse(&t)) {
                return format!("{} {}", d.name, d.version);
            }
            return dist.rsplit('/').next().unwrap_or(dist).to_string();
        }
    }
    rel.split('/').next().unwrap_or(rel).to_string()
}

/// Debian packages of libraries that wheels expect from the system.
const DEBIAN: &[(&str, &str)] = &[
    ("libodbc.so.2", "libodbc2 (unixodbc)"),
    ("libodbcinst.so.2", "libodbcinst2 (unixodbc)"),
    ("libpq.so.5", "libpq5"),
    ("libmariadb.so.3", "libmariadb3"),
    ("libgomp.so.1", "libgomp1"),
    ("libGL.so.1", "libgl1"),
    ("libglib-2.0.so.0", "libglib2.0-0"),
    ("libxml2.so.2", "libxml2"),
    ("libxslt.so.1", "libxslt1.1"),
    ("libgfortran.so.5", "libgfortran5"),
    ("libstdc++.so.6", "libstdc++6"),
    ("libsqlite3.so.0", "libsqlite3-0"),
    ("libffi.so.8", "libffi8"),
    ("libssl.so.3", "libssl3"),
    ("libcrypto.so.3", "libssl3"),
    ("libgeos_c.so.1", "libgeos-c1v5"),
    ("libsnappy.so.1", "libsnappy1v5"),
];

/// `: apt-get install PKG` for the library named in a closure error, when binpack knows it.
pub fn debian_hint(why: &str) -> String {
    let lib = why.split_whitespace().next().unwrap_or("");
    match DEBIAN.iter().find(|(l, _)| *l == lib) {
        Some((_, pkg)) => format!(" (on Debian: apt-get install {pkg})"),
        None => format!(" (on Debian: the package that has {lib}, apt-file search {lib})"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_name_version_and_license() {
        let m = "Metadata-Version: 2.1\nName: Flask\nVersion: 3.1.0\nLicense-Expression: BSD-3-Clause\n\nLicense: not a header\n";
        let d = parse(m).unwrap();
        assert_eq!((d.name.as_str(), d.version.as_str()), ("Flask", "3.1.0"));
        assert_eq!(d.license.as_deref(), Some("BSD-3-Clause"));
        assert!(is_metadata("/s/flask-3.1.0.dist-info/METADATA", "/s"));
        assert!(!is_metadata("/s/flask/METADATA", "/s"));
    }

    #[test]
    fn names_the_debian_package_of_a_missing_library() {
        let why = "libodbc.so.2 (needed by /x.so) is not in /: searched /usr/lib";
        assert!(debian_hint(why).contains("unixodbc"));
    }
}
