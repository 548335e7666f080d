//! UUID newtypes, so a user id is never passed where a workspace id is expected.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(Uuid);

        impl $name {
            /// A new random (version 4) id.
            #[must_use]
            pub fn random() -> Self {
                Self(Uuid::new_v4())
            }

            /// The id as a UUID.
            #[must_use]
            pub fn as_uuid(&self) -> Uuid {
                self.0
            }
        }

        impl From<Uuid> for $name {
            fn from(value: Uuid) -> Self {
                Self(value)
            }
        }

        impl FromStr for $name {
            type Err = uuid::Error;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s).map(Self)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.hyphenated().fmt(f)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.0.hyphenated())
            }
        }

        impl schemars::JsonSchema for $name {
            fn schema_name() -> std::borrow::Cow<'static, str> {
                stringify!($name).into()
            }

            fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
                schemars::json_schema!({ "type": "string", "format": "uuid" })
            }
        }
    };
}

uuid_id!(
    /// A user, stable across renames.
    UserId
);
uuid_id!(
    /// A workspace: one container started from a template.
    WorkspaceId
);
uuid_id!(
    /// One installation of the `berth` CLI or agent.
    ClientId
);
uuid_id!(
    /// One recorded terminal session.
    RecordingId
);
uuid_id!(
    /// A grid: up to four terminals on one page.
    GridId
);
uuid_id!(
    /// An operation: one run of an inventory script on a set of machines.
    OperationId
);
uuid_id!(
    /// An ephemeral Kubernetes cluster.
    ClusterId
);
uuid_id!(
    /// A one-time registration code made by an admin.
    InviteId
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_through_strings_and_json() {
        let id = WorkspaceId::random();
        let text = id.to_string();
        assert_eq!(text.parse::<WorkspaceId>().unwrap(), id);
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(json, format!("\"{text}\""));
        assert_eq!(serde_json::from_str::<WorkspaceId>(&json).unwrap(), id);
        assert!("not-a-uuid".parse::<UserId>().is_err());
    }
}
