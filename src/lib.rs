#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub use ldchain_embed as embed;
pub use ldchain_resolver as resolver;
pub use ldchain_sandbox as sandbox;
pub use ldchain_service as service;
