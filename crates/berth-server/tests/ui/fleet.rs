//! The fleet pages against the SSH test machines: a server whose fleet syncs a real file://
//! inventory of m1, m2 and m3, where known_hosts knows only m1, so m2 and m3 present host keys
//! Berth does not know until an admin acts.

use std::collections::BTreeSet;

use berth_core::{Actor, FleetEvent};
use berth_types::MachineId;
use berth_types::api::PingRequest;
use berth_types::fleet::{EnrollmentStatus, SyncResult, SyncTrigger};
use http_body_util::BodyExt;
use tokio::sync::broadcast;

use super::{Browser, encode, header, login, send};
use crate::common::TestServer;
use crate::common::machines::inventory::{Repo, install_key, known_hosts, links};
use crate::common::machines::{self, Lab, PATIENCE};

/// What links.yaml says of m1 beyond its SSH settings: a type, and a description that tries
/// to run a script in the admin's browser.
pub(super) const HOSTILE: &str = "<script>alert(\"m1\")</script>";

pub(super) struct Fleet {
    pub(super) server: TestServer,
    pub(super) repo: Repo,
    _root: tempfile::TempDir,
}

/// links.yaml of m1 (type `db`, the hostile description), m2 and m3; `client_id` replaces
/// m1's expected client id.
fn inventory(lab: &Lab, client_id: Option<&str>) -> String {
    links(lab, &[("m1", client_id), ("m2", None), ("m3", None)]).replace(
        "  - id: m1\n    name: m1\n",
        &format!("  - id: m1\n    name: m1\n    type: db\n    description: '{HOSTILE}'\n"),
    )
}

/// A server with a fleet of m1, m2 and m3 (not synced yet) whose known_hosts knows only m1;
/// alice is a user who may see m1.
async fn fleet(lab: &Lab) -> Fleet {
    fleet_with(lab, &[], &["m1"]).await
}

/// [`fleet`] with more files in the inventory's first commit (scripts) and the host keys of
/// `known` in known_hosts.
pub(super) async fn fleet_with(lab: &Lab, files: &[(&str, &str)], known: &[&str]) -> Fleet {
    let root = tempfile::tempdir().unwrap();
    let repo = Repo::new(root.path(), "inventory");
    let links = inventory(lab, None);
    let mut all = vec![("links.yaml", links.as_str())];
    all.extend_from_slice(files);
    repo.commit(&all, "three machines");
    let keys = root.path().join("keys");
    install_key(lab, &keys);
    let server = TestServer::builder()
        .fleet("repository", repo.file_url())
        .fleet("keys_dir", keys.display().to_string())
        .fleet("connect_timeout", "20s")
        .user("alice", "alice-password-1", &[])
        .machines("alice", &["m1"])
        .start()
        .await;
    std::fs::write(
        server.home.join("fleet/known_hosts"),
        known_hosts(lab, known),
    )
    .unwrap();
    Fleet {
        server,
        repo,
        _root: root,
    }
}

/// Waits until each of `ids` has been checked once (Berth checks new machines right after
/// the sync that adds them), reading `events`, subscribed before the sync.
async fn checked(events: &mut broadcast::Receiver<FleetEvent>, ids: &[&str]) {
    let mut pending: BTreeSet<&str> = ids.iter().copied().collect();
    tokio::time::timeout(PATIENCE, async {
        while !pending.is_empty() {
            match events.recv().await {
                Ok(FleetEvent::Machine(record)) if record.verified_at.is_some() => {
                    pending.remove(record.spec.id.as_str());
                }
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => panic!("the fleet is gone"),
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{pending:?} were not checked within {PATIENCE:?}"));
}

/// Syncs as Berth's own schedule would and waits for the first check of every machine.
pub(super) async fn synced(f: &Fleet) {
    let fleet = f.server.fleet();
    let mut events = fleet.subscribe();
    let sync = fleet
        .sync(SyncTrigger::Schedule, Actor::System)
        .await
        .unwrap();
    assert_eq!(sync.result, SyncResult::Succeeded, "{:?}", sync.errors);
    checked(&mut events, &["m1", "m2", "m3"]).await;
}

async fn enrollment(server: &TestServer, id: &str) -> EnrollmentStatus {
    server
        .fleet()
        .machine(&MachineId::new(id).unwrap())
        .await
        .unwrap()
        .enrollment
}

pub(super) async fn get(server: &TestServer, browser: &Browser, path: &str) -> String {
    let answer = send(server, "GET", path, &browser.cookie, None, &[]).await;
    assert_eq!(answer.status, 200, "{path}: {}", answer.body);
    answer.body
}

/// Posts a form with the browser's CSRF token and `fields`; answers the status and body.
pub(super) async fn post(
    server: &TestServer,
    browser: &Browser,
    path: &str,
    fields: &str,
) -> super::RawAnswer {
    let body = if fields.is_empty() {
        format!("_csrf={}", browser.csrf)
    } else {
        format!("_csrf={}&{fields}", browser.csrf)
    };
    send(server, "POST", path, &browser.cookie, Some(&body), &[]).await
}

/// The machine ids of the machines table, in its order.
fn rows(page: &str) -> Vec<String> {
    let table = &page[page
        .find("<table id=\"machines\">")
        .expect("a machines table")..];
    let table = &table[..table.find("</table>").unwrap()];
    table
        .split("<tr class=\"machine\" data-id=\"")
        .skip(1)
        .map(|rest| rest[..rest.find('"').unwrap()].to_owned())
        .collect()
}

/// The enrollment badge of machine `id` in the machines table.
fn badge(page: &str, id: &str) -> String {
    let row = &page[page
        .find(&format!("<tr class=\"machine\" data-id=\"{id}\""))
        .unwrap_or_else(|| panic!("no row of {id}"))..];
    let at = row.find("enrollment\" data-status=\"").unwrap() + "enrollment\" data-status=\"".len();
    row[at..at + row[at..].find('"').unwrap()].to_owned()
}

#[tokio::test]
async fn the_fleet_page_syncs_verifies_and_shows_machines_filtered_and_sorted() {
    let Some(lab) = machines::lab() else { return };
    let f = fleet(&lab).await;
    let admin = login(&f.server, "admin", &f.server.admin_password, "").await;
    let home = get(&f.server, &admin, "/").await;
    assert!(
        home.contains("href=\"/admin/fleet\""),
        "the menu has the fleet"
    );
    let page = get(&f.server, &admin, "/admin/fleet").await;
    assert!(page.contains("No sync yet."), "{page}");

    // Sync now: the page's form, then back to the page.
    let mut events = f.server.fleet().subscribe();
    let answer = post(&f.server, &admin, "/admin/fleet/sync?sort=name", "").await;
    assert_eq!(answer.status, 303, "{}", answer.body);
    assert_eq!(header(&answer, "location"), Some("/admin/fleet?sort=name"));
    checked(&mut events, &["m1", "m2", "m3"]).await;
    let page = get(&f.server, &admin, "/admin/fleet").await;
    assert_eq!(rows(&page), ["m1", "m2", "m3"]);
    assert!(page.contains("added m1, m2, m3"), "{page}");
    assert!(
        page.contains(&format!("title=\"{}\"", f.repo.git(&["rev-parse", "HEAD"]))),
        "the commit in force: {page}"
    );
    assert_eq!(badge(&page, "m1"), "enrolled");
    assert_eq!(badge(&page, "m2"), "host_key_unknown");
    assert_eq!(badge(&page, "m3"), "host_key_unknown");
    assert!(page.contains("health\" data-status=\"online\""), "{page}");
    // links.yaml's text is shown, never run.
    assert!(!page.contains(HOSTILE), "{page}");
    assert!(page.contains("&#60;script&#62;alert("), "{page}");
    let m1 = get(&f.server, &admin, "/admin/fleet/machines/m1").await;
    assert!(!m1.contains(HOSTILE), "{m1}");
    assert!(
        m1.contains("<dd id=\"description\">&#60;script&#62;alert("),
        "{m1}"
    );

    // Filters and sort: the API's query, kept in the stream's address and the sort links.
    let only = |query: &str| {
        let query = query.to_owned();
        let server = &f.server;
        let admin = &admin;
        async move { rows(&get(server, admin, &format!("/admin/fleet?{query}")).await) }
    };
    assert_eq!(only("enrollment=host_key_unknown").await, ["m2", "m3"]);
    assert_eq!(only("enrollment=enrolled").await, ["m1"]);
    assert_eq!(only("type=db").await, ["m1"]);
    assert_eq!(only("tag=near&sort=id&desc=true").await, ["m3", "m2", "m1"]);
    assert_eq!(only("tag=far").await, Vec::<String>::new());
    // A host key Berth cannot accept is no login: those checks failed.
    assert_eq!(only("status=online&type=").await, ["m1"]);
    assert_eq!(only("status=offline").await, ["m2", "m3"]);
    assert_eq!(only("sort=enrollment&desc=false").await, ["m1", "m2", "m3"]);
    let filtered = get(&f.server, &admin, "/admin/fleet?type=db&sort=name").await;
    assert!(
        filtered.contains("data-sse=\"/admin/fleet/events?type=db&#38;sort=name\""),
        "{filtered}"
    );
    assert!(
        filtered.contains("href=\"/admin/fleet?type=db&#38;sort=name&#38;desc=true\""),
        "sorting by name again reverses it: {filtered}"
    );
    assert_eq!(rows(&filtered), ["m1"]);
    let empty = get(&f.server, &admin, "/admin/fleet?tag=far").await;
    assert!(
        empty.contains("No machine matches these filters."),
        "{empty}"
    );

    // What the filters refuse is a page that says why.
    for (query, says) in [
        ("status=up", "status: unknown health status"),
        ("enrollment=gone", "enrollment: unknown enrollment status"),
        ("desc=maybe", "desc: give true or false"),
        ("sort=password", "password"),
        ("colour=red", "colour"),
    ] {
        let answer = send(
            &f.server,
            "GET",
            &format!("/admin/fleet?{query}"),
            &admin.cookie,
            None,
            &[],
        )
        .await;
        assert!(
            answer.status == 400 || answer.status == 422,
            "{query}: {}",
            answer.status
        );
        assert!(
            answer.body.contains("<h1>Error"),
            "{query}: {}",
            answer.body
        );
        assert!(answer.body.contains(says), "{query}: {}", answer.body);
    }
    // A hostile filter value is shown as text.
    let hostile = "\"><img src=x onerror=alert(1)>";
    let page = get(
        &f.server,
        &admin,
        &format!("/admin/fleet?type={}", encode(hostile)),
    )
    .await;
    assert!(!page.contains("<img src=x"), "{page}");
    assert!(page.contains("&#60;img src=x"), "{page}");

    // Verify all: a machine whose key the admin put in known_hosts is enrolled now.
    std::fs::write(
        f.server.home.join("fleet/known_hosts"),
        known_hosts(&lab, &["m1", "m2"]),
    )
    .unwrap();
    let answer = post(&f.server, &admin, "/admin/fleet/verify", "").await;
    assert_eq!(answer.status, 303, "{}", answer.body);
    assert_eq!(header(&answer, "location"), Some("/admin/fleet"));
    let page = get(&f.server, &admin, "/admin/fleet").await;
    assert_eq!(badge(&page, "m2"), "enrolled");
    assert_eq!(badge(&page, "m3"), "host_key_unknown");
}

#[tokio::test]
async fn a_failed_sync_shows_its_errors_with_file_and_line() {
    let Some(lab) = machines::lab() else { return };
    let f = fleet(&lab).await;
    synced(&f).await;
    f.repo.commit(
        &[("links.yaml", "machines:\n  - id: Bad_Id\n    host: x\n")],
        "broken",
    );
    let admin = login(&f.server, "admin", &f.server.admin_password, "").await;
    let answer = post(&f.server, &admin, "/admin/fleet/sync", "").await;
    assert_eq!(answer.status, 303, "{}", answer.body);
    let page = get(&f.server, &admin, "/admin/fleet").await;
    assert!(page.contains("data-result=\"failed\""), "{page}");
    assert!(page.contains("links.yaml:2"), "the file and line: {page}");
    // The inventory in force stays.
    assert_eq!(rows(&page), ["m1", "m2", "m3"]);
}

#[tokio::test]
async fn fleet_pages_are_for_admins_and_their_forms_need_the_csrf_token() {
    let Some(lab) = machines::lab() else { return };
    let f = fleet(&lab).await;
    synced(&f).await;
    let alice = login(&f.server, "alice", "alice-password-1", "").await;
    let home = get(&f.server, &alice, "/").await;
    assert!(!home.contains("href=\"/admin/fleet\""), "{home}");
    for path in [
        "/admin/fleet",
        "/admin/fleet/events",
        "/admin/fleet/machines/m1",
        "/admin/fleet/machines/m1/events",
    ] {
        let answer = send(&f.server, "GET", path, &alice.cookie, None, &[]).await;
        assert_eq!(answer.status, 403, "{path}");
        assert!(answer.body.contains("This page is for admins."), "{path}");
    }
    let admin = login(&f.server, "admin", &f.server.admin_password, "").await;
    let page = get(&f.server, &admin, "/admin/fleet/machines/m3").await;
    let fingerprint = fingerprint_of(&page);
    let trust = format!("fingerprint={}", encode(&fingerprint));
    let forms = [
        ("/admin/fleet/sync", String::new()),
        ("/admin/fleet/verify", String::new()),
        ("/admin/fleet/machines/m3/verify", String::new()),
        ("/admin/fleet/machines/m3/trust", trust.clone()),
    ];
    for (path, fields) in &forms {
        // A user, with her own valid token.
        let answer = post(&f.server, &alice, path, fields).await;
        assert_eq!(answer.status, 403, "{path}: {}", answer.body);
        // The admin's session without its token, or with another's.
        for body in [
            fields.clone(),
            format!("_csrf=&{fields}"),
            format!("_csrf={}&{fields}", alice.csrf),
        ] {
            let answer = send(&f.server, "POST", path, &admin.cookie, Some(&body), &[]).await;
            assert_eq!(answer.status, 403, "{path} {body}: {}", answer.body);
        }
    }
    // Nothing happened: one sync (the test's), m3 still unknown.
    let status = f.server.fleet().status().await.unwrap();
    assert_eq!(status.history.len(), 1);
    assert_eq!(
        enrollment(&f.server, "m3").await,
        EnrollmentStatus::HostKeyUnknown
    );
    // A machine id that cannot be one is a page too.
    let answer = post(
        &f.server,
        &admin,
        "/admin/fleet/machines/Not_An_Id/verify",
        "",
    )
    .await;
    assert_eq!(answer.status, 400, "{}", answer.body);
    assert!(
        answer.body.contains("<h1>Error 400</h1>"),
        "{}",
        answer.body
    );
    let answer = send(
        &f.server,
        "GET",
        "/admin/fleet/machines/nowhere",
        &admin.cookie,
        None,
        &[],
    )
    .await;
    assert_eq!(answer.status, 404, "{}", answer.body);
}

/// The fingerprint the trust form of a machine page posts.
fn fingerprint_of(page: &str) -> String {
    let at = page
        .find("name=\"fingerprint\" value=\"")
        .unwrap_or_else(|| panic!("no trust form: {page}"))
        + "name=\"fingerprint\" value=\"".len();
    page[at..at + page[at..].find('"').unwrap()].to_owned()
}

#[tokio::test]
async fn an_admin_trusts_the_host_key_the_machine_page_shows() {
    let Some(lab) = machines::lab() else { return };
    let f = fleet(&lab).await;
    synced(&f).await;
    let admin = login(&f.server, "admin", &f.server.admin_password, "").await;
    let page = get(&f.server, &admin, "/admin/fleet/machines/m3").await;
    assert!(
        page.contains("enrollment\" data-status=\"host_key_unknown\""),
        "{page}"
    );
    let fingerprint = fingerprint_of(&page);
    assert!(fingerprint.starts_with("SHA256:"), "{fingerprint}");
    assert!(
        page.contains(&format!("<code id=\"fingerprint\">{fingerprint}</code>")),
        "the admin sees what they trust: {page}"
    );
    assert!(page.contains("data-confirm=\"Trust the host key"), "{page}");
    assert!(
        page.contains(&lab.machine("m3").host),
        "SSH settings: {page}"
    );

    // Another key's fingerprint is refused and changes nothing.
    let wrong = "SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    for (fields, status, says) in [
        (format!("fingerprint={}", encode(wrong)), 409, "SHA256:AAAA"),
        (String::new(), 400, "Give the fingerprint"),
    ] {
        let answer = post(&f.server, &admin, "/admin/fleet/machines/m3/trust", &fields).await;
        assert_eq!(answer.status, status, "{fields}: {}", answer.body);
        assert!(answer.body.contains(says), "{fields}: {}", answer.body);
    }
    assert_eq!(
        enrollment(&f.server, "m3").await,
        EnrollmentStatus::HostKeyUnknown
    );

    let answer = post(
        &f.server,
        &admin,
        "/admin/fleet/machines/m3/trust",
        &format!("fingerprint={}", encode(&fingerprint)),
    )
    .await;
    assert_eq!(answer.status, 303, "{}", answer.body);
    assert_eq!(
        header(&answer, "location"),
        Some("/admin/fleet/machines/m3")
    );
    assert_eq!(
        enrollment(&f.server, "m3").await,
        EnrollmentStatus::Enrolled
    );
    let page = get(&f.server, &admin, "/admin/fleet/machines/m3").await;
    assert!(
        page.contains("enrollment\" data-status=\"enrolled\""),
        "{page}"
    );
    assert!(!page.contains("Trust host key"), "{page}");
    // The health history has the checks.
    assert!(page.contains("<table id=\"probes\">"), "{page}");
}

#[tokio::test]
async fn a_changed_host_key_is_a_warning_without_a_trust_button() {
    let Some(lab) = machines::lab() else { return };
    let f = fleet(&lab).await;
    // known_hosts has another machine's key for m2's address.
    let m2 = lab.machine("m2");
    let m1 = lab.machine("m1");
    std::fs::write(
        f.server.home.join("fleet/known_hosts"),
        format!(
            "{}{} {}\n",
            known_hosts(&lab, &["m1"]),
            berth_ssh::host_keys::host_pattern(&m2.host, m2.port),
            m1.host_key
        ),
    )
    .unwrap();
    synced(&f).await;
    assert_eq!(
        enrollment(&f.server, "m2").await,
        EnrollmentStatus::HostKeyChanged
    );
    let admin = login(&f.server, "admin", &f.server.admin_password, "").await;
    let page = get(&f.server, &admin, "/admin/fleet/machines/m2").await;
    assert!(page.contains("id=\"host-key-changed\""), "{page}");
    assert!(!page.contains("Trust host key"), "{page}");
    assert!(!page.contains("name=\"fingerprint\""), "{page}");
}

/// An open SSE stream of the server, read event by event.
struct Events {
    body: hyper::body::Incoming,
    buffer: String,
}

impl Events {
    async fn open(server: &TestServer, browser: &Browser, path: &str) -> Self {
        let stream = tokio::net::TcpStream::connect(server.addr).await.unwrap();
        let (mut sender, connection) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
                .await
                .unwrap();
        tokio::spawn(connection);
        let request = http::Request::get(path)
            .header("host", server.addr.to_string())
            .header("cookie", &browser.cookie)
            .header("accept", "text/event-stream")
            .body(http_body_util::Empty::<bytes::Bytes>::new())
            .unwrap();
        let response = sender.send_request(request).await.unwrap();
        assert_eq!(response.status(), 200, "{path}");
        assert_eq!(
            response.headers()["content-type"],
            "text/event-stream",
            "{path}"
        );
        Self {
            body: response.into_body(),
            buffer: String::new(),
        }
    }

    /// The data of the next `update` event; `None` when the stream ends.
    async fn update(&mut self) -> Option<String> {
        loop {
            while let Some(end) = self.buffer.find("\n\n") {
                let event: String = self.buffer.drain(..end + 2).collect();
                if event.lines().any(|l| l == "event: update") {
                    let data: Vec<&str> = event
                        .lines()
                        .filter_map(|l| l.strip_prefix("data: ").or(l.strip_prefix("data:")))
                        .collect();
                    return Some(data.join("\n"));
                }
            }
            let frame = tokio::time::timeout(PATIENCE, self.body.frame())
                .await
                .expect("an event within the patience")?
                .unwrap();
            if let Ok(data) = frame.into_data() {
                self.buffer.push_str(&String::from_utf8_lossy(&data));
            }
        }
    }

    /// Reads updates until one satisfies `wanted`, which it answers.
    async fn until(&mut self, what: &str, wanted: impl Fn(&str) -> bool) -> String {
        loop {
            let update = self
                .update()
                .await
                .unwrap_or_else(|| panic!("the stream ended before {what}"));
            if wanted(&update) {
                return update;
            }
        }
    }
}

#[tokio::test]
async fn the_live_streams_show_a_verify_and_end_with_the_session() {
    let Some(lab) = machines::lab() else { return };
    let f = fleet(&lab).await;
    synced(&f).await;
    let admin = login(&f.server, "admin", &f.server.admin_password, "").await;
    let mut machine = Events::open(&f.server, &admin, "/admin/fleet/machines/m2/events").await;
    let mut table =
        Events::open(&f.server, &admin, "/admin/fleet/events?enrollment=enrolled").await;
    // The first update comes at once, as the page shows it.
    let first = machine.update().await.unwrap();
    assert!(
        first.contains("enrollment\" data-status=\"host_key_unknown\""),
        "{first}"
    );
    assert!(!first.contains(HOSTILE));
    let first = table.update().await.unwrap();
    assert_eq!(rows(&first), ["m1"], "the stream keeps the filters");

    // The admin adds m2's key and clicks Verify: both streams show m2 enrolled.
    std::fs::write(
        f.server.home.join("fleet/known_hosts"),
        known_hosts(&lab, &["m1", "m2"]),
    )
    .unwrap();
    let answer = post(&f.server, &admin, "/admin/fleet/machines/m2/verify", "").await;
    assert_eq!(answer.status, 303, "{}", answer.body);
    assert_eq!(
        header(&answer, "location"),
        Some("/admin/fleet/machines/m2")
    );
    machine
        .until("m2 enrolled", |u| {
            u.contains("enrollment\" data-status=\"enrolled\"")
        })
        .await;
    let update = table
        .until("m2 in the enrolled machines", |u| rows(u) == ["m1", "m2"])
        .await;
    assert!(!update.contains(HOSTILE), "{update}");
    assert!(update.contains("&#60;script&#62;"), "{update}");

    // Logging out ends both streams.
    let answer = send(
        &f.server,
        "POST",
        "/logout",
        &admin.cookie,
        Some(&format!("_csrf={}", admin.csrf)),
        &[],
    )
    .await;
    assert_eq!(answer.status, 303);
    for stream in [&mut machine, &mut table] {
        tokio::time::timeout(PATIENCE, async { while stream.update().await.is_some() {} })
            .await
            .expect("the stream ends with the session");
    }
}

#[tokio::test]
async fn the_dashboard_shows_the_machine_a_client_is_enrolled_as() {
    let Some(lab) = machines::lab() else { return };
    let f = fleet(&lab).await;
    let alice = f.server.login("alice", "alice-password-1").await;
    let token = alice.create_token(Some("m1")).await.unwrap();
    f.server
        .client()
        .with_token(token.token.expose())
        .ping(&PingRequest {
            client_id: token.client_id,
            hostname: "m1.lab".into(),
            version: "0.1.0".into(),
            local_workspaces: Vec::new(),
        })
        .await
        .unwrap();
    // links.yaml expects this client on m1 (the test machine has its own id: a mismatch).
    f.repo.commit(
        &[(
            "links.yaml",
            &inventory(&lab, Some(&token.client_id.to_string().to_uppercase())),
        )],
        "m1 is alice's client",
    );
    synced(&f).await;
    let admin = login(&f.server, "admin", &f.server.admin_password, "").await;
    let page = get(&f.server, &admin, "/admin/dashboard").await;
    let row = &page[page
        .find(&format!("data-client=\"{}\"", token.client_id))
        .unwrap_or_else(|| panic!("no row of the client: {page}"))..];
    let row = &row[..row.find("</tr>").unwrap()];
    assert!(row.contains("m1.lab"), "{row}");
    assert!(
        row.contains("<a href=\"/admin/fleet/machines/m1\" data-machine=\"m1\">m1</a>"),
        "{row}"
    );
    assert!(
        row.contains("enrollment\" data-status=\"mismatch\""),
        "{row}"
    );
    assert!(row.contains("health\" data-status=\"online\""), "{row}");
}

/// The fleet gauges of a `/metrics` answer: the lines that start with `berth_fleet_`.
async fn fleet_metrics(server: &TestServer) -> Vec<String> {
    let answer = server
        .raw(
            format!(
                "GET /metrics HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
                server.addr
            )
            .as_bytes(),
        )
        .await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    answer
        .body
        .lines()
        .filter(|l| l.contains("berth_fleet_"))
        .map(str::to_owned)
        .collect()
}

#[tokio::test]
async fn metrics_count_machines_by_health_and_enrollment_only_with_a_fleet() {
    let Some(lab) = machines::lab() else { return };
    let f = fleet(&lab).await;
    synced(&f).await;
    let lines = fleet_metrics(&f.server).await;
    for line in [
        "# TYPE berth_fleet_machines gauge",
        "# TYPE berth_fleet_machines_enrollment gauge",
        "berth_fleet_machines_enrollment{status=\"enrolled\"} 1",
        "berth_fleet_machines_enrollment{status=\"host_key_unknown\"} 2",
        "berth_fleet_machines_enrollment{status=\"unknown\"} 0",
        "berth_fleet_syncing 0",
        "berth_fleet_last_sync_success 1",
    ] {
        assert!(lines.iter().any(|l| l == line), "{line}: {lines:#?}");
    }
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("# HELP berth_fleet_machines ")),
        "{lines:#?}"
    );
    let health: usize = lines
        .iter()
        .filter_map(|l| l.strip_prefix("berth_fleet_machines{health=\""))
        .map(|rest| rest.rsplit(' ').next().unwrap().parse::<usize>().unwrap())
        .sum();
    assert_eq!(health, 3, "every machine has one health: {lines:#?}");
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("berth_fleet_last_sync_timestamp_seconds ")),
        "{lines:#?}"
    );
    // A failed sync shows as such.
    f.repo.commit(&[("links.yaml", "machines: [")], "broken");
    f.server
        .fleet()
        .sync(SyncTrigger::Api, Actor::System)
        .await
        .unwrap();
    let lines = fleet_metrics(&f.server).await;
    assert!(
        lines.iter().any(|l| l == "berth_fleet_last_sync_success 0"),
        "{lines:#?}"
    );

    let plain = TestServer::builder().start().await;
    assert_eq!(fleet_metrics(&plain).await, Vec::<String>::new());
}

#[tokio::test]
async fn without_a_fleet_the_page_says_how_to_set_one_up() {
    let server = TestServer::builder().start().await;
    let admin = login(&server, "admin", &server.admin_password, "").await;
    let home = get(&server, &admin, "/").await;
    assert!(!home.contains("href=\"/admin/fleet\""), "no menu entry");
    let page = get(&server, &admin, "/admin/fleet").await;
    assert!(page.contains("There is no fleet."), "{page}");
    assert!(page.contains("repository:"), "{page}");
    assert!(!page.contains("data-sse"), "{page}");
    for path in ["/admin/fleet/events", "/admin/fleet/machines/m1"] {
        let answer = send(&server, "GET", path, &admin.cookie, None, &[]).await;
        assert_eq!(answer.status, 404, "{path}: {}", answer.body);
    }
    let answer = send(
        &server,
        "POST",
        "/admin/fleet/sync",
        &admin.cookie,
        Some(&format!("_csrf={}", admin.csrf)),
        &[],
    )
    .await;
    assert_eq!(answer.status, 409, "{}", answer.body);
    assert!(answer.body.contains("fleet.repository"), "{}", answer.body);
}

#[tokio::test]
async fn the_first_sync_of_a_fresh_fleet_is_on_the_page_as_it_runs() {
    let Some(lab) = machines::lab() else { return };
    let f = fleet(&lab).await;
    let admin = login(&f.server, "admin", &f.server.admin_password, "").await;
    let mut stream = Events::open(&f.server, &admin, "/admin/fleet/events").await;
    let first = stream.update().await.unwrap();
    assert!(first.contains("No sync yet."), "{first}");
    let server = &f.server;
    let sync = async {
        server
            .fleet()
            .sync(SyncTrigger::Api, Actor::System)
            .await
            .unwrap()
    };
    let (sync, update) = tokio::join!(
        sync,
        stream.until("the sync's end", |u| u
            .contains("data-result=\"succeeded\""))
    );
    assert_eq!(sync.result, SyncResult::Succeeded);
    assert_eq!(rows(&update), ["m1", "m2", "m3"]);
}
