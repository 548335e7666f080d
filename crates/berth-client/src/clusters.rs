//! Ephemeral Kubernetes clusters: ask for one with a TTL, list, extend, download the
//! kubeconfig, delete (`/api/v1/clusters…`).

use berth_types::ClusterId;
use berth_types::api::{ClusterList, ClusterQuery, ClusterView, ExtendCluster, NewCluster};
use http::Method;

use crate::encode;
use crate::error::ClientError;
use crate::transport::Client;

/// The media type of `GET /api/v1/clusters/{id}/kubeconfig`.
pub(crate) const KUBECONFIG_TYPE: &str = "application/yaml";

/// `GET /api/v1/clusters` with the filters of `query` in its query string.
fn clusters_path(query: &ClusterQuery) -> String {
    let mut params = Vec::new();
    if let Some(owner) = &query.owner {
        params.push(format!("owner={}", encode(owner.as_str())));
    }
    if let Some(state) = query.state {
        params.push(format!("state={state}"));
    }
    if params.is_empty() {
        "/api/v1/clusters".to_owned()
    } else {
        format!("/api/v1/clusters?{}", params.join("&"))
    }
}

impl Client {
    /// `POST /api/v1/clusters`: the new cluster at once, in `provisioning`; follow it with
    /// [`Client::cluster`] until it is `running` (or `failed`, its `state_reason` saying why).
    pub async fn create_cluster(&self, cluster: &NewCluster) -> Result<ClusterView, ClientError> {
        self.json(Method::POST, "/api/v1/clusters", Some(cluster))
            .await
    }

    /// `GET /api/v1/clusters`: the caller's clusters (admins: everyone's, or `owner`'s), every
    /// state but `deleted` unless `query.state` says otherwise, oldest first.
    pub async fn list_clusters(
        &self,
        query: &ClusterQuery,
    ) -> Result<Vec<ClusterView>, ClientError> {
        let list: ClusterList = self
            .json(Method::GET, &clusters_path(query), None::<&()>)
            .await?;
        Ok(list.clusters)
    }

    /// `GET /api/v1/clusters/{id}`. 404 for another user's cluster, as for one that does not
    /// exist.
    pub async fn cluster(&self, id: ClusterId) -> Result<ClusterView, ClientError> {
        self.json(Method::GET, &format!("/api/v1/clusters/{id}"), None::<&()>)
            .await
    }

    /// `DELETE /api/v1/clusters/{id}`: the provider removes it; it turns `deleting`, then
    /// `deleted`.
    pub async fn delete_cluster(&self, id: ClusterId) -> Result<(), ClientError> {
        self.empty(Method::DELETE, &format!("/api/v1/clusters/{id}"))
            .await
    }

    /// `POST /api/v1/clusters/{id}/extend`: `extend.ttl` more, up to `max_expires_at`.
    pub async fn extend_cluster(
        &self,
        id: ClusterId,
        extend: &ExtendCluster,
    ) -> Result<ClusterView, ClientError> {
        self.json(
            Method::POST,
            &format!("/api/v1/clusters/{id}/extend"),
            Some(extend),
        )
        .await
    }

    /// `GET /api/v1/clusters/{id}/kubeconfig`: the kubeconfig (YAML, with credentials: keep
    /// it private), its server the published API address. 409 `wrong_state` until the
    /// cluster runs.
    pub async fn kubeconfig(&self, id: ClusterId) -> Result<String, ClientError> {
        self.typed_text(
            &format!("/api/v1/clusters/{id}/kubeconfig"),
            KUBECONFIG_TYPE,
        )
        .await
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use berth_types::ClusterState;
    use berth_types::units::HumanDuration;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    use super::*;
    use crate::api::Timeout;

    #[test]
    fn cluster_filters_go_into_the_query_string() {
        assert_eq!(clusters_path(&ClusterQuery::default()), "/api/v1/clusters");
        let query = ClusterQuery {
            owner: Some("alice".parse().unwrap()),
            state: Some(ClusterState::Failed),
        };
        assert_eq!(
            clusters_path(&query),
            "/api/v1/clusters?owner=alice&state=failed"
        );
    }

    /// One HTTP/1.1 exchange on `listener`: the request (head and `content-length` bytes of
    /// body), then `answer` written and the connection closed.
    pub(crate) async fn serve_once(listener: &TcpListener, answer: &str) -> String {
        let (mut socket, _) = listener.accept().await.unwrap();
        let mut head = Vec::new();
        let mut byte = [0_u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            socket.read_exact(&mut byte).await.unwrap();
            head.push(byte[0]);
        }
        let head = String::from_utf8(head).unwrap().to_ascii_lowercase();
        let length: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .map_or(0, |n| n.trim().parse().unwrap());
        let mut body = vec![0_u8; length];
        socket.read_exact(&mut body).await.unwrap();
        let _ = socket.write_all(answer.as_bytes()).await;
        let _ = socket.shutdown().await;
        format!("{head}{}", String::from_utf8(body).unwrap())
    }

    pub(crate) fn answer(status: &str, content_type: &str, body: &str) -> String {
        format!(
            "HTTP/1.1 {status}\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\n\
             connection: close\r\n\r\n{body}",
            body.len()
        )
    }

    const ID: &str = "7a1c2a3b-0000-4000-8000-000000000001";

    fn view(state: &str) -> String {
        format!(
            r#"{{"id":"{ID}","name":"dev","owner":"alice","provider":"docker","state":"{state}",
            "state_reason":"","created_at":"2026-12-04T03:00:00Z","running_at":null,
            "expires_at":"2026-12-04T05:00:00Z","max_expires_at":"2026-12-05T03:00:00Z"}}"#
        )
    }

    #[tokio::test]
    async fn clusters_are_created_extended_and_deleted_with_their_bodies() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let client = Client::new(&url).unwrap().with_token("t0ken");
        let id: ClusterId = ID.parse().unwrap();

        let new = NewCluster {
            name: "dev".parse().unwrap(),
            ttl: Some(Timeout(HumanDuration::from_secs(7200).unwrap())),
        };
        let created = answer("201 Created", "application/json", &view("provisioning"));
        let (request, created) =
            tokio::join!(serve_once(&listener, &created), client.create_cluster(&new));
        assert!(request.starts_with("post /api/v1/clusters "), "{request}");
        assert!(request.contains("authorization: bearer t0ken"), "{request}");
        assert!(
            request.ends_with(r#"{"name":"dev","ttl":"2h"}"#),
            "{request}"
        );
        let created = created.unwrap();
        assert_eq!(
            (created.id, created.state),
            (id, ClusterState::Provisioning)
        );

        let extend = ExtendCluster {
            ttl: Timeout(HumanDuration::from_secs(3600).unwrap()),
        };
        let extended = answer("200 OK", "application/json", &view("running"));
        let (request, extended) = tokio::join!(
            serve_once(&listener, &extended),
            client.extend_cluster(id, &extend)
        );
        assert!(
            request.starts_with(&format!("post /api/v1/clusters/{ID}/extend ")),
            "{request}"
        );
        assert!(request.ends_with(r#"{"ttl":"1h"}"#), "{request}");
        assert_eq!(extended.unwrap().state, ClusterState::Running);

        let list = answer(
            "200 OK",
            "application/json",
            &format!(r#"{{"clusters":[{}]}}"#, view("running")),
        );
        let query = ClusterQuery {
            owner: Some("alice".parse().unwrap()),
            state: None,
        };
        let (request, listed) =
            tokio::join!(serve_once(&listener, &list), client.list_clusters(&query));
        assert!(
            request.starts_with("get /api/v1/clusters?owner=alice "),
            "{request}"
        );
        assert_eq!(listed.unwrap().len(), 1);

        let deleted = "HTTP/1.1 204 No Content\r\nconnection: close\r\n\r\n";
        let (request, result) =
            tokio::join!(serve_once(&listener, deleted), client.delete_cluster(id));
        assert!(
            request.starts_with(&format!("delete /api/v1/clusters/{ID} ")),
            "{request}"
        );
        result.unwrap();

        // A refusal keeps its status and code.
        let quota = answer(
            "409 Conflict",
            "application/json",
            r#"{"error":{"code":"quota_exceeded","message":"you have 1 cluster, the most you may have"}}"#,
        );
        let (_, refused) = tokio::join!(serve_once(&listener, &quota), client.create_cluster(&new));
        let err = refused.unwrap_err();
        assert_eq!(
            (err.status(), err.code()),
            (Some(409), Some("quota_exceeded"))
        );
    }

    #[tokio::test]
    async fn the_kubeconfig_is_yaml_text_and_nothing_else() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let client = Client::new(&url).unwrap();
        let id: ClusterId = ID.parse().unwrap();

        let yaml = "apiVersion: v1\nkind: Config\n";
        let ok = answer("200 OK", "application/yaml", yaml);
        let (request, config) = tokio::join!(serve_once(&listener, &ok), client.kubeconfig(id));
        assert!(
            request.starts_with(&format!("get /api/v1/clusters/{ID}/kubeconfig ")),
            "{request}"
        );
        assert!(request.contains("accept: application/yaml"), "{request}");
        assert_eq!(config.unwrap(), yaml);

        let early = answer(
            "409 Conflict",
            "application/json",
            r#"{"error":{"code":"wrong_state","message":"cluster dev is provisioning"}}"#,
        );
        let (_, config) = tokio::join!(serve_once(&listener, &early), client.kubeconfig(id));
        assert_eq!(config.unwrap_err().code(), Some("wrong_state"));

        // A page that is not a kubeconfig (a proxy's, say) is not taken for one.
        let html = answer("200 OK", "text/html", "<html>login</html>");
        let (_, config) = tokio::join!(serve_once(&listener, &html), client.kubeconfig(id));
        assert!(
            matches!(config, Err(ClientError::Decode { .. })),
            "{config:?}"
        );
    }
}
