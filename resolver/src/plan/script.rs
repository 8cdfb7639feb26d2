//! Following `#!` scripts to the ELF program finally run, with the kernel's
//! `binfmt_script` rules, and the checks `execve` makes on each file.

use tracing::debug;

use crate::elfinfo::{self, ElfInfo};
use crate::error::ExecError;
use crate::ns::{has_file_capabilities, os_path, Namespace, Opened};
use crate::parse::shebang;

use super::cache::{cached, Class};
use super::config::{lossy, Resolver, MAX_SCRIPT_DEPTH};
use super::exec_plan::ScriptHop;

/// The ELF program an exec ends at, after any `#!` chain.
pub(super) struct Program {
    /// Its path inside the namespace, absolute, every symlink resolved: the
    /// file the kernel would have opened, whose directory is `$ORIGIN`.
    pub path: Vec<u8>,
    /// The absolute path it was reached by (a symlink's name, perhaps):
    /// what the kernel names the process after.
    pub given: Vec<u8>,
    /// The open file.
    pub file: Opened,
    /// Its architecture, type and `PT_INTERP`.
    pub info: ElfInfo,
    /// The argv it is run with (each script prepends its interpreter).
    pub argv: Vec<Vec<u8>>,
    /// The scripts on the way, outermost first.
    pub scripts: Vec<ScriptHop>,
    /// Every path opened on the way (absolute): each script's, the program's.
    pub opened: Vec<Vec<u8>>,
}

impl Program {
    /// Whether the kernel would run it in secure mode (`AT_SECURE`): setuid,
    /// setgid with group execute (setgid without it means mandatory
    /// locking), or file capabilities (`setcap`), read from the opened file.
    pub fn runs_secure(&self) -> bool {
        let mode = self.file.mode;
        mode & 0o4000 != 0 || (mode & 0o2000 != 0 && mode & 0o010 != 0) || has_file_capabilities(&self.file.fd)
    }
}

impl Resolver {
    /// Open `path` and follow `#!` lines, as `execve` would, to an ELF
    /// program; `argv` is rewritten at each script.
    pub(super) fn follow_scripts(&self, ns: &Namespace, path: &[u8], argv: Vec<Vec<u8>>) -> Result<Program, ExecError> {
        let (mut path, mut argv, mut scripts) = (path.to_vec(), argv, Vec::new());
        let mut opened = Vec::new();
        loop {
            let abs = ns.absolute(&path);
            opened.push(abs.clone());
            let file = ns.open_file(&abs).map_err(|e| match e {
                ExecError::NotFound { .. } => ExecError::NotFound { path: os_path(&path) },
                e => e,
            })?;
            check_executable(ns, &path, &file)?;
            let sb = match self.classify(&file) {
                Class::Elf(info) => {
                    return Ok(Program {
                        path: ns.path_inside(&file.fd).unwrap_or_else(|| abs.clone()),
                        given: abs,
                        file,
                        info,
                        argv,
                        scripts,
                        opened,
                    })
                }
                Class::Unknown(reason) => {
                    return Err(ExecError::ExecFormat {
                        path: os_path(&path),
                        reason,
                    })
                }
                Class::Script(sb) => sb,
            };
            if scripts.len() == MAX_SCRIPT_DEPTH {
                return Err(ExecError::TooManyLevels { path: os_path(&path) });
            }
            debug!(script = %lossy(&path), interpreter = %lossy(&sb.interpreter), "#! script");
            let hop = ScriptHop {
                script: path,
                interpreter: sb.interpreter,
                arg: sb.arg,
            };
            argv = hop_argv(&hop, argv);
            path = hop.interpreter.clone();
            scripts.push(hop);
        }
    }

    /// What `file` is, from its first 4 KiB (cached by identity).
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
}

/// The argv the interpreter of a script gets: `[interpreter, arg?,
/// script, argv[1..]]` (the script's own `argv[0]` is dropped, as the
/// kernel drops it).
pub(super) fn hop_argv(hop: &ScriptHop, argv: Vec<Vec<u8>>) -> Vec<Vec<u8>> {
    let mut next = vec![hop.interpreter.clone()];
    next.extend(hop.arg.clone());
    next.push(hop.script.clone());
    next.extend(argv.into_iter().skip(1));
    next
}

/// EACCES for what `execve` refuses to run before reading it: a directory,
/// a non-regular file, no execute bit at all, a `noexec` mount, no execute
/// permission for whose rights the plan is made with.
fn check_executable(ns: &Namespace, path: &[u8], file: &Opened) -> Result<(), ExecError> {
    let reason = if file.is_dir() {
        "is a directory"
    } else if !file.is_regular() {
        "not a regular file"
    } else if file.mode & 0o111 == 0 {
        "no execute permission"
    } else if file.on_noexec_mount() {
        "on a noexec mount"
    } else if !ns.may_exec(file) {
        // Execute bits, but none for whose rights the plan is made with.
        "no execute permission"
    } else {
        return Ok(());
    };
    Err(ExecError::PermissionDenied {
        path: os_path(path),
        reason,
    })
}
