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
/// not record one), the variants it accepts, its ELF machine and class, its Debian multiarch
/// triplet and its Rust target.
struct Arch {
    name: &'static str,
    variant: Option<&'static str>,
    /// The variants `--platform` accepts; the first is the default, left out of the name
    /// when it is `v1` (amd64) and written out otherwise (arm64 is `v8` in every index).
    variants: &'static [&'static str],
    machine: u16,
    is_64: bool,
    triplet: &'static str,
    rust: &'static str,
}

const fn arch(
    name: &'static str,
    machine: u16,
    is_64: bool,
    triplet: &'static str,
    rust: &'static str,
) -> Arch {
    Arch {
        name,
        variant: None,
        variants: &[],
        machine,
        is_64,
        triplet,
        rust,
    }
}

/// The one table of architectures: ELF inspection, library matching, the loader's search
/// path and the SEA injector all read it.
const ARCHES: &[Arch] = &[
    Arch {
        variants: &["v1", "v2", "v3", "v4"],
        ..arch(
            "amd64",
            EM_X86_64,
            true,
            "x86_64-linux-gnu",
            "x86_64-unknown-linux-gnu",
        )
    },
    Arch {
        variant: Some("v8"),
        variants: &["v8"],
        ..arch(
            "arm64",
            EM_AARCH64,
            true,
            "aarch64-linux-gnu",
            "aarch64-unknown-linux-gnu",
        )
    },
    arch(
        "386",
        EM_386,
        false,
        "i386-linux-gnu",
        "i686-unknown-linux-gnu",
    ),
    Arch {
        variant: Some("v7"),
        variants: &["v7", "v6", "v5"],
        ..arch(
            "arm",
            EM_ARM,
            false,
            "arm-linux-gnueabihf",
            "armv7-unknown-linux-gnueabihf",
        )
    },
    arch(
        "riscv64",
        EM_RISCV,
        true,
        "riscv64-linux-gnu",
        "riscv64gc-unknown-linux-gnu",
    ),
    arch(
        "ppc64le",
        EM_PPC64,
        true,
        "powerpc64le-linux-gnu",
        "powerpc64le-unknown-linux-gnu",
    ),
    arch(
        "s390x",
        EM_S390,
        true,
        "s390x-linux-gnu",
        "s390x-unknown-linux-gnu",
    ),
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
        Platform::linux(arch).normalized()
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

    /// Parses `os/arch[/variant]`, as given to `--platform`, normalised: `linux/arm64` is
    /// `linux/arm64/v8`, `linux/arm` is `linux/arm/v7`, `linux/amd64/v1` is `linux/amd64`.
    pub fn parse(s: &str) -> Result<Platform, String> {
        let parts: Vec<&str> = s.trim().split('/').collect();
        let (arch, variant) = match parts.as_slice() {
            ["linux", arch] => (*arch, None),
            ["linux", arch, v] => (*arch, Some(*v)),
            _ => return Err(unsupported(s)),
        };
        let a = Arch::named(arch).ok_or_else(|| unsupported(s))?;
        if let Some(v) = variant.filter(|v| !a.variants.contains(v)) {
            return Err(match a.variants {
                [] => format!("unsupported platform {s:?}: linux/{arch} has no variants"),
                vs => format!(
                    "unsupported platform {s:?}: variant {v:?} of {arch} is not one of {}",
                    vs.join(", ")
                ),
            });
        }
        Ok(Platform {
            os: "linux".into(),
            arch: arch.into(),
            variant: variant.map(String::from),
        }
        .normalized())
    }

    /// The variant spelled the one way indexes spell it: the default filled in for arm and
    /// arm64, amd64's baseline `v1` left out.
    pub fn normalized(mut self) -> Platform {
        if let Some(a) = Arch::named(&self.arch) {
            if self.variant.is_none() {
                self.variant = a.variant.map(String::from);
            }
            if a.name == "amd64" && self.variant.as_deref() == Some("v1") {
                self.variant = None;
            }
        }
        self
    }

    /// The Rust target triple that builds for this platform (glibc).
    pub fn rust_target(&self) -> Option<&'static str> {
        let a = Arch::named(&self.arch)?;
        Some(match (a.name, self.variant.as_deref()) {
            ("arm", Some("v6" | "v5")) => "arm-unknown-linux-gnueabihf",
            _ => a.rust,
        })
    }

    /// The platforms named by binpack itself (`--platform all` of a command); panics on a
    /// name binpack does not know, which is binpack's bug.
    pub fn known(names: &[&str]) -> Vec<Platform> {
        names
            .iter()
            .map(|n| Platform::parse(n).expect("binpack names known platforms"))
            .collect()
    }

    /// Every platform binpack knows, one per architecture at its default variant.
    pub fn every() -> Vec<Platform> {
        ARCHES
            .iter()
            .map(|a| Platform::linux(a.name).normalized())
            .collect()
    }

    /// The Debian multiarch triplet, where the loader looks for libraries.
    pub fn multiarch_triplet(&self) -> &'static str {
        Arch::named(&self.arch).map_or("unknown-linux-gnu", |a| a.triplet)
    }
}

fn unsupported(s: &str) -> String {
    format!(
        "unsupported platform {s:?}: expected linux/<arch>[/<variant>] with arch one of {}",
        ARCHES.iter().map(|a| a.name).collect::<Vec<_>>().join(", ")
    )
}

/// What `--platform` names: a comma-separated list of platforms, or `all` (every platform
/// binpack builds for the command's language).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Platforms {
    All,
    List(Vec<Platform>),
}

impl Platforms {
    /// Parses `linux/amd64,linux/arm64` or `all`; a platform named twice counts once.
    pub fn parse(s: &str) -> Result<Platforms, String> {
        if s.trim() == "all" {
            return Ok(Platforms::All);
        }
        let mut list: Vec<Platform> = Vec::new();
        for item in s.split(',') {
            if item.trim().is_empty() {
                return Err(format!("empty platform in {s:?}"));
            }
            let p = Platform::parse(item)?;
            if !list.contains(&p) {
                list.push(p);
            }
        }
        Ok(Platforms::List(list))
    }

    /// The platforms to build, `all` being `every`.
    pub fn resolve(&self, every: &[Platform]) -> Vec<Platform> {
        match self {
            Platforms::All => every.to_vec(),
            Platforms::List(l) => l.clone(),
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
        for s in [
            "linux/amd64",
            "linux/arm64/v8",
            "linux/arm/v7",
            "linux/amd64/v3",
        ] {
            assert_eq!(Platform::parse(s).unwrap().to_string(), s);
        }
        for bad in [
            "windows/amd64",
            "linux/mips",
            "amd64",
            "",
            "linux/arm64/v7",
            "linux/amd64/v9",
            "linux/386/v2",
            "linux/arm/v7/x",
        ] {
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
            "linux/arm64/v8"
        );
        assert!(Platform::from_elf_machine(8, false, false).is_none()); // MIPS
        assert!(Platform::from_elf_machine(21, true, false).is_none()); // ppc64 BE
    }

    #[test]
    fn elf_machine_inverts_from_elf_machine() {
        for a in ARCHES {
            let p = Platform::linux(a.name);
            assert!(p.rust_target().is_some());
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

    #[test]
    fn variants_are_normalised() {
        let p = |s: &str| Platform::parse(s).unwrap();
        assert_eq!(p("linux/arm64"), p("linux/arm64/v8"));
        assert_eq!(p("linux/arm64").variant.as_deref(), Some("v8"));
        assert_eq!(p("linux/arm"), p("linux/arm/v7"));
        assert_ne!(p("linux/arm/v6"), p("linux/arm/v7"));
        assert_eq!(p("linux/amd64/v1"), p("linux/amd64"));
        assert_eq!(p("linux/amd64").variant, None);
        assert_eq!(p("linux/amd64/v3").variant.as_deref(), Some("v3"));
        assert_eq!(p(" linux/386 ").to_string(), "linux/386");
        assert_eq!(
            p("linux/arm/v6").rust_target(),
            Some("arm-unknown-linux-gnueabihf")
        );
        assert_eq!(
            p("linux/arm64").rust_target(),
            Some("aarch64-unknown-linux-gnu")
        );
        assert_eq!(Platform::host(), Platform::host().normalized());
    }

    #[test]
    fn lists_and_all() {
        let list = Platforms::parse("linux/amd64,linux/arm64,linux/arm64/v8").unwrap();
        let every = Platform::every();
        let got: Vec<String> = list.resolve(&every).iter().map(|p| p.to_string()).collect();
        assert_eq!(got, ["linux/amd64", "linux/arm64/v8"]);
        assert_eq!(Platforms::parse("all").unwrap(), Platforms::All);
        assert_eq!(Platforms::All.resolve(&every[..2]), every[..2]);
        assert!(every.iter().any(|p| p.to_string() == "linux/arm/v7"));
        for bad in [
            "linux/amd64,",
            "linux/amd64,all",
            "linux/amd64,,linux/arm64",
        ] {
            assert!(Platforms::parse(bad).is_err(), "{bad} accepted");
        }
    }
}
