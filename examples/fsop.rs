//! A trusted server ("FsOp") running a shell pipeline in a jail whose only
//! dynamic linker lives under `/opt`, where the kernel cannot find it:
//!
//! 1. build the jail: `/bin/sh`, `/bin/cat` and their libraries, glibc's
//!    `ld.so` in `/opt/glibc` only, and `/etc/ld.so.conf` naming that;
//! 2. install the chainloader and the `PT_INTERP` stubs
//!    ([`embed::install`], [`embed::install_stubs`]);
//! 3. serve nested exec: the exec service, its socket bound into the jail's
//!    private view ([`View::bind_service`]);
//! 4. plan the first exec with the resolver, and run it confined
//!    ([`Sandbox::spawn_prepared`]): `sh` starts `cat` and another `sh`,
//!    which starts `cat` again, each through a stub and the service.
//!
//! `cargo run --example fsop` prints `fsop: ok`. It needs root or
//! unprivileged user namespaces, and a glibc host.

use std::error::Error;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use ldchain::embed;
use ldchain::resolver::{Config, Namespace, Resolver};
use ldchain::sandbox::boundary::Sandbox;
use ldchain::sandbox::throwaway::enter_private_namespace;
use ldchain::sandbox::view::View;
use ldchain::service::{ExecService, Limits, NamespaceSource};

fn main() -> Result<(), Box<dyn Error>> {
    // Mounts made from here on (the service's socket) are this process's own.
    enter_private_namespace(None)?;
    let dir = tempfile::tempdir()?;
    let result = fsop(dir.path());
    // The socket's tmpfs first, or the jail's directory cannot be removed.
    let _ = rustix::mount::unmount(dir.path().join("run/ldchain"), rustix::mount::UnmountFlags::DETACH);
    result?;
    println!("fsop: ok");
    Ok(())
}

fn fsop(jail: &Path) -> Result<(), Box<dyn Error>> {
    build_jail(jail, &["/bin/sh", "/bin/cat"])?;
    embed::install(jail)?;
    embed::install_stubs(jail)?;

    // The first exec, planned here: /chainloader will run the jail's ld.so
    // (found through its /etc/ld.so.conf) from a descriptor.
    let ns = Namespace::open(jail)?;
    let resolver = Resolver::new(Config::default());
    let script = "echo hi | /bin/cat | /bin/sh -c /bin/cat >/tmp/out";
    let envp = ["PATH=/bin"];
    let plan = resolver.plan_exec(&ns, "/bin/sh", &["sh", "-c", script], &envp)?;

    // Nested exec: the service answers each stub with the ld.so the same
    // resolver finds in the jail.
    let mut view = View::new(jail, false)?;
    let socket = view.bind_service()?;
    view.finish()?;
    let source = NamespaceSource::new(resolver, ns).with_answer_dir(socket.answers);
    let _service = ExecService::start(socket.listener, Arc::new(source), Limits::default())?;

    // Confined: its own PID and mount namespaces, no privilege left.
    let mut jailed = Sandbox::new(jail, b"/")?.spawn_prepared(plan.prepare(&envp)?)?;
    let status = jailed.wait()?;
    let output = fs::read_to_string(jail.join("tmp/out"))?;
    if !status.success() || output != "hi\n" {
        return Err(format!("the pipeline printed {output:?} and ended with {status}").into());
    }
    Ok(())
}

/// Copy `programs` and the libraries they need (as `ldd` lists them) to the
/// same paths in `jail`, except glibc's `ld.so`, which goes to `/opt/glibc`
/// only, and name that directory in the jail's `/etc/ld.so.conf`.
fn build_jail(jail: &Path, programs: &[&str]) -> Result<(), Box<dyn Error>> {
    // Searchable by uid 65534, which the program runs as when we are root.
    fs::set_permissions(jail, fs::Permissions::from_mode(0o755))?;
    let copy = |from: &str, to: &str| -> std::io::Result<()> {
        let to = jail.join(to.trim_start_matches('/'));
        fs::create_dir_all(to.parent().expect("a file"))?;
        fs::copy(from, to).map(drop)
    };
    for program in programs {
        copy(program, program)?;
        let ldd = Command::new("ldd").arg(program).output()?;
        let text = String::from_utf8(ldd.stdout)?;
        // "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x…)", "/lib64/ld-linux-x86-64.so.2 (0x…)"
        for lib in text.split_whitespace().filter(|w| w.starts_with('/')) {
            let name = Path::new(lib).file_name().and_then(|n| n.to_str()).unwrap_or_default();
            match name.starts_with("ld-") {
                true => copy(lib, &format!("/opt/glibc/{name}"))?,
                false => copy(lib, lib)?,
            }
        }
    }
    for (dir, mode) in [("etc", 0o755), ("run/ldchain", 0o755), ("tmp", 0o1777)] {
        fs::create_dir_all(jail.join(dir))?;
        fs::set_permissions(jail.join(dir), fs::Permissions::from_mode(mode))?;
    }
    fs::write(jail.join("etc/ld.so.conf"), "/opt/glibc\n")?;
    Ok(())
}
