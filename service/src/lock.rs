//! One poison-tolerant lock for the service's shared maps.

/// Lock `mutex` even if a thread panicked while holding it: the answer
/// cache and the job queue are complete after each update, so what a panic
/// leaves behind is still usable.
pub(crate) fn lock<T>(mutex: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// [`lock`] if nobody holds `mutex` now; None at once otherwise (for the
/// I/O thread, which must not wait behind a worker).
pub(crate) fn try_lock<T>(mutex: &std::sync::Mutex<T>) -> Option<std::sync::MutexGuard<'_, T>> {
    match mutex.try_lock() {
        Ok(guard) => Some(guard),
        Err(std::sync::TryLockError::Poisoned(e)) => Some(e.into_inner()),
        Err(std::sync::TryLockError::WouldBlock) => None,
    }
}
