//! `run`'s jail set-up options, with bwrap's names and meanings, applied in
//! command-line order (a later one mounts over an earlier one, and `--perms`
//! or `--size` apply to the next option that creates something).

use std::ffi::OsString;
use std::os::fd::AsFd;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use clap::{ArgAction, ArgMatches, Args};
use ldchain::sandbox::fds;
use ldchain::sandbox::view::View;

/// The most bytes read from a descriptor for `--file` or `--bind-data`.
const MAX_DATA: usize = 64 << 20;

#[derive(Args, Default)]
pub struct SetupArgs {
    /// Bind host path SRC at DEST in the jail, writable, no device access (repeatable).
    #[arg(long, num_args = 2, value_names = ["SRC", "DEST"], action = ArgAction::Append)]
    pub bind: Vec<PathBuf>,
    /// As --bind, but nothing if SRC does not exist.
    #[arg(long, num_args = 2, value_names = ["SRC", "DEST"], action = ArgAction::Append)]
    pub bind_try: Vec<PathBuf>,
    /// Bind host path SRC at DEST in the jail, read-only, every submount too (repeatable).
    #[arg(long = "ro-bind", num_args = 2, value_names = ["SRC", "DEST"], action = ArgAction::Append)]
    pub ro_bind: Vec<PathBuf>,
    /// As --ro-bind, but nothing if SRC does not exist.
    #[arg(long, num_args = 2, value_names = ["SRC", "DEST"], action = ArgAction::Append)]
    pub ro_bind_try: Vec<PathBuf>,
    /// As --bind, with device nodes usable.
    #[arg(long, num_args = 2, value_names = ["SRC", "DEST"], action = ArgAction::Append)]
    pub dev_bind: Vec<PathBuf>,
    /// As --dev-bind, but nothing if SRC does not exist.
    #[arg(long, num_args = 2, value_names = ["SRC", "DEST"], action = ArgAction::Append)]
    pub dev_bind_try: Vec<PathBuf>,
    /// Bind the directory or file open on descriptor FD at DEST.
    #[arg(long, num_args = 2, value_names = ["FD", "DEST"], action = ArgAction::Append)]
    pub bind_fd: Vec<OsString>,
    /// As --bind-fd, read-only.
    #[arg(long, num_args = 2, value_names = ["FD", "DEST"], action = ArgAction::Append)]
    pub ro_bind_fd: Vec<OsString>,
    /// Mount a fresh, empty tmpfs at DEST, owned by the program (repeatable).
    #[arg(long, value_name = "DEST")]
    pub tmpfs: Vec<PathBuf>,
    /// Mount a /dev at DEST, as bwrap's --dev: null, zero, full, random,
    /// urandom, tty, a private devpts with ptmx, a tmpfs at shm (the
    /// throwaway jail has one at /dev already).
    #[arg(long, value_name = "DEST")]
    pub dev: Vec<PathBuf>,
    /// Mount the jail's own /proc at DEST (default: /proc, when the jail
    /// has that directory).
    #[arg(long, value_name = "DEST")]
    pub proc: Vec<PathBuf>,
    /// Mount a POSIX message queue filesystem at DEST.
    #[arg(long, value_name = "DEST")]
    pub mqueue: Vec<PathBuf>,
    /// Make a directory at DEST (mode 0755, or --perms).
    #[arg(long, value_name = "DEST")]
    pub dir: Vec<PathBuf>,
    /// Make a symbolic link at DEST pointing at SRC.
    #[arg(long, num_args = 2, value_names = ["SRC", "DEST"], action = ArgAction::Append)]
    pub symlink: Vec<PathBuf>,
    /// Copy what descriptor FD holds to a new file at DEST (mode 0666, or --perms).
    #[arg(long, num_args = 2, value_names = ["FD", "DEST"], action = ArgAction::Append)]
    pub file: Vec<OsString>,
    /// Copy what descriptor FD holds to a file of its own, bound at DEST.
    #[arg(long, num_args = 2, value_names = ["FD", "DEST"], action = ArgAction::Append)]
    pub bind_data: Vec<OsString>,
    /// As --bind-data, read-only.
    #[arg(long, num_args = 2, value_names = ["FD", "DEST"], action = ArgAction::Append)]
    pub ro_bind_data: Vec<OsString>,
    /// Make the mount at DEST read-only, every submount too.
    #[arg(long, value_name = "DEST")]
    pub remount_ro: Vec<PathBuf>,
    /// Change the mode of PATH, only where the view made it (a tmpfs).
    #[arg(long, num_args = 2, value_names = ["OCTAL", "PATH"], action = ArgAction::Append)]
    pub chmod: Vec<OsString>,
    /// The mode of what the next --dir, --file, --tmpfs or --bind-data creates.
    #[arg(long, value_name = "OCTAL")]
    pub perms: Vec<String>,
    /// The size in bytes of the next --tmpfs.
    #[arg(long, value_name = "BYTES")]
    pub size: Vec<u64>,
    /// Every option above, in command-line order.
    #[arg(skip)]
    pub ops: Vec<Op>,
}

/// One set-up step.
#[derive(Debug, Clone)]
pub enum Op {
    Bind {
        src: PathBuf,
        dest: PathBuf,
        read_only: bool,
        devices: bool,
        optional: bool,
    },
    BindFd {
        fd: i32,
        dest: PathBuf,
        read_only: bool,
    },
    Tmpfs {
        dest: PathBuf,
        perms: Option<u32>,
        size: Option<u64>,
    },
    Dev(PathBuf),
    Proc(PathBuf),
    Mqueue(PathBuf),
    Dir {
        dest: PathBuf,
        perms: Option<u32>,
    },
    Symlink {
        target: PathBuf,
        dest: PathBuf,
    },
    File {
        fd: i32,
        dest: PathBuf,
        perms: Option<u32>,
    },
    BindData {
        fd: i32,
        dest: PathBuf,
        perms: Option<u32>,
        read_only: bool,
    },
    RemountRo(PathBuf),
    Chmod {
        mode: u32,
        path: PathBuf,
    },
}

/// A pending `--perms` or `--size`.
enum Modifier {
    Perms(u32),
    Size(u64),
}

fn octal(s: &str) -> Result<u32, String> {
    u32::from_str_radix(s, 8)
        .ok()
        .filter(|m| *m <= 0o7777)
        .ok_or_else(|| format!("{s}: not an octal mode"))
}

fn fd_number(s: &OsString) -> Result<i32, String> {
    s.to_str()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("{}: not a descriptor number", s.to_string_lossy()))
}

impl SetupArgs {
    /// Put every option in command-line order (clap keeps each option's
    /// values apart; its indices say how they interleave) into `ops`.
    pub fn order(&mut self, m: &ArgMatches) -> Result<(), String> {
        enum Item {
            Op(Op),
            Mod(Modifier),
        }
        let mut items: Vec<(usize, Item)> = Vec::new();
        let at = |id: &str| -> Vec<usize> { m.indices_of(id).map(Iterator::collect).unwrap_or_default() };
        let pairs = |id: &str, values: &[PathBuf]| -> Vec<(usize, PathBuf, PathBuf)> {
            values
                .chunks(2)
                .zip(at(id).into_iter().step_by(2))
                .map(|(p, i)| (i, p[0].clone(), p[1].clone()))
                .collect()
        };
        for (id, values, read_only, devices, optional) in [
            ("bind", &self.bind, false, false, false),
            ("bind_try", &self.bind_try, false, false, true),
            ("ro_bind", &self.ro_bind, true, false, false),
            ("ro_bind_try", &self.ro_bind_try, true, false, true),
            ("dev_bind", &self.dev_bind, false, true, false),
            ("dev_bind_try", &self.dev_bind_try, false, true, true),
        ] {
            for (i, src, dest) in pairs(id, values) {
                let op = Op::Bind {
                    src,
                    dest,
                    read_only,
                    devices,
                    optional,
                };
                items.push((i, Item::Op(op)));
            }
        }
        for (i, target, dest) in pairs("symlink", &self.symlink) {
            items.push((i, Item::Op(Op::Symlink { target, dest })));
        }
        let fd_pairs = |id: &str, values: &[OsString]| -> Result<Vec<(usize, i32, PathBuf)>, String> {
            values
                .chunks(2)
                .zip(at(id).into_iter().step_by(2))
                .map(|(p, i)| Ok((i, fd_number(&p[0])?, PathBuf::from(&p[1]))))
                .collect()
        };
        for (id, values, read_only) in [
            ("bind_fd", &self.bind_fd, false),
            ("ro_bind_fd", &self.ro_bind_fd, true),
        ] {
            for (i, fd, dest) in fd_pairs(id, values)? {
                items.push((i, Item::Op(Op::BindFd { fd, dest, read_only })));
            }
        }
        for (i, fd, dest) in fd_pairs("file", &self.file)? {
            items.push((i, Item::Op(Op::File { fd, dest, perms: None })));
        }
        for (id, values, read_only) in [
            ("bind_data", &self.bind_data, false),
            ("ro_bind_data", &self.ro_bind_data, true),
        ] {
            for (i, fd, dest) in fd_pairs(id, values)? {
                let op = Op::BindData {
                    fd,
                    dest,
                    perms: None,
                    read_only,
                };
                items.push((i, Item::Op(op)));
            }
        }
        for pair in self.chmod.chunks(2).zip(at("chmod").into_iter().step_by(2)) {
            let (p, i) = pair;
            let mode = octal(&p[0].to_string_lossy())?;
            let op = Op::Chmod {
                mode,
                path: PathBuf::from(&p[1]),
            };
            items.push((i, Item::Op(op)));
        }
        type Make = fn(PathBuf) -> Op;
        let singles: [(&str, &Vec<PathBuf>, Make); 6] = [
            ("tmpfs", &self.tmpfs, |dest| Op::Tmpfs {
                dest,
                perms: None,
                size: None,
            }),
            ("dev", &self.dev, Op::Dev),
            ("proc", &self.proc, Op::Proc),
            ("mqueue", &self.mqueue, Op::Mqueue),
            ("dir", &self.dir, |dest| Op::Dir { dest, perms: None }),
            ("remount_ro", &self.remount_ro, Op::RemountRo),
        ];
        for (id, values, make) in singles {
            for (i, dest) in at(id).into_iter().zip(values) {
                items.push((i, Item::Op(make(dest.clone()))));
            }
        }
        for (i, p) in at("perms").into_iter().zip(&self.perms) {
            items.push((i, Item::Mod(Modifier::Perms(octal(p)?))));
        }
        for (i, s) in at("size").into_iter().zip(&self.size) {
            items.push((i, Item::Mod(Modifier::Size(*s))));
        }
        items.sort_by_key(|(i, _)| *i);
        let (mut perms, mut size) = (None, None);
        for (_, item) in items {
            match item {
                Item::Mod(Modifier::Perms(p)) => perms = Some(p),
                Item::Mod(Modifier::Size(s)) => size = Some(s),
                Item::Op(mut op) => {
                    match &mut op {
                        Op::Tmpfs { perms: p, size: s, .. } => (*p, *s) = (perms.take(), size.take()),
                        Op::Dir { perms: p, .. } | Op::File { perms: p, .. } | Op::BindData { perms: p, .. } => {
                            *p = perms.take()
                        }
                        _ => {}
                    }
                    if perms.is_some() || size.is_some() {
                        return Err("--perms must come just before --dir, --file, --tmpfs or --bind-data, \
                                    and --size just before --tmpfs"
                            .into());
                    }
                    self.ops.push(op);
                }
            }
        }
        if perms.is_some() || size.is_some() {
            return Err("--perms or --size at the end: nothing follows to apply it to".into());
        }
        Ok(())
    }

    /// Whether DEST is the destination of a bind (the program's own
    /// directory is then not bound by default).
    pub fn binds_onto(&self, dir: &std::path::Path) -> bool {
        self.ops
            .iter()
            .any(|op| matches!(op, Op::Bind { dest, .. } | Op::BindFd { dest, .. } if dir.starts_with(dest)))
    }
}

/// Apply the ops to `view`, in order; `owner` owns a --tmpfs.
pub fn apply(ops: &[Op], view: &mut View, owner: (u32, u32)) -> Result<(), String> {
    let data = |fd: i32| -> Result<Vec<u8>, String> {
        let fd = fds::inherited(fd).map_err(|e| e.to_string())?;
        fds::read_all(&fd, MAX_DATA).map_err(|e| format!("descriptor: {e}"))
    };
    for op in ops {
        let (what, dest, r) = match op {
            Op::Bind {
                src,
                dest,
                read_only,
                devices,
                optional,
            } => {
                if *optional && !src.exists() {
                    continue;
                }
                let r = if *devices {
                    view.dev_bind(src, dest)
                } else {
                    view.bind(src, dest, *read_only)
                };
                (format!("bind {}", src.display()), dest, r)
            }
            Op::BindFd { fd, dest, read_only } => {
                let src = fds::inherited(*fd).map_err(|e| e.to_string())?;
                (
                    "bind a descriptor".into(),
                    dest,
                    view.bind_fd(src.as_fd(), dest, *read_only),
                )
            }
            Op::Tmpfs { dest, perms, size } => (
                "mount a tmpfs".into(),
                dest,
                view.tmpfs(dest, owner, perms.unwrap_or(0o755), *size),
            ),
            Op::Dev(dest) => ("mount a /dev".into(), dest, view.dev(dest)),
            Op::Proc(dest) => ("make a mount point for /proc".into(), dest, view.ensure_dir(dest)),
            Op::Mqueue(dest) => ("mount an mqueue".into(), dest, view.mqueue(dest)),
            Op::Dir { dest, perms } => ("make a directory".into(), dest, view.dir(dest, perms.unwrap_or(0o755))),
            Op::Symlink { target, dest } => (
                format!("make a symbolic link to {}", target.display()),
                dest,
                view.symlink(target, dest),
            ),
            Op::File { fd, dest, perms } => {
                let bytes = data(*fd)?;
                (
                    "write a file".into(),
                    dest,
                    view.file(dest, &bytes, perms.unwrap_or(0o666)),
                )
            }
            Op::BindData {
                fd,
                dest,
                perms,
                read_only,
            } => {
                let bytes = data(*fd)?;
                (
                    "bind data".into(),
                    dest,
                    view.bind_data(dest, &bytes, perms.unwrap_or(0o666), *read_only),
                )
            }
            Op::RemountRo(dest) => ("make read-only".into(), dest, view.remount_ro(dest)),
            Op::Chmod { mode, path } => ("change the mode".into(), path, view.chmod(path, *mode)),
        };
        r.map_err(|e| {
            format!(
                "cannot {what} at {}: {e}",
                String::from_utf8_lossy(dest.as_os_str().as_bytes())
            )
        })?;
    }
    Ok(())
}
