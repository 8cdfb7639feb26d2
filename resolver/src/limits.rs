//! Limits shared across the resolver (its leaf: it imports nothing).

/// Why a lookup failed when it ran out of its budget.
pub(crate) const OVER_BUDGET: &str = "path lookup budget exceeded";

/// The longest path the resolver will build (`PATH_MAX`).
pub const PATH_MAX: usize = 4096;

/// Most entries in each cache before it is emptied (bounded memory under a
/// hostile stream of new files).
pub const MAX_CACHE_ENTRIES: usize = 4096;
