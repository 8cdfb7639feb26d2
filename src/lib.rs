#![doc = include_str!("../README.md")]
#![deny(unsafe_code)]
#![deny(missing_docs)]

pub use ldchain_embed as embed;
pub use ldchain_resolver as resolver;

pub mod jail;
pub mod nested;
pub mod sandbox;
pub mod throwaway;
