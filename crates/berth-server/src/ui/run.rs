//! `/admin/operations/new`: the run form. A script of the inventory (with its description),
//! the targets by tags and type or by machine, concurrency and timeout; posting it starts the
//! operation through the API's handler (so the checks and the audit are the API's) and goes
//! to its page. A refusal (a script or machine that is not there, a machine not enrolled, a
//! value out of range) is the form again, filled in as posted, with the API's message.
//!
//! `GET /admin/operations/targets` takes the form's fields as a query string and answers how
//! many machines, and which, the targets select, rendered on the server; `static/ui.js` asks
//! it on every change of the form and swaps the answer in, so the count follows the choice
//! without a reload.

use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use berth_core::Fleet;
use berth_types::MachineId;
use berth_types::api::{MAX_OPERATION_MACHINES, OperationSelector, StartOperation, Timeout};
use berth_types::fleet::EnrollmentStatus;
use berth_types::units::HumanDuration;

use super::fleet::{Choice, Notice, choices};
use super::machine::fleet;
use super::{AdminViewer, CsrfForm, Form, Nav, render};
use crate::error::ApiError;
use crate::extract::{Json, NoQuery, Query};
use crate::state::AppState;

/// The most tags a selector names (the API's `selector.tags`).
const MAX_TAGS: usize = 32;
/// Machine ids the count names before "and N more".
const NAMED: usize = 12;

/// The fields of the run form, as posted (or as the count's query string).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct RunForm {
    script: String,
    /// Targets by machine id (`targets=machines`) rather than by tags and type.
    by_machines: bool,
    tags: Vec<String>,
    kind: String,
    machines: Vec<String>,
    concurrency: String,
    timeout: String,
}

/// Which machines a form names.
#[derive(Debug, PartialEq, Eq)]
enum Targets {
    Machines(Vec<MachineId>),
    Selector(OperationSelector),
}

impl RunForm {
    /// The form's fields; a field the form does not have, a `targets` that is neither
    /// `tags` nor `machines`, or more values than a run takes is a message for the page.
    fn read(pairs: &[(String, String)]) -> Result<Self, String> {
        let mut form = Self::default();
        let mut targets = None;
        for (key, value) in pairs {
            let value = value.trim();
            match key.as_str() {
                "_csrf" => {}
                "script" => value.clone_into(&mut form.script),
                "targets" => {
                    targets = Some(match value {
                        "tags" => false,
                        "machines" => true,
                        _ => return Err("targets: give tags or machines".to_owned()),
                    });
                }
                "tag" if !value.is_empty() => form.tags.push(value.to_owned()),
                "type" => value.clone_into(&mut form.kind),
                "machine" if !value.is_empty() => form.machines.push(value.to_owned()),
                "tag" | "machine" => {}
                "concurrency" => value.clone_into(&mut form.concurrency),
                "timeout" => value.clone_into(&mut form.timeout),
                _ => return Err(
                    "the run form has script, targets, tag, type, machine, concurrency and timeout"
                        .to_owned(),
                ),
            }
        }
        form.by_machines = targets.unwrap_or(!form.machines.is_empty());
        if form.tags.len() > MAX_TAGS {
            return Err(format!("tag: at most {MAX_TAGS} tags"));
        }
        if form.machines.len() > MAX_OPERATION_MACHINES {
            return Err(format!(
                "machine: at most {MAX_OPERATION_MACHINES} machines"
            ));
        }
        Ok(form)
    }

    /// The targets chosen; a machine id that cannot be one is a message for its field.
    fn targets(&self) -> Result<Targets, (&'static str, String)> {
        if self.by_machines {
            self.machines
                .iter()
                .map(|id| {
                    MachineId::new(id.as_str())
                        .map_err(|e| ("machine", format!("{:?}: {e}", short(id))))
                })
                .collect::<Result<_, _>>()
                .map(Targets::Machines)
        } else {
            Ok(Targets::Selector(OperationSelector {
                tags: self.tags.clone(),
                kind: (!self.kind.is_empty()).then(|| self.kind.clone()),
            }))
        }
    }

    /// The API's request, or what is wrong with each field. What the API checks itself
    /// (the script and the machines are there, the ranges) is left to it.
    fn request(&self) -> Result<StartOperation, Vec<(&'static str, String)>> {
        let mut errors = Vec::new();
        if self.script.is_empty() {
            errors.push(("script", "choose a script".to_owned()));
        }
        let targets = self.targets().map_err(|e| errors.push(e)).ok();
        let concurrency = if self.concurrency.is_empty() {
            None
        } else {
            self.concurrency
                .parse::<u32>()
                .map_err(|_| {
                    errors.push((
                        "concurrency",
                        "a whole number of machines, 1 to 1000".to_owned(),
                    ));
                })
                .ok()
        };
        let timeout = if self.timeout.is_empty() {
            None
        } else {
            self.timeout
                .parse::<HumanDuration>()
                .map(Timeout)
                .map_err(|e| errors.push(("timeout", e)))
                .ok()
        };
        match targets {
            Some(targets) if errors.is_empty() => {
                let (machines, selector) = match targets {
                    Targets::Machines(ids) => (Some(ids), None),
                    Targets::Selector(selector) => (None, Some(selector)),
                };
                Ok(StartOperation {
                    script: self.script.clone(),
                    machines,
                    selector,
                    concurrency,
                    timeout,
                })
            }
            _ => Err(errors),
        }
    }
}

/// At most 64 characters of what was posted, for a message.
fn short(text: &str) -> String {
    text.chars().take(64).collect()
}

/// How many machines the targets select, and which.
#[derive(Debug, Template)]
#[template(path = "operation_targets.html")]
struct TargetCount {
    /// Nothing is chosen yet: what to do instead of a count.
    hint: &'static str,
    total: usize,
    /// The first ids, in inventory order.
    named: Vec<String>,
    more: usize,
    /// Chosen but not enrolled (the run would be refused): `id (status)`.
    not_enrolled: Vec<String>,
    /// Chosen by id but not in the inventory.
    unknown: Vec<String>,
}

/// The machines of `fleet` that `targets` select.
async fn count(fleet: &Fleet, targets: &Targets) -> Result<TargetCount, ApiError> {
    let records = fleet.machines().await.map_err(ApiError::internal)?;
    let (chosen, unknown): (Vec<_>, Vec<String>) = match targets {
        Targets::Selector(selector) if selector.is_empty() => {
            return Ok(TargetCount {
                hint: "Choose at least one tag or a type.",
                total: 0,
                named: Vec::new(),
                more: 0,
                not_enrolled: Vec::new(),
                unknown: Vec::new(),
            });
        }
        // As the API's selector chooses: every tag, and the type when one is given.
        Targets::Selector(selector) => (
            records
                .iter()
                .filter(|r| selector.matches(&r.spec.tags, r.spec.kind.as_deref()))
                .collect(),
            Vec::new(),
        ),
        Targets::Machines(ids) if ids.is_empty() => {
            return Ok(TargetCount {
                hint: "Choose at least one machine.",
                total: 0,
                named: Vec::new(),
                more: 0,
                not_enrolled: Vec::new(),
                unknown: Vec::new(),
            });
        }
        Targets::Machines(ids) => {
            let found = ids
                .iter()
                .filter_map(|id| records.iter().find(|r| r.spec.id == *id))
                .collect();
            let unknown = ids
                .iter()
                .filter(|id| !records.iter().any(|r| r.spec.id == **id))
                .map(ToString::to_string)
                .collect();
            (found, unknown)
        }
    };
    Ok(TargetCount {
        hint: "",
        total: chosen.len(),
        named: chosen
            .iter()
            .take(NAMED)
            .map(|r| r.spec.id.to_string())
            .collect(),
        more: chosen.len().saturating_sub(NAMED),
        not_enrolled: chosen
            .iter()
            .filter(|r| r.enrollment != EnrollmentStatus::Enrolled)
            .map(|r| format!("{} ({})", r.spec.id, r.enrollment))
            .collect(),
        unknown,
    })
}

/// `GET /admin/operations/targets?targets=&tag=&type=&machine=…` (the run form's fields):
/// the count of the machines chosen, as the fragment the form shows. A malformed choice is a
/// 400 with the message as the fragment.
pub(crate) async fn targets(
    State(state): State<AppState>,
    _viewer: AdminViewer,
    query: Result<Query<Vec<(String, String)>>, ApiError>,
) -> Response {
    let fleet = match fleet(&state) {
        Ok(fleet) => fleet,
        Err(page) => return page,
    };
    let refused =
        |message: &str| (StatusCode::BAD_REQUEST, render(&Notice { message })).into_response();
    let pairs = match query {
        Ok(Query(pairs)) => pairs,
        Err(e) => return refused(&e.message),
    };
    let targets = match RunForm::read(&pairs).map(|form| form.targets()) {
        Ok(Ok(targets)) => targets,
        Ok(Err((field, message))) => return refused(&format!("{field}: {message}")),
        Err(message) => return refused(&message),
    };
    match count(fleet, &targets).await {
        Ok(count) => render(&count),
        Err(e) => (
            e.status,
            render(&Notice {
                message: &e.message,
            }),
        )
            .into_response(),
    }
}

/// A script as the form offers it.
struct ScriptChoice {
    name: String,
    description: String,
    timeout: String,
    selected: bool,
}

/// A machine as the form offers it.
struct MachineChoice {
    id: String,
    name: String,
    enrollment: &'static str,
    selected: bool,
}

#[derive(Template)]
#[template(path = "operation_new.html")]
struct RunPage {
    nav: Nav,
    /// The refusal of the last post, for the top of the form.
    error: String,
    errors: Vec<(&'static str, String)>,
    /// The inventory's scripts are read (they are not before the first sync).
    ready: bool,
    scripts: Vec<ScriptChoice>,
    by_machines: bool,
    tags: Vec<Choice>,
    kinds: Vec<Choice>,
    machines: Vec<MachineChoice>,
    concurrency: String,
    timeout: String,
    /// The count of what the form selects now.
    count: String,
}

impl RunPage {
    fn error_for(&self, field: &str) -> String {
        self.errors
            .iter()
            .filter(|(f, _)| *f == field)
            .map(|(_, m)| m.as_str())
            .collect::<Vec<_>>()
            .join("; ")
    }
}

/// The form, filled in with `form`, with `error` and `errors`, answered with `status`.
async fn form_page(
    state: &AppState,
    viewer: &AdminViewer,
    fleet: &Fleet,
    form: &RunForm,
    status: StatusCode,
    error: String,
    errors: Vec<(&'static str, String)>,
) -> Response {
    let inventory = fleet.inventory();
    let records = match fleet.machines().await {
        Ok(records) => records,
        Err(e) => return super::api_error_page(&ApiError::internal(e)),
    };
    let count = match form.targets() {
        Ok(targets) => match count(fleet, &targets).await {
            Ok(count) => count.render().unwrap_or_default(),
            Err(e) => Notice {
                message: &e.message,
            }
            .render()
            .unwrap_or_default(),
        },
        Err((field, message)) => Notice {
            message: &format!("{field}: {message}"),
        }
        .render()
        .unwrap_or_default(),
    };
    // The inventory's tags, and any the form names that no machine has (any longer).
    let tags = records
        .iter()
        .flat_map(|r| r.spec.tags.clone())
        .chain(form.tags.iter().cloned());
    let mut tag_choices = choices(tags, "");
    for choice in &mut tag_choices {
        choice.selected = form.tags.contains(&choice.value);
    }
    let page = RunPage {
        nav: viewer.0.nav(state),
        error,
        errors,
        ready: inventory.complete,
        scripts: inventory
            .scripts
            .iter()
            .map(|s| ScriptChoice {
                selected: s.script.name == form.script,
                name: s.script.name.clone(),
                description: s.script.description.clone(),
                timeout: s.script.timeout.to_string(),
            })
            .collect(),
        by_machines: form.by_machines,
        tags: tag_choices,
        kinds: choices(
            records.iter().filter_map(|r| r.spec.kind.clone()),
            &form.kind,
        ),
        machines: records
            .iter()
            .map(|r| MachineChoice {
                id: r.spec.id.to_string(),
                name: r.spec.name.clone(),
                enrollment: r.enrollment.as_str(),
                selected: form.machines.iter().any(|m| *m == r.spec.id.as_str()),
            })
            .collect(),
        concurrency: form.concurrency.clone(),
        timeout: form.timeout.clone(),
        count,
    };
    (status, render(&page)).into_response()
}

/// `GET /admin/operations/new?script=&machine=&tag=&type=`: the form, with these chosen (the
/// fleet page links here, a machine's page with `machine=`).
pub(crate) async fn new(
    State(state): State<AppState>,
    viewer: AdminViewer,
    query: Result<Query<Vec<(String, String)>>, ApiError>,
) -> Response {
    let fleet = match fleet(&state) {
        Ok(fleet) => fleet,
        Err(page) => return page,
    };
    let form = match query
        .map_err(|e| e.message)
        .and_then(|Query(pairs)| RunForm::read(&pairs))
    {
        Ok(form) => form,
        Err(message) => return super::error_page(StatusCode::BAD_REQUEST, &message),
    };
    form_page(
        &state,
        &viewer,
        fleet,
        &form,
        StatusCode::OK,
        String::new(),
        Vec::new(),
    )
    .await
}

/// `POST /admin/operations`: starts the operation and goes to its page.
pub(crate) async fn start(
    State(state): State<AppState>,
    CsrfForm(viewer, Form(pairs)): CsrfForm<AdminViewer>,
) -> Response {
    let fleet = match fleet(&state) {
        Ok(fleet) => fleet.clone(),
        Err(page) => return page,
    };
    let form = match RunForm::read(&pairs) {
        Ok(form) => form,
        Err(message) => return super::error_page(StatusCode::BAD_REQUEST, &message),
    };
    let request = match form.request() {
        Ok(request) => request,
        Err(errors) => {
            return form_page(
                &state,
                &viewer,
                &fleet,
                &form,
                StatusCode::UNPROCESSABLE_ENTITY,
                "The run was not started: see the fields below.".to_owned(),
                errors,
            )
            .await;
        }
    };
    match crate::operations::start(
        State(state.clone()),
        viewer.0.auth(),
        Query(NoQuery {}),
        Json(request),
    )
    .await
    {
        Ok((_, Json(operation))) => {
            Redirect::to(&format!("/admin/operations/{}", operation.id)).into_response()
        }
        Err(e) => {
            form_page(
                &state,
                &viewer,
                &fleet,
                &form,
                e.status,
                e.message.clone(),
                Vec::new(),
            )
            .await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A query string's pairs (the tests' values need no decoding).
    fn pairs(query: &str) -> Vec<(String, String)> {
        query
            .split('&')
            .filter(|pair| !pair.is_empty())
            .map(|pair| {
                let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                (k.to_owned(), v.to_owned())
            })
            .collect()
    }

    #[test]
    fn the_form_becomes_the_api_request() {
        let form = RunForm::read(&pairs(
            "_csrf=t&script=hello&targets=tags&tag=lab&tag=near&type=db&machine=m1&concurrency=2&timeout=5m",
        ))
        .unwrap();
        let request = form.request().unwrap();
        assert_eq!(request.script, "hello");
        assert_eq!(request.machines, None, "the radio chose tags");
        assert_eq!(
            request.selector,
            Some(OperationSelector {
                tags: vec!["lab".into(), "near".into()],
                kind: Some("db".into()),
            })
        );
        assert_eq!(request.concurrency, Some(2));
        assert_eq!(request.timeout.map(|t| t.0.as_secs()), Some(300));

        let form = RunForm::read(&pairs("script=hello&machine=m1&machine=m2")).unwrap();
        assert!(form.by_machines, "machines without a radio choose machines");
        let request = form.request().unwrap();
        assert_eq!(
            request.machines,
            Some(vec![
                MachineId::new("m1").unwrap(),
                MachineId::new("m2").unwrap()
            ])
        );
        assert_eq!((request.concurrency, request.timeout), (None, None));
    }

    #[test]
    fn bad_fields_are_named() {
        let form = RunForm::read(&pairs(
            "script=&targets=machines&machine=<script>&concurrency=many&timeout=soon",
        ))
        .unwrap();
        let errors = form.request().unwrap_err();
        let fields: Vec<&str> = errors.iter().map(|(f, _)| *f).collect();
        assert_eq!(fields, ["script", "machine", "concurrency", "timeout"]);
        for refused in [
            "command=rm",
            "targets=everything",
            &"tag=t&".repeat(MAX_TAGS + 1),
        ] {
            assert!(RunForm::read(&pairs(refused)).is_err(), "{refused}");
        }
    }
}
