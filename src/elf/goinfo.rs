//! Decodes the Go build information (`.go.buildinfo`) that `go build` embeds in every binary.
//!
//! Hand-written because no maintained crate reads it; the format is small and stable since
//! Go 1.18: a 32-byte header (`\xff Go buildinf:`, pointer size, flags) followed, when flag bit
//! 2 is set, by two varint-prefixed strings: the Go version and the module info text.

use serde::Serialize;
use std::collections::BTreeMap;

const MAGIC: &[u8] = b"\xff Go buildinf:";
/// Flag bit meaning "strings are inline, not pointers" (Go 1.18+).
const FLAG_INLINE: u8 = 0x2;

/// What a Go binary says about how it was built.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct GoInfo {
    /// e.g. `go1.23.5`; None for binaries older than Go 1.18, whose format is not decoded.
    pub version: Option<String>,
    /// The main package's import path.
    pub path: Option<String>,
    pub main: Option<Module>,
    pub deps: Vec<Module>,
    /// `build` settings: CGO_ENABLED, GOOS, GOARCH, -trimpath, -ldflags, vcs.revision...
    pub settings: BTreeMap<String, String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Module {
    pub path: String,
    pub version: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sum: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replace: Option<Box<Module>>,
}

/// Finds and decodes the build info. `section` is the `.go.buildinfo` section's bytes when the
/// ELF has section headers; otherwise `scan` is searched at 16-byte alignment, as Go's own
/// debug/buildinfo does for binaries without them (inspect passes the start of the first
/// writable segment, where Go's linker puts it and debug/buildinfo looks).
pub fn decode(section: Option<&[u8]>, scan: &[u8]) -> Option<GoInfo> {
    let data = match section {
        Some(s) if s.starts_with(MAGIC) => s,
        _ => {
            let at = (0..scan.len().saturating_sub(32))
                .step_by(16)
                .find(|&i| scan[i..].starts_with(MAGIC))?;
            &scan[at..]
        }
    };
    if data.len() < 32 {
        return None;
    }
    if data[15] & FLAG_INLINE == 0 {
        // Pre-1.18 pointer format: it is a Go binary, but we do not chase the pointers.
        return Some(GoInfo::default());
    }
    let mut rest = &data[32..];
    let version = String::from_utf8_lossy(read_bytes(&mut rest)?).into_owned();
    let modinfo = read_bytes(&mut rest).unwrap_or_default();
    let mut info = parse_modinfo(&String::from_utf8_lossy(strip_sentinels(modinfo)));
    info.version = Some(version);
    Some(info)
}

fn read_uvarint(buf: &mut &[u8]) -> Option<u64> {
    let mut value = 0u64;
    for (i, &b) in buf.iter().enumerate().take(10) {
        value |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            *buf = &buf[i + 1..];
            return Some(value);
        }
    }
    None
}

fn read_bytes<'a>(buf: &mut &'a [u8]) -> Option<&'a [u8]> {
    let len = usize::try_from(read_uvarint(buf)?).ok()?;
    if len > buf.len() {
        return None;
    }
    let (s, rest) = buf.split_at(len);
    *buf = rest;
    Some(s)
}

/// The module text is wrapped in two 16-byte binary sentinels (not UTF-8: strip them before
/// decoding); the text before the closing one ends with a newline.
fn strip_sentinels(b: &[u8]) -> &[u8] {
    if b.len() >= 33 && b[b.len() - 17] == b'\n' {
        &b[16..b.len() - 16]
    } else {
        b
    }
}

fn parse_module(fields: &[&str]) -> Module {
    Module {
        path: fields.first().unwrap_or(&"").to_string(),
        version: fields.get(1).unwrap_or(&"").to_string(),
        sum: fields
            .get(2)
            .filter(|s| !s.is_empty())
            .map(|s| s.to_string()),
        replace: None,
    }
}

/// Go quotes a setting's key or value with strconv.Quote when it holds spaces or quotes;
/// JSON string syntax covers the escapes Go emits for such text.
fn unquote(s: &str) -> String {
    if s.starts_with('"') {
        serde_json::from_str(s).unwrap_or_else(|_| s.to_string())
    } else {
        s.to_string()
    }
}

fn parse_modinfo(text: &str) -> GoInfo {
    let mut info = GoInfo::default();
    for line in text.lines() {
        let fields: Vec<&str> = line.split('\t').collect();
        match fields.as_slice() {
            ["path", p] => info.path = Some(p.to_string()),
            ["mod", rest @ ..] => info.main = Some(parse_module(rest)),
            ["dep", rest @ ..] => info.deps.push(parse_module(rest)),
            ["=>", rest @ ..] => {
                let replaced = Box::new(parse_module(rest));
                if let Some(last) = info.deps.last_mut() {
                    last.replace = Some(replaced);
                } else if let Some(main) = info.main.as_mut() {
                    main.replace = Some(replaced);
                }
            }
            ["build", kv] => {
                let (k, v) = split_setting(kv);
                info.settings.insert(unquote(k), unquote(v));
            }
            _ => {}
        }
    }
    info
}

/// Splits `key=value`, where a quoted key may itself contain `=`.
fn split_setting(kv: &str) -> (&str, &str) {
    if let Some(quoted) = kv.strip_prefix('"') {
        if let Some(end) = quoted.find("\"=") {
            return (&kv[..end + 2], &quoted[end + 2..]);
        }
    }
    kv.split_once('=').unwrap_or((kv, ""))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blob(version: &[u8], modinfo: &[u8]) -> Vec<u8> {
        let mut b = MAGIC.to_vec();
        b.push(8);
        b.push(FLAG_INLINE);
        b.resize(32, 0);
        for s in [version, modinfo] {
            let mut n = s.len();
            loop {
                let byte = (n & 0x7f) as u8;
                n >>= 7;
                b.push(if n > 0 { byte | 0x80 } else { byte });
                if n == 0 {
                    break;
                }
            }
            b.extend_from_slice(s);
        }
        b
    }

    #[test]
    fn decodes_inline_buildinfo_found_by_scan() {
        // Go's real sentinels are binary, not UTF-8.
        let text = "path\texample.com/hello\nmod\texample.com/hello\t(devel)\t\n\
             dep\tgolang.org/x/text\tv0.3.0\th1:abc=\n=>\t../text\t\t\n\
             build\t-ldflags=\"-s -w\"\nbuild\tCGO_ENABLED=0\n\
             build\t\"key with space\"=\"v\\\"q\"\n";
        let mut modinfo = vec![0xf0u8; 16];
        modinfo.extend_from_slice(text.as_bytes());
        modinfo.extend_from_slice(&[0xf9u8; 16]);
        let mut file = vec![0u8; 48];
        file.extend(blob(b"go1.23.5", &modinfo));
        file.extend([0u8; 64]);
        let info = decode(None, &file).expect("found");
        assert_eq!(info.version.as_deref(), Some("go1.23.5"));
        assert_eq!(info.path.as_deref(), Some("example.com/hello"));
        assert_eq!(info.main.as_ref().unwrap().version, "(devel)");
        assert_eq!(info.deps.len(), 1);
        assert_eq!(info.deps[0].sum.as_deref(), Some("h1:abc="));
        assert_eq!(info.deps[0].replace.as_ref().unwrap().path, "../text");
        assert_eq!(info.settings["CGO_ENABLED"], "0");
        assert_eq!(info.settings["-ldflags"], "-s -w");
        assert_eq!(info.settings["key with space"], "v\"q");
    }

    #[test]
    fn not_go_and_truncated() {
        assert_eq!(
            decode(None, b"plain bytes, no build info here at all......"),
            None
        );
        let mut b = blob(b"go1.23.5", b"");
        b.truncate(36); // version string cut short
        assert_eq!(decode(Some(&b), &b), None);
    }
}
