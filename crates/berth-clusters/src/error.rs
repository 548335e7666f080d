//! What can go wrong below a cluster, in words an operator can act on.

use berth_types::ClusterId;

/// A provider's failure. Messages say what to do where there is something to do.
#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    /// The configured image is not in the engine; Berth never pulls images.
    #[error(
        "the cluster image {image:?} is not in the Docker Engine, and Berth never pulls images: \
         load it on the engine's host with `docker load -i FILE` or `docker pull {image}` \
         (or set main.yaml clusters.image to an image the engine has)"
    )]
    ImageMissing { image: String },
    /// The engine did not answer at all.
    #[error(
        "the Docker Engine is unreachable ({detail}); is it running, and may Berth use its socket?"
    )]
    EngineUnreachable { detail: String },
    /// An engine call did not answer in time.
    #[error("the Docker Engine did not answer {operation} within {secs}s")]
    Timeout { operation: &'static str, secs: u64 },
    /// The cluster's server container stopped.
    #[error(
        "the server container of cluster {id} exited with code {code}; its log ends with:\n{log_tail}"
    )]
    ContainerExited {
        id: ClusterId,
        code: i64,
        log_tail: String,
    },
    /// Nothing exists for this cluster id.
    #[error("cluster {id} has no server container")]
    NotFound { id: ClusterId },
    /// The server has not written its kubeconfig yet (it is still starting).
    #[error("cluster {id} has not written its kubeconfig yet; it is still starting")]
    KubeconfigNotReady { id: ClusterId },
    /// The kubeconfig the server wrote cannot be used.
    #[error("the kubeconfig of cluster {id} cannot be read: {reason}")]
    KubeconfigUnreadable { id: ClusterId, reason: String },
    /// The cluster's API is not ready.
    #[error("the API of cluster {id} is not ready: {detail}")]
    ApiNotReady { id: ClusterId, detail: String },
    /// A setting cannot work (checked when the provider is made or used).
    #[error("invalid cluster settings: {0}")]
    Settings(String),
    /// Any other engine error, with the engine's own message.
    #[error("the Docker Engine refused {operation}: {message}")]
    Engine {
        operation: &'static str,
        status: Option<u16>,
        message: String,
    },
}
