//! The os/arch pair every stage is parameterised by, in OCI/Go spelling.

use std::fmt;

/// A target platform such as `linux/amd64` or `linux/arm/v7`; serialized as that string.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Platform {
    pub os: String,
    pub arch: String,
    pub variant: Option<String>,
}

impl serde::Serialize for Platform {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// ELF e_machine (and class) to OCI architecture; the architectures binpack can pack.
const MACHINES: &[(u16, bool, &str, Option<&str>)] = &[
    // (e_machine, is_64, arch, variant)
    (62, true, "amd64", None),
    (183, true, "arm64", None),
    (3, false, "386", None),
    (40, false, "arm", Some("v7")),
    (243, true, "riscv64", None),
    (21, true, "ppc64le", None),
    (22, true, "s390x", None),
];

impl Platform {
    pub fn linux(arch: &str) -> Platform {
        Platform {
            os: "linux".into(),
            arch: arch.into(),
            variant: None,
        }
    }

    /// The platform of the machine binpack runs on.
    pub fn host() -> Platform {
        let arch = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            "x86" => "386",
            "arm" => "arm",
            "riscv64" => "riscv64",
            "powerpc64" => "ppc64le",
            "s390x" => "s390x",
            other => other,
        };
        Platform::linux(arch)
    }

    /// From an ELF header's machine and class; None for machines binpack does not support.
    pub fn from_elf_machine(machine: u16, is_64: bool, little_endian: bool) -> Option<Platform> {
        // ppc64 big-endian shares e_machine 21 with ppc64le; only the little-endian one is a
        // Linux container platform in practice.
        if machine == 21 && !little_endian {
            return None;
        }
        MACHINES
            .iter()
            .find(|(m, b64, _, _)| *m == machine && *b64 == is_64)
            .map(|(_, _, arch, variant)| Platform {
                os: "linux".into(),
                arch: (*arch).into(),
                variant: variant.map(String::from),
            })
    }

    /// Parses `os/arch[/variant]`, as given to `--platform`.
    pub fn parse(s: &str) -> Result<Platform, String> {
        let parts: Vec<&str> = s.split('/').collect();
        match parts.as_slice() {
            ["linux", arch] | ["linux", arch, _]
                if MACHINES.iter().any(|(_, _, a, _)| a == arch) =>
            {
                Ok(Platform {
                    os: "linux".into(),
                    arch: (*arch).into(),
                    variant: parts.get(2).map(|v| v.to_string()),
                })
            }
            _ => Err(format!(
                "unsupported platform {s:?}: expected linux/<arch> with arch one of {}",
                MACHINES
                    .iter()
                    .map(|(_, _, a, _)| *a)
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        }
    }

    /// The Debian multiarch triplet, where the loader looks for libraries.
    pub fn multiarch_triplet(&self) -> &'static str {
        match self.arch.as_str() {
            "amd64" => "x86_64-linux-gnu",
            "arm64" => "aarch64-linux-gnu",
            "386" => "i386-linux-gnu",
            "arm" => "arm-linux-gnueabihf",
            "riscv64" => "riscv64-linux-gnu",
            "ppc64le" => "powerpc64le-linux-gnu",
            "s390x" => "s390x-linux-gnu",
            _ => "unknown-linux-gnu",
        }
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.arch)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_display_round_trip() {
        for s in ["linux/amd64", "linux/arm64", "linux/arm/v7"] {
            assert_eq!(Platform::parse(s).unwrap().to_string(), s);
        }
        for bad in ["windows/amd64", "linux/mips", "amd64", ""] {
            assert!(Platform::parse(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn elf_machines() {
        assert_eq!(
            Platform::from_elf_machine(62, true, true)
                .unwrap()
                .to_string(),
            "linux/amd64"
        );
        assert_eq!(
            Platform::from_elf_machine(183, true, true)
                .unwrap()
                .to_string(),
            "linux/arm64"
        );
        assert!(Platform::from_elf_machine(8, false, false).is_none()); // MIPS
        assert!(Platform::from_elf_machine(21, true, false).is_none()); // ppc64 BE
    }
}
