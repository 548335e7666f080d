//! The `docker` provider against the real test Docker Engine (`DOCKER_HOST`, started by
//! `make test`), with the stand-in image `berth-test/k3s-standin` (scripts/cluster-image.sh)
//! playing k3s's part, and every kubeconfig checked with the real `kubectl`. When
//! `BERTH_TEST_K3S_IMAGE` names a rancher/k3s image the engine has, the create → ready →
//! kubectl story also runs against that real k3s.
//!
//! The test engine has no bridge, so the clusters run on the host network, on 127.0.0.1.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use berth_clusters::{
    ClusterNetwork, ClusterProvider, ClusterSpec, DockerClusterSettings, DockerProvider,
    ProviderError, ProviderStatus,
};
use berth_runtime::{DockerOptions, DockerRuntime};
use berth_types::{ClusterId, ClusterName, Username};
use bollard::Docker;
use bollard::query_parameters::{ListContainersOptionsBuilder, RemoveContainerOptionsBuilder};
use futures_util::StreamExt;

const STANDIN: &str = "berth-test/k3s-standin";
const STANDIN_VERSION: &str = "v1.31.0+berth-standin";
/// Upper bound for a cluster to become ready; hitting it fails the test with what was seen.
const PATIENCE: Duration = Duration::from_secs(60);
/// A real k3s needs longer: containerd, the control plane, the node.
const K3S_PATIENCE: Duration = Duration::from_secs(240);

const HOW_TO_START: &str = "start the test Docker Engine and load the stand-in image: \
    `scripts/docker-engine.sh start && eval \"$(scripts/docker-engine.sh env)\" && scripts/cluster-image.sh` \
    (or run the tests through `make test`)";

async fn engine() -> Docker {
    if std::env::var_os("DOCKER_HOST").is_none() {
        panic!("DOCKER_HOST is not set: {HOW_TO_START}");
    }
    match DockerRuntime::connect_env(DockerOptions::default()).await {
        Ok(rt) => rt.engine().clone(),
        Err(e) => panic!("cannot reach the test Docker Engine ({e}): {HOW_TO_START}"),
    }
}

async fn has_image(docker: &Docker, image: &str) -> bool {
    docker.inspect_image(image).await.is_ok()
}

/// One test's installation: a unique `berth.instance`, so parallel tests never see each
/// other's clusters; dropping it removes every container of that instance.
struct Scope {
    docker: Docker,
    instance: String,
}

impl Scope {
    async fn new(test: &str) -> Self {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let instance = format!(
            "t-{test}-{}-{nanos}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let docker = engine().await;
        assert!(
            has_image(&docker, STANDIN).await,
            "the engine has no {STANDIN}: {HOW_TO_START}"
        );
        Self { docker, instance }
    }

    fn settings(&self, env: &[&str]) -> DockerClusterSettings {
        let mut settings = DockerClusterSettings::new(self.instance.clone());
        settings.image = STANDIN.to_owned();
        settings.network = ClusterNetwork::Host;
        settings.api_address = IpAddr::V4(Ipv4Addr::LOCALHOST);
        settings.cpus = Some(1.0);
        settings.memory = 512 << 20;
        // The stand-in needs no privileges, and the test engine (itself in a container) cannot
        // grant every capability; the real k3s run below is privileged.
        settings.privileged = false;
        settings.env = env.iter().map(|s| s.to_string()).collect();
        settings
    }

    fn provider(&self, env: &[&str]) -> DockerProvider {
        DockerProvider::new(self.docker.clone(), self.settings(env))
    }

    /// The containers carrying `label=value`, stopped ones too, straight from the engine.
    async fn containers_with(&self, label: &str, value: &str) -> Vec<String> {
        let filters = HashMap::from([("label", vec![format!("{label}={value}")])]);
        let options = ListContainersOptionsBuilder::new()
            .all(true)
            .filters(&filters)
            .build();
        self.docker
            .list_containers(Some(options))
            .await
            .unwrap()
            .into_iter()
            .filter_map(|c| c.id)
            .collect()
    }
}

impl Drop for Scope {
    fn drop(&mut self) {
        let docker = self.docker.clone();
        let filter = format!("berth.instance={}", self.instance);
        // Drop cannot await, and the test's runtime may be gone: clean up on a thread.
        let cleanup = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let filters = HashMap::from([("label", vec![filter])]);
                let list = ListContainersOptionsBuilder::new()
                    .all(true)
                    .filters(&filters)
                    .build();
                for c in docker.list_containers(Some(list)).await.unwrap_or_default() {
                    let options = RemoveContainerOptionsBuilder::new()
                        .force(true)
                        .v(true)
                        .build();
                    let _ = docker
                        .remove_container(&c.id.unwrap_or_default(), Some(options))
                        .await;
                }
            });
        });
        let _ = cleanup.join();
    }
}

fn spec(name: &str) -> ClusterSpec {
    ClusterSpec {
        id: ClusterId::random(),
        name: ClusterName::new(name).unwrap(),
        owner: Username::new("alice").unwrap(),
    }
}

/// Polls `status` until the cluster is ready; returns every distinct status seen on the way.
async fn until_ready(
    provider: &DockerProvider,
    id: ClusterId,
    patience: Duration,
) -> Vec<ProviderStatus> {
    let deadline = tokio::time::Instant::now() + patience;
    let mut seen: Vec<ProviderStatus> = Vec::new();
    loop {
        let status = provider.status(id).await.unwrap();
        if seen.last() != Some(&status) {
            seen.push(status.clone());
        }
        match status {
            ProviderStatus::Ready { .. } => return seen,
            ProviderStatus::Failed { reason } => panic!("the cluster failed: {reason}"),
            ProviderStatus::Missing => panic!("the cluster is missing; seen {seen:?}"),
            ProviderStatus::Provisioning { .. } => {}
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "not ready within {patience:?}; seen {seen:?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Polls `status` until the cluster failed; returns the reason.
async fn until_failed(provider: &DockerProvider, id: ClusterId) -> String {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        match provider.status(id).await.unwrap() {
            ProviderStatus::Failed { reason } => return reason,
            ProviderStatus::Provisioning { .. } => {}
            other => panic!("expected the cluster to fail, it is {other:?}"),
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "did not fail within {PATIENCE:?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Runs the real kubectl (`BERTH_TEST_KUBECTL` or the one on PATH); returns its stdout.
async fn kubectl(args: &[&str]) -> String {
    let (ok, stdout, stderr) = kubectl_outcome(args).await;
    assert!(ok, "kubectl {args:?} failed: {stderr}");
    stdout
}

/// Runs kubectl; returns whether it succeeded, its stdout and its stderr.
async fn kubectl_outcome(args: &[&str]) -> (bool, String, String) {
    let program = std::env::var("BERTH_TEST_KUBECTL").unwrap_or_else(|_| "kubectl".to_owned());
    let run = tokio::process::Command::new(&program)
        .args(args)
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(60), run)
        .await
        .unwrap_or_else(|_| panic!("{program} {args:?} did not finish"))
        .unwrap_or_else(|e| {
            panic!("cannot run {program} ({e}); scripts/with-test-env.sh installs it")
        });
    (
        output.status.success(),
        String::from_utf8(output.stdout).unwrap(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// create → provisioning → ready → kubeconfig → the real kubectl reads /readyz and the version.
/// Returns the server's gitVersion.
async fn create_ready_and_kubectl(
    provider: &DockerProvider,
    patience: Duration,
    expect_provisioning: bool,
) -> String {
    let spec = spec("dev");
    let provisioned = provider.create(&spec).await.unwrap();
    assert!(
        provisioned.api_url.starts_with("https://127.0.0.1:"),
        "{provisioned:?}"
    );
    if expect_provisioning {
        // The stand-in waits before serving: nothing to read or probe yet.
        let early = provider.kubeconfig(spec.id).await.unwrap_err();
        assert!(
            matches!(early, ProviderError::KubeconfigNotReady { id } if id == spec.id),
            "{early}"
        );
    }
    let seen = until_ready(provider, spec.id, patience).await;
    if expect_provisioning {
        assert!(
            matches!(seen[0], ProviderStatus::Provisioning { .. }),
            "the first status was {:?}",
            seen[0]
        );
    }
    assert_eq!(
        seen.last().unwrap(),
        &ProviderStatus::Ready {
            api_url: provisioned.api_url.clone()
        }
    );

    let kubeconfig = provider.kubeconfig(spec.id).await.unwrap();
    assert_eq!(format!("{kubeconfig:?}"), "<kubeconfig>");
    let text = kubeconfig.expose().to_owned();
    assert!(
        text.contains(&format!("server: {}", provisioned.api_url)),
        "{text}"
    );
    assert!(
        !text.contains("default"),
        "k3s's entry names remain: {text}"
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("kubeconfig");
    std::fs::write(&file, kubeconfig.into_bytes()).unwrap();
    let file = file.to_str().unwrap();

    let context = kubectl(&["--kubeconfig", file, "config", "current-context"]).await;
    assert_eq!(context.trim(), "berth-dev");
    let readyz = kubectl(&["--kubeconfig", file, "get", "--raw", "/readyz"]).await;
    assert_eq!(readyz.trim(), "ok");
    // Without the client certificate the API refuses, as the readiness check relies on: a
    // token it does not know instead (with no credentials at all kubectl would prompt).
    let anonymous = dir.path().join("anonymous");
    let mut without_user = String::new();
    for line in text.lines() {
        if let Some((indent, _)) = line.split_once("client-certificate-data") {
            without_user.push_str(&format!("{indent}token: not-a-token\n"));
        } else if !line.contains("client-key-data") {
            without_user.push_str(line);
            without_user.push('\n');
        }
    }
    std::fs::write(&anonymous, without_user).unwrap();
    let (ok, _, stderr) = kubectl_outcome(&[
        "--kubeconfig",
        anonymous.to_str().unwrap(),
        "get",
        "--raw",
        "/readyz",
    ])
    .await;
    assert!(!ok && stderr.contains("Unauthorized"), "{stderr}");
    let version = kubectl(&["--kubeconfig", file, "version", "-o", "json"]).await;
    let version: serde_json::Value = serde_json::from_str(&version).unwrap();
    provider.delete(spec.id).await.unwrap();
    version["serverVersion"]["gitVersion"]
        .as_str()
        .unwrap_or_else(|| panic!("no server version in {version}"))
        .to_owned()
}

#[tokio::test]
async fn a_cluster_turns_ready_and_kubectl_uses_its_kubeconfig() {
    let scope = Scope::new("ready").await;
    let provider = scope.provider(&["STANDIN_READY_DELAY=5"]);
    assert_eq!(provider.name(), "docker");
    let version = create_ready_and_kubectl(&provider, PATIENCE, true).await;
    assert_eq!(version, STANDIN_VERSION);
}

#[tokio::test]
async fn a_real_k3s_when_its_image_is_present() {
    let scope = Scope::new("k3s").await;
    let image = std::env::var("BERTH_TEST_K3S_IMAGE").ok();
    let present = match &image {
        Some(image) => has_image(&scope.docker, image).await,
        None => false,
    };
    let provider = if let (Some(image), true) = (&image, present) {
        let mut settings = scope.settings(&[]);
        settings.image = image.clone();
        settings.memory = 0;
        settings.cpus = None;
        settings.privileged = true;
        DockerProvider::new(scope.docker.clone(), settings)
    } else {
        eprintln!(
            "a_real_k3s_when_its_image_is_present: {}; ran against the stand-in {STANDIN} only \
             (docs/clusters.md says how to run it against k3s)",
            match &image {
                Some(image) => format!("BERTH_TEST_K3S_IMAGE={image} is not in the engine"),
                None => "BERTH_TEST_K3S_IMAGE is not set".to_owned(),
            }
        );
        scope.provider(&[])
    };
    let patience = if present { K3S_PATIENCE } else { PATIENCE };
    let version = create_ready_and_kubectl(&provider, patience, false).await;
    if present {
        assert!(version.contains("k3s"), "{version}");
    } else {
        assert_eq!(version, STANDIN_VERSION);
    }
}

#[tokio::test]
async fn create_is_idempotent_and_delete_removes_container_and_volumes() {
    let scope = Scope::new("idem").await;
    let provider = scope.provider(&[]);
    let spec = spec("twice");
    // Two at once: one creates, the other finds the name taken and reuses that container.
    let (first, second) = tokio::join!(provider.create(&spec), provider.create(&spec));
    let (first, second) = (first.unwrap(), second.unwrap());
    assert_eq!(first, second);
    assert_eq!(provider.create(&spec).await.unwrap(), first);
    let ids = scope
        .containers_with("berth.cluster", &spec.id.to_string())
        .await;
    assert_eq!(ids.len(), 1, "{ids:?}");

    let listed = provider.list().await.unwrap();
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0].id, spec.id);
    assert_eq!(
        listed[0].owner.as_ref().map(Username::as_str),
        Some("alice")
    );
    assert!(
        listed[0]
            .container
            .starts_with(&format!("berth-cluster-{}-twice-", scope.instance)),
        "{listed:?}"
    );

    // A stopped cluster is started again by create, not made anew.
    scope.docker.stop_container(&ids[0], None).await.unwrap();
    let third = provider.create(&spec).await.unwrap();
    assert_eq!(
        scope
            .containers_with("berth.cluster", &spec.id.to_string())
            .await,
        ids
    );
    let inspect = scope.docker.inspect_container(&ids[0], None).await.unwrap();
    assert_eq!(inspect.state.unwrap().running, Some(true));
    until_ready(&provider, spec.id, PATIENCE).await;
    assert_eq!(
        third.api_url, first.api_url,
        "the remembered port is reused"
    );

    let host = inspect.host_config.unwrap();
    assert_eq!(host.privileged, Some(false));
    assert_eq!(host.network_mode.as_deref(), Some("host"));
    assert_eq!(host.memory, Some(512 << 20));
    assert_eq!(host.nano_cpus, Some(1_000_000_000));
    let volumes: Vec<String> = inspect
        .mounts
        .unwrap_or_default()
        .into_iter()
        .filter_map(|m| m.name)
        .collect();
    assert!(!volumes.is_empty(), "the image's volume was not mounted");

    provider.delete(spec.id).await.unwrap();
    provider.delete(spec.id).await.unwrap();
    assert!(
        scope
            .containers_with("berth.cluster", &spec.id.to_string())
            .await
            .is_empty()
    );
    for volume in volumes {
        assert!(
            scope.docker.inspect_volume(&volume).await.is_err(),
            "volume {volume} outlived its cluster"
        );
    }
    assert_eq!(
        provider.status(spec.id).await.unwrap(),
        ProviderStatus::Missing
    );
    assert!(provider.list().await.unwrap().is_empty());
}

#[tokio::test]
async fn list_shows_only_this_installation() {
    let ours = Scope::new("ours").await;
    let theirs = Scope::new("theirs").await;
    let (a, b) = (spec("a"), spec("b"));
    ours.provider(&[]).create(&a).await.unwrap();
    theirs.provider(&[]).create(&b).await.unwrap();
    let held = ours.provider(&[]).list().await.unwrap();
    assert!(held.iter().all(|c| c.running), "a created server runs");
    let listed: Vec<ClusterId> = held.into_iter().map(|c| c.id).collect();
    assert_eq!(listed, [a.id]);
    let listed: Vec<ClusterId> = theirs
        .provider(&[])
        .list()
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.id)
        .collect();
    assert_eq!(listed, [b.id]);
    // Another installation's cluster is not this one's to see or delete.
    assert_eq!(
        ours.provider(&[]).status(b.id).await.unwrap(),
        ProviderStatus::Missing
    );
    ours.provider(&[]).delete(b.id).await.unwrap();
    assert_eq!(
        theirs
            .containers_with("berth.cluster", &b.id.to_string())
            .await
            .len(),
        1
    );
}

#[tokio::test]
async fn a_missing_image_is_an_error_that_says_how_to_load_it() {
    let scope = Scope::new("noimage").await;
    let mut settings = scope.settings(&[]);
    settings.image = "berth-test/no-such-k3s:never".to_owned();
    let provider = DockerProvider::new(scope.docker.clone(), settings);
    let err = provider.create(&spec("x")).await.unwrap_err();
    assert!(
        matches!(&err, ProviderError::ImageMissing { image } if image == "berth-test/no-such-k3s:never"),
        "{err}"
    );
    let message = err.to_string();
    assert!(message.contains("docker load"), "{message}");
    assert!(message.contains("never pulls"), "{message}");
    assert!(provider.list().await.unwrap().is_empty());
}

#[tokio::test]
async fn a_server_that_exits_is_failed_with_its_log() {
    let scope = Scope::new("fail").await;
    let provider = scope.provider(&["STANDIN_FAIL=1"]);
    let spec = spec("broken");
    match provider.create(&spec).await {
        Ok(_) => {}
        // It may exit before create looks again.
        Err(ProviderError::ContainerExited { log_tail, .. }) => {
            assert!(log_tail.contains("STANDIN_FAIL=1"), "{log_tail}")
        }
        Err(e) => panic!("{e}"),
    }
    let reason = until_failed(&provider, spec.id).await;
    assert!(reason.contains("exited with code 1"), "{reason}");
    assert!(
        reason.contains("STANDIN_FAIL=1: exiting as a k3s server that cannot start would"),
        "{reason}"
    );
    let err = provider.kubeconfig(spec.id).await.unwrap_err();
    assert!(
        matches!(&err, ProviderError::ContainerExited { code: 1, log_tail, .. } if log_tail.contains("STANDIN_FAIL")),
        "{err}"
    );
    provider.delete(spec.id).await.unwrap();
    assert_eq!(
        provider.status(spec.id).await.unwrap(),
        ProviderStatus::Missing
    );
}

#[tokio::test]
async fn unknown_clusters_are_missing() {
    let scope = Scope::new("unknown").await;
    let provider = scope.provider(&[]);
    let id = ClusterId::random();
    assert_eq!(provider.status(id).await.unwrap(), ProviderStatus::Missing);
    let err = provider.kubeconfig(id).await.unwrap_err();
    assert!(
        matches!(err, ProviderError::NotFound { id: e } if e == id),
        "{err}"
    );
    provider.delete(id).await.unwrap();
}

#[tokio::test]
async fn an_unreachable_engine_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("no-engine.sock");
    // A socket file no one listens on: the engine is down, its socket left behind.
    drop(std::os::unix::net::UnixListener::bind(&socket).unwrap());
    let docker =
        Docker::connect_with_unix(socket.to_str().unwrap(), 10, bollard::API_DEFAULT_VERSION)
            .unwrap();
    let provider = DockerProvider::new(docker, DockerClusterSettings::new("nowhere"));
    let err = provider.create(&spec("x")).await.unwrap_err();
    assert!(
        matches!(err, ProviderError::EngineUnreachable { .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("unreachable"), "{err}");
    let err = provider.list().await.unwrap_err();
    assert!(
        matches!(err, ProviderError::EngineUnreachable { .. }),
        "{err:?}"
    );
}

#[tokio::test]
async fn readiness_is_verified_with_the_clusters_own_ca() {
    let scope = Scope::new("verify").await;
    let provider = scope.provider(&[]);
    let (a, b) = (spec("a"), spec("b"));
    provider.create(&a).await.unwrap();
    provider.create(&b).await.unwrap();
    until_ready(&provider, a.id, PATIENCE).await;
    until_ready(&provider, b.id, PATIENCE).await;

    // B's container now holds A's kubeconfig: A's CA, which did not sign B's server.
    let container = |id: ClusterId| {
        let scope = &scope;
        async move {
            scope
                .containers_with("berth.cluster", &id.to_string())
                .await[0]
                .clone()
        }
    };
    let options = bollard::query_parameters::DownloadFromContainerOptionsBuilder::new()
        .path("/etc/rancher/k3s/k3s.yaml")
        .build();
    let mut tar = Vec::new();
    let mut stream = scope
        .docker
        .download_from_container(&container(a.id).await, Some(options));
    while let Some(chunk) = stream.next().await {
        tar.extend_from_slice(&chunk.unwrap());
    }
    let options = bollard::query_parameters::UploadToContainerOptionsBuilder::new()
        .path("/etc/rancher/k3s")
        .build();
    scope
        .docker
        .upload_to_container(
            &container(b.id).await,
            Some(options),
            bollard::body_full(tar.into()),
        )
        .await
        .unwrap();

    match provider.status(b.id).await.unwrap() {
        ProviderStatus::Provisioning { detail } => {
            assert!(detail.contains("invalid peer certificate"), "{detail}");
        }
        other => panic!("a server another CA signed passed as {other:?}"),
    }
    assert!(matches!(
        provider.status(a.id).await.unwrap(),
        ProviderStatus::Ready { .. }
    ));
}
