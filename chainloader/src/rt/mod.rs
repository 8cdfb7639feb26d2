//! The runtime: what acts on the process. Only these modules and `arch/`
//! contain `unsafe`; each says why in its own `# Safety` section.

pub mod interp;
pub mod load;
pub mod mem;
pub mod stack;
pub mod start;
pub mod sys;
