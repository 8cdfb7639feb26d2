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
mod warm;

pub use config::{Config, Resolver, Strategy};
use config::{MAX_ARG_STRLEN, MAX_PATH_ENTRIES};
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
    /// Every path the search consulted (None: too many to keep).
    consulted: Option<Vec<Vec<u8>>>,
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
    /// bytes of paths they hold (at most 4,096 lookups and 4 MiB, so that a
    /// hostile stream of new paths costs bounded memory). For tests and
    /// monitoring.
    pub fn remembered_failures(&self) -> (usize, usize) {
        self.caches.failures.size()
    }

    /// How many plans it keeps warm now (see DESIGN.md, "Warm plans").
    /// For tests and monitoring.
    pub fn warm_plans(&self) -> usize {
        self.caches.warm.len()
    }

    /// Drop every plan kept warm and close the files they hold open: a
    /// mount holding one of them is busy (`EBUSY` for `umount`) until
    /// then. The next plans are made from scratch.
    pub fn forget_warm_plans(&self) {
        self.caches.warm.forget();
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
    ///
    /// **Bounds**, as the kernel's own: an argument or environment string of
    /// 128 KiB or more (`MAX_ARG_STRLEN`, with its NUL) is `E2BIG`; at most
    /// five `#!` scripts in a chain (`ELOOP` past that). At most 4,096
    /// candidates from the namespace's own rules (ld.so.conf, `PT_INTERP`,
    /// the conventional path) are opened for one `ld.so`; every entry of
    /// `LDSO_PATH` and `LD_LIBRARY_PATH` is searched, as ld.so does.
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
        let argv: Vec<Vec<u8>> = argv.iter().map(|a| a.as_ref().to_vec()).collect();
        let key = warm::Key::of(ns, path, envp);
        if let Some(key) = &key {
            let _as = crate::creds::act_as(ns.credentials())?;
            if let Some(hit) = self.caches.warm.get(key) {
                match hit.reopen() {
                    Some(fd) => return Ok(self.warm_plan(&hit.kept, fd, argv)),
                    None => self.caches.warm.forget(),
                }
            }
        }
        let (key, generation) = match (key, self.caches.warm.generation()) {
            (Some(key), Some(g)) => (key, g),
            _ => return self.plan_cold(ns, path, argv, envp).map(|(plan, _)| plan),
        };
        // Made once; then, if it can be vouched for, its paths watched and
        // made again: that second plan is kept (see `warm`).
        let (plan, facts) = self.plan_cold(ns, path, argv.clone(), envp)?;
        let Some(traced) = facts.and_then(|f| self.caches.warm.trace(ns, &f.paths)) else {
            return Ok(plan);
        };
        drop(plan);
        let (plan, facts) = self.plan_cold(ns, path, argv, envp)?;
        if let Some(facts) = facts.filter(|f| f.paths.iter().all(|p| traced.paths.contains(p))) {
            let image = plan
                .image()
                .and_then(|fd| Some((fd.try_clone_to_owned().ok()?, Opened::id_of(fd)?)));
            if let Some((image, image_id)) = image {
                let files = traced
                    .files
                    .into_iter()
                    .filter(|(k, _)| *k != (image_id.dev, image_id.ino));
                let kept = warm::Kept {
                    kind: plan.kind,
                    program: plan.program.clone(),
                    given: facts.given,
                    machine: plan.machine,
                    scripts: plan.scripts.clone(),
                    ldso: plan.ldso.clone(),
                    skipped: plan.skipped.clone(),
                    secure: plan.secure,
                    image: std::sync::Arc::new(image),
                    image_id,
                    files: files.map(|(_, f)| f).collect(),
                };
                self.caches.warm.keep(key, kept, generation);
            }
        }
        Ok(plan)
    }

    /// A plan made from scratch, with its facts if it may be kept; on a
    /// shortage of descriptors with files held by warm plans, those are
    /// closed and the plan made once more (as `execve` would have had them).
    fn plan_cold<E: AsRef<[u8]>>(
        &self,
        ns: &Namespace,
        path: &[u8],
        argv: Vec<Vec<u8>>,
        envp: &[E],
    ) -> Result<(ExecPlan, Option<Facts>), ExecError> {
        match self.plan_once(ns, path, argv.clone(), envp) {
            Err(e) if e.is_resource_shortage() && self.caches.warm.evict() => self.plan_once(ns, path, argv, envp),
            r => r,
        }
    }

    fn plan_once<E: AsRef<[u8]>>(
        &self,
        ns: &Namespace,
        path: &[u8],
        argv: Vec<Vec<u8>>,
        envp: &[E],
    ) -> Result<(ExecPlan, Option<Facts>), ExecError> {
        let _as = crate::creds::act_as(ns.credentials())?;
        let mut program = self.follow_scripts(ns, path, argv)?;
        let secure = self.config.secure || program.runs_secure();
        let machine = program.info.machine;
        let argv = std::mem::take(&mut program.argv);
        let mut paths = Some(std::mem::take(&mut program.opened));
        let image = match program.info.interp.take() {
            None => static_image(&program.given, program.file.fd, argv),
            Some(interp) => {
                drop(program.file);
                let search = Search::new(self, ns, &program.path, &interp, machine, envp, secure);
                let mut image = self.dynamic_image(search, &program.given, argv)?;
                match (&mut paths, image.consulted.take()) {
                    (Some(p), Some(c)) => p.extend(c),
                    _ => paths = None,
                }
                image
            }
        };
        let (target, argv) = self.lay_out(machine, image.fd, image.args);
        let plan = ExecPlan {
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
        };
        let facts = paths.map(|paths| Facts {
            given: program.given,
            paths,
        });
        Ok((plan, facts))
    }

    /// The plan `kept` describes, for `argv`, loading `fd`.
    fn warm_plan(&self, kept: &warm::Kept, fd: OwnedFd, argv: Vec<Vec<u8>>) -> ExecPlan {
        let argv = kept.scripts.iter().fold(argv, |argv, hop| script::hop_argv(hop, argv));
        let args = match &kept.ldso {
            Some(ldso) => ldso_args(ldso.flavor, &kept.given, &kept.program, argv),
            None => static_args(&kept.given, argv),
        };
        let (target, argv) = self.lay_out(kept.machine, fd, args);
        ExecPlan {
            target,
            argv,
            kind: kept.kind,
            program: kept.program.clone(),
            machine: kept.machine,
            scripts: kept.scripts.clone(),
            ldso: kept.ldso.clone(),
            skipped: kept.skipped.clone(),
            secure: kept.secure,
            strategy: self.config.strategy,
        }
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
    /// glibc's version string lies near the end of its ld.so (180 KiB into
    /// 215 KiB for 2.36): the last [`FLAVOR_TAIL`](elfinfo::FLAVOR_TAIL)
    /// bytes are read first, and the whole file only when they do not tell.
    fn flavor_of(&self, file: &Opened) -> Flavor {
        cached(&self.caches.flavor, file.id, || {
            let tail = file.size().saturating_sub(elfinfo::FLAVOR_TAIL as u64);
            if tail > 0 {
                if let Ok(bytes) = file.read_at(tail, elfinfo::FLAVOR_TAIL) {
                    if let found @ Flavor::Glibc(Some(_)) = elfinfo::flavor(&bytes) {
                        return found;
                    }
                }
            }
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
        // Kept only if found by the search (a configured host ld.so is
        // outside the namespace, so not watched).
        let consulted = search.consulted().filter(|_| ldso.rule != Rule::Configured);
        Ok(Image {
            kind: Kind::Dynamic,
            fd: found.file.fd,
            args: ldso_args(flavor, given, search.program, argv),
            ldso: Some(ldso),
            skipped: std::mem::take(&mut search.skipped),
            consulted,
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
    Image {
        kind: Kind::Static,
        fd,
        args: static_args(program, argv),
        ldso: None,
        skipped: Vec::new(),
        consulted: Some(Vec::new()),
    }
}

/// A static program's argv: its own, or its path if that is empty.
fn static_args(program: &[u8], mut argv: Vec<Vec<u8>>) -> Vec<Vec<u8>> {
    if argv.is_empty() {
        argv.push(program.to_vec());
    }
    argv
}

/// What a plan depended on besides its key, for keeping it warm.
struct Facts {
    /// The path the program was reached by.
    given: Vec<u8>,
    /// Every path consulted: each script and the program, each candidate,
    /// each ld.so.conf file and directory.
    paths: Vec<Vec<u8>>,
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
/// directory; at most its first 1,024 entries). ENOENT if none exists,
/// EACCES if one exists but none is executable.
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
