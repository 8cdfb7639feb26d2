//! The host's processes, from `/proc`.

use std::fs;

/// The processes in process group `pgid` (their `/proc/PID/stat` lines).
pub fn members_of_group(pgid: u32) -> Vec<String> {
    fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| fs::read_to_string(e.ok()?.path().join("stat")).ok())
        .filter(|stat| {
            // pid (comm) state ppid pgrp ...: comm may hold spaces, not ')'.
            let rest = &stat[stat.rfind(')').unwrap() + 2..];
            rest.split(' ').nth(2) == Some(pgid.to_string().as_str())
        })
        .collect()
}

/// Host pids whose whole command line is `cmdline` (arguments each ended
/// by a NUL).
pub fn pids_with_cmdline(cmdline: &str) -> Vec<u32> {
    fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| c == cmdline.as_bytes()))
        .collect()
}
