//! `plan_exec`: from `execve(path, argv, envp)` in a sandbox to an exec plan.
//!
//! [`Resolver::plan_exec`] reads as the steps of DESIGN.md's "The
//! resolver": follow `#!` scripts to an ELF program (`script`), find its
//! dynamic linker by the rules in order (`search`), then lay out the argv
//! for the chosen strategy. The result types are in `exec_plan`, the caches
//! in `cache`.

use std::os::fd::OwnedFd;
use std::path::PathBuf;

use tracing::{info, info_span};

use crate::bytepath::join;
use crate::elfinfo::{self, Flavor, Machine};
use crate::error::ExecError;
use crate::ns::{os_path, Namespace, Opened};
use crate::parse::ldpath;
use crate::request::InterpRequest;

mod cache;
mod config;
mod exec_plan;
mod script;
mod search;

pub use config::{Config, Resolver, Strategy, MAX_ARG_STRLEN, MAX_CANDIDATES, MAX_PATH_ENTRIES, MAX_SCRIPT_DEPTH};
pub use exec_plan::{Arg, ExecPlan, Kind, LdsoChoice, PlanParts, Rule, ScriptHop, Skipped, Target};

use cache::{cached, Caches};
use config::lossy;
use search::Search;

impl Default for Resolver {
    fn default() -> Self {
        Resolver::new(Config::default())
    }
}

/// What is loaded and the arguments it gets, before the strategy decides
/// how it is exec'd.
struct Image {
    kind: Kind,
    /// The file loaded: the dynamic linker, or the static program itself.
    fd: OwnedFd,
    /// Its argv.
    args: Vec<Vec<u8>>,
    ldso: Option<LdsoChoice>,
    skipped: Vec<Skipped>,
}

impl Resolver {
    /// A resolver for one sandbox configuration.
    pub fn new(config: Config) -> Resolver {
        Resolver {
            config,
            caches: Caches::default(),
            page_size: rustix::param::page_size() as u64,
        }
    }

    /// Its configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// How many failed path lookups it remembers across plans, and the
    /// bytes of paths they hold (bounded: 4,096 and 4 MiB; see DESIGN.md,
    /// "Bounded path lookups"). For tests and monitoring.
    pub fn remembered_failures(&self) -> (usize, usize) {
        self.caches.failures.size()
    }

    /// Plan `execve(path, argv, envp)` for a process whose file system is
    /// `ns`. `envp` is the *new* program's environment. Nothing is executed;
    /// the returned plan owns the descriptors it needs.
    ///
    /// **Whose rights**: files are opened with the calling thread's own
    /// rights unless `ns` carries a client's
    /// ([`Namespace::with_credentials`]); then the whole plan is made as
    /// that client with no capabilities — the calling thread's fs ids,
    /// groups and effective capabilities are switched for the call and put
    /// back before it returns — so the plan hands out only files the client
    /// itself could open and execute.
    pub fn plan_exec<A: AsRef<[u8]>, E: AsRef<[u8]>>(
        &self,
        ns: &Namespace,
        path: impl AsRef<[u8]>,
        argv: &[A],
        envp: &[E],
    ) -> Result<ExecPlan, ExecError> {
        let path = path.as_ref();
        let _span = info_span!("plan_exec", path = %lossy(path)).entered();
        if path.is_empty() {
            return Err(ExecError::NotFound { path: PathBuf::new() });
        }
        check_arg_strlen(argv)?;
        check_arg_strlen(envp)?;
        let _as = crate::creds::act_as(ns.credentials())?;
        let argv = argv.iter().map(|a| a.as_ref().to_vec()).collect();
        let mut program = self.follow_scripts(ns, path, argv)?;
        let secure = self.config.secure || program.runs_secure();
        let machine = program.info.machine;
        let argv = std::mem::take(&mut program.argv);
        let image = match program.info.interp.take() {
            None => static_image(&program.given, program.file.fd, argv),
            Some(interp) => {
                drop(program.file);
                let search = Search::new(self, ns, &program.path, &interp, machine, envp, secure);
                self.dynamic_image(search, &program.given, argv)?
            }
        };
        let (target, argv) = self.lay_out(machine, image.fd, image.args);
        Ok(ExecPlan {
            target,
            argv,
            kind: image.kind,
            program: program.path,
            machine,
            scripts: program.scripts,
            ldso: image.ldso,
            skipped: image.skipped,
            secure,
            strategy: self.config.strategy,
        })
    }

    /// The dynamic linker for a program the kernel has already loaded (the
    /// exec service's question): the same search as [`plan_exec`](Self::plan_exec),
    /// with the facts the chainloader reported instead of a file to open,
    /// with the same rules on whose rights files are opened with: the
    /// client's, when `ns` carries them ([`Namespace::with_credentials`]).
    pub fn ldso_for(&self, ns: &Namespace, request: &InterpRequest) -> Result<InterpAnswer, ExecError> {
        let _span = info_span!("ldso_for", interp = %lossy(&request.interp)).entered();
        let _as = crate::creds::act_as(ns.credentials())?;
        let cwd: &[u8] = if request.cwd.starts_with(b"/") {
            &request.cwd
        } else {
            b"/"
        };
        let program = if request.execfn.starts_with(b"/") {
            request.execfn.clone()
        } else {
            join(cwd, &request.execfn)
        };
        let envp: Vec<Vec<u8>> = [
            (&b"LDSO_PATH="[..], &request.ldso_path),
            (b"LD_LIBRARY_PATH=", &request.ld_library_path),
        ]
        .into_iter()
        .filter_map(|(name, value)| value.as_ref().map(|v| [name, v].concat()))
        .collect();
        let secure = self.config.secure || request.secure;
        let ns = ns.clone().with_cwd(cwd);
        // Only the count of rejected candidates is answered: their details
        // are not kept (a 128 KiB LDSO_PATH under a 4 KiB working directory
        // would be 4 KiB per entry).
        let mut search =
            Search::new(self, &ns, &program, &request.interp, request.machine, &envp, secure).keep_skipped(0);
        let found = search.run()?;
        let flavor = self.flavor_of(&found.file);
        tracing::debug!(ldso = %lossy(&found.path), rule = %found.rule, %flavor, "searched");
        let choice = LdsoChoice {
            path: found.path,
            rule: found.rule,
            flavor,
            interp: request.interp.clone(),
        };
        let standing = request.ldso_path.is_none()
            && request.ld_library_path.is_none()
            && !secure
            && request.interp.starts_with(b"/")
            && !search.depends_on_rights()
            && !search.depends_on_cwd();
        Ok(InterpAnswer {
            fd: found.file.fd,
            choice,
            consulted: search.consulted(),
            depends_on_cwd: search.depends_on_cwd(),
            depends_on_origin: search.depends_on_origin(),
            depends_on_rights: search.depends_on_rights(),
            standing,
        })
    }

    /// Which libc `file` (a dynamic linker) belongs to, cached by identity.
    fn flavor_of(&self, file: &Opened) -> Flavor {
        cached(&self.caches.flavor, file.id, || {
            match file.read_at(0, elfinfo::FLAVOR_SCAN_MAX) {
                Ok(bytes) => elfinfo::flavor(&bytes),
                Err(_) => Flavor::Unknown,
            }
        })
    }

    /// A dynamic program: its ld.so, found by `search`, run with the
    /// program (reached by path `given`) as its argument.
    fn dynamic_image<E: AsRef<[u8]>>(
        &self,
        mut search: Search<'_, E>,
        given: &[u8],
        argv: Vec<Vec<u8>>,
    ) -> Result<Image, ExecError> {
        let found = search.run()?;
        let flavor = self.flavor_of(&found.file);
        info!(ldso = %lossy(&found.path), rule = %found.rule, %flavor, "dynamic program");
        let ldso = LdsoChoice {
            path: found.path,
            rule: found.rule,
            flavor,
            interp: search.interp.to_vec(),
        };
        Ok(Image {
            kind: Kind::Dynamic,
            fd: found.file.fd,
            args: ldso_args(flavor, given, search.program, argv),
            ldso: Some(ldso),
            skipped: search.skipped,
        })
    }

    /// Target and argv for the configured strategy: the chainloader gets
    /// the image's descriptor as its first argument; `execveat` execs it.
    fn lay_out(&self, machine: Machine, image: OwnedFd, args: Vec<Vec<u8>>) -> (Target, Vec<Arg>) {
        let args = args.into_iter().map(Arg::Str);
        match self.config.strategy {
            Strategy::Chainloader => {
                let chainloader = self.chainloader_for(machine);
                let mut argv = vec![Arg::Str(chainloader.clone()), Arg::Fd(image)];
                argv.extend(args);
                (Target::Path(chainloader), argv)
            }
            Strategy::Execveat => (Target::Fd(image), args.collect()),
        }
    }

    /// The chainloader for programs of `machine`: the configured path for
    /// the native architecture, `PATH-ARCH` (`/chainloader-i386`, …) for the
    /// others — the names `ldchain install` gives them.
    pub fn chainloader_for(&self, machine: Machine) -> Vec<u8> {
        let mut path = self.config.chainloader.clone();
        path.extend_from_slice(machine.chainloader_suffix(Machine::native()).as_bytes());
        path
    }
}

/// What [`Resolver::ldso_for`] found.
#[derive(Debug)]
pub struct InterpAnswer {
    /// The dynamic linker, open for reading.
    pub fd: OwnedFd,
    /// What it is and which rule found it.
    pub choice: LdsoChoice,
    /// Every path (inside the namespace) whose state decided the answer:
    /// while none of them changes, the answer stays the same. None when
    /// the search tried more than 256 candidates: too many to keep or
    /// watch (such an answer is not worth caching).
    pub consulted: Option<Vec<Vec<u8>>>,
    /// Whether the answer depended on the working directory (a relative
    /// candidate path was tried).
    pub depends_on_cwd: bool,
    /// Whether it depended on the program's directory (a tried
    /// `LD_LIBRARY_PATH` entry used `$ORIGIN`).
    pub depends_on_origin: bool,
    /// Whether it depended on the client's rights (a candidate was refused
    /// for want of permission): another client may get another answer.
    pub depends_on_rights: bool,
    /// Whether the answer holds for every process of this machine whose
    /// program names this (absolute) `PT_INTERP` and that sets neither
    /// `LDSO_PATH` nor `LD_LIBRARY_PATH` and is not in secure mode: it
    /// depended on nothing else in the request (not the working directory,
    /// not the program's path) nor on the client's rights (no candidate
    /// was refused for want of permission). Such an answer may be left standing in
    /// [`proto::ANSWER_DIR`](chainloader::proto::ANSWER_DIR).
    pub standing: bool,
}

/// E2BIG for a string `execve` would refuse: longer than [`MAX_ARG_STRLEN`]
/// with its NUL.
fn check_arg_strlen<S: AsRef<[u8]>>(strings: &[S]) -> Result<(), ExecError> {
    match strings.iter().map(AsRef::as_ref).find(|s| s.len() >= MAX_ARG_STRLEN) {
        None => Ok(()),
        Some(s) => Err(ExecError::InvalidArgument {
            what: crate::escape::for_terminal(&s[..s.len().min(64)]) + "...",
            reason: "argument or environment string longer than MAX_ARG_STRLEN (128 KiB)",
            errno: libc::E2BIG,
        }),
    }
}

/// A static program is loaded directly, with its own argv.
fn static_image(program: &[u8], fd: OwnedFd, argv: Vec<Vec<u8>>) -> Image {
    info!(program = %lossy(program), "static program: loaded directly");
    let mut args = argv;
    if args.is_empty() {
        args.push(program.to_vec());
    }
    Image {
        kind: Kind::Static,
        fd,
        args,
        ldso: None,
        skipped: Vec::new(),
    }
}

/// ld.so's argv: `[ARG0, --argv0 argv[0], --, PROGRAM, argv[1..]]`, the
/// options as far as `flavor` supports them. PROGRAM is the file's own path
/// (symlinks resolved), as ld.so's command mode takes `$ORIGIN` from it;
/// ARG0 is the path it was `given` as, so that `comm` and `ps` name the
/// program as the kernel would (a symlink's name); a trailing `/` keeps
/// musl out of its ldd mode (an `argv[0]` ending in `ldd`) while the
/// basename stays.
fn ldso_args(flavor: Flavor, given: &[u8], program: &[u8], argv: Vec<Vec<u8>>) -> Vec<Vec<u8>> {
    let mut argv = argv.into_iter();
    let argv0 = argv.next().unwrap_or_else(|| given.to_vec());
    let mut arg0 = given.to_vec();
    if flavor.has_ldd_mode() && arg0.ends_with(b"ldd") {
        arg0.push(b'/');
    }
    let mut args = vec![arg0];
    if flavor.supports_argv0() {
        args.extend([b"--argv0".to_vec(), argv0]);
    }
    if flavor.supports_double_dash() {
        args.push(b"--".to_vec());
    }
    args.push(program.to_vec());
    args.extend(argv);
    args
}

/// `execvp`'s search, inside a namespace: `name` if it contains a `/`,
/// otherwise the first executable regular file `DIR/name` for DIR in `PATH`
/// from `envp` (default `/bin:/usr/bin`; an empty entry is the current
/// directory). ENOENT if none exists, EACCES if one exists but none is
/// executable.
pub fn find_program<E: AsRef<[u8]>>(ns: &Namespace, name: &[u8], envp: &[E]) -> Result<Vec<u8>, ExecError> {
    if name.is_empty() {
        return Err(ExecError::NotFound { path: PathBuf::new() });
    }
    if name.contains(&b'/') {
        return Ok(name.to_vec());
    }
    let path = ldpath::getenv(envp, b"PATH").unwrap_or(b"/bin:/usr/bin");
    let mut denied = None;
    for dir in path.split(|&c| c == b':').take(MAX_PATH_ENTRIES) {
        let candidate = if dir.is_empty() { name.to_vec() } else { join(dir, name) };
        match ns.open_file(&ns.absolute(&candidate)) {
            Ok(f) if f.is_regular() && f.mode & 0o111 != 0 => return Ok(candidate),
            Ok(_) | Err(ExecError::PermissionDenied { .. }) => denied = Some(candidate),
            Err(_) => {}
        }
    }
    Err(match denied {
        Some(p) => ExecError::PermissionDenied {
            path: os_path(&p),
            reason: "not an executable regular file",
        },
        None => ExecError::NotFound { path: os_path(name) },
    })
}
