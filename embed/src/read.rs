//! Reading a jail's file without moving its offset.

/// Up to `max` bytes from the start of the file open on `fd` (fewer if it
/// is shorter), read with `pread`: the file offset is not used.
pub(crate) fn read_up_to(fd: &rustix::fd::OwnedFd, max: usize) -> rustix::io::Result<Vec<u8>> {
    let mut buf = vec![0u8; max];
    let mut done = 0;
    while done < max {
        match rustix::io::retry_on_intr(|| rustix::io::pread(fd, &mut buf[done..], done as u64))? {
            0 => break,
            n => done += n,
        }
    }
    buf.truncate(done);
    Ok(buf)
}
