//! Pure parsers over bytes: no I/O, so they are unit-tested and fuzzed on
//! their own. The resolver feeds them what it read from the namespace.

pub mod glob;
pub mod ldpath;
pub mod ldsoconf;
pub mod shebang;
