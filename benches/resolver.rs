//! `cargo bench --bench resolver`: plan_exec for a dynamic program on the
//! real root file system, cold (a fresh Resolver, nothing cached) and warm.
//! Wall-clock figures are printed as medians with their spread, and as
//! ratios measured in the same run: warm to cold, and warm to one fork +
//! exec + wait of /bin/true (`Command::status`), the cost a plan adds to
//! an exec. The deterministic figure (system calls per warm plan) is in
//! benches/report.sh.

use std::hint::black_box;
use std::time::Instant;

use ldchain::resolver::{Config, Namespace, Resolver};

fn median_and_spread(mut v: Vec<f64>) -> (f64, f64, f64) {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    (v[v.len() / 2], v[0], v[v.len() - 1])
}

fn sample(iters: usize, mut f: impl FnMut()) -> f64 {
    let t = Instant::now();
    for _ in 0..iters {
        f();
    }
    t.elapsed().as_secs_f64() * 1e6 / iters as f64
}

fn main() {
    let program = std::env::args()
        .skip(1)
        .find(|a| a.starts_with('/'))
        .unwrap_or_else(|| "/bin/true".into());
    let ns = Namespace::open("/".as_ref()).expect("open /");
    let envp = ["PATH=/bin:/usr/bin"];
    let argv = [program.as_str()];
    let cold: Vec<f64> = (0..15)
        .map(|_| {
            sample(20, || {
                let r = Resolver::new(Config::default());
                black_box(r.plan_exec(&ns, &program, &argv, &envp).unwrap());
            })
        })
        .collect();
    let r = Resolver::new(Config::default());
    // Warm plans and fork + exec + wait of /bin/true, sampled in turn.
    let (mut warm, mut spawn) = (Vec::new(), Vec::new());
    for _ in 0..15 {
        warm.push(sample(2000, || {
            drop(black_box(r.plan_exec(&ns, &program, &argv, &envp).unwrap()))
        }));
        spawn.push(sample(50, || {
            black_box(std::process::Command::new("/bin/true").status().unwrap());
        }));
    }
    let (c, clo, chi) = median_and_spread(cold);
    let (w, wlo, whi) = median_and_spread(warm);
    let (e, elo, ehi) = median_and_spread(spawn);
    println!("plan_exec {program} on /:");
    println!("  cold: median {c:.1} µs per plan (min {clo:.1}, max {chi:.1})");
    println!("  warm: median {w:.2} µs per plan (min {wlo:.2}, max {whi:.2})");
    println!("  fork + exec + wait of /bin/true: median {e:.0} µs (min {elo:.0}, max {ehi:.0})");
    println!("  warm/cold: {:.3}", w / c);
    println!("  warm plan / fork+exec+wait: {:.2} %", 100.0 * w / e);
}
