//! ldchain
