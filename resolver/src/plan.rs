//! `plan_exec`: from `execve(path, argv, envp)` in a sandbox to an exec plan.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};

use tracing::{debug, info, info_span, trace};

use crate::bytepath::{basename, dirname, join};
use crate::conf::{self, LdSoConf};
use crate::elfinfo::{self, ElfInfo, Flavor, Machine};
use crate::error::ExecError;
use crate::ns::{os_path, FileId, Namespace, Opened};
use crate::parse::{ldpath, shebang};

/// How deep `#!` interpreters may nest: the kernel examines at most six
/// files for one exec (`exec_binprm`: depth 0 to 5), so at most five scripts.
pub const MAX_SCRIPT_DEPTH: usize = 5;
/// Most entries taken from `LD_LIBRARY_PATH` or `LDSO_PATH`.
pub const MAX_PATH_ENTRIES: usize = 1024;
/// Most candidate files opened while looking for one ld.so.
pub const MAX_CANDIDATES: usize = 4096;
/// Most entries in each cache before it is emptied (bounded memory under a
/// hostile stream of new files).
pub const MAX_CACHE_ENTRIES: usize = 4096;

/// How the planned exec is carried out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Strategy {
    /// `execve("/chainloader", [.., FD, ..])`: needs the chainloader in the jail.
    #[default]
    Chainloader,
    /// `execveat(FD, "", argv, envp, AT_EMPTY_PATH)` on the dynamic linker (or
    /// static program) itself: nothing in the jail at all; Linux ≥ 3.19, and
    /// the sandbox's seccomp policy must allow it.
    Execveat,
}

/// Per-sandbox configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// `LDSO_PATH` to use when the sandbox does not set one (or is not
    /// allowed to): `:`-separated directories inside the namespace.
    pub default_ldso_path: Option<Vec<u8>>,
    /// Whether `LDSO_PATH` and `LD_LIBRARY_PATH` from the new program's
    /// environment are honoured (they never are in secure mode).
    pub honour_env: bool,
    /// Always use this dynamic linker, opened on the host outside the
    /// namespace, instead of searching (Plash's fixed-ld.so mode).
    pub host_ldso: Option<PathBuf>,
    /// Where the native chainloader is inside the jail; the chainloader for
    /// another architecture is this path with `-ARCH` appended
    /// (`/chainloader-i386`, `/chainloader-aarch64`).
    pub chainloader: Vec<u8>,
    /// How the exec is carried out.
    pub strategy: Strategy,
    /// Treat every program as setuid: ignore the environment's search paths.
    pub secure: bool,
    /// The ld.so.conf to read, inside the namespace.
    pub ld_so_conf: Vec<u8>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            default_ldso_path: None,
            honour_env: true,
            host_ldso: None,
            chainloader: b"/chainloader".to_vec(),
            strategy: Strategy::Chainloader,
            secure: false,
            ld_so_conf: b"/etc/ld.so.conf".to_vec(),
        }
    }
}

/// Which rule found the dynamic linker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// A directory of `LDSO_PATH` (from the environment or the sandbox's default).
    LdsoPath,
    /// An entry of `LD_LIBRARY_PATH`.
    LdLibraryPath,
    /// A directory named by `/etc/ld.so.conf`.
    LdSoConf,
    /// The program's `PT_INTERP` path itself.
    Interp,
    /// The architecture's conventional path.
    Conventional,
    /// The sandbox's configured host dynamic linker.
    Configured,
}

impl Rule {
    /// A short stable name (`ldso-path`, `ld-library-path`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Rule::LdsoPath => "ldso-path",
            Rule::LdLibraryPath => "ld-library-path",
            Rule::LdSoConf => "ld.so.conf",
            Rule::Interp => "pt-interp",
            Rule::Conventional => "conventional",
            Rule::Configured => "configured",
        }
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A candidate dynamic linker that was found but not used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    /// Its path inside the namespace.
    pub path: Vec<u8>,
    /// Why it was not used.
    pub reason: String,
}

/// The dynamic linker a plan uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LdsoChoice {
    /// Its path inside the namespace (a host path for [`Rule::Configured`]).
    pub path: Vec<u8>,
    /// The rule that found it.
    pub rule: Rule,
    /// Which libc it belongs to.
    pub flavor: Flavor,
    /// The program's `PT_INTERP`.
    pub interp: Vec<u8>,
}

/// What kind of program is finally run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// An ELF program with `PT_INTERP`: run through its dynamic linker.
    Dynamic,
    /// An ELF program without `PT_INTERP`: loaded directly.
    Static,
}

/// One `#!` script on the way to the program.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScriptHop {
    /// The script's path, as it was exec'd.
    pub script: Vec<u8>,
    /// Its interpreter.
    pub interpreter: Vec<u8>,
    /// The optional argument.
    pub arg: Option<Vec<u8>>,
}

/// One element of a planned argv.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Arg {
    /// A literal argument.
    Str(Vec<u8>),
    /// A placeholder for the number of the descriptor paired with this index.
    Fd,
}

/// What is exec'd.
#[derive(Debug)]
pub enum Target {
    /// A path inside the jail (`/chainloader`).
    Path(Vec<u8>),
    /// A descriptor, with `execveat(fd, "", .., AT_EMPTY_PATH)`.
    Fd(OwnedFd),
}

/// The result of [`Resolver::plan_exec`]: what to exec, with which argv, and
/// which descriptors fill which argv slots — plus the facts behind it.
#[derive(Debug)]
pub struct ExecPlan {
    /// What to exec.
    pub target: Target,
    /// The argv, with placeholders.
    pub argv: Vec<Arg>,
    /// (argv index, descriptor) pairs that fill the placeholders. All
    /// descriptors are close-on-exec until the plan is materialised.
    pub fds: Vec<(usize, OwnedFd)>,
    /// Dynamic or static.
    pub kind: Kind,
    /// The program finally run (after any `#!` chain), inside the namespace.
    pub program: Vec<u8>,
    /// Its architecture.
    pub machine: Machine,
    /// The `#!` scripts on the way, outermost first.
    pub scripts: Vec<ScriptHop>,
    /// The dynamic linker, for a dynamic program.
    pub ldso: Option<LdsoChoice>,
    /// Candidates found but rejected, in search order.
    pub skipped: Vec<Skipped>,
    /// Whether secure mode applied (setuid/setgid program or configuration).
    pub secure: bool,
    /// The strategy used.
    pub strategy: Strategy,
}

impl ExecPlan {
    /// The argv with placeholders shown as `<fd:WHAT>` (for people).
    pub fn argv_display(&self) -> Vec<String> {
        let what = match self.kind {
            Kind::Dynamic => "ld.so",
            Kind::Static => "program",
        };
        self.argv
            .iter()
            .map(|a| match a {
                Arg::Str(s) => String::from_utf8_lossy(s).into_owned(),
                Arg::Fd => format!("<fd:{what}>"),
            })
            .collect()
    }

    /// The (argv index, descriptor) pairs, for a caller that sends the
    /// descriptors over a socket and fills the numbers in on the other side.
    pub fn fd_pairs(&self) -> impl Iterator<Item = (usize, std::os::fd::BorrowedFd<'_>)> {
        use std::os::fd::AsFd;
        self.fds.iter().map(|(i, fd)| (*i, fd.as_fd()))
    }
}

/// What a file turned out to be (cached by identity).
#[derive(Debug, Clone)]
enum Class {
    Script(shebang::Shebang),
    Elf(ElfInfo),
    Unknown(String),
}

/// (root device, root inode, ld.so.conf path): one parsed configuration per
/// namespace and file.
type ConfKey = (u64, u64, Vec<u8>);

#[derive(Default)]
struct Caches {
    conf: Mutex<HashMap<ConfKey, Arc<LdSoConf>>>,
    class: Mutex<HashMap<FileId, Class>>,
    ldso: Mutex<HashMap<(FileId, Machine), Result<(), String>>>,
    flavor: Mutex<HashMap<FileId, Flavor>>,
}

/// A cache's map; a panic elsewhere while it was held leaves it usable (every
/// entry is complete when inserted).
fn lock<T>(map: &Mutex<T>) -> MutexGuard<'_, T> {
    map.lock().unwrap_or_else(|e| e.into_inner())
}

/// Insert into a cache, emptying it first when it is full.
fn insert_bounded<K: std::hash::Hash + Eq, V>(map: &Mutex<HashMap<K, V>>, key: K, value: V) {
    let mut m = lock(map);
    if m.len() >= MAX_CACHE_ENTRIES {
        m.clear();
    }
    m.insert(key, value);
}

fn cached<K: std::hash::Hash + Eq, V: Clone>(map: &Mutex<HashMap<K, V>>, key: K, make: impl FnOnce() -> V) -> V {
    if let Some(v) = lock(map).get(&key) {
        return v.clone();
    }
    let v = make();
    insert_bounded(map, key, v.clone());
    v
}

/// Plans execs for one sandbox configuration. Cheap to share between
/// threads (`&Resolver` is all `plan_exec` needs); its caches are keyed by
/// file identity (device, inode, size, mtime), so they are never stale.
#[derive(Default)]
pub struct Resolver {
    config: Config,
    caches: Caches,
}

impl fmt::Debug for Resolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Resolver")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

impl Resolver {
    /// A resolver for one sandbox configuration.
    pub fn new(config: Config) -> Resolver {
        Resolver {
            config,
            caches: Caches::default(),
        }
    }

    /// Its configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Plan `execve(path, argv, envp)` for a process whose file system is
    /// `ns`. `envp` is the *new* program's environment. Nothing is executed;
    /// the returned plan owns the descriptors it needs.
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
        let mut argv: Vec<Vec<u8>> = argv.iter().map(|a| a.as_ref().to_vec()).collect();
        let mut path = path.to_vec();
        let mut scripts = Vec::new();
        let (program, file, info) = loop {
            let abs = ns.absolute(&path);
            let file = ns.open_file(&abs).map_err(|e| match e {
                ExecError::NotFound { .. } => ExecError::NotFound { path: os_path(&path) },
                e => e,
            })?;
            self.check_executable(&path, &file)?;
            match self.classify(&file) {
                Class::Elf(info) => break (abs, file, info),
                Class::Unknown(reason) => {
                    return Err(ExecError::ExecFormat {
                        path: os_path(&path),
                        reason,
                    })
                }
                Class::Script(sb) => {
                    if scripts.len() == MAX_SCRIPT_DEPTH {
                        return Err(ExecError::TooManyLevels { path: os_path(&path) });
                    }
                    debug!(script = %lossy(&path), interpreter = %lossy(&sb.interpreter), "#! script");
                    let mut next = vec![sb.interpreter.clone()];
                    next.extend(sb.arg.clone());
                    next.push(path.clone());
                    next.extend(argv.drain(..).skip(1));
                    argv = next;
                    scripts.push(ScriptHop {
                        script: path.clone(),
                        interpreter: sb.interpreter.clone(),
                        arg: sb.arg,
                    });
                    path = sb.interpreter;
                }
            }
        };
        let setid = file.mode & 0o4000 != 0 || (file.mode & 0o2000 != 0 && file.mode & 0o010 != 0);
        let secure = self.config.secure || setid;
        let argv0 = argv.first().cloned().unwrap_or_else(|| program.clone());
        let rest: Vec<Vec<u8>> = argv.into_iter().skip(1).collect();
        let strategy = self.config.strategy;

        let (kind, image_fd, body, ldso, skipped) = match &info.interp {
            None => {
                info!(program = %lossy(&program), "static program: loaded directly");
                let mut body = vec![argv0];
                body.extend(rest);
                (Kind::Static, file.fd, body, None, Vec::new())
            }
            Some(interp) => {
                drop(file);
                let (ldso_file, path_found, rule, skipped) =
                    self.find_ldso(ns, interp, &program, info.machine, envp, secure)?;
                let flavor = cached(&self.caches.flavor, ldso_file.id, || {
                    match ldso_file.read_at(0, elfinfo::FLAVOR_SCAN_MAX) {
                        Ok(bytes) => elfinfo::flavor(&bytes),
                        Err(_) => Flavor::Unknown,
                    }
                });
                info!(ldso = %lossy(&path_found), %rule, %flavor, "dynamic program");
                // ld.so's own argv[0]: the program's path, so that comm and
                // ps name the program; a trailing "/" keeps musl out of its
                // ldd mode (argv[0] ending in "ldd") while basename stays.
                let mut ld_arg0 = program.clone();
                if flavor.has_ldd_mode() && ld_arg0.ends_with(b"ldd") {
                    ld_arg0.push(b'/');
                }
                let mut body = vec![ld_arg0];
                if flavor.supports_argv0() {
                    body.extend([b"--argv0".to_vec(), argv0]);
                }
                if flavor.supports_double_dash() {
                    body.push(b"--".to_vec());
                }
                body.push(program.clone());
                body.extend(rest);
                let choice = LdsoChoice {
                    path: path_found,
                    rule,
                    flavor,
                    interp: interp.clone(),
                };
                (Kind::Dynamic, ldso_file.fd, body, Some(choice), skipped)
            }
        };
        let (target, argv, fds) = match strategy {
            Strategy::Chainloader => {
                let chainloader = self.chainloader_for(info.machine);
                let mut argv = vec![Arg::Str(chainloader.clone()), Arg::Fd];
                argv.extend(body.into_iter().map(Arg::Str));
                (Target::Path(chainloader), argv, vec![(1, image_fd)])
            }
            Strategy::Execveat => (
                Target::Fd(image_fd),
                body.into_iter().map(Arg::Str).collect(),
                Vec::new(),
            ),
        };
        Ok(ExecPlan {
            target,
            argv,
            fds,
            kind,
            program,
            machine: info.machine,
            scripts,
            ldso,
            skipped,
            secure,
            strategy,
        })
    }

    /// The chainloader for programs of `machine`: the configured path for
    /// the native architecture, `PATH-ARCH` (`/chainloader-i386`, …) for the
    /// others — the names `ldchain install` gives them.
    pub fn chainloader_for(&self, machine: Machine) -> Vec<u8> {
        let mut path = self.config.chainloader.clone();
        path.extend_from_slice(machine.chainloader_suffix(Machine::native()).as_bytes());
        path
    }

    fn check_executable(&self, path: &[u8], file: &Opened) -> Result<(), ExecError> {
        let denied = |reason| {
            Err(ExecError::PermissionDenied {
                path: os_path(path),
                reason,
            })
        };
        if file.is_dir() {
            return denied("is a directory");
        }
        if !file.is_regular() {
            return denied("not a regular file");
        }
        if file.mode & 0o111 == 0 {
            return denied("no execute permission");
        }
        if file.on_noexec_mount() {
            return denied("on a noexec mount");
        }
        Ok(())
    }

    fn classify(&self, file: &Opened) -> Class {
        cached(&self.caches.class, file.id, || {
            let head = match file.read_at(0, 4096) {
                Ok(h) => h,
                Err(e) => return Class::Unknown(format!("cannot read: {e}")),
            };
            if shebang::is_script(&head) {
                return match shebang::parse(&head) {
                    Ok(sb) => Class::Script(sb),
                    Err(shebang::ShebangError::NoInterpreter) => Class::Unknown("#! line names no interpreter".into()),
                    Err(shebang::ShebangError::Truncated) => {
                        Class::Unknown("#! interpreter name longer than the kernel reads".into())
                    }
                };
            }
            if head.starts_with(b"\x7fELF") {
                return match elfinfo::inspect(file, &head) {
                    Ok(info) if matches!(info.e_type, chainloader::elf::ET_EXEC | chainloader::elf::ET_DYN) => {
                        Class::Elf(info)
                    }
                    Ok(_) => Class::Unknown("ELF file that is not an executable".into()),
                    Err(reason) => Class::Unknown(reason),
                };
            }
            Class::Unknown("not an ELF file or #! script".into())
        })
    }

    fn ld_so_conf(&self, ns: &Namespace) -> Arc<LdSoConf> {
        let root = ns.root_key();
        let key = (root.0, root.1, self.config.ld_so_conf.clone());
        if let Some(c) = lock(&self.caches.conf).get(&key) {
            if c.is_fresh(ns) {
                return c.clone();
            }
            debug!("ld.so.conf changed: re-reading");
        }
        let c = Arc::new(conf::load(ns, &self.config.ld_so_conf));
        insert_bounded(&self.caches.conf, key, c.clone());
        c
    }

    /// Search for the dynamic linker of a `machine` program whose
    /// `PT_INTERP` is `interp`. Returns the open file, its path, the rule and
    /// the rejected candidates.
    fn find_ldso<E: AsRef<[u8]>>(
        &self,
        ns: &Namespace,
        interp: &[u8],
        program: &[u8],
        machine: Machine,
        envp: &[E],
        secure: bool,
    ) -> Result<(Opened, Vec<u8>, Rule, Vec<Skipped>), ExecError> {
        if let Some(host) = &self.config.host_ldso {
            let bad = |reason: String| ExecError::BadHostLdso {
                path: host.clone(),
                reason,
            };
            let fd = rustix::fs::open(
                host,
                rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::NONBLOCK | rustix::fs::OFlags::CLOEXEC,
                rustix::fs::Mode::empty(),
            )
            .map_err(|e| bad(e.to_string()))?;
            let file = Opened::from_fd(fd).map_err(|e| bad(e.to_string()))?;
            self.check_ldso(&file, machine).map_err(bad)?;
            use std::os::unix::ffi::OsStrExt;
            return Ok((file, host.as_os_str().as_bytes().to_vec(), Rule::Configured, Vec::new()));
        }

        let base = basename(interp);
        let mut tried: HashSet<Vec<u8>> = HashSet::new();
        let mut skipped = Vec::new();
        let mut try_dir =
            |dir: &[u8], name: &[u8], rule: Rule, skipped: &mut Vec<Skipped>| -> Option<(Opened, Vec<u8>)> {
                let path = if dir.is_empty() || dir == b"." {
                    name.to_vec()
                } else {
                    join(dir, name)
                };
                let abs = ns.absolute(&path);
                if tried.len() >= MAX_CANDIDATES || !tried.insert(abs.clone()) {
                    return None;
                }
                match ns.open_file(&abs) {
                    Err(ExecError::NotFound { .. }) => {
                        trace!(candidate = %lossy(&abs), %rule, "not there");
                        None
                    }
                    Err(e) => {
                        debug!(candidate = %lossy(&abs), %rule, reason = %e, "skipped");
                        skipped.push(Skipped {
                            path: abs,
                            reason: e.to_string(),
                        });
                        None
                    }
                    Ok(file) => match self.check_ldso(&file, machine) {
                        Ok(()) => Some((file, abs)),
                        Err(reason) => {
                            debug!(candidate = %lossy(&abs), %rule, %reason, "skipped");
                            skipped.push(Skipped { path: abs, reason });
                            None
                        }
                    },
                }
            };
        let found = |f: (Opened, Vec<u8>), rule, skipped| Ok((f.0, f.1, rule, skipped));
        let from_env = self.config.honour_env && !secure;

        // 1. LDSO_PATH: the sandbox's, or the configured default.
        let ldso_path = from_env
            .then(|| ldpath::getenv(envp, b"LDSO_PATH"))
            .flatten()
            .map(<[u8]>::to_vec);
        if let Some(value) = ldso_path.or_else(|| self.config.default_ldso_path.clone()) {
            let (dirs, cut) = ldpath::split_ldso_path(&value, MAX_PATH_ENTRIES);
            if cut {
                debug!("LDSO_PATH: only the first {MAX_PATH_ENTRIES} entries are searched");
            }
            for dir in dirs {
                if let Some(f) = try_dir(dir, base, Rule::LdsoPath, &mut skipped) {
                    return found(f, Rule::LdsoPath, skipped);
                }
            }
        }
        // 2. LD_LIBRARY_PATH, with glibc's separators and tokens.
        if let Some(value) = from_env.then(|| ldpath::getenv(envp, b"LD_LIBRARY_PATH")).flatten() {
            let tokens = ldpath::Tokens {
                origin: dirname(program),
                lib: machine.lib(),
                platform: machine.platform(),
            };
            let (entries, cut) = ldpath::split_ld_library_path(value, MAX_PATH_ENTRIES);
            if cut {
                debug!("LD_LIBRARY_PATH: only the first {MAX_PATH_ENTRIES} entries are searched");
            }
            for entry in entries {
                let dir = ldpath::expand(entry, &tokens);
                if let Some(f) = try_dir(&dir, base, Rule::LdLibraryPath, &mut skipped) {
                    return found(f, Rule::LdLibraryPath, skipped);
                }
            }
        }
        // 3. /etc/ld.so.conf.
        let conf = self.ld_so_conf(ns);
        for dir in &conf.dirs {
            if let Some(f) = try_dir(dir, base, Rule::LdSoConf, &mut skipped) {
                return found(f, Rule::LdSoConf, skipped);
            }
        }
        // 4. PT_INTERP itself; 5. the conventional path.
        if let Some(f) = try_dir(b"", interp, Rule::Interp, &mut skipped) {
            return found(f, Rule::Interp, skipped);
        }
        if let Some(conventional) = machine.conventional_ldso(base) {
            if let Some(f) = try_dir(b"", conventional, Rule::Conventional, &mut skipped) {
                return found(f, Rule::Conventional, skipped);
            }
        }
        Err(ExecError::NoLdso {
            program: os_path(program),
            interp: os_path(interp),
            skipped: skipped.len(),
        })
    }

    fn check_ldso(&self, file: &Opened, machine: Machine) -> Result<(), String> {
        if file.on_noexec_mount() {
            return Err("on a noexec mount".into());
        }
        cached(&self.caches.ldso, (file.id, machine), || {
            elfinfo::check_ldso(file, machine)
        })
    }
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
