//! Other engines' formats for the same project (`rcompose convert`).

pub mod kubernetes;
