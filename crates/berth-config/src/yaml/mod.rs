//! The YAML reader, from `berth-yaml` (shared with the fleet's inventory files).

pub(crate) use berth_yaml::{Kind, Node, from_node, parse, push_key, truncate};
