#!/usr/bin/env bash
# Mutation testing, small and honest: put realistic one-line bugs into the
# code one at a time and check that a targeted part of the test suite fails.
#
#   tools/mutants.sh                 run every mutant (a baseline first)
#   tools/mutants.sh NAME...         run only these mutants
#   tools/mutants.sh --list          list the mutants
#   tools/mutants.sh --check         only check that every mutant applies
#
# It never touches the tree it is run from: the tracked and untracked
# (non-ignored) files are copied to $MUTANTS_DIR/src, each mutant is applied
# there to its one file and undone after its tests, and cargo builds into
# $MUTANTS_DIR/target (kept between runs: dependencies are not rebuilt).
# Tests run with CI=true, so a skipped test would be a failure: the baseline
# (no mutant) must pass first, or nothing is reported.
#
# Outcomes: KILLED (the tests failed or timed out), SURVIVED (they passed),
# UNVIABLE (the mutant does not compile: not counted). Each mutant gets
# $MUTANT_TIMEOUT seconds (default 900) for its build and tests. Logs are in
# $MUTANTS_DIR/logs/NAME.log; the summary is printed and written to
# $MUTANTS_DIR/summary.txt.
set -uo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
MUTANTS_DIR=${MUTANTS_DIR:-${TMPDIR:-/tmp}/ldchain-mutants}
MUTANT_TIMEOUT=${MUTANT_TIMEOUT:-900}
src=$MUTANTS_DIR/src
export CARGO_TARGET_DIR=$MUTANTS_DIR/target
export CI=true
# Embed chainloaders built from the (mutated) source, not the committed blobs.
export LDCHAIN_CHAINLOADER_FROM_SOURCE=1

# Test selections (cargo test arguments; several are joined with " + ").
# The integration suite is one crate (tests/suite); its modules are chosen
# by name filters. Chosen for time: hostile:: (minutes), load.rs (a minute),
# gdb:: and ports:: are left out; MUTANTS_FULL=1 runs the whole workspace's
# tests (without the README's release build) for every mutant instead.
CL='--test suite -- chainloader:: signals::'
PLAN='-p ldchain-chainloader --lib'
EMBED='--test suite -- embed:: cli::install'
RES='--test suite -- resolver:: + --test resolver_fds + --test suite -- cli:: --skip readme_quick_start'
RESLIB='-p ldchain-resolver --lib'
BOUNDED='--test suite -- bounded::'
FDS='--test resolver_fds'
SVCLIB='-p ldchain-service --lib'

if [ -n "${MUTANTS_FULL:-}" ]; then
    CL='--workspace -- --skip readme_quick_start' PLAN=$CL EMBED=$CL RES=$CL RESLIB=$CL BOUNDED=$CL FDS=$CL SVCLIB=$CL
fi

names=() files=() froms=() tos=() tests=()
# m NAME FILE FROM TO TESTS: replace the one occurrence of FROM in FILE by TO.
m() { names+=("$1"); files+=("$2"); froms+=("$3"); tos+=("$4"); tests+=("$5"); }

# --- The chainloader -------------------------------------------------------
m close-fd-kept chainloader/src/rt/load.rs \
    'sys::close(fd).map_err(|e| at_fd(Reason::Close, e))?;' \
    'let _ = fd;' "$CL"
m bss-not-zeroed chainloader/src/plan.rs \
    'data_end & !mask != W::ZERO && ph.p_flags & PF_W != 0' \
    'data_end & !mask != W::ZERO && false' "$CL + $PLAN"
m at-entry-unbiased chainloader/src/rt/load.rs \
    '            usize::from(plan.phnum),
            entry,' \
    '            usize::from(plan.phnum),
            plan.entry.to_usize(),' "$CL"
m at-phdr-unbiased chainloader/src/rt/load.rs \
    'bias.wrapping_add(plan.phdr.to_usize()),' \
    'plan.phdr.to_usize(),' "$CL"
m at-base-nonzero chainloader/src/rt/stack.rs \
    'set(at_base, 0);' \
    'set(at_base, phdr & !0xfff);' "$CL"
m comm-slash-below-arg0 chainloader/src/rt/stack.rs \
    'return if after > s { after as *const u8 } else { start };' \
    'return after as *const u8;' "$CL"
m comm-bytes-past-arg0 chainloader/src/rt/stack.rs \
    'let slashes = !(((x & LOW7) + LOW7) | x | LOW7) & keep;' \
    'let slashes = !(((x & LOW7) + LOW7) | x | LOW7) & (keep | !keep);' "$CL"
m comm-inexact-slash chainloader/src/rt/stack.rs \
    'let slashes = !(((x & LOW7) + LOW7) | x | LOW7) & keep;' \
    'let slashes = x.wrapping_sub(ONES) & !x & !LOW7 & keep;' "$CL"
m auxv-walk-stops-early chainloader/src/rt/stack.rs \
    'if found & WANTED == WANTED {' \
    'if found & WANTED != 0 {' "$CL"
m loads-end-short chainloader/src/plan.rs \
    'loads_end = i + 1;' \
    'loads_end = i;' "$CL + $PLAN"
m wx-accepted chainloader/src/plan.rs \
    'if ph.p_flags & PF_W != 0 && ph.p_flags & PF_X != 0 {' \
    'if false && ph.p_flags & PF_W != 0 && ph.p_flags & PF_X != 0 {' "$CL + $PLAN"
m interp-accepted chainloader/src/plan.rs \
    'PT_INTERP => return Err(ph_err(i, Reason::Interp)),' \
    'PT_INTERP => {}' "$CL + $PLAN"
m entry-outside-accepted chainloader/src/plan.rs \
    'if !entry_ok {' \
    'if false && !entry_ok {' "$CL + $PLAN"
m align-not-power-of-two chainloader/src/plan.rs \
    '    if p_align.is_power_of_two() {' \
    '    if p_align != W::ZERO {' "$CL + $PLAN"
m limit-excluded chainloader/src/plan.rs \
    'Some(end) if end <= limit =>' \
    'Some(end) if end < limit =>' "$CL + $PLAN"
m limit-unaligned chainloader/src/plan.rs \
    'let limit = page_down(A::Word::from_u64(target.addr_limit), page);' \
    'let limit = A::Word::from_u64(target.addr_limit) + A::Word::ONE;' "$CL + $PLAN"
m no-comm chainloader/src/rt/start.rs \
    'unsafe { sys::set_name(name) }.map_err(|e| Error::sys(Subject::Image, Reason::SetName, e))?;' \
    'let _ = name;' "$CL"
m no-eintr-retry chainloader/src/rt/sys.rs \
    'if ret != -(EINTR as isize) {' \
    'if ret != -(EINTR as isize) || true {' "$CL"
m close-retried chainloader/src/rt/sys.rs \
    'match result(unsafe { syscall1(__NR_close, fd as usize) })' \
    'match retry(|| unsafe { syscall1(__NR_close, fd as usize) })' "$CL"
m gaps-accessible chainloader/src/rt/load.rs \
    'sys::mprotect(at(prev_end), (seg.start - prev_end).to_usize(), 0)' \
    'sys::mprotect(at(prev_end), (seg.start - prev_end).to_usize(), 1)' "$CL"
m et-exec-clobbers chainloader/src/rt/load.rs \
    'MAP_PRIVATE | MAP_FIXED_NOREPLACE, span)' \
    'MAP_PRIVATE | MAP_FIXED, span)' "$CL"
m argc-off-by-one chainloader/src/rt/stack.rs \
    '*new_sp = self.argc - n;' \
    '*new_sp = self.argc - n + 1;' "$CL"

# --- The installer ---------------------------------------------------------
m installer-follows-symlink embed/src/lib.rs \
    'OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC,' \
    'OFlags::RDONLY | OFlags::NONBLOCK | OFlags::CLOEXEC,' "$EMBED"
m no-fsync-file embed/src/lib.rs \
    'rfs::fsync(&fd).map_err(io_err(&tmp_path, "cannot fsync"))?;' \
    '' "$EMBED"
m no-fsync-dir embed/src/lib.rs \
    'rfs::fsync(dir).map_err(io_err(jail, "cannot fsync the jail directory"))?;' \
    '' "$EMBED"
m no-excl-nofollow embed/src/lib.rs \
    'OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC' \
    'OFlags::WRONLY | OFlags::CREATE | OFlags::CLOEXEC' "$EMBED"
m no-excl embed/src/lib.rs \
    'OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC' \
    'OFlags::WRONLY | OFlags::CREATE | OFlags::NOFOLLOW | OFlags::CLOEXEC' "$EMBED"
m umask-decides-mode embed/src/lib.rs \
    'rfs::fchmod(&fd, Mode::from_raw_mode(0o755)).map_err(io_err(&tmp_path, "cannot set mode"))?;' \
    '' "$EMBED"
m unchanged-without-comparing embed/src/blobs.rs \
    ' && crate::read::read_up_to(fd, self.bytes.len()).is_ok_and(|got| got == self.bytes)' \
    '' "$EMBED"
m check-escapes-jail embed/src/check.rs \
    'ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,' \
    'ResolveFlags::NO_MAGICLINKS,' "$EMBED"

# --- The resolver ----------------------------------------------------------
m secure-mode-ignored resolver/src/plan/search.rs \
    'from_env: !secure,' \
    'from_env: true,' "$RES"
m setgid-without-group-exec resolver/src/plan/script.rs \
    '(mode & 0o2000 != 0 && mode & 0o010 != 0)' \
    '(mode & 0o2000 != 0)' "$RES"
m resolve-in-root-dropped resolver/src/walk/kernel.rs \
    'const RESOLVE: ResolveFlags = ResolveFlags::IN_ROOT.union(ResolveFlags::NO_MAGICLINKS);' \
    'const RESOLVE: ResolveFlags = ResolveFlags::NO_MAGICLINKS;' "$RES"
m search-order-swapped resolver/src/plan/search.rs \
    'let value = from_env.or_else(|| self.resolver.config.default_ldso_path.clone())?;' \
    'let value = from_env.or_else(|| self.resolver.config.default_ldso_path.clone()).filter(|_| self.getenv(b"LD_LIBRARY_PATH").is_none())?;' "$RES"
m enoent-for-eacces resolver/src/error.rs \
    'ExecError::PermissionDenied { .. } => libc::EACCES,' \
    'ExecError::PermissionDenied { .. } => libc::ENOENT,' "$RES"
m script-depth-50 resolver/src/plan/config.rs \
    'pub(crate) const MAX_SCRIPT_DEPTH: usize = 5;' \
    'pub(crate) const MAX_SCRIPT_DEPTH: usize = 50;' "$RES"
m noexec-program-allowed resolver/src/plan/script.rs \
    '} else if file.on_noexec_mount() {' \
    '} else if false && file.on_noexec_mount() {' "$RES"
m noexec-ldso-allowed resolver/src/plan/search.rs \
    'if file.on_noexec_mount() {
            return Err(' \
    'if false && file.on_noexec_mount() {
            return Err(' "$RES"
m wrong-arch-unchecked resolver/src/elfinfo.rs \
    'if info.machine != machine {' \
    'if false && info.machine != machine {' "$RES + $RESLIB"
# (A file with no execute bit at all is also refused by the rights check
# below, for root too: disabling only the bit test changes nothing.)
m program-exec-unchecked resolver/src/plan/script.rs \
    '} else if !ns.may_exec(file) {' \
    '} else if false && !ns.may_exec(file) {' "$RES + --test suite -- rights::"
m musl-ldd-mode resolver/src/plan.rs \
    'arg0.push(b'"'"'/'"'"');' \
    '' "$RES"
m memo-believed-unchecked resolver/src/walk.rs \
    'if !entry.still_holds(root) {' \
    'if false && !entry.still_holds(root) {' "$BOUNDED"
m memo-dir-identity-is-inode resolver/src/walk/memo.rs \
    'rfs::fstat(dir).is_ok_and(|st| FileId::of(&st) == *id)' \
    'rfs::fstat(dir).is_ok_and(|st| (st.st_dev, st.st_ino) == (id.dev, id.ino))' "$BOUNDED"
m dotdot-is-a-name resolver/src/walk.rs \
    'if name == b".." {' \
    'if false && name == b".." {' "$BOUNDED"
m memo-links-unchecked resolver/src/walk/memo.rs \
    '.all(|(_, name, want)| link_id(dir, name) == Some(*want))' \
    '.all(|(_, name, want)| true || link_id(dir, name) == Some(*want))' "$BOUNDED"
m memo-never-consulted resolver/src/walk.rs \
    'known_failure(&key, lookups).or_else(|| remembered(root, &key, lookups))' \
    'known_failure(&key, lookups)' "$BOUNDED"
m memo-racy-ctime-trusted resolver/src/walk/memo.rs \
    'self.unusable |= (id.ctime, id.ctime_nsec) >= self.settled_before;' \
    '' "$RESLIB"
m glob-unclosed-rescanned resolver/src/parse/glob.rs \
    "                b'[' if last_close.is_none_or(|l| l <= i + 1) => (Elem::Byte(b'['), 1)," \
    "                b'[' if false => (Elem::Byte(b'['), 1)," "$RESLIB"
m emfile-is-a-rejection resolver/src/plan/search.rs \
    'Err(e) if e.is_resource_shortage() => {' \
    'Err(e) if false && e.is_resource_shortage() => {' "$FDS"
m conf-budget-per-file resolver/src/conf.rs \
    'let opened = match self.ns.open_file_in(path, &mut self.lookups) {' \
    'let opened = match self.ns.open_file(path) {' "$BOUNDED"

m stubs-resolved-on-the-host embed/src/lib.rs \
    'let in_root = rfs::ResolveFlags::IN_ROOT | rfs::ResolveFlags::NO_MAGICLINKS;' \
    'let in_root = rfs::ResolveFlags::NO_MAGICLINKS;' "$EMBED"
m stubs-replace-the-jails-ldso embed/src/lib.rs \
    'return Ok(installed(Outcome::Kept));' \
    '{}' "$EMBED"

# --- Warm plans: never stale ----------------------------------------------
WARM='--test suite -- fresh::'
m warm-change-ignored resolver/src/plan/warm.rs \
    'if self.changes.changed() {' \
    'if false && self.changes.changed() {' "$WARM"
m warm-mounts-ignored resolver/src/watch.rs \
    'match rustix::event::poll(&mut fds, Some(&zero)) {' \
    'match rustix::event::poll(&mut fds[..1], Some(&zero)) {' "$WARM"
m warm-other-mount-table-trusted resolver/src/watch.rs \
    'let seen = mount_listed(&self.mounts, id);' \
    'let seen = true;' "$WARM"
m warm-credentials-not-keyed resolver/src/plan/warm.rs \
    'let who = ns.credentials().cloned();' \
    'let who = None::<Credentials>;' "$WARM"
m warm-mapped-writes-unseen resolver/src/plan/warm.rs \
    'if !watch::unchanged(&self.kept.files) {' \
    'if false && !watch::unchanged(&self.kept.files) {' "$WARM"
m warm-image-unchecked resolver/src/plan/warm.rs \
    '.is_ok_and(|st| FileId::of(&st) == self.kept.image_id)' \
    '.is_ok_and(|_| true)' "$WARM"
m warm-dirs-on-the-way-unwatched resolver/src/watch.rs \
    '                    self.watch(fd.as_fd(), &st)?;
                    dirs.push(fd);' \
    '                    dirs.push(fd);' "$WARM"

m warm-child-reads-parents-reports resolver/src/plan/warm.rs \
    'if state.plans.is_empty() || state.pid != std::process::id() {' \
    'if state.plans.is_empty() {' '--test warm_fork'
m waitable-shares-mount-report resolver/src/watch.rs \
    'epoll::add(&ep, &mounts, epoll::EventData::new_u64(1), epoll::EventFlags::PRI)?;' \
    'epoll::add(&ep, &self.mounts, epoll::EventData::new_u64(1), epoll::EventFlags::PRI)?;' "$WARM"
m svc-mapped-writes-unseen service/src/cache.rs \
    'if !watch::unchanged(&variant.files) {' \
    'if false && !watch::unchanged(&variant.files) {' "$WARM"
m batch-compares-first-only service/src/cache.rs \
    'if !compared.contains(&variant.serial) {' \
    'if compared.is_empty() {' "$WARM"
m standing-never-checked service/src/server.rs \
    '            self.check_standing();' \
    '            let _ = Self::check_standing;' "$WARM"
m standing-check-not-rearmed service/src/server.rs \
    'Ok(Some(true)) | Err(_) => (Some(now + STANDING_CHECK), false),' \
    'Ok(Some(true)) | Err(_) => (None, false),' "$WARM"
m standing-check-not-armed-by-workers service/src/server.rs \
    'self.standing_check
                            .get_or_insert_with(|| Instant::now() + STANDING_CHECK);' \
    'let _ = STANDING_CHECK;' "$WARM"
m standing-check-keeps-changed service/src/cache.rs \
    '        if changed {
            state.clear();' \
    '        if false && changed {
            state.clear();' "$WARM"

# --- Nested exec: standing answers ---------------------------------------
NEST='--test suite -- nested::'
m env-name-prefix-matches chainloader/src/rt/stack.rs \
    "if n == name.len() && entry.add(n).read_volatile() == b'=' {" \
    'if n == name.len() {' "$NEST"
m standing-never-taken chainloader/src/rt/interp.rs \
    'if let Some(entry) = answered(interp, vars, cwd, execfn, stack) {' \
    'if let Some(entry) = answered(interp, vars, cwd, execfn, stack).filter(|_| false) {' "$NEST"
m standing-despite-env chainloader/src/rt/interp.rs \
    'answered(interp, vars, cwd, execfn, stack)' \
    'answered(interp, [None, None], cwd, execfn, stack)' "$NEST"
m keyed-standing-despite-secure chainloader/src/rt/interp.rs \
    '    if !secure {' \
    '    if true {' "$NEST"
m keyed-never-published service/src/lib.rs \
    'if request.secure || secure || answer.depends_on_rights || !held {' \
    'if request.secure || secure || answer.depends_on_rights || !held || vars != [None, None] {' "$NEST"
m keyed-name-without-cwd chainloader/src/proto.rs \
    '(needs & NEEDS_CWD != 0).then_some(cwd),' \
    'None,' "$PLAN + $NEST"
m keyed-name-without-origin chainloader/src/proto.rs \
    '(needs & NEEDS_EXECFN != 0).then_some(execfn),' \
    'None,' "$PLAN + $NEST"
m keyed-semicolon-not-a-separator chainloader/src/proto.rs \
    "entry_start = b == b':' || b == b';';" \
    "entry_start = b == b':';" "$PLAN"
m keyed-marker-forgeable chainloader/src/proto.rs \
    "if b == b'/' || b == b'%' {" \
    "if b == b'/' {" "$PLAN"
m stale-answer-stands service/src/server.rs \
    'self.source.refresh();' \
    '{}' "$NEST"
m keeper-lingers sandbox/src/boundary.rs \
    'while let Err(rustix::io::Errno::INTR) | Ok(1..) = rustix::io::read(' \
    'std::thread::sleep(std::time::Duration::from_secs(30)); while let Err(rustix::io::Errno::INTR) | Ok(1..) = rustix::io::read(' "$NEST"
m jail-dir-kept sandbox/src/boundary.rs \
    'let _ = rustix::fs::rmdir(dir.as_c_str());' \
    'let _ = dir;' '--test suite -- life::'
m keeper-holds-epoll service/src/lib.rs \
    'self.cache.as_ref().map(AnswerCache::lasting)' \
    'self.cache.as_ref().map(AnswerCache::changes)' "$NEST"
m ahead-not-left src/cli/run.rs \
    'let ahead = first.as_ref().and_then(|request| source.stand_ahead(request, &creds));' \
    'let ahead = first.as_ref().and_then(|request| source.stand_ahead(request, &creds)).filter(|_| false);' "$NEST"
m standing-despite-cwd service/src/lib.rs \
    'let held = (!cwd || needs & proto::NEEDS_CWD != 0)' \
    'let held = (true || needs & proto::NEEDS_CWD != 0)' "$NEST"

# --- The stub's interp mode -------------------------------------------------
m standing-fd-leaks chainloader/src/rt/interp.rs \
    'let _ = sys::close(fd);
            None' \
    'None' "$NEST"
m last-pt-interp chainloader/src/interp.rs \
    'PT_INTERP if interp.is_none() => interp' \
    'PT_INTERP => interp' "$NEST"

# --- The boundary: what the program keeps ------------------------------------
BOUND='--test suite -- sandbox::'
m capbnd-low-only sandbox/src/boundary.rs \
    'for cap in 0..64 {' \
    'for cap in 0..32 {' "$BOUND"
m groups-kept sandbox/src/boundary.rs \
    'rustix::thread::set_thread_groups(&[])?;' \
    '' "$BOUND"
m old-root-stays sandbox/src/boundary.rs \
    'mount::unmount(c".", UnmountFlags::DETACH)?;' \
    '' "$BOUND"
m host-root-unentered sandbox/src/boundary.rs \
    'c"/.."' \
    'self.root.as_c_str()' '--test suite -- cli::run_with_the_host_root'
m cwd-ignored sandbox/src/boundary.rs \
    'rustix::process::chdir(self.cwd.as_c_str())' \
    'rustix::process::chdir(c"/")' "$BOUND"
m nnp-dropped sandbox/src/boundary.rs \
    'rustix::thread::set_no_new_privs(true)' \
    'rustix::thread::set_no_new_privs(false)' "$BOUND"
m gate-ignored sandbox/src/boundary.rs \
    '            gate.pass()?;' \
    '            let _ = gate;' "$BOUND"
m ids-ignored sandbox/src/boundary.rs \
    'self.ids = (uid, gid);' \
    'let _ = (uid, gid);' "$BOUND"

# --- A jail to live in: lifetime, signals, /dev, bwrap's options -------------
LIFE='--test suite -- life:: bwrap::'
# That the jail ends with its program is held three times over (the init
# kills the rest, then exits; ldchain's exit kills the init, PDEATHSIG):
# no one-line mutant of it changes what a test can see. --wait-all is one.
m wait-all-ignored src/cli/run.rs \
    '.wait_all(args.wait_all);' \
    '.wait_all(false);' "$LIFE"
m signals-ignored sandbox/src/signals.rs \
    'act.sa_sigaction = forward as extern "C" fn(libc::c_int) as usize;' \
    'act.sa_sigaction = libc::SIG_IGN;' "$LIFE"
m status-not-signal src/cli/run.rs \
    '(None, Some(sig)) => Ending::Signal(sig),' \
    '(None, Some(sig)) => ExitCode::from(128 + sig as u8).into(),' "$LIFE"
# (Dying by the signal before `go` returns leaves nothing either: the
# throwaway jail is removed by the child that outlives ldchain, however
# ldchain ends; jail-dir-kept holds that removal.)
m sigpipe-ignored sandbox/src/boundary.rs \
    'signals::reset_for_exec();' \
    'signals::unblock();' "$BOUND"
m lo-stays-down sandbox/src/boundary.rs \
    'loopback_up()?;' \
    'let _ = loopback_up;' "$LIFE"
m ptmx-nowhere sandbox/src/view.rs \
    '("ptmx", "pts/ptmx"),' \
    '("ptmx", "/dev/null"),' "$LIFE"
m seccomp-ignored sandbox/src/boundary.rs \
    'load_seccomp(program)?;' \
    'let _ = program;' "$LIFE"

# --- The jail's view: built from descriptors --------------------------------
VIEW='--test suite -- view::'
m view-follows-symlinks sandbox/src/mount.rs \
    '    OFlags::NOFOLLOW,
    ResolveFlags::NO_SYMLINKS.union(ResolveFlags::NO_MAGICLINKS),' \
    '    OFlags::empty(),
    ResolveFlags::empty(),' "$VIEW"
m mirror-follows-entry sandbox/src/view.rs \
    'let flags = OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC;' \
    'let flags = OFlags::PATH | OFlags::CLOEXEC;' "$VIEW"
m ro-bind-top-only sandbox/src/view.rs \
    'set_attrs(tree.as_fd(), true, attrs)?;' \
    'set_attrs(tree.as_fd(), false, attrs)?;' "$VIEW"
m mirrors-stay-writable sandbox/src/view.rs \
    'set_read_only(mirror.as_fd(), false)?;' \
    'let _ = mirror;' "$VIEW"
m mirror-mode-default sandbox/src/view.rs \
    'let mode = CString::new(format!("{:o}", st.st_mode & 0o7777))?;' \
    'let mode = CString::new("755")?;' "$VIEW"
m jails-chainloader-never-current sandbox/src/view.rs \
    'is_ok_and(|fd| holds(&fd, b))' \
    'is_ok_and(|fd| false && holds(&fd, b))' "$VIEW"
m shared-dir-bound-whole src/cli/binds.rs \
    'm.permissions().mode() & 0o1002 == 0o1002' \
    'm.permissions().mode() & 0o1002 == 0o7777' "$VIEW"
# --- The exec service acts with its client's rights ----------------------
RIGHTS='--test suite -- rights::'
m creds-from-nowhere resolver/src/creds.rs \
    '    let Some(who) = who else { return Ok(None) };' \
    '    let Some(_who) = who else { return Ok(None) }; return Ok(None); #[allow(unreachable_code)] let who = _who;' "$RIGHTS"
m caps-kept resolver/src/creds.rs \
    '    rustix::thread::set_capabilities(None, none).map_err(|e| fail("capset", e.into()))?;' \
    '    let _ = none;' "$RIGHTS"
m exec-not-required resolver/src/plan/search.rs \
    '                Ok(()) if !self.ns.may_exec(&file) => {' \
    '                Ok(()) if false && !self.ns.may_exec(&file) => {' "$RIGHTS"
m creds-not-restored resolver/src/creds.rs \
    '        ok &= sys::set_fsuid(self.fsuid).is_ok();' \
    '        ok &= true;' "$RIGHTS"
m answer-shared-across-clients service/src/cache.rs \
    '            client: client.clone(),' \
    '            client: Credentials { uid: 0, gid: 0, groups: vec![] },' "$RIGHTS"
m interp-denied-is-enoent resolver/src/plan/search.rs \
    '        if found.is_none() && self.interp_denied {' \
    '        if found.is_none() && self.interp_denied && false {' "$RIGHTS"
m ahead-kept service/src/lib.rs \
    'if stands.as_ref() != Some(&name) {' \
    'if false && stands.as_ref() != Some(&name) {' "$RIGHTS"
m standing-despite-rights service/src/lib.rs \
    'answer.depends_on_rights ||' \
    'false ||' "$RIGHTS"
m cached-despite-rights service/src/lib.rs \
    'if key.is_some() && !first.depends_on_rights => {' \
    'if key.is_some() => {' "$RIGHTS"

# --- What one request may cost the trusted process -------------------------
SVC='--test service'
m accept-unbounded service/src/server.rs \
    'const ACCEPT_BATCH: usize = 64;' \
    'const ACCEPT_BATCH: usize = usize::MAX;' "$SVC"
m fd-per-entry service/src/cache.rs \
    '            .or_insert_with(|| Arc::new(fd))
            .clone();' \
    '            .or_insert_with(|| Arc::new(fd))
            .clone();
        let fd = Arc::new(rustix::io::dup(&*fd).unwrap());' "$SVC"
m cwd-kept-in-key service/src/cache.rs \
    'cwd: depends.cwd.then(|| request.cwd.clone()),' \
    'cwd: Some(request.cwd.clone()),' "$SVC"
m origin-left-out-of-key service/src/cache.rs \
    'origin: depends.origin.then(|| request.origin().to_vec()),' \
    'origin: None,' "$SVC"
m relative-left-out-of-key service/src/lib.rs \
    'let cwd = answer.depends_on_cwd ||' \
    'let cwd = false ||' "$SVC"
m watch-limit-unchecked service/src/cache.rs \
    'pub const MAX_WATCHES_PER_ANSWER: usize = 256;' \
    'pub const MAX_WATCHES_PER_ANSWER: usize = usize::MAX;' "$SVC"
m consulted-unbounded resolver/src/plan/search.rs \
    '        if self.tried.len() <= MAX_CONSULTED {' \
    '        if true {' "$SVC"
m skipped-kept-by-service resolver/src/plan.rs \
    '.keep_skipped(0);' \
    ';' "$SVC"
m generation-after-watches service/src/lib.rs \
    '        let Watched { traced, generation } = watched;' \
    '        let Watched { traced, generation: _ } = watched;
        let generation = cache.generation();' "$SVCLIB"
m watched-kept-after-change resolver/src/watch.rs \
    '        self.local_devices.clear();
        self.watched.clear();' \
    '        self.local_devices.clear();' "$WARM"
m no-evict-on-emfile service/src/lib.rs \
    '                    cache.evict();' \
    '                    let _ = cache;' "$SVC"
m request-taken-not-peeked service/src/server.rs \
    '        if self.buf.is_empty() {
            if let Some(progress) = self.peek(chunk) {' \
    '        if false {
            if let Some(progress) = self.peek(chunk) {' "$SVC"
m description-shared service/src/server.rs \
    '            Ok(own) => reply_fd(stream, &own, stats),' \
    '            Ok(_own) => reply_fd(stream, fd, stats),' "$SVC"
m io-thread-waits-for-cache service/src/cache.rs \
    'let Some(state) = crate::lock::try_lock(&self.state) else {' \
    'let Some(state) = Some(self.lock()) else {' "$SVCLIB"
m batch-flushed-only-after-accepting service/src/server.rs \
    '            self.answer_ready();
            self.expire();' \
    '            self.expire();' "$SVC"
m worker-panic-uncaught service/src/server.rs \
    '        match std::panic::catch_unwind(AssertUnwindSafe(|| source.ldso(&job.request, &job.client))) {' \
    '        match Ok::<_, ()>(source.ldso(&job.request, &job.client)) {' "$SVC"
m nofile-not-raised service/src/server.rs \
    '        raise_nofile_limit();' \
    '        let _ = raise_nofile_limit;' "$SVC"
m kernel-walk-not-charged resolver/src/walk.rs \
    '        Some(left) => lookups.kernel = left,' \
    '        Some(_left) => {}' "$BOUNDED"
m limit-not-named resolver/src/plan/search.rs \
    '            self.limit.get_or_insert(CONF_DIRS_LIMIT);' \
    '            let _ = CONF_DIRS_LIMIT;' "$BOUNDED"

# --- An FsOp server from the public API (examples/fsop.rs) -----------------
FSOP='--test suite -- fsop'
m service-socket-owner-only sandbox/src/view.rs \
    'Mode::from_raw_mode(0o666), AtFlags::empty())?;' \
    'Mode::from_raw_mode(0o600), AtFlags::empty())?;' "$FSOP"

# ---------------------------------------------------------------------------

apply() { # FILE FROM TO: exactly one occurrence, or fail
    perl -e '
        my ($f, $from, $to) = @ARGV;
        open my $h, "<", $f or die "$f: $!\n";
        local $/; my $s = <$h>; close $h;
        my $n = () = $s =~ /\Q$from\E/g;
        die "$f: the text to replace occurs $n times, not once\n" unless $n == 1;
        $s =~ s/\Q$from\E/$to/;
        open $h, ">", $f or die "$f: $!\n"; print $h $s; close $h;
    ' "$@"
}

run_tests() { # SELECTION LOG: every group of "cargo test" arguments must pass
    local groups group
    IFS='+' read -r -a groups <<<"$1"
    for group in "${groups[@]}"; do
        # shellcheck disable=SC2086 # word splitting is the point
        (cd "$src" && timeout --kill-after=30 "$MUTANT_TIMEOUT" cargo test $group) >>"$2" 2>&1 || return 1
    done
}

build_tests() { # SELECTION LOG
    local groups group
    IFS='+' read -r -a groups <<<"$1"
    for group in "${groups[@]}"; do
        group=${group%% -- *}
        # shellcheck disable=SC2086
        (cd "$src" && timeout "$MUTANT_TIMEOUT" cargo test --no-run $group) >>"$2" 2>&1 || return 1
    done
}

case "${1:-}" in
--list)
    for i in "${!names[@]}"; do printf '%-28s %s\n' "${names[$i]}" "${files[$i]}"; done
    exit 0
    ;;
-h | --help)
    sed -n '2,/^set -uo/p' "$0" | sed '$d; s/^# \{0,1\}//'
    exit 0
    ;;
esac

# A fresh copy of the tree as it is now (committed or not), without build
# output. New mtimes (tar -m): the target directory may hold a build of the
# last mutant of an earlier run, which must not look fresh.
rm -rf "$src"
mkdir -p "$src" "$MUTANTS_DIR/logs"
(cd "$repo" && git ls-files -z --cached --others --exclude-standard | tar --null -T - -cf -) |
    tar -xmf - -C "$src"

if [ "${1:-}" = --check ]; then
    bad=0
    for i in "${!names[@]}"; do
        f=$src/${files[$i]}
        cp "$f" "$f.orig"
        if apply "$f" "${froms[$i]}" "${tos[$i]}"; then echo "ok   ${names[$i]}"; else echo "FAIL ${names[$i]}"; bad=1; fi
        mv "$f.orig" "$f"
    done
    exit $bad
fi

selected=("$@")
want() { [ ${#selected[@]} -eq 0 ] && return 0; local s; for s in "${selected[@]}"; do [ "$s" = "$1" ] && return 0; done; return 1; }

# The baseline: every selection in use must pass on the unmutated tree.
declare -A seen=()
log=$MUTANTS_DIR/logs/baseline.log
: >"$log"
for i in "${!names[@]}"; do
    want "${names[$i]}" || continue
    t=${tests[$i]}
    [ -n "${seen[$t]:-}" ] && continue
    seen[$t]=1
    echo "baseline: cargo test ${t}"
    if ! run_tests "$t" "$log"; then
        echo "the baseline fails (see $log): fix the tests first" >&2
        exit 2
    fi
done

killed=0 survived=0 unviable=0
summary=$MUTANTS_DIR/summary.txt
: >"$summary"
for i in "${!names[@]}"; do
    name=${names[$i]}
    want "$name" || continue
    f=$src/${files[$i]}
    log=$MUTANTS_DIR/logs/$name.log
    cp "$f" "$f.orig"
    if ! apply "$f" "${froms[$i]}" "${tos[$i]}" 2>"$log"; then
        mv "$f.orig" "$f"
        echo "the mutant $name no longer applies: $(cat "$log")" >&2
        exit 2
    fi
    start=$SECONDS
    if ! build_tests "${tests[$i]}" "$log"; then
        outcome=UNVIABLE
        unviable=$((unviable + 1))
    elif run_tests "${tests[$i]}" "$log"; then
        outcome=SURVIVED
        survived=$((survived + 1))
    else
        outcome=KILLED
        killed=$((killed + 1))
    fi
    # Restore with a new mtime, so that cargo rebuilds.
    cat "$f.orig" >"$f" && rm "$f.orig"
    line=$(printf '%-9s %-28s %4ss  %s' "$outcome" "$name" $((SECONDS - start)) "${files[$i]}")
    echo "$line" | tee -a "$summary"
done
total=$((killed + survived))
rate=$([ $total -gt 0 ] && echo $((100 * killed / total)) || echo 0)
echo "killed $killed of $total viable mutants ($rate%); $unviable unviable" | tee -a "$summary"
[ "$survived" -eq 0 ]
