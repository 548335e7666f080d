//! The engine's event stream (`GET /events`) as [`ContainerEvent`]s: container `create`,
//! `start`, `die` and `destroy` events of Berth's containers.

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use bollard::models::{EventMessage, EventMessageTypeEnum};
use bollard::query_parameters::EventsOptionsBuilder;
use futures_util::StreamExt;

use super::DockerRuntime;
use super::containers::managed_with;
use crate::runtime::ContainerEvents;
use crate::state::{ContainerEvent, ContainerEventKind, ContainerId};

impl DockerRuntime {
    pub(super) fn container_events(
        &self,
        labels: &BTreeMap<String, String>,
        since: Option<SystemTime>,
    ) -> ContainerEvents {
        let mut filters = managed_with(labels);
        filters.insert("type", vec!["container".to_owned()]);
        let actions = ["create", "start", "die", "destroy"];
        filters.insert("event", actions.map(str::to_owned).to_vec());
        let mut options = EventsOptionsBuilder::new().filters(&filters);
        let since = since.map(engine_time);
        if let Some(since) = &since {
            options = options.since(since);
        }
        let this = self.clone();
        self.docker
            .events(Some(options.build()))
            .filter_map(move |item| {
                let event = match item {
                    Ok(message) => event_of(message).map(Ok),
                    Err(err) => Some(Err(this.classify("watch events", err))),
                };
                std::future::ready(event)
            })
            .boxed()
    }
}

/// `since` as the engine reads it: Unix seconds with nanoseconds.
fn engine_time(at: SystemTime) -> String {
    let since = at.duration_since(UNIX_EPOCH).unwrap_or_default();
    format!("{}.{:09}", since.as_secs(), since.subsec_nanos())
}

fn event_of(message: EventMessage) -> Option<ContainerEvent> {
    if message.typ != Some(EventMessageTypeEnum::CONTAINER) {
        return None;
    }
    let actor = message.actor?;
    let labels: BTreeMap<String, String> =
        actor.attributes.unwrap_or_default().into_iter().collect();
    let kind = match message.action.as_deref()? {
        "create" => ContainerEventKind::Created,
        "start" => ContainerEventKind::Started,
        "die" => ContainerEventKind::Died {
            exit_code: labels.get("exitCode").and_then(|code| code.parse().ok()),
        },
        "destroy" => ContainerEventKind::Destroyed,
        _ => return None,
    };
    Some(ContainerEvent {
        id: ContainerId::new(actor.id?),
        labels,
        kind,
    })
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::time::Duration;

    use bollard::models::EventActor;

    use super::*;

    fn message(action: &str, attributes: &[(&str, &str)]) -> EventMessage {
        EventMessage {
            typ: Some(EventMessageTypeEnum::CONTAINER),
            action: Some(action.to_owned()),
            actor: Some(EventActor {
                id: Some("c1".to_owned()),
                attributes: Some(
                    attributes
                        .iter()
                        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                        .collect::<HashMap<_, _>>(),
                ),
            }),
            ..EventMessage::default()
        }
    }

    #[test]
    fn lifecycle_actions_become_events_and_others_are_dropped() {
        let died = event_of(message(
            "die",
            &[("exitCode", "137"), ("berth.workspace", "w")],
        ))
        .unwrap();
        assert_eq!(died.id, ContainerId::new("c1"));
        assert_eq!(
            died.kind,
            ContainerEventKind::Died {
                exit_code: Some(137)
            }
        );
        assert_eq!(died.labels["berth.workspace"], "w");
        assert_eq!(
            event_of(message("die", &[])).unwrap().kind,
            ContainerEventKind::Died { exit_code: None }
        );
        assert_eq!(
            event_of(message("destroy", &[])).unwrap().kind,
            ContainerEventKind::Destroyed
        );
        assert_eq!(
            event_of(message("create", &[])).unwrap().kind,
            ContainerEventKind::Created
        );
        assert_eq!(
            event_of(message("start", &[])).unwrap().kind,
            ContainerEventKind::Started
        );
        assert_eq!(event_of(message("exec_start: sh", &[])), None);
        let mut network = message("die", &[]);
        network.typ = Some(EventMessageTypeEnum::NETWORK);
        assert_eq!(event_of(network), None);
    }

    #[test]
    fn since_is_written_in_seconds_and_nanoseconds() {
        let at = UNIX_EPOCH + Duration::new(1_700_000_000, 5);
        assert_eq!(engine_time(at), "1700000000.000000005");
    }
}
