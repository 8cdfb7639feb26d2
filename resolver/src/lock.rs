//! One poison-tolerant lock for the resolver's shared maps.

/// Lock `mutex` even if a thread panicked while holding it: every shared
/// map here (the resolver's caches, the failures it remembers) is complete
/// after each update, so what a panic leaves behind is still usable.
pub(crate) fn lock<T>(mutex: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}
