//! `containers.yaml`: the templates workspaces are started from.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The template itself is in `berth-types`: the API answers it too.
pub use berth_types::template::{BindMount, Persist, Shell, Template, Volume};

/// `containers.yaml`: the list of templates.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ContainersFile {
    /// The templates users may be allowed to start.
    #[serde(default)]
    pub templates: Vec<Template>,
}
