//! The os/arch pair every stage is parameterised by, in OCI/Go spelling.

use goblin::elf::header::{EM_386, EM_AARCH64, EM_ARM, EM_PPC64, EM_RISCV, EM_S390, EM_X86_64};
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

/// An architecture binpack can pack: its OCI name, the variant an ELF of it implies (ELF does
/// not record one), its ELF machine and class, and its Debian multiarch triplet.
struct Arch {
    name: &'static str,
    variant: Option<&'static str>,
    machine: u16,
    is_64: bool,
    triplet: &'static str,
}

const fn arch(name: &'static str, machine: u16, is_64: bool, triplet: &'static str) -> Arch {
    Arch {
        name,
        variant: None,
        machine,
        is_64,
        triplet,
    }
}

/// The one table of architectures: ELF inspection, library matching, the loader's search
/// path and the SEA injector all read it.
const ARCHES: &[Arch] = &[
    arch("amd64", EM_X86_64, true, "x86_64-linux-gnu"),
    arch("arm64", EM_AARCH64, true, "aarch64-linux-gnu"),
    arch("386", EM_386, false, "i386-linux-gnu"),
    Arch {
        variant: Some("v7"),
        ..arch("arm", EM_ARM, false, "arm-linux-gnueabihf")
    },
    arch("riscv64", EM_RISCV, true, "riscv64-linux-gnu"),
    arch("ppc64le", EM_PPC64, true, "powerpc64le-linux-gnu"),
    arch("s390x", EM_S390, true, "s390x-linux-gnu"),
];

impl Arch {
    fn named(name: &str) -> Option<&'static Arch> {
        ARCHES.iter().find(|a| a.name == name)
    }
}

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
        // ppc64 big-endian shares EM_PPC64 with ppc64le; only the little-endian one is a
        // Linux container platform in practice.
        if machine == EM_PPC64 && !little_endian {
            return None;
        }
        ARCHES
            .iter()
            .find(|a| a.machine == machine && a.is_64 == is_64)
            .map(|a| Platform {
                os: "linux".into(),
                arch: a.name.into(),
                variant: a.variant.map(String::from),
            })
    }

    /// The ELF machine and class (`is_64`) of this platform's binaries; None for an
    /// architecture binpack does not know.
    pub fn elf_machine(&self) -> Option<(u16, bool)> {
        Arch::named(&self.arch).map(|a| (a.machine, a.is_64))
    }

    /// Parses `os/arch[/variant]`, as given to `--platform`.
    pub fn parse(s: &str) -> Result<Platform, String> {
        let parts: Vec<&str> = s.split('/').collect();
        match parts.as_slice() {
            ["linux", arch] | ["linux", arch, _] if Arch::named(arch).is_some() => Ok(Platform {
                os: "linux".into(),
                arch: (*arch).into(),
                variant: parts.get(2).map(|v| v.to_string()),
            }),
            _ => Err(format!(
                "unsupported platform {s:?}: expected linux/<arch> with arch one of {}",
                ARCHES.iter().map(|a| a.name).collect::<Vec<_>>().join(", ")
            )),
        }
    }

    /// The Debian multiarch triplet, where the loader looks for libraries.
    pub fn multiarch_triplet(&self) -> &'static str {
        Arch::named(&self.arch).map_or("unknown-linux-gnu", |a| a.triplet)
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

    #[test]
    fn elf_machine_inverts_from_elf_machine() {
        for a in ARCHES {
            let p = Platform::linux(a.name);
            let (machine, is_64) = p.elf_machine().unwrap();
            let back = Platform::from_elf_machine(machine, is_64, true).unwrap();
            assert_eq!(back.arch, a.name);
            assert_eq!(back.variant.as_deref(), a.variant);
            assert_ne!(p.multiarch_triplet(), "unknown-linux-gnu");
        }
        assert_eq!(Platform::linux("amd64").elf_machine(), Some((62, true)));
        assert_eq!(Platform::linux("arm").elf_machine(), Some((40, false)));
        assert_eq!(Platform::linux("mips").elf_machine(), None);
        assert_eq!(
            Platform::linux("mips").multiarch_triplet(),
            "unknown-linux-gnu"
        );
    }

    #[test]
    fn a_requested_arm_variant_is_kept() {
        let v6 = Platform::parse("linux/arm/v6").unwrap();
        assert_eq!(v6.variant.as_deref(), Some("v6"));
        assert_eq!(v6.elf_machine(), Some((40, false)));
    }
}
