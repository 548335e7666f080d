//! Workspaces through the API, on the real Docker Engine.

use berth_types::MemberRole;
use berth_types::api::{StartWorkspace, WorkspaceQuery, WorkspaceState};
use http::Method;

use crate::common::{TestServer, assert_api_error, assert_error, send_json};

fn start(template: &str) -> StartWorkspace {
    StartWorkspace {
        template: template.into(),
        persist: None,
        network: None,
    }
}

#[tokio::test]
async fn a_workspace_lives_and_dies_through_the_api_and_only_its_owner_sees_it() {
    let server = TestServer::builder()
        .template("base", "")
        .template("other", "")
        .user("alice", "alice-password", &["base"])
        .user("bob", "bob-password", &["base"])
        .start()
        .await;
    let alice = server.login("alice", "alice-password").await;
    let bob = server.login("bob", "bob-password").await;
    let admin = server.admin().await;

    let created = alice.start_workspace(&start("base")).await.unwrap();
    assert_eq!(created.state, WorkspaceState::Running);
    assert_eq!(
        (created.owner.as_str(), created.template.as_str()),
        ("alice", "base")
    );
    assert_eq!(created.network, "none");
    assert!(!created.persistent);
    assert!(
        created
            .alive_reason
            .as_deref()
            .is_some_and(|r| r.contains("idle for")),
        "{created:?}"
    );
    let id = created.id;

    let mine = alice
        .list_workspaces(&WorkspaceQuery::default())
        .await
        .unwrap();
    assert_eq!(mine.iter().map(|w| w.id).collect::<Vec<_>>(), [id]);
    assert_eq!(
        alice.workspace(id).await.unwrap().state,
        WorkspaceState::Running
    );

    // Bob sees nothing of it: every operation answers as for an id that does not exist.
    assert!(
        bob.list_workspaces(&WorkspaceQuery::default())
            .await
            .unwrap()
            .is_empty()
    );
    assert_api_error(bob.workspace(id).await, 404, "not_found");
    assert_api_error(bob.stop_workspace(id).await, 404, "not_found");
    assert_api_error(bob.restart_workspace(id).await, 404, "not_found");
    assert_api_error(bob.delete_workspace(id).await, 404, "not_found");
    let owner_alice = WorkspaceQuery {
        owner: Some(berth_types::Username::new("alice").unwrap()),
        ..WorkspaceQuery::default()
    };
    assert_api_error(bob.list_workspaces(&owner_alice).await, 403, "forbidden");

    // Errors of the manager map to statuses.
    assert_api_error(
        alice.start_workspace(&start("other")).await,
        403,
        "forbidden",
    );
    assert_api_error(
        alice.start_workspace(&start("nope")).await,
        403,
        "forbidden",
    );
    let host = StartWorkspace {
        network: Some("host".into()),
        ..start("base")
    };
    let refused = assert_api_error(alice.start_workspace(&host).await, 422, "invalid");
    assert!(refused.message.contains("network"), "{refused:?}");

    // Admins see everyone's, with filters; removing a template in use is refused.
    let all = admin.list_workspaces(&owner_alice).await.unwrap();
    assert_eq!(all.len(), 1);
    let running = WorkspaceQuery {
        state: Some(WorkspaceState::Running),
        template: Some("base".into()),
        ..WorkspaceQuery::default()
    };
    assert_eq!(admin.list_workspaces(&running).await.unwrap().len(), 1);
    let stopped = WorkspaceQuery {
        state: Some(WorkspaceState::Stopped),
        ..WorkspaceQuery::default()
    };
    assert!(admin.list_workspaces(&stopped).await.unwrap().is_empty());
    admin.delete_template("other").await.unwrap();
    let in_use = assert_api_error(admin.delete_template("base").await, 409, "in_use");
    assert!(in_use.message.contains("used by 1 workspace"), "{in_use:?}");

    // Stop, start again, delete.
    let stopped = alice.stop_workspace(id).await.unwrap();
    assert_eq!(stopped.state, WorkspaceState::Stopped);
    assert_eq!(stopped.state_reason, "stopped by alice");
    assert_eq!(stopped.alive_reason, None);
    let again = alice.restart_workspace(id).await.unwrap();
    assert_eq!(again.state, WorkspaceState::Running);
    admin.stop_workspace(id).await.unwrap();
    alice.delete_workspace(id).await.unwrap();
    assert_api_error(alice.workspace(id).await, 404, "not_found");
    assert_api_error(alice.delete_workspace(id).await, 404, "not_found");

    // Each step is in the audit log.
    let audit = admin
        .query_table(&berth_types::api::TableQuery {
            table: "audit".into(),
            columns: vec!["actor".into(), "action".into()],
            ..Default::default()
        })
        .await
        .unwrap();
    let actions: Vec<String> = audit
        .rows
        .iter()
        .map(|r| {
            format!(
                "{} {}",
                r["actor"].as_str().unwrap(),
                r["action"].as_str().unwrap()
            )
        })
        .collect();
    for expected in [
        "alice workspace.start",
        "alice workspace.stop",
        "alice workspace.restart",
        "admin workspace.stop",
        "alice workspace.delete",
    ] {
        assert!(
            actions.iter().any(|a| a == expected),
            "{expected} not in {actions:?}"
        );
    }
}

#[tokio::test]
async fn quotas_options_and_engine_failures_have_their_statuses() {
    let server = TestServer::builder()
        .template("base", "persist: never")
        .template("broken", "image: berth-test/missing-image")
        .runtime("max_workspaces_per_user", "1")
        .user("alice", "alice-password", &["base", "broken"])
        .start()
        .await;
    let alice = server.login("alice", "alice-password").await;
    let admin = server.admin().await;

    let persist = StartWorkspace {
        persist: Some(true),
        ..start("base")
    };
    let refused = assert_api_error(alice.start_workspace(&persist).await, 422, "invalid");
    assert!(refused.message.contains("persist"), "{refused:?}");

    // A missing image is the admin's to fix: they get the engine's message, users a safe one.
    let failed = assert_api_error(
        alice.start_workspace(&start("broken")).await,
        502,
        "engine_failed",
    );
    assert!(!failed.message.contains("missing-image"), "{failed:?}");
    let failed = assert_api_error(
        admin.start_workspace(&start("broken")).await,
        502,
        "engine_failed",
    );
    assert!(failed.message.contains("missing-image"), "{failed:?}");

    let first = alice.start_workspace(&start("base")).await.unwrap();
    let quota = assert_api_error(
        alice.start_workspace(&start("base")).await,
        409,
        "quota_exceeded",
    );
    assert!(quota.message.contains("1 live workspace"), "{quota:?}");
    alice.delete_workspace(first.id).await.unwrap();

    // Malformed ids are 400, unknown ones 404.
    let answer = alice
        .send(Method::GET, "/api/v1/workspaces/not-a-uuid", &[], "")
        .await
        .unwrap();
    assert_error(&answer, 400, "bad_path");
    let answer = alice
        .send(Method::GET, "/api/v1/workspaces?state=sleeping", &[], "")
        .await
        .unwrap();
    assert_error(&answer, 400, "bad_query");
    let answer = alice
        .send(Method::GET, "/api/v1/workspaces?colour=red", &[], "")
        .await
        .unwrap();
    assert_error(&answer, 400, "bad_query");
}

/// What the docker CLI lists for `args` (ids or names), one per line.
fn docker_list(args: &[&str]) -> Vec<String> {
    let out = std::process::Command::new("docker")
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "docker {args:?} failed");
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

#[tokio::test]
async fn deleting_an_account_takes_its_workspaces_volumes_and_memberships_with_it() {
    let server = TestServer::builder()
        .template(
            "keep",
            "persist: always\nvolumes:\n  - name: home\n    target: /home/dev",
        )
        .template("pair", "shared: true")
        .user("alice", "alice-password", &["keep"])
        .user("bob", "bob-password", &["pair"])
        .user("carol", "carol-password", &[])
        .start()
        .await;
    let alice = server.login("alice", "alice-password").await;
    let bob = server.login("bob", "bob-password").await;
    let admin = server.admin().await;
    let kept = alice.start_workspace(&start("keep")).await.unwrap();
    let pair = bob.start_workspace(&start("pair")).await.unwrap();
    bob.add_member(pair.id, "alice", MemberRole::Peer)
        .await
        .unwrap();
    bob.add_member(pair.id, "carol", MemberRole::Viewer)
        .await
        .unwrap();
    // What is shared with alice: bob's workspace, not her own.
    let shared = WorkspaceQuery {
        shared: true,
        ..WorkspaceQuery::default()
    };
    let listed = alice.list_workspaces(&shared).await.unwrap();
    assert_eq!(
        listed.iter().map(|w| w.id).collect::<Vec<_>>(),
        [pair.id],
        "{listed:?}"
    );
    assert!(bob.list_workspaces(&shared).await.unwrap().is_empty());
    let both = send_json(
        &alice,
        "GET",
        "/api/v1/workspaces?shared=true&owner=bob",
        "",
    )
    .await;
    assert_error(&both, 422, "invalid");
    let instance = format!("label=berth.instance={}", server.instance);
    let alices = [
        "--filter",
        "label=berth.owner=alice",
        "--filter",
        instance.as_str(),
    ];
    let volumes = || docker_list(&[&["volume", "ls", "-q"][..], &alices[..]].concat());
    let containers = || docker_list(&[&["ps", "-aq"][..], &alices[..]].concat());
    assert_eq!(volumes().len(), 1, "alice's persistent home");
    assert_eq!(containers().len(), 1);

    // A renamed owner would lose what is named after them: refused while they own workspaces.
    let rename = r#"{"username": "alicia", "templates": ["keep"]}"#;
    let refused = send_json(&admin, "PUT", "/api/v1/users/alice", rename).await;
    assert_error(&refused, 409, "in_use");
    assert!(admin.user("alice").await.is_ok(), "nothing changed");

    // Recordings: alice's own, one of carol's where alice attached, one where carol attached.
    let now = time::OffsetDateTime::now_utc();
    let alices = crate::common::insert_recording(&server, "alice", "alice", now).await;
    let alices_file = crate::common::write_recording_file(&server, &alices, "{}\n", now);
    let carols = crate::common::insert_recording(&server, "carol", "alice", now).await;
    let carols_file = crate::common::write_recording_file(&server, &carols, "{}\n", now);
    let attended = crate::common::insert_recording(&server, "bob", "carol", now).await;
    admin.delete_user("alice").await.unwrap();
    assert!(
        !alices_file.exists(),
        "the recordings of alice's workspaces go with her"
    );
    assert_api_error(admin.recording(alices.id).await, 404, "not_found");
    assert!(carols_file.exists(), "carol's stays, though alice attached");
    assert_eq!(
        admin.recording(carols.id).await.unwrap().username.as_str(),
        "alice"
    );
    assert!(containers().is_empty(), "alice's container is gone");
    assert!(volumes().is_empty(), "alice's persistent volume is gone");
    assert_api_error(admin.workspace(kept.id).await, 404, "not_found");
    let members = bob.members(pair.id).await.unwrap();
    let names: Vec<&str> = members
        .members
        .iter()
        .map(|m| m.username.as_str())
        .collect();
    assert_eq!(names, ["carol"], "{members:?}");
    assert_api_error(admin.delete_user("alice").await, 404, "not_found");
    // bob's workspace is untouched.
    assert_eq!(
        bob.workspace(pair.id).await.unwrap().state,
        WorkspaceState::Running
    );

    // A renamed member keeps their memberships under the new name.
    let rename = r#"{"username": "caroline"}"#;
    let renamed = send_json(&admin, "PUT", "/api/v1/users/carol", rename).await;
    assert_eq!(renamed.status, 200, "{renamed:?}");
    let members = bob.members(pair.id).await.unwrap();
    assert_eq!(members.members[0].username.as_str(), "caroline");
    assert_eq!(members.members[0].role, MemberRole::Viewer);
    // And her recordings, as owner and as who attached.
    assert_eq!(
        admin.recording(carols.id).await.unwrap().owner.as_str(),
        "caroline"
    );
    assert_eq!(
        admin
            .recording(attended.id)
            .await
            .unwrap()
            .username
            .as_str(),
        "caroline"
    );
}
