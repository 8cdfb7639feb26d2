//! Every architecture the chainloader runs on, in one table.
//!
//! A row holds everything the workspace knows about one architecture: how
//! its ELF images are identified and checked ([`Target`]), how
//! `embed/build.rs` builds the chainloader for it (Rust target triple, the
//! largest page size its kernels use; the linker is the toolchain's own
//! `rust-lld` on every target), the name its
//! chainloader has in a jail, and what the resolver needs to find its
//! dynamic linker (glibc's `$LIB` and `$PLATFORM`, the conventional ld.so
//! paths). The chainloader library, the resolver and `embed/build.rs` (as a
//! build-dependency) all read it; no other product code spells out
//! `e_machine` numbers, triples or ld.so paths.
//!
//! Each row also has a marker type implementing [`Arch`], so that the checks
//! are specialised per architecture at compile time, and
//! [`Machine::with_arch`] turns a row known only at run time into that type.
//!
//! The program itself only ever reads [`Arch::TARGET`], a constant of plain
//! integers: the strings of a row never reach its static data, which must
//! hold no pointers (it is never relocated).

/// `e_machine` for x86-64.
pub const EM_X86_64: u16 = 62;
/// `e_machine` for i386.
pub const EM_386: u16 = 3;
/// `e_machine` for AArch64.
pub const EM_AARCH64: u16 = 183;

/// One architecture: a row of the table. Rows are the associated constants
/// ([`Machine::X86_64`], …) and [`Machine::ALL`]; no other value exists.
///
/// Two rows are equal when their ELF identification ([`Target`]) is.
#[derive(Clone, Copy)]
pub struct Machine {
    name: &'static str,
    chainloader_suffix: &'static str,
    target: Target,
    triple: &'static str,
    max_page_size: u32,
    lib: &'static str,
    platform: &'static str,
    glibc_ldso: &'static str,
    musl_ldso: &'static str,
}

impl Machine {
    /// x86-64 (47-bit user address space).
    pub const X86_64: Machine = Machine {
        name: "x86_64",
        chainloader_suffix: "-x86_64",
        target: Target {
            class64: true,
            machine: EM_X86_64,
            addr_limit: 0x7fff_ffff_f000,
        },
        triple: "x86_64-unknown-linux-gnu",
        max_page_size: 4096,
        lib: "lib64",
        platform: "x86_64",
        glibc_ldso: "/lib64/ld-linux-x86-64.so.2",
        musl_ldso: "/lib/ld-musl-x86_64.so.1",
    };

    /// i386: a 32-bit process, on a 32- or 64-bit kernel.
    pub const I386: Machine = Machine {
        name: "i386",
        chainloader_suffix: "-i386",
        target: Target {
            class64: false,
            machine: EM_386,
            addr_limit: 0xffff_e000,
        },
        triple: "i686-unknown-linux-gnu",
        max_page_size: 4096,
        lib: "lib",
        platform: "i686",
        glibc_ldso: "/lib/ld-linux.so.2",
        musl_ldso: "/lib/ld-musl-i386.so.1",
    };

    /// AArch64 (48-bit user address space). Its kernels run with 4, 16 or
    /// 64 KiB pages: the chainloader is linked for the largest.
    pub const AARCH64: Machine = Machine {
        name: "aarch64",
        chainloader_suffix: "-aarch64",
        target: Target {
            class64: true,
            machine: EM_AARCH64,
            addr_limit: 1 << 48,
        },
        triple: "aarch64-unknown-linux-gnu",
        max_page_size: 65536,
        lib: "lib64",
        platform: "aarch64",
        glibc_ldso: "/lib/ld-linux-aarch64.so.1",
        musl_ldso: "/lib/ld-musl-aarch64.so.1",
    };

    /// The whole table.
    pub const ALL: [Machine; 3] = [Machine::X86_64, Machine::I386, Machine::AARCH64];

    /// Run `f` with this machine's marker type: the specialised checks for a
    /// machine known only at run time.
    pub fn with_arch<F: WithArch>(self, f: F) -> F::Output {
        match self.target.machine {
            EM_X86_64 => f.run::<X86_64>(),
            EM_386 => f.run::<I386>(),
            EM_AARCH64 => f.run::<Aarch64>(),
            // Rows are the constants above; a port adds its arm with its row.
            _ => unreachable!("a Machine that is not in the table"),
        }
    }

    /// The machine this crate is compiled for.
    pub const fn native() -> Machine {
        <Native as Arch>::MACHINE
    }

    /// (ELF class, `e_machine`): what [`Machine::from_ident`] takes.
    pub const fn ident(&self) -> (u8, u16) {
        (if self.target.class64 { 2 } else { 1 }, self.target.machine)
    }

    /// The machine an ELF identification (`EI_CLASS`: 1 for 32-bit, 2 for
    /// 64-bit; `e_machine`) describes, if it is in the table.
    pub fn from_ident(class: u8, e_machine: u16) -> Option<Machine> {
        Machine::ALL
            .into_iter()
            .find(|m| m.target.machine == e_machine && class == if m.target.class64 { 2 } else { 1 })
    }

    /// The machine a Rust target triple builds for, if it is in the table.
    pub fn from_triple(triple: &str) -> Option<Machine> {
        Machine::ALL.into_iter().find(|m| m.triple == triple)
    }

    /// Short name: in the non-native chainloaders' file names
    /// (`chainloader-i386`) and in messages.
    pub const fn name(&self) -> &'static str {
        self.name
    }

    /// What the ELF checks need: class, `e_machine`, user address limit.
    pub const fn target(&self) -> Target {
        self.target
    }

    /// The Rust target triple the chainloader is built for.
    pub const fn triple(&self) -> &'static str {
        self.triple
    }

    /// The largest page size this architecture's kernels use: the
    /// chainloader's segments are aligned for it (`-z max-page-size`).
    pub const fn max_page_size(&self) -> u32 {
        self.max_page_size
    }

    /// What glibc's `$LIB` expands to (upstream glibc's default; Debian's
    /// own build uses its multiarch directory instead).
    pub const fn lib(&self) -> &'static [u8] {
        self.lib.as_bytes()
    }

    /// What glibc's `$PLATFORM` expands to (the kernel's `AT_PLATFORM`).
    pub const fn platform(&self) -> &'static [u8] {
        self.platform.as_bytes()
    }

    /// The conventional dynamic linker path of the libc family a
    /// `PT_INTERP` basename names (`ld-linux…`: glibc, `ld-musl-…`: musl).
    pub fn conventional_ldso(&self, interp_basename: &[u8]) -> Option<&'static [u8]> {
        if interp_basename.starts_with(b"ld-musl-") {
            Some(self.musl_ldso.as_bytes())
        } else if interp_basename.starts_with(b"ld-linux") {
            Some(self.glibc_ldso.as_bytes())
        } else {
            None
        }
    }

    /// What follows the native chainloader's name to name this machine's:
    /// nothing for `native` itself, `-NAME` for the others
    /// (`/chainloader-i386`). `ldchain install` and the resolver both name
    /// them through this.
    pub fn chainloader_suffix(&self, native: Machine) -> &'static str {
        if *self == native {
            ""
        } else {
            self.chainloader_suffix
        }
    }
}

impl PartialEq for Machine {
    fn eq(&self, other: &Machine) -> bool {
        self.target == other.target
    }
}

impl Eq for Machine {}

impl core::hash::Hash for Machine {
    fn hash<H: core::hash::Hasher>(&self, state: &mut H) {
        self.target.hash(state);
    }
}

impl core::fmt::Debug for Machine {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.name)
    }
}

/// Code to run with an architecture as a type; see [`Machine::with_arch`].
pub trait WithArch {
    /// The result of [`WithArch::run`].
    type Output;
    /// Run it, specialised for `A`.
    fn run<A: Arch>(self) -> Self::Output;
}

/// x86-64 as a type.
#[derive(Debug, Clone, Copy)]
pub struct X86_64;
impl Arch for X86_64 {
    const MACHINE: Machine = Machine::X86_64;
    type Word = u64;
}

/// i386 as a type.
#[derive(Debug, Clone, Copy)]
pub struct I386;
impl Arch for I386 {
    const MACHINE: Machine = Machine::I386;
    type Word = u32;
}

/// AArch64 as a type.
#[derive(Debug, Clone, Copy)]
pub struct Aarch64;
impl Arch for Aarch64 {
    const MACHINE: Machine = Machine::AARCH64;
    type Word = u64;
}

/// The architecture this crate is compiled for, as a type.
#[cfg(target_arch = "x86_64")]
pub type Native = X86_64;
/// The architecture this crate is compiled for, as a type.
#[cfg(target_arch = "x86")]
pub type Native = I386;
/// The architecture this crate is compiled for, as a type.
#[cfg(target_arch = "aarch64")]
pub type Native = Aarch64;

/// What the checks need to know about an architecture: a row of the
/// machine table (below) reduced to plain integers, which is
/// all the program itself reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Target {
    /// ELFCLASS64 (true) or ELFCLASS32 (false).
    pub class64: bool,
    /// Required `e_machine`.
    pub machine: u16,
    /// One past the highest user-space address an image may occupy.
    pub addr_limit: u64,
}

impl Target {
    /// Size of the file header for this class.
    pub const fn ehdr_size(&self) -> usize {
        if self.class64 {
            64
        } else {
            52
        }
    }

    /// Size of one program header for this class.
    pub const fn phdr_size(&self) -> usize {
        if self.class64 {
            56
        } else {
            32
        }
    }
}

/// An unsigned address-sized integer: `u32` for ELF32, `u64` for ELF64.
/// The plan computes in the image's own width, so 32-bit code does no
/// 64-bit arithmetic (and its overflow checks are the 32-bit ones).
pub trait Word:
    Copy
    + Eq
    + Ord
    + Default
    + core::fmt::Debug
    + Into<u64>
    + core::ops::Add<Output = Self>
    + core::ops::Sub<Output = Self>
    + core::ops::BitAnd<Output = Self>
    + core::ops::Not<Output = Self>
{
    /// Zero: the start of the address space, an empty length.
    const ZERO: Self;
    /// One: page masks are `!(page - ONE)`.
    const ONE: Self;
    /// The low bits of `v` (callers pass values that fit).
    fn from_u64(v: u64) -> Self;
    /// The sum, or `None` if it does not fit the image's width: an image
    /// whose addresses wrap is refused, as the kernel refuses it.
    fn checked_add(self, other: Self) -> Option<Self>;
    /// The sum modulo 2^width, for sums the plan has already proven not to
    /// overflow: it compiles to a bare add, without a second check.
    fn wrapping_add(self, other: Self) -> Self;
    /// The difference modulo 2^width (see [`Word::wrapping_add`]).
    fn wrapping_sub(self, other: Self) -> Self;
    /// Whether the value is a power of two (a usable `p_align`).
    fn is_power_of_two(self) -> bool;
    /// As a `usize` (the loader's own width equals the image's).
    fn to_usize(self) -> usize;
    /// As a `u64`.
    fn to_u64(self) -> u64;
}

macro_rules! word {
    ($t:ty) => {
        impl Word for $t {
            const ZERO: Self = 0;
            const ONE: Self = 1;
            #[inline(always)]
            fn from_u64(v: u64) -> Self {
                v as $t
            }
            #[inline(always)]
            fn checked_add(self, other: Self) -> Option<Self> {
                <$t>::checked_add(self, other)
            }
            #[inline(always)]
            fn wrapping_add(self, other: Self) -> Self {
                <$t>::wrapping_add(self, other)
            }
            #[inline(always)]
            fn wrapping_sub(self, other: Self) -> Self {
                <$t>::wrapping_sub(self, other)
            }
            #[inline(always)]
            fn is_power_of_two(self) -> bool {
                <$t>::is_power_of_two(self)
            }
            #[inline(always)]
            fn to_usize(self) -> usize {
                self as usize
            }
            #[inline(always)]
            fn to_u64(self) -> u64 {
                self as u64
            }
        }
    };
}
word!(u32);
word!(u64);

/// An architecture as a type, so that the checks and decoders are
/// specialised at compile time: the 64-bit program carries no 32-bit decoder.
/// The types are below, next to their rows.
pub trait Arch {
    /// The architecture's row in the machine table.
    const MACHINE: Machine;
    /// The row's [`Target`]: a constant of integers only, so that code
    /// reading it puts no pointer (the row's strings) in static data.
    const TARGET: Target = Self::MACHINE.target();
    /// Its address width.
    type Word: Word;
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Which;
    impl WithArch for Which {
        type Output = Machine;
        fn run<A: Arch>(self) -> Machine {
            A::MACHINE
        }
    }

    #[test]
    fn rows_are_consistent() {
        for m in Machine::ALL {
            assert_eq!(m.with_arch(Which), m, "with_arch dispatches {m:?} to its own type");
            assert_eq!(m.with_arch(Which).target(), m.target());
            assert_eq!(
                Machine::from_ident(if m.target.class64 { 2 } else { 1 }, m.target.machine),
                Some(m)
            );
            assert_eq!(Machine::from_triple(m.triple), Some(m));
            assert_eq!(m.chainloader_suffix.strip_prefix('-'), Some(m.name));
            assert!(m.max_page_size.is_power_of_two() && m.max_page_size >= 4096);
            assert_eq!(
                Machine::ALL
                    .iter()
                    .filter(|o| o.target == m.target || o.name == m.name)
                    .count(),
                1,
                "{m:?} is in the table once"
            );
        }
        assert_eq!(Machine::from_ident(1, EM_X86_64), None);
        assert_eq!(Machine::from_ident(2, EM_386), None);
    }

    #[test]
    fn chainloader_names() {
        let native = Machine::X86_64;
        assert_eq!(Machine::X86_64.chainloader_suffix(native), "");
        assert_eq!(Machine::I386.chainloader_suffix(native), "-i386");
        assert_eq!(Machine::AARCH64.chainloader_suffix(native), "-aarch64");
    }

    #[test]
    fn conventional_paths_by_family() {
        assert_eq!(
            Machine::I386.conventional_ldso(b"ld-linux.so.2"),
            Some(&b"/lib/ld-linux.so.2"[..])
        );
        assert_eq!(
            Machine::X86_64.conventional_ldso(b"ld-musl-x86_64.so.1"),
            Some(&b"/lib/ld-musl-x86_64.so.1"[..])
        );
        assert_eq!(Machine::X86_64.conventional_ldso(b"ld.so.1"), None);
    }
}
