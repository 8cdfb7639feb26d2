//! `ldchain resolve`: show the exec plan.

use std::os::unix::ffi::OsStrExt;
use std::process::ExitCode;

use ldchain::resolver::{errno_name, find_program, ExecError, ExecPlan, Kind, Namespace, Resolver, Target};
use serde_json::json;

use super::{exec_failure_status, ResolveArgs, EXIT_LDCHAIN};

fn s(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
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
                println!("{}", plan_json(&plan));
            } else {
                print_plan(&plan);
            }
            ExitCode::SUCCESS
        }
        Err(e) => fail_exec(args.json, &e),
    }
}

fn plan_json(p: &ExecPlan) -> serde_json::Value {
    json!({
        "kind": match p.kind { Kind::Dynamic => "dynamic", Kind::Static => "static" },
        "program": s(&p.program),
        "machine": p.machine.name(),
        "scripts": p.scripts.iter().map(|h| json!({
            "script": s(&h.script),
            "interpreter": s(&h.interpreter),
            "arg": h.arg.as_deref().map(s),
        })).collect::<Vec<_>>(),
        "argv": p.argv_display(),
        "exec": match p.target() {
            Target::Path(path) => s(path),
            Target::Fd(_) => "<fd>".to_owned(),
        },
        "fds": p.fd_pairs().map(|(i, _)| i).collect::<Vec<_>>(),
        "ldso": p.ldso.as_ref().map(|l| s(&l.path)),
        "rule": p.ldso.as_ref().map(|l| l.rule.name()),
        "flavor": p.ldso.as_ref().map(|l| l.flavor.to_string()),
        "interp": p.ldso.as_ref().map(|l| s(&l.interp)),
        "skipped": p.skipped.iter().map(|k| json!({"path": s(&k.path), "reason": k.reason})).collect::<Vec<_>>(),
        "secure": p.secure,
        "strategy": format!("{:?}", p.strategy).to_lowercase(),
    })
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
    println!(
        "argv:     {}",
        p.argv_display()
            .iter()
            .map(|a| shell_quote(a))
            .collect::<Vec<_>>()
            .join(" ")
    );
}

/// Quote for display the way a shell would need it (placeholders as is).
fn shell_quote(a: &str) -> String {
    if a.starts_with("<fd:")
        || (!a.is_empty()
            && a.bytes()
                .all(|c| c.is_ascii_alphanumeric() || b"/._-=:+,@%".contains(&c)))
    {
        a.to_owned()
    } else {
        format!("'{}'", a.replace('\'', r"'\''"))
    }
}

fn fail_exec(json: bool, e: &ExecError) -> ExitCode {
    if json {
        println!("{}", json!({"error": e.errno_name(), "message": e.to_string()}));
    } else {
        eprintln!("ldchain: resolve: {e} ({})", e.errno_name());
    }
    ExitCode::from(exec_failure_status(e))
}

fn fail_own(json: bool, msg: &str) -> ExitCode {
    if json {
        println!("{}", json!({"error": errno_name(libc::EINVAL), "message": msg}));
    } else {
        eprintln!("ldchain: resolve: {msg}");
    }
    ExitCode::from(EXIT_LDCHAIN)
}
