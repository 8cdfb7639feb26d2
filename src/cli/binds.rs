//! The default that lets `ldchain run -- ./prog` run a program from outside
//! `/usr` in the throwaway jail: its own directory, bound read-only at the
//! same path — never `/` or the caller's home directory, and only the
//! program itself when the directory is world-writable and sticky (`/tmp`).

use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use ldchain::sandbox::view::View;

use super::args::RunArgs;

/// The program's own directory, bound into the jail.
pub struct OwnDirectory {
    /// The program's absolute path (the same inside and outside).
    pub program: Vec<u8>,
    /// The working directory inside: the caller's, if it lies in the bound
    /// directory, else `/`.
    pub cwd: Vec<u8>,
}

/// Directories the throwaway jail already shows (read-only) from the host.
const VISIBLE: &[&str] = &["/usr", "/etc"];

/// If PROGRAM names a path (it has a `/`) to a file on the host that the
/// jail would not show, bind its directory read-only at the same path.
pub fn own_directory(args: &RunArgs, view: &mut View) -> Result<Option<OwnDirectory>, String> {
    let given = Path::new(&args.command[0]);
    if !given.as_os_str().as_bytes().contains(&b'/') {
        return Ok(None);
    }
    let cwd = std::env::current_dir().map_err(|e| format!("current directory: {e}"))?;
    let Ok(program) = cwd.join(given).canonicalize() else {
        return Ok(None); // not on the host: the jail decides (not found)
    };
    let dir = program.parent().unwrap_or(Path::new("/")).to_owned();
    if VISIBLE.iter().any(|v| dir.starts_with(v)) || args.setup.binds_onto(&dir) || !program.is_file() {
        return Ok(None);
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .and_then(|h| h.canonicalize().ok());
    if dir == Path::new("/") || Some(&dir) == home.as_ref() {
        return Err(format!(
            "{}: refusing to bind {} into the jail (the program's own directory is bound by default, \
             but never / or a home directory); move the program, or use --ro-bind",
            given.display(),
            dir.display()
        ));
    }
    // A world-writable sticky directory (`/tmp`, `/dev/shm`, …) is shared:
    // its other entries (sockets of agents and X servers, other users'
    // files) stay out; only the program itself is bound.
    let shared = std::fs::metadata(&dir).is_ok_and(|m| m.permissions().mode() & 0o1002 == 0o1002);
    let what = if shared { &program } else { &dir };
    view.bind(what, what, true)
        .map_err(|e| format!("cannot bind {} into the jail: {e}", what.display()))?;
    let cwd = cwd.canonicalize().unwrap_or(cwd);
    let inside = if (shared && cwd == dir) || (!shared && cwd.starts_with(&dir)) {
        cwd
    } else {
        PathBuf::from("/")
    };
    Ok(Some(OwnDirectory {
        program: program.as_os_str().as_bytes().to_vec(),
        cwd: inside.as_os_str().as_bytes().to_vec(),
    }))
}
