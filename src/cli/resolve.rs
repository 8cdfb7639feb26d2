//! `ldchain resolve`: show the exec plan.

use std::os::unix::ffi::OsStrExt;
use std::process::ExitCode;

use ldchain::resolver::escape::for_terminal;
use ldchain::resolver::{errno_name, find_program, Arg, ExecError, ExecPlan, Kind, Namespace, Resolver, Target};
use serde_json::json;

use super::args::ResolveArgs;
use super::status::{exec_failure_status, EXIT_LDCHAIN};

/// A name for the terminal: control bytes and invalid UTF-8 escaped
/// (`\xNN`, and `\\` for a backslash), so distinct names stay distinct.
fn s(b: &[u8]) -> String {
    for_terminal(b)
}

/// A name in JSON: a string, plus a `KEY_bytes` array of the bytes when
/// the name is not UTF-8 (the string then has U+FFFD where they were).
fn put(obj: &mut serde_json::Map<String, serde_json::Value>, key: &str, b: &[u8]) {
    obj.insert(key.to_owned(), String::from_utf8_lossy(b).into_owned().into());
    if std::str::from_utf8(b).is_err() {
        obj.insert(format!("{key}_bytes"), json!(b));
    }
}

/// One JSON object of names.
fn names(pairs: &[(&str, &[u8])]) -> serde_json::Value {
    let mut obj = serde_json::Map::new();
    for (key, b) in pairs {
        put(&mut obj, key, b);
    }
    obj.into()
}

/// Serialized JSON with DEL and the C1 controls escaped too (`\u007f`,
/// `\u009b`): serde_json escapes only C0, and a terminal takes U+009B for
/// an escape sequence.
fn json_line(v: &serde_json::Value) -> String {
    let mut out = String::new();
    for c in v.to_string().chars() {
        match c {
            '\u{7f}'..='\u{9f}' => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

pub fn main(args: ResolveArgs) -> ExitCode {
    let envp = match args.common.envp() {
        Ok(e) => e,
        Err(msg) => return fail_own(args.json, &msg),
    };
    let ns = match Namespace::open(&args.root) {
        Ok(ns) => ns.with_cwd(args.cwd.as_bytes()),
        Err(e) => return fail_own(args.json, &format!("{}: {e}", args.root.display())),
    };
    let resolver = Resolver::new(args.common.config(args.strategy.strategy()));
    let argv: Vec<&[u8]> = args.command.iter().map(|a| a.as_bytes()).collect();
    let result = find_program(&ns, argv[0], &envp).and_then(|path| resolver.plan_exec(&ns, path, &argv, &envp));
    match result {
        Ok(plan) => {
            if args.json {
                println!("{}", json_line(&plan_json(&plan)));
            } else {
                print_plan(&plan);
            }
            ExitCode::SUCCESS
        }
        Err(e) => fail_exec(args.json, &e),
    }
}

fn plan_json(p: &ExecPlan) -> serde_json::Value {
    let mut v = json!({
        "kind": match p.kind { Kind::Dynamic => "dynamic", Kind::Static => "static" },
        "machine": p.machine.name(),
        "scripts": p.scripts.iter().map(|h| {
            let mut hop = names(&[("script", &h.script), ("interpreter", &h.interpreter)]);
            hop["arg"] = serde_json::Value::Null;
            if let (Some(arg), Some(obj)) = (&h.arg, hop.as_object_mut()) {
                put(obj, "arg", arg);
            }
            hop
        }).collect::<Vec<_>>(),
        "argv": p.argv_display(),
        "fds": p.fd_pairs().map(|(i, _)| i).collect::<Vec<_>>(),
        "ldso": null,
        "rule": p.ldso.as_ref().map(|l| l.rule.name()),
        "flavor": p.ldso.as_ref().map(|l| l.flavor.to_string()),
        "interp": null,
        "skipped": p.skipped.iter().map(|k| {
            let mut skip = names(&[("path", &k.path)]);
            skip["reason"] = k.reason.clone().into();
            skip
        }).collect::<Vec<_>>(),
        "secure": p.secure,
        "strategy": format!("{:?}", p.strategy).to_lowercase(),
    });
    let obj = v.as_object_mut().expect("an object");
    put(obj, "program", &p.program);
    if p.argv()
        .iter()
        .any(|a| matches!(a, Arg::Str(b) if std::str::from_utf8(b).is_err()))
    {
        let bytes = p.argv().iter().map(|a| match a {
            Arg::Str(b) => json!(b),
            Arg::Fd(_) => serde_json::Value::Null,
        });
        obj.insert("argv_bytes".into(), bytes.collect());
    }
    match p.target() {
        Target::Path(path) => put(obj, "exec", path),
        Target::Fd(_) => put(obj, "exec", b"<fd>"),
    }
    if let Some(l) = &p.ldso {
        put(obj, "ldso", &l.path);
        put(obj, "interp", &l.interp);
    }
    v
}

fn print_plan(p: &ExecPlan) {
    let kind = match (p.kind, p.scripts.is_empty()) {
        (Kind::Dynamic, true) => "dynamic",
        (Kind::Static, true) => "static",
        (Kind::Dynamic, false) => "script chain, then dynamic",
        (Kind::Static, false) => "script chain, then static",
    };
    println!("program:  {} ({kind}, {})", s(&p.program), p.machine.name());
    for h in &p.scripts {
        let arg = h.arg.as_deref().map(|a| format!(" {:?}", s(a))).unwrap_or_default();
        println!("script:   {} -> #!{}{arg}", s(&h.script), s(&h.interpreter));
    }
    if let Some(l) = &p.ldso {
        println!("ld.so:    {} ({}), found by rule {}", s(&l.path), l.flavor, l.rule);
        println!("interp:   {}", s(&l.interp));
    }
    for k in &p.skipped {
        println!("skipped:  {}: {}", s(&k.path), k.reason);
    }
    if p.secure {
        println!("secure:   yes (environment search paths ignored)");
    }
    match p.target() {
        Target::Path(path) => println!("exec:     {}", s(path)),
        Target::Fd(_) => println!("exec:     execveat(<fd>, \"\", ...)"),
    }
    let shown = p.argv().iter().zip(p.argv_display()).map(|(a, display)| match a {
        Arg::Str(b) => shell_quote(&s(b)),
        Arg::Fd(_) => display,
    });
    println!("argv:     {}", shown.collect::<Vec<_>>().join(" "));
}

/// Quote for display the way a shell would need it (placeholders as is).
fn shell_quote(a: &str) -> String {
    if !a.is_empty()
        && a.bytes()
            .all(|c| c.is_ascii_alphanumeric() || b"/._-=:+,@%".contains(&c))
    {
        a.to_owned()
    } else {
        format!("'{}'", a.replace('\'', r"'\''"))
    }
}

fn fail_exec(json: bool, e: &ExecError) -> ExitCode {
    if json {
        println!(
            "{}",
            json_line(&json!({"error": e.errno_name(), "message": e.to_string()}))
        );
    } else {
        eprintln!("ldchain: resolve: {e} ({})", e.errno_name());
    }
    ExitCode::from(exec_failure_status(e))
}

fn fail_own(json: bool, msg: &str) -> ExitCode {
    if json {
        println!(
            "{}",
            json_line(&json!({"error": errno_name(libc::EINVAL), "message": msg}))
        );
    } else {
        eprintln!("ldchain: resolve: {msg}");
    }
    ExitCode::from(EXIT_LDCHAIN)
}
