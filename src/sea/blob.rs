//! The SEA preparation blob, byte for byte what `node --experimental-sea-config` writes
//! (without code cache or snapshot). Hand-written: it is node's private format and no crate
//! writes it. Layout: magic, flags, [execArgv extension byte (22/24+)], [main format byte
//! (25+)], main path, main code, [assets], [execArgv]; strings are a little-endian u64 length
//! and the bytes.

use std::collections::BTreeMap;

const MAGIC: u32 = 0x0143_DA20;
const DISABLE_EXPERIMENTAL_WARNING: u32 = 1;
const INCLUDE_ASSETS: u32 = 8;
const INCLUDE_EXEC_ARGV: u32 = 16;

/// Which optional header bytes the target node expects: it depends on the node version, and
/// is read off the node binary itself so it is right for any build of it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Layout {
    /// Node 22/24 and later: one byte saying how execArgv extends (none/env/cli).
    pub exec_argv_extension: bool,
    /// Node 25 and later: one byte for the main script's format (CommonJS/ESM).
    pub main_format: bool,
}

/// Strings in the node binary that reveal the layout.
pub const EXEC_ARGV_EXTENSION_MARKER: &[u8] = b"execArgvExtension";
pub const MAIN_FORMAT_MARKER: &[u8] = b"\"mainFormat\"";

impl Layout {
    /// The layout of the node binary `bytes`.
    pub fn detect(bytes: &[u8]) -> Layout {
        let has = |m: &[u8]| memchr::memmem::find(bytes, m).is_some();
        Layout {
            exec_argv_extension: has(EXEC_ARGV_EXTENSION_MARKER),
            main_format: has(MAIN_FORMAT_MARKER),
        }
    }
}

/// What goes into the blob.
#[derive(Clone, Debug, Default)]
pub struct Blob {
    /// The name node gives the main script (its `main` config value).
    pub main_path: String,
    /// The CommonJS script node runs.
    pub code: Vec<u8>,
    pub assets: BTreeMap<String, Vec<u8>>,
    pub exec_argv: Vec<String>,
}

fn string(out: &mut Vec<u8>, s: &[u8]) {
    out.extend_from_slice(&(s.len() as u64).to_le_bytes());
    out.extend_from_slice(s);
}

impl Blob {
    /// The blob bytes for a node with `layout`.
    pub fn to_bytes(&self, layout: Layout) -> Vec<u8> {
        let mut flags = DISABLE_EXPERIMENTAL_WARNING;
        if !self.assets.is_empty() {
            flags |= INCLUDE_ASSETS;
        }
        if !self.exec_argv.is_empty() {
            flags |= INCLUDE_EXEC_ARGV;
        }
        let mut out = Vec::with_capacity(self.code.len() + self.main_path.len() + 64);
        out.extend_from_slice(&MAGIC.to_le_bytes());
        out.extend_from_slice(&flags.to_le_bytes());
        if layout.exec_argv_extension {
            out.push(1); // "env": NODE_OPTIONS may extend execArgv, node's default
        }
        if layout.main_format {
            out.push(0); // CommonJS: binpack always bundles to CommonJS
        }
        string(&mut out, self.main_path.as_bytes());
        string(&mut out, &self.code);
        if !self.assets.is_empty() {
            out.extend_from_slice(&(self.assets.len() as u64).to_le_bytes());
            for (k, v) in &self.assets {
                string(&mut out, k.as_bytes());
                string(&mut out, v);
            }
        }
        if !self.exec_argv.is_empty() {
            out.extend_from_slice(&(self.exec_argv.len() as u64).to_le_bytes());
            for a in &self.exec_argv {
                string(&mut out, a.as_bytes());
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layouts_differ_only_in_header_bytes() {
        let b = Blob {
            main_path: "main.js".into(),
            code: b"console.log(1)".to_vec(),
            ..Default::default()
        };
        let v20 = b.to_bytes(Layout::default());
        assert_eq!(&v20[..8], &[0x20, 0xda, 0x43, 0x01, 1, 0, 0, 0]);
        assert_eq!(&v20[8..16], &7u64.to_le_bytes());
        assert_eq!(&v20[16..23], b"main.js");
        assert_eq!(v20.len(), 8 + 8 + 7 + 8 + 14);
        let v22 = b.to_bytes(Layout {
            exec_argv_extension: true,
            main_format: false,
        });
        assert_eq!(v22.len(), v20.len() + 1);
        assert_eq!(v22[8], 1);
        let v25 = b.to_bytes(Layout {
            exec_argv_extension: true,
            main_format: true,
        });
        assert_eq!(&v25[8..10], &[1, 0]);
        assert_eq!(&v25[10..], &v20[8..]);
    }

    #[test]
    fn assets_and_exec_argv_set_their_flags() {
        let b = Blob {
            main_path: "m".into(),
            code: vec![],
            assets: BTreeMap::from([("a.txt".to_string(), b"A".to_vec())]),
            exec_argv: vec!["--max-old-space-size=64".into()],
        };
        let bytes = b.to_bytes(Layout::default());
        assert_eq!(
            u32::from_le_bytes(bytes[4..8].try_into().unwrap()),
            1 | 8 | 16
        );
        assert!(bytes.ends_with(b"--max-old-space-size=64"));
    }

    #[test]
    fn detects_markers() {
        assert_eq!(Layout::detect(b"xx"), Layout::default());
        let l = Layout::detect(b"..execArgvExtension..\"mainFormat\"..");
        assert!(l.exec_argv_extension && l.main_format);
    }
}
