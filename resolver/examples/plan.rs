//! `cargo run -p ldchain-resolver --example plan -- ROOT PROGRAM [ARGS...]`:
//! plan an exec and print the plan; with `PLAN_REPEAT=N` set, plan N more
//! times first (warm), for timing and system-call counting.

use ldchain_resolver::{Namespace, Resolver};

fn main() {
    let mut args = std::env::args().skip(1);
    let root = args.next().expect("usage: plan ROOT PROGRAM [ARGS...]");
    let program = args.next().expect("usage: plan ROOT PROGRAM [ARGS...]");
    let argv: Vec<String> = std::iter::once(program.clone()).chain(args).collect();
    let envp: Vec<String> = std::env::vars().map(|(k, v)| format!("{k}={v}")).collect();
    let ns = Namespace::open(root.as_ref()).expect("open namespace");
    let resolver = Resolver::new(Default::default());
    let repeat: usize = std::env::var("PLAN_REPEAT")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    for _ in 0..repeat {
        drop(resolver.plan_exec(&ns, &program, &argv, &envp));
    }
    match resolver.plan_exec(&ns, &program, &argv, &envp) {
        Ok(plan) => {
            println!("kind: {:?}", plan.kind);
            if let Some(l) = &plan.ldso {
                println!(
                    "ldso: {} (rule {}, {})",
                    String::from_utf8_lossy(&l.path),
                    l.rule,
                    l.flavor
                );
            }
            for s in &plan.skipped {
                println!("skipped: {}: {}", String::from_utf8_lossy(&s.path), s.reason);
            }
            println!("argv: {:?}", plan.argv_display());
        }
        Err(e) => {
            println!("error: {} ({})", e, e.errno_name());
            std::process::exit(1);
        }
    }
}
