//! YAML in: a line-aware tree under hard limits, and a serde deserializer over it that reports
//! every error with its line and field path.

mod de;
mod path;
mod scalar;
mod tree;

pub(crate) use de::from_node;
pub(crate) use path::push_key;
pub(crate) use tree::{Kind, Node, parse, truncate};
