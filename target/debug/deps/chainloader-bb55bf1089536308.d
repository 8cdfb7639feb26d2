/work/main/target/debug/deps/chainloader-bb55bf1089536308.d: chainloader/src/lib.rs chainloader/src/args.rs chainloader/src/elf.rs chainloader/src/error.rs chainloader/src/plan.rs

/work/main/target/debug/deps/libchainloader-bb55bf1089536308.rlib: chainloader/src/lib.rs chainloader/src/args.rs chainloader/src/elf.rs chainloader/src/error.rs chainloader/src/plan.rs

/work/main/target/debug/deps/libchainloader-bb55bf1089536308.rmeta: chainloader/src/lib.rs chainloader/src/args.rs chainloader/src/elf.rs chainloader/src/error.rs chainloader/src/plan.rs

chainloader/src/lib.rs:
chainloader/src/args.rs:
chainloader/src/elf.rs:
chainloader/src/error.rs:
chainloader/src/plan.rs:
