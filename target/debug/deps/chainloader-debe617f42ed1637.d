/work/main/target/debug/deps/chainloader-debe617f42ed1637.d: chainloader/src/lib.rs chainloader/src/args.rs chainloader/src/elf.rs chainloader/src/error.rs chainloader/src/plan.rs chainloader/src/plan/tests.rs

/work/main/target/debug/deps/chainloader-debe617f42ed1637: chainloader/src/lib.rs chainloader/src/args.rs chainloader/src/elf.rs chainloader/src/error.rs chainloader/src/plan.rs chainloader/src/plan/tests.rs

chainloader/src/lib.rs:
chainloader/src/args.rs:
chainloader/src/elf.rs:
chainloader/src/error.rs:
chainloader/src/plan.rs:
chainloader/src/plan/tests.rs:
