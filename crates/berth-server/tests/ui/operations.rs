//! The operations pages against the SSH test machines: the run form and its live count, an
//! operation's page (output escaped, Stop and Rerun behind the CSRF token), the history with
//! its filters and pages. The fleet is the fleet pages' (m1 of type `db`, m2, m3, all tagged
//! `lab` and `near`) with scripts, synced, m1 and m2 enrolled, m3's host key unknown.

use std::time::{Duration, Instant};

use berth_store::NewOperation;
use berth_types::api::OperationView;
use berth_types::operation::{MachineRunStatus, OperationStatus};
use berth_types::{MachineId, OperationId, Username};

use super::fleet::{Fleet, HOSTILE, fleet_with, get, post, synced};
use super::{Browser, header, login, send};
use crate::common::TestServer;
use crate::common::machines::{self, Lab};

/// What a script prints to try to run a script in the admin's browser.
const ALERT: &str = "<script>alert(1)</script>";

const SCRIPTS: &str = "scripts:
  - name: hello
    description: Says hello <b>loudly</b>
    file: hello.sh
    timeout: 2m
  - name: hostile
    file: hostile.sh
  - name: fail
    file: fail.sh
  - name: slow
    file: slow.sh
    timeout: 10m
";

/// A fleet with the scripts, synced, m1 and m2 enrolled.
async fn ready(lab: &Lab) -> Fleet {
    let files = [
        ("scripts.yaml", SCRIPTS),
        ("hello.sh", "#!/bin/bash\necho hello\n"),
        (
            "hostile.sh",
            "#!/bin/bash\necho '<script>alert(1)</script>'\necho '<b>bold</b>' >&2\n",
        ),
        ("fail.sh", "#!/bin/bash\necho failing\nexit 3\n"),
        // A marker no other process has.
        ("slow.sh", "#!/bin/bash\necho started\nsleep 3139 &\nwait\n"),
    ];
    let f = fleet_with(lab, &files, &["m1", "m2"]).await;
    synced(&f).await;
    f
}

fn operations(server: &TestServer) -> &berth_core::Operations {
    server.state.operations.as_ref().expect("a fleet")
}

fn admin_requester() -> berth_core::Requester {
    berth_core::Requester {
        user: Username::new("admin").unwrap(),
        admin: true,
        machines: Vec::new(),
    }
}

/// The operation id a post was sent on to.
fn started(answer: &super::RawAnswer) -> OperationId {
    assert_eq!(answer.status, 303, "{}", answer.body);
    let location = header(answer, "location").expect("a redirect");
    location
        .strip_prefix("/admin/operations/")
        .unwrap_or_else(|| panic!("not an operation's page: {location}"))
        .parse()
        .unwrap()
}

/// Waits for the end of operation `id` by reading its whole event stream with the browser's
/// session cookie, as the page's script does: the stream ends with the operation.
async fn ended(server: &TestServer, browser: &Browser, id: OperationId) {
    let path = format!("/api/v1/operations/{id}/events");
    let answer = send(server, "GET", &path, &browser.cookie, None, &[]).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert!(
        header(&answer, "content-type").is_some_and(|t| t.starts_with("text/event-stream")),
        "{}",
        answer.head
    );
    // Each answer is read for at most 10 s; a run that outlasts one read is read again.
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let record = operations(server)
            .operation(&admin_requester(), id)
            .await
            .unwrap();
        if record.status.is_finished() {
            return;
        }
        assert!(Instant::now() < deadline, "{id} did not end: {record:?}");
        send(server, "GET", &path, &browser.cookie, None, &[]).await;
    }
}

/// Waits until the first machine of operation `id` runs its script.
async fn running(server: &TestServer, id: OperationId) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let record = operations(server)
            .operation(&admin_requester(), id)
            .await
            .unwrap();
        if record.machines[0].status == MachineRunStatus::Running {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{id} did not start running: {record:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn view(server: &TestServer, browser: &Browser, id: OperationId) -> OperationView {
    let path = format!("/api/v1/operations/{id}");
    let answer = send(server, "GET", &path, &browser.cookie, None, &[]).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    serde_json::from_str(&answer.body).unwrap()
}

/// The `data-count` of a count fragment.
fn count(fragment: &str) -> usize {
    let at = fragment
        .find("data-count=\"")
        .unwrap_or_else(|| panic!("no count: {fragment}"))
        + "data-count=\"".len();
    fragment[at..at + fragment[at..].find('"').unwrap()]
        .parse()
        .unwrap_or_else(|e| panic!("{e}: {fragment}"))
}

/// The ids of the history table's rows, in its order.
fn rows(page: &str) -> Vec<String> {
    let table = &page[page
        .find("<table id=\"operations\">")
        .expect("an operations table")..];
    let table = &table[..table.find("</table>").unwrap()];
    table
        .split("<tr class=\"operation\" data-id=\"")
        .skip(1)
        .map(|rest| rest[..rest.find('"').unwrap()].to_owned())
        .collect()
}

/// The part of `page` from the element with `marker` to the end of its section.
fn section<'a>(page: &'a str, marker: &str) -> &'a str {
    let from = &page[page
        .find(marker)
        .unwrap_or_else(|| panic!("no {marker}: {page}"))..];
    &from[..from.find("</section>").unwrap_or(from.len())]
}

#[tokio::test]
async fn the_run_form_offers_scripts_and_tags_and_counts_the_machines_chosen() {
    let Some(lab) = machines::lab() else { return };
    let f = ready(&lab).await;
    let admin = login(&f.server, "admin", &f.server.admin_password, "").await;

    // The menu, the fleet page and a machine's page lead to the form.
    let home = get(&f.server, &admin, "/").await;
    assert!(home.contains("href=\"/admin/operations\""), "{home}");
    let fleet = get(&f.server, &admin, "/admin/fleet").await;
    assert!(fleet.contains("href=\"/admin/operations/new\""), "{fleet}");
    let m1 = get(&f.server, &admin, "/admin/fleet/machines/m1").await;
    assert!(
        m1.contains("href=\"/admin/operations/new?machine=m1\""),
        "{m1}"
    );

    let form = get(&f.server, &admin, "/admin/operations/new").await;
    for script in ["hello", "hostile", "fail", "slow"] {
        assert!(
            form.contains(&format!("<option value=\"{script}\">{script}")),
            "{script}: {form}"
        );
    }
    assert!(
        form.contains("hello: Says hello &#60;b&#62;loudly&#60;/b&#62; (timeout 2m)"),
        "the description, escaped: {form}"
    );
    for tag in ["lab", "near"] {
        assert!(
            form.contains(&format!("name=\"tag\" value=\"{tag}\">")),
            "{tag}: {form}"
        );
    }
    assert!(form.contains("<option>db</option>"), "the type: {form}");
    assert!(
        form.contains("<option value=\"m3\">m3: host_key_unknown</option>"),
        "{form}"
    );
    assert!(!form.contains(HOSTILE), "{form}");
    // Nothing chosen yet: the count asks for a choice.
    assert_eq!(count(&form), 0);
    assert!(
        form.contains("Choose at least one tag or a type."),
        "{form}"
    );

    // The count, as the form's script asks for it on every change.
    let targets = |query: &str| {
        let path = format!("/admin/operations/targets?{query}");
        let server = &f.server;
        let cookie = admin.cookie.clone();
        async move { send(server, "GET", &path, &cookie, None, &[]).await }
    };
    // (query, count, the ids named, whether one chosen is not enrolled)
    for (query, expected, named, not_enrolled) in [
        ("targets=tags&tag=lab", 3, "m1, m2, m3", true),
        ("targets=tags&tag=lab&tag=near", 3, "m1, m2, m3", true),
        ("targets=tags&tag=lab&type=db", 1, "m1", false),
        ("targets=tags&type=db", 1, "m1", false),
        ("targets=tags&tag=far", 0, "nothing matches", false),
        ("targets=tags&tag=lab&type=web", 0, "nothing matches", false),
        ("targets=machines&machine=m1&machine=m2", 2, "m1, m2", false),
        ("targets=machines&machine=m3", 1, "m3", true),
        // The whole form's fields, as the browser sends them; the radio decides.
        (
            "script=hello&targets=machines&tag=lab&machine=m2&concurrency=&timeout=5m",
            1,
            "m2",
            false,
        ),
    ] {
        let answer = targets(query).await;
        assert_eq!(answer.status, 200, "{query}: {}", answer.body);
        assert_eq!(count(&answer.body), expected, "{query}: {}", answer.body);
        assert!(answer.body.contains(named), "{query}: {}", answer.body);
        assert_eq!(
            answer.body.contains("id=\"not-enrolled\""),
            not_enrolled,
            "{query}: {}",
            answer.body
        );
    }
    let all = targets("targets=tags&tag=lab").await;
    assert!(
        all.body.contains("refused: m3 (host_key_unknown)"),
        "{}",
        all.body
    );
    let unknown = targets("targets=machines&machine=m1&machine=m9").await;
    assert_eq!(count(&unknown.body), 1);
    assert!(
        unknown.body.contains("Not in the inventory: m9"),
        "{}",
        unknown.body
    );
    // Malformed choices are refused, and what was sent is not echoed as markup.
    let many_tags = "tag=t&".repeat(33);
    for query in [
        "command=rm",
        "targets=everything",
        "targets=machines&machine=%3Cscript%3E",
        many_tags.as_str(),
    ] {
        let answer = targets(query).await;
        assert_eq!(answer.status, 400, "{query}: {}", answer.body);
        assert!(answer.body.contains("class=\"error\""), "{query}");
        assert!(
            !answer.body.contains("<script>"),
            "{query}: {}",
            answer.body
        );
    }

    // A machine's page preselects it.
    let preselected = get(&f.server, &admin, "/admin/operations/new?machine=m1").await;
    assert!(
        preselected.contains("<option value=\"m1\" selected>"),
        "{preselected}"
    );
    assert!(
        preselected.contains("name=\"targets\" value=\"machines\" checked"),
        "{preselected}"
    );
    assert_eq!(count(&preselected), 1);

    // Only admins.
    let alice = login(&f.server, "alice", "alice-password-1", "").await;
    for path in [
        "/admin/operations",
        "/admin/operations/new",
        "/admin/operations/targets?tag=lab",
    ] {
        let answer = send(&f.server, "GET", path, &alice.cookie, None, &[]).await;
        assert_eq!(answer.status, 403, "{path}");
        assert!(answer.body.contains("This page is for admins."), "{path}");
    }
    let answer = post(
        &f.server,
        &alice,
        "/admin/operations",
        "script=hello&targets=machines&machine=m1",
    )
    .await;
    assert_eq!(answer.status, 403, "{}", answer.body);
    let history = get(&f.server, &admin, "/admin/operations").await;
    assert!(rows(&history).is_empty(), "nothing started: {history}");
}

#[tokio::test]
async fn the_form_starts_an_operation_whose_page_shows_the_output_escaped() {
    let Some(lab) = machines::lab() else { return };
    let f = ready(&lab).await;
    let admin = login(&f.server, "admin", &f.server.admin_password, "").await;

    // Refusals come back as the form, filled in, with the API's message.
    for (fields, status, message) in [
        (
            "script=hostile&targets=machines&machine=m1&machine=m3",
            409,
            "not enrolled, so a script does not run there: m3 (host_key_unknown)",
        ),
        (
            "script=nope&targets=machines&machine=m1",
            404,
            "there is no script &#34;nope&#34; in scripts.yaml",
        ),
        (
            "script=hostile&targets=machines&machine=m1&concurrency=0",
            422,
            "concurrency is 1 to 1000",
        ),
        (
            "script=hostile&targets=tags",
            422,
            "a selector needs tags or a type",
        ),
        (
            "script=hostile&targets=tags&tag=far",
            422,
            "no machine you may run on matches the selector",
        ),
        (
            "script=hostile&targets=machines&machine=m1&timeout=soon",
            422,
            "expected a duration such as",
        ),
        (
            "script=&targets=machines&machine=m1&concurrency=many",
            422,
            "a whole number of machines, 1 to 1000",
        ),
    ] {
        let answer = post(&f.server, &admin, "/admin/operations", fields).await;
        assert_eq!(answer.status, status, "{fields}: {}", answer.body);
        assert!(answer.body.contains(message), "{fields}: {}", answer.body);
        assert!(
            answer
                .body
                .contains("<form method=\"post\" action=\"/admin/operations\""),
            "{fields}: the form again"
        );
    }
    let refused = post(
        &f.server,
        &admin,
        "/admin/operations",
        "script=hostile&targets=machines&machine=m1&machine=m3&timeout=90s",
    )
    .await;
    assert!(
        refused.body.contains("<option value=\"hostile\" selected>"),
        "{}",
        refused.body
    );
    assert!(
        refused.body.contains("<option value=\"m3\" selected>"),
        "{}",
        refused.body
    );
    assert!(refused.body.contains("value=\"90s\""), "{}", refused.body);
    let history = get(&f.server, &admin, "/admin/operations").await;
    assert!(rows(&history).is_empty(), "nothing started: {history}");
    assert!(history.contains("No operation yet"), "{history}");

    // The form starts it, by machine ids, and goes to its page.
    let answer = post(
        &f.server,
        &admin,
        "/admin/operations",
        "script=hostile&targets=machines&machine=m1&machine=m2&timeout=90s&concurrency=1",
    )
    .await;
    let id = started(&answer);
    ended(&f.server, &admin, id).await;
    let page = get(&f.server, &admin, &format!("/admin/operations/{id}")).await;
    assert!(
        page.contains("id=\"status\" data-status=\"succeeded\""),
        "{page}"
    );
    assert!(page.contains("data-finished=\"true\""), "{page}");
    assert!(page.contains("<dd id=\"user\">admin</dd>"), "{page}");
    assert!(page.contains("<dd>1</dd>"), "concurrency: {page}");
    assert!(page.contains("<dd>1m30s</dd>"), "the timeout: {page}");
    for machine in ["m1", "m2"] {
        let panel = section(
            &page,
            &format!("<section class=\"card run\" data-machine=\"{machine}\">"),
        );
        assert!(panel.contains("data-status=\"succeeded\""), "{panel}");
        assert!(panel.contains("exit 0"), "{panel}");
        // The output, escaped: shown, never run.
        assert!(
            panel.contains("data-stream=\"stdout\" aria-label=\"standard output of ")
                && panel.contains(">&#60;script&#62;alert(1)&#60;/script&#62;\n</pre>"),
            "{panel}"
        );
        assert!(
            panel.contains(">&#60;b&#62;bold&#60;/b&#62;\n</pre>"),
            "stderr apart: {panel}"
        );
    }
    assert!(!page.contains(ALERT), "{page}");
    // The grouped view: both printed the same.
    let grouped = &page[page.find("<div id=\"grouped\">").expect("the grouped view")..];
    assert!(grouped.contains("<h3>2 machines"), "{grouped}");
    assert!(page.contains("Grouped by output (1 group)"), "{page}");
    // All succeeded: nothing to stop, nothing to run again.
    assert!(!page.contains("id=\"stop\""), "{page}");
    assert!(!page.contains("id=\"rerun\""), "{page}");
    // The part the page's script asks for when the operation ends is the same.
    let live = get(&f.server, &admin, &format!("/admin/operations/{id}/live")).await;
    assert!(
        live.starts_with("<section class=\"card\" id=\"summary\">"),
        "{live}"
    );
    assert!(!live.contains(ALERT), "{live}");
    assert!(live.contains("&#60;script&#62;alert(1)"), "{live}");

    // By tags: a failure on every machine tagged lab of type db (m1). The test server's clock
    // stands still unless moved: newest first needs it to move.
    f.server.clock.advance(Duration::from_secs(1));
    let answer = post(
        &f.server,
        &admin,
        "/admin/operations",
        "script=fail&targets=tags&tag=lab&type=db",
    )
    .await;
    let failed = started(&answer);
    ended(&f.server, &admin, failed).await;
    let view = view(&f.server, &admin, failed).await;
    assert_eq!(view.status, OperationStatus::Failed);
    let ids: Vec<&str> = view.machines.iter().map(|m| m.machine.as_str()).collect();
    assert_eq!(ids, ["m1"]);
    let page = get(&f.server, &admin, &format!("/admin/operations/{failed}")).await;
    assert!(
        page.contains("id=\"status\" data-status=\"failed\""),
        "{page}"
    );
    assert!(page.contains("exit 3"), "{page}");
    assert!(
        page.contains("id=\"rerun\""),
        "a failure may be run again: {page}"
    );

    // The history: newest first, filtered as GET /api/v1/operations filters.
    let (id, failed) = (id.to_string(), failed.to_string());
    let only = |query: &str| {
        let path = format!("/admin/operations?{query}");
        let server = &f.server;
        let admin = &admin;
        async move { rows(&get(server, admin, &path).await) }
    };
    assert_eq!(only("").await, [failed.as_str(), id.as_str()]);
    assert_eq!(only("status=failed").await, [failed.as_str()]);
    assert_eq!(only("status=succeeded").await, [id.as_str()]);
    assert_eq!(only("status=cancelled").await, Vec::<String>::new());
    assert_eq!(only("script=hostile").await, [id.as_str()]);
    assert_eq!(only("machine=m2").await, [id.as_str()]);
    assert_eq!(only("machine=m1").await, [failed.as_str(), id.as_str()]);
    assert_eq!(
        only("user=admin&machine=m1&script=fail").await,
        [failed.as_str()]
    );
    assert_eq!(only("user=alice").await, Vec::<String>::new());
    let history = get(&f.server, &admin, "/admin/operations?status=failed").await;
    assert!(
        history.contains("<option selected>failed</option>"),
        "{history}"
    );
    assert!(history.contains("1 operation."), "{history}");
    assert!(history.contains("1: 1 failed"), "{history}");
    let none = get(&f.server, &admin, "/admin/operations?user=alice").await;
    assert!(
        none.contains("No operation matches these filters."),
        "{none}"
    );
    for bad in [
        "status=exploded",
        "machine=%3Cscript%3E",
        "since=yesterday",
        "until=2026-13-01",
        "user=no%20body",
        "command=rm",
    ] {
        let path = format!("/admin/operations?{bad}");
        let answer = send(&f.server, "GET", &path, &admin.cookie, None, &[]).await;
        assert_eq!(answer.status, 400, "{bad}: {}", answer.body);
        assert!(!answer.body.contains("<script>"), "{bad}: {}", answer.body);
    }
}

#[tokio::test]
async fn stop_and_rerun_need_the_csrf_token_and_an_admin() {
    let Some(lab) = machines::lab() else { return };
    let f = ready(&lab).await;
    let admin = login(&f.server, "admin", &f.server.admin_password, "").await;
    let answer = post(
        &f.server,
        &admin,
        "/admin/operations",
        "script=slow&targets=machines&machine=m1",
    )
    .await;
    let id = started(&answer);
    running(&f.server, id).await;
    let page = get(&f.server, &admin, &format!("/admin/operations/{id}")).await;
    assert!(page.contains("data-finished=\"false\""), "{page}");
    assert!(
        page.contains(&format!("data-events=\"/api/v1/operations/{id}/events\"")),
        "{page}"
    );
    assert!(page.contains("id=\"stop\""), "{page}");
    assert!(!page.contains("id=\"rerun\""), "{page}");
    assert!(
        !page.contains("id=\"grouped\""),
        "no grouped view while it runs: {page}"
    );

    // Without the session's token, or by a user who is not an admin: refused, still running.
    let stop = format!("/admin/operations/{id}/stop");
    for body in ["", "_csrf=", "_csrf=wrong"] {
        let answer = send(&f.server, "POST", &stop, &admin.cookie, Some(body), &[]).await;
        assert_eq!(answer.status, 403, "{body:?}: {}", answer.body);
    }
    let alice = login(&f.server, "alice", "alice-password-1", "").await;
    let answer = post(&f.server, &alice, &stop, "").await;
    assert_eq!(answer.status, 403, "{}", answer.body);
    let answer = send(
        &f.server,
        "GET",
        &format!("/admin/operations/{id}"),
        &alice.cookie,
        None,
        &[],
    )
    .await;
    assert_eq!(answer.status, 403);
    let record = operations(&f.server)
        .operation(&admin_requester(), id)
        .await
        .unwrap();
    assert_eq!(record.status, OperationStatus::Running);

    // Stop: back to the page, which shows it cancelled.
    let answer = post(&f.server, &admin, &stop, "").await;
    assert_eq!(answer.status, 303, "{}", answer.body);
    assert_eq!(
        header(&answer, "location"),
        Some(format!("/admin/operations/{id}").as_str())
    );
    ended(&f.server, &admin, id).await;
    let page = get(&f.server, &admin, &format!("/admin/operations/{id}")).await;
    assert!(
        page.contains("id=\"status\" data-status=\"cancelled\""),
        "{page}"
    );
    assert!(
        page.contains("run-status\" data-status=\"cancelled\""),
        "{page}"
    );
    assert!(!page.contains("id=\"stop\""), "{page}");
    assert!(page.contains("id=\"rerun\""), "{page}");

    // Rerun: the same checks, then the new operation's page.
    let rerun = format!("/admin/operations/{id}/rerun");
    for body in ["", "_csrf=wrong"] {
        let answer = send(&f.server, "POST", &rerun, &admin.cookie, Some(body), &[]).await;
        assert_eq!(answer.status, 403, "{body:?}: {}", answer.body);
    }
    let answer = post(&f.server, &alice, &rerun, "").await;
    assert_eq!(answer.status, 403);
    let answer = post(&f.server, &admin, &rerun, "").await;
    let again = started(&answer);
    assert_ne!(again, id);
    let page = get(&f.server, &admin, &format!("/admin/operations/{again}")).await;
    assert!(
        page.contains(&format!("<a href=\"/admin/operations/{id}\">{id}</a>")),
        "it names the operation it reruns: {page}"
    );
    // A rerun of a running operation is refused on a page with the API's message.
    let answer = post(
        &f.server,
        &admin,
        &format!("/admin/operations/{again}/rerun"),
        "",
    )
    .await;
    assert_eq!(answer.status, 409, "{}", answer.body);
    assert!(
        answer.body.contains("stop it or wait for its end"),
        "{}",
        answer.body
    );
    let answer = post(
        &f.server,
        &admin,
        &format!("/admin/operations/{again}/stop"),
        "",
    )
    .await;
    assert_eq!(answer.status, 303);
    ended(&f.server, &admin, again).await;
    // An operation that is not there.
    let nowhere = OperationId::random();
    for path in [
        format!("/admin/operations/{nowhere}"),
        format!("/admin/operations/{nowhere}/live"),
    ] {
        let answer = send(&f.server, "GET", &path, &admin.cookie, None, &[]).await;
        assert_eq!(answer.status, 404, "{path}");
    }
    let answer = post(
        &f.server,
        &admin,
        &format!("/admin/operations/{nowhere}/stop"),
        "",
    )
    .await;
    assert_eq!(answer.status, 404);
}

#[tokio::test]
async fn the_history_pages_by_cursor_and_filters_by_day_and_user() {
    let Some(lab) = machines::lab() else { return };
    let f = ready(&lab).await;
    let admin = login(&f.server, "admin", &f.server.admin_password, "").await;
    // Rows of the history as the store keeps them (queued: nothing runs them): 51 by ann on
    // 2026-01-10, one by bob on 2026-01-12.
    let day = time::macros::datetime!(2026-01-10 08:00 UTC);
    let mut ann = Vec::new();
    for n in 0..52 {
        let (user, at) = if n == 51 {
            ("bob", day + time::Duration::days(2))
        } else {
            ("ann", day + time::Duration::minutes(n))
        };
        let record = f
            .server
            .state
            .store
            .create_operation(&NewOperation {
                id: OperationId::random(),
                script: "hello".into(),
                commit: "0".repeat(40),
                user: Username::new(user).unwrap(),
                concurrency: 1,
                timeout_seconds: 60,
                rerun_of: None,
                machines: vec![MachineId::new("m1").unwrap()],
                created_at: at,
            })
            .await
            .unwrap();
        if user == "ann" {
            ann.push(record.id.to_string());
        }
    }
    ann.reverse();

    let first = get(&f.server, &admin, "/admin/operations?user=ann").await;
    assert!(first.contains("51 operations."), "{first}");
    assert_eq!(rows(&first), ann[..50]);
    let at = first
        .find("href=\"/admin/operations?")
        .expect("a next page")
        + "href=\"".len();
    let next = first[at..at + first[at..].find('"').unwrap()]
        .replace("&#38;", "&")
        .replace("&amp;", "&");
    assert!(next.contains("user=ann&"), "the filters are kept: {next}");
    assert!(next.contains("cursor="), "{next}");
    let second = get(&f.server, &admin, &next).await;
    assert_eq!(rows(&second), ann[50..]);
    assert!(!second.contains("id=\"older\""), "the last page: {second}");

    // Days are UTC and inclusive.
    let bob = |query: &str| {
        let path = format!("/admin/operations?{query}");
        let server = &f.server;
        let admin = &admin;
        async move { rows(&get(server, admin, &path).await).len() }
    };
    assert_eq!(bob("since=2026-01-12").await, 1);
    assert_eq!(bob("since=2026-01-11&until=2026-01-12").await, 1);
    assert_eq!(bob("until=2026-01-10&user=bob").await, 0);
    assert_eq!(bob("since=2026-01-10&until=2026-01-10&user=ann").await, 50);
    assert_eq!(bob("since=2026-01-13").await, 0);
    assert_eq!(bob("user=bob").await, 1);
}

/// An operation as the store keeps it, finished, whose machines printed `outputs`.
async fn finished_with(server: &TestServer, outputs: &[(&str, Vec<u8>)]) -> OperationId {
    use berth_store::MachineRunUpdate;
    let store = &server.state.store;
    let at = time::OffsetDateTime::now_utc();
    let record = store
        .create_operation(&NewOperation {
            id: OperationId::random(),
            script: "hello".into(),
            commit: "0".repeat(40),
            user: Username::new("admin").unwrap(),
            concurrency: 2,
            timeout_seconds: 60,
            rerun_of: None,
            machines: outputs
                .iter()
                .map(|(m, _)| MachineId::new(*m).unwrap())
                .collect(),
            created_at: at,
        })
        .await
        .unwrap();
    for (machine, stdout) in outputs {
        let machine = MachineId::new(*machine).unwrap();
        let update = |status| MachineRunUpdate {
            status,
            exit_code: (status == MachineRunStatus::Succeeded).then_some(0),
            signal: None,
            message: String::new(),
            started_at: Some(at),
            finished_at: (status == MachineRunStatus::Succeeded).then_some(at),
            duration_ms: None,
        };
        for status in [MachineRunStatus::Running, MachineRunStatus::Succeeded] {
            store
                .update_machine_run(record.id, &machine, &update(status))
                .await
                .unwrap();
        }
        store
            .store_machine_output(record.id, &machine, stdout, b"", false)
            .await
            .unwrap();
    }
    store
        .set_operation_status(record.id, OperationStatus::Succeeded, Some(at))
        .await
        .unwrap();
    record.id
}

#[tokio::test]
async fn a_page_with_more_output_than_it_can_hold_shows_less_and_links_the_rest() {
    let Some(lab) = machines::lab() else { return };
    let f = ready(&lab).await;
    let admin = login(&f.server, "admin", &f.server.admin_password, "").await;
    let mib = |fill: u8| vec![fill; 5 * 1024 * 1024];
    let omitted = "Too much output for this page";

    // The same 5 MiB twice: each machine's left out, the group's shown once.
    let same = finished_with(&f.server, &[("m1", mib(b'a')), ("m2", mib(b'a'))]).await;
    let page = get(&f.server, &admin, &format!("/admin/operations/{same}")).await;
    for machine in ["m1", "m2"] {
        assert!(
            page.contains(&format!(
                "href=\"/api/v1/operations/{same}/machines/{machine}/stdout\""
            )),
            "{machine}"
        );
    }
    assert_eq!(
        page.matches(omitted).count(),
        2,
        "two machines, not the group"
    );
    assert!(
        page.contains(&"a".repeat(5 * 1024 * 1024)),
        "the group's output"
    );
    assert!(page.len() < 6 * 1024 * 1024, "once: {} bytes", page.len());

    // Two different 5 MiB outputs: none of it in the page, every part linked.
    let differ = finished_with(&f.server, &[("m1", mib(b'a')), ("m2", mib(b'b'))]).await;
    let page = get(&f.server, &admin, &format!("/admin/operations/{differ}")).await;
    assert_eq!(
        page.matches(omitted).count(),
        4,
        "two machines and two groups"
    );
    assert!(!page.contains(&"a".repeat(100)) && !page.contains(&"b".repeat(100)));
    assert!(page.len() < 1024 * 1024, "{} bytes", page.len());
}
