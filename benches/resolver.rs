//! `cargo bench --bench resolver`: plan_exec for a dynamic program on the
//! real root file system, cold (a fresh Resolver, nothing cached) and warm.
//! Wall-clock figures are printed as medians with their spread, and as a
//! ratio of warm to cold measured in the same run; the deterministic figure
//! (system calls per warm plan) is in benches/chainload-cost.sh.

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
    let warm: Vec<f64> = (0..15)
        .map(|_| {
            sample(500, || {
                drop(black_box(r.plan_exec(&ns, &program, &argv, &envp).unwrap()))
            })
        })
        .collect();
    let (c, clo, chi) = median_and_spread(cold);
    let (w, wlo, whi) = median_and_spread(warm);
    println!("plan_exec {program} on /:");
    println!("  cold: median {c:.1} µs per plan (min {clo:.1}, max {chi:.1})");
    println!("  warm: median {w:.1} µs per plan (min {wlo:.1}, max {whi:.1})");
    println!("  warm/cold: {:.2}", w / c);
}
