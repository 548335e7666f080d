//! Operations: start a script on machines, follow its events, list, stop and rerun them
//! (`/api/v1/operations…`).

use std::collections::VecDeque;
use std::time::Duration;

use base64::Engine as _;
use berth_types::api::{
    MachineRunView, MachineStatusEvent, OperationList, OperationQuery, OperationStatusEvent,
    OperationView, OutputDetail, OutputEvent, StartOperation,
};
use berth_types::operation::OutputStream;
use berth_types::{MachineId, OperationId};
use http::Method;
use time::format_description::well_known::Rfc3339;

use crate::encode;
use crate::error::ClientError;
use crate::sse::{SseEvent, SseParser};
use crate::transport::{BodyStream, Client};

/// How often a dropped event stream is opened again, by default, before giving up.
const RETRIES: u32 = 5;
/// The wait before the first retry; it doubles with each one.
const FIRST_BACKOFF: Duration = Duration::from_millis(500);
/// How long a stream may stay silent before it is taken for dropped (the server sends a
/// comment every 15 seconds while nothing happens).
const IDLE: Duration = Duration::from_secs(60);

/// One event of `GET /api/v1/operations/{id}/events`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OperationEvent {
    /// `operation`: the operation's state.
    Operation(OperationStatusEvent),
    /// `machine`: a machine's state changed.
    Machine(MachineStatusEvent),
    /// `output`: output of a machine, as it arrived.
    Output(OutputEvent),
}

impl OperationEvent {
    /// The typed event of an SSE event; `None` for an event this client does not know (a
    /// newer server may send more).
    pub fn decode(event: &SseEvent) -> Result<Option<Self>, ClientError> {
        let bad = |e: serde_json::Error| ClientError::Decode {
            status: 200,
            reason: format!("a {} event: {e}", event.event),
        };
        Ok(Some(match event.event.as_str() {
            "operation" => Self::Operation(serde_json::from_str(&event.data).map_err(bad)?),
            "machine" => Self::Machine(serde_json::from_str(&event.data).map_err(bad)?),
            "output" => Self::Output(serde_json::from_str(&event.data).map_err(bad)?),
            _ => return Ok(None),
        }))
    }
}

/// The bytes of an output event: its `data_base64` when the bytes are not UTF-8 (a chunk may
/// end inside a character), else its `data`.
pub fn output_bytes(output: &OutputEvent) -> Result<Vec<u8>, ClientError> {
    match &output.data_base64 {
        Some(encoded) => base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .map_err(|e| ClientError::Decode {
                status: 200,
                reason: format!("an output event's data_base64: {e}"),
            }),
        None => Ok(output.data.clone().into_bytes()),
    }
}

/// `GET /api/v1/operations` with the filters and paging of `query` in its query string.
fn operations_path(query: &OperationQuery) -> String {
    let mut params = Vec::new();
    if let Some(status) = query.status {
        params.push(format!("status={status}"));
    }
    if let Some(script) = &query.script {
        params.push(format!("script={}", encode(script)));
    }
    if let Some(machine) = &query.machine {
        params.push(format!("machine={}", encode(machine.as_str())));
    }
    if let Some(user) = &query.user {
        params.push(format!("user={}", encode(user.as_str())));
    }
    for (name, at) in [("since", query.since), ("until", query.until)] {
        if let Some(text) = at.and_then(|at| at.format(&Rfc3339).ok()) {
            params.push(format!("{name}={}", encode(&text)));
        }
    }
    if let Some(limit) = query.limit {
        params.push(format!("limit={limit}"));
    }
    if let Some(cursor) = &query.cursor {
        params.push(format!("cursor={}", encode(cursor)));
    }
    if params.is_empty() {
        "/api/v1/operations".to_owned()
    } else {
        format!("/api/v1/operations?{}", params.join("&"))
    }
}

impl Client {
    /// `POST /api/v1/operations`: runs an inventory script on machines; the operation, queued.
    pub async fn start_operation(
        &self,
        start: &StartOperation,
    ) -> Result<OperationView, ClientError> {
        self.json(Method::POST, "/api/v1/operations", Some(start))
            .await
    }

    /// `GET /api/v1/operations`: one page of the operations the caller may see (users their
    /// own, admins all), newest first, their machines without output.
    pub async fn operations(&self, query: &OperationQuery) -> Result<OperationList, ClientError> {
        self.json(Method::GET, &operations_path(query), None::<&()>)
            .await
    }

    /// `GET /api/v1/operations/{id}`: every machine with its output, and the machines grouped
    /// by identical output once it finished.
    pub async fn operation(&self, id: OperationId) -> Result<OperationView, ClientError> {
        self.operation_with(id, OutputDetail::All).await
    }

    /// `GET /api/v1/operations/{id}?output=...`: with every machine's output (`all`), each
    /// group's once (`groups`) or none; the server refuses more than `MAX_INLINE_OUTPUT`
    /// bytes of output (`output_too_large`).
    pub async fn operation_with(
        &self,
        id: OperationId,
        output: OutputDetail,
    ) -> Result<OperationView, ClientError> {
        self.json(
            Method::GET,
            &format!("/api/v1/operations/{id}?output={}", output.as_str()),
            None::<&()>,
        )
        .await
    }

    /// `GET /api/v1/operations/{id}/machines/{machine}`: one machine's part with its output.
    pub async fn machine_run(
        &self,
        id: OperationId,
        machine: &MachineId,
    ) -> Result<MachineRunView, ClientError> {
        self.json(
            Method::GET,
            &format!(
                "/api/v1/operations/{id}/machines/{}",
                encode(machine.as_str())
            ),
            None::<&()>,
        )
        .await
    }

    /// `GET /api/v1/operations/{id}/machines/{machine}/{stream}`: one stream of a machine's
    /// kept output, the bytes as printed.
    pub async fn machine_output(
        &self,
        id: OperationId,
        machine: &MachineId,
        stream: OutputStream,
    ) -> Result<bytes::Bytes, ClientError> {
        self.bytes(
            Method::GET,
            &format!(
                "/api/v1/operations/{id}/machines/{}/{}",
                encode(machine.as_str()),
                stream.as_str()
            ),
        )
        .await
    }

    /// `POST /api/v1/operations/{id}/stop`: cancels what has not finished (again is fine).
    pub async fn stop_operation(&self, id: OperationId) -> Result<OperationView, ClientError> {
        self.json(
            Method::POST,
            &format!("/api/v1/operations/{id}/stop"),
            None::<&()>,
        )
        .await
    }

    /// `POST /api/v1/operations/{id}/rerun`: a new operation of the same script on the
    /// machines that did not succeed.
    pub async fn rerun_operation(&self, id: OperationId) -> Result<OperationView, ClientError> {
        self.json(
            Method::POST,
            &format!("/api/v1/operations/{id}/rerun"),
            None::<&()>,
        )
        .await
    }

    /// `GET /api/v1/operations/{id}/events`, from the start: every event the operation had,
    /// then the new ones as they happen, until it finished. Nothing is asked before the
    /// first [`OperationEvents::next`].
    #[must_use]
    pub fn operation_events(&self, id: OperationId) -> OperationEvents {
        OperationEvents {
            client: self.clone(),
            path: format!("/api/v1/operations/{id}/events"),
            body: None,
            parser: SseParser::new(),
            pending: VecDeque::new(),
            last_id: None,
            finished: false,
            retries: RETRIES,
            first_backoff: FIRST_BACKOFF,
            idle: IDLE,
            failures: 0,
        }
    }
}

/// The events of one operation, read from its event stream. A dropped connection is opened
/// again (a few times, waiting longer each time) with `Last-Event-ID`, so that no event is
/// missed or seen twice; the events end with the `operation` event of a finished state.
#[derive(Debug)]
pub struct OperationEvents {
    client: Client,
    path: String,
    body: Option<BodyStream>,
    parser: SseParser,
    pending: VecDeque<SseEvent>,
    last_id: Option<u64>,
    finished: bool,
    retries: u32,
    first_backoff: Duration,
    idle: Duration,
    failures: u32,
}

impl OperationEvents {
    /// The same events, resumed after the event `id` (a [`OperationEvents::last_event_id`]
    /// of an earlier reader).
    #[must_use]
    pub fn after(mut self, id: u64) -> Self {
        self.last_id = Some(id);
        self
    }

    /// The same events, retrying a dropped stream `retries` times, `first_backoff` before
    /// the first retry (doubling), and taking a stream silent for `idle` for dropped.
    #[must_use]
    pub fn with_retries(mut self, retries: u32, first_backoff: Duration, idle: Duration) -> Self {
        self.retries = retries;
        self.first_backoff = first_backoff;
        self.idle = idle;
        self
    }

    /// The id of the last event read (what a new reader resumes after).
    #[must_use]
    pub fn last_event_id(&self) -> Option<u64> {
        self.last_id
    }

    /// The next event; `None` after the operation's last one. An error of the server (a
    /// 4xx), a stream that breaks the protocol, or one that stays dropped after the retries
    /// ends the events.
    pub async fn next(&mut self) -> Result<Option<OperationEvent>, ClientError> {
        loop {
            while let Some(event) = self.pending.pop_front() {
                if let Some(event) = self.accept(&event)? {
                    // Progress: a stream that drops now and then is not given up on.
                    self.failures = 0;
                    return Ok(Some(event));
                }
            }
            if self.finished {
                return Ok(None);
            }
            let Some(body) = &mut self.body else {
                self.connect().await?;
                continue;
            };
            let dropped = match tokio::time::timeout(self.idle, body.chunk()).await {
                Ok(Some(Ok(bytes))) => {
                    let mut events = Vec::new();
                    let fed = self.parser.feed(&bytes, &mut events);
                    self.pending.extend(events);
                    fed.map_err(|e| ClientError::Decode {
                        status: 200,
                        reason: e.to_string(),
                    })?;
                    continue;
                }
                Ok(Some(Err(e))) => e,
                Ok(None) => ClientError::Transport {
                    url: self.path.clone(),
                    reason: "the event stream ended before the operation finished".to_owned(),
                },
                Err(_) => ClientError::Transport {
                    url: self.path.clone(),
                    reason: format!("the event stream was silent for {} s", self.idle.as_secs()),
                },
            };
            self.body = None;
            self.backoff(dropped).await?;
        }
    }

    /// Whether to hand `event` on: a known event not seen before. The `operation` event of
    /// a finished state is the last.
    fn accept(&mut self, event: &SseEvent) -> Result<Option<OperationEvent>, ClientError> {
        // The contract's ids are increasing numbers; anything else is not resumable.
        if let Some(id) = event.id.as_deref().and_then(|id| id.parse::<u64>().ok()) {
            if self.last_id.is_some_and(|last| id <= last) {
                return Ok(None);
            }
            self.last_id = Some(id);
        }
        let decoded = OperationEvent::decode(event)?;
        if let Some(OperationEvent::Operation(status)) = &decoded
            && status.status.is_finished()
        {
            self.finished = true;
            self.pending.clear();
        }
        Ok(decoded)
    }

    async fn connect(&mut self) -> Result<(), ClientError> {
        loop {
            let last = self.last_id.map(|id| id.to_string());
            let mut headers = vec![("accept", "text/event-stream")];
            if let Some(last) = &last {
                headers.push(("last-event-id", last));
            }
            match self
                .client
                .open_stream(&self.path, &headers, "text/event-stream")
                .await
            {
                Ok(body) => {
                    self.parser = SseParser::new();
                    self.body = Some(body);
                    return Ok(());
                }
                Err(e) => self.backoff(e).await?,
            }
        }
    }

    /// Waits before the next try after `error`, or gives up with it: an answer of the
    /// server other than "unavailable" is final, and so is the last retry's failure.
    async fn backoff(&mut self, error: ClientError) -> Result<(), ClientError> {
        let retryable = match &error {
            ClientError::Transport { .. } | ClientError::Timeout { .. } => true,
            ClientError::Api(failure) => matches!(failure.status, 502..=504),
            ClientError::Url { .. } | ClientError::Tls { .. } | ClientError::Decode { .. } => false,
        };
        if !retryable || self.failures >= self.retries {
            return Err(error);
        }
        let wait = self.first_backoff * 2_u32.saturating_pow(self.failures.min(16));
        self.failures += 1;
        tracing::debug!(error = %error, wait_ms = wait.as_millis(), "the event stream dropped; resuming");
        tokio::time::sleep(wait).await;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use berth_types::operation::OperationStatus;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    use super::*;

    #[test]
    fn operation_filters_go_into_the_query_string() {
        assert_eq!(
            operations_path(&OperationQuery::default()),
            "/api/v1/operations"
        );
        let query = OperationQuery {
            status: Some(OperationStatus::Failed),
            script: Some("disk usage".into()),
            machine: Some("web-1".parse().unwrap()),
            user: Some("alice".parse().unwrap()),
            since: Some(time::macros::datetime!(2026-12-01 10:00 UTC)),
            until: None,
            limit: Some(20),
            cursor: Some("a+b".into()),
        };
        assert_eq!(
            operations_path(&query),
            "/api/v1/operations?status=failed&script=disk%20usage&machine=web-1&user=alice\
             &since=2026-12-01T10%3A00%3A00Z&limit=20&cursor=a%2Bb"
        );
    }

    fn sse(name: &str, data: &str, id: Option<&str>) -> SseEvent {
        SseEvent {
            event: name.into(),
            data: data.into(),
            id: id.map(str::to_owned),
        }
    }

    #[test]
    fn events_decode_unknown_ones_are_skipped_and_bad_ones_refused() {
        let output = sse(
            "output",
            r#"{"machine":"m1","stream":"stderr","data":"\u00e9","data_base64":"w6k="}"#,
            Some("3"),
        );
        let Some(OperationEvent::Output(out)) = OperationEvent::decode(&output).unwrap() else {
            panic!("not an output event")
        };
        assert_eq!(output_bytes(&out).unwrap(), "é".as_bytes());
        assert_eq!(
            OperationEvent::decode(&sse("hello", "{}", None)).unwrap(),
            None
        );
        assert_eq!(
            OperationEvent::decode(&sse("message", "", None)).unwrap(),
            None
        );
        for bad in [
            sse("machine", r#"{"machine":"m1"}"#, None),
            sse("operation", "not json", None),
            sse(
                "output",
                r#"{"machine":"M 1","stream":"stdout","data":""}"#,
                None,
            ),
        ] {
            assert!(OperationEvent::decode(&bad).is_err(), "{bad:?}");
        }
        let broken = OutputEvent {
            machine: "m1".parse().unwrap(),
            stream: berth_types::operation::OutputStream::Stdout,
            data: String::new(),
            data_base64: Some("!!!".into()),
        };
        assert!(output_bytes(&broken).is_err());
    }

    /// One HTTP/1.1 exchange on `listener`: the request head, then `answer` written and the
    /// connection closed.
    async fn serve_once(listener: &TcpListener, answer: &str) -> String {
        let (mut socket, _) = listener.accept().await.unwrap();
        let mut head = Vec::new();
        let mut byte = [0_u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            socket.read_exact(&mut byte).await.unwrap();
            head.push(byte[0]);
        }
        // The client may hang up first (a stream it refuses).
        let _ = socket.write_all(answer.as_bytes()).await;
        let _ = socket.shutdown().await;
        String::from_utf8(head).unwrap().to_ascii_lowercase()
    }

    fn answer(status: &str, content_type: &str, body: &str) -> String {
        format!(
            "HTTP/1.1 {status}\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\n\
             connection: close\r\n\r\n{body}",
            body.len()
        )
    }

    fn stream_answer(body: &str) -> String {
        format!(
            "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\n{body}"
        )
    }

    const ID: &str = "6f1c2a3b-0000-4000-8000-000000000001";

    #[tokio::test]
    async fn a_dropped_stream_resumes_after_the_last_event_without_repeats() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let server = tokio::spawn(async move {
            let first = serve_once(
                &listener,
                &stream_answer(
                    ": hello\n\nid: 1\nevent: operation\ndata: {\"id\":\"6f1c2a3b-0000-4000-8000-000000000001\",\"status\":\"running\"}\n\n\
                     id: 2\nevent: output\ndata: {\"machine\":\"m1\",\"stream\":\"stdout\",\"data\":\"a\\n\"}\n\n\
                     id: 3\nevent: output\ndata: {\"machine\":\"m1\",\"stream\":\"stdout\",\"da",
                ),
            )
            .await;
            // The server replays from the id it was given; one it repeats is dropped.
            let second = serve_once(
                &listener,
                &stream_answer(
                    "id: 2\nevent: output\ndata: {\"machine\":\"m1\",\"stream\":\"stdout\",\"data\":\"a\\n\"}\n\n\
                     id: 3\nevent: future\ndata: {}\n\n\
                     id: 4\nevent: machine\ndata: {\"machine\":\"m1\",\"status\":\"succeeded\",\"exit_code\":0,\"signal\":null,\"message\":\"\"}\n\n\
                     id: 5\nevent: operation\ndata: {\"id\":\"6f1c2a3b-0000-4000-8000-000000000001\",\"status\":\"succeeded\"}\n\n\
                     id: 6\nevent: output\ndata: {\"machine\":\"m1\",\"stream\":\"stdout\",\"data\":\"after the end\"}\n\n",
                ),
            )
            .await;
            (first, second)
        });
        let client = Client::new(&url).unwrap().with_token("t0ken");
        let mut events = client.operation_events(ID.parse().unwrap()).with_retries(
            2,
            Duration::from_millis(10),
            Duration::from_secs(30),
        );
        let mut seen = Vec::new();
        while let Some(event) = events.next().await.unwrap() {
            seen.push(event);
        }
        assert_eq!(seen.len(), 4, "{seen:#?}");
        assert!(
            matches!(&seen[0], OperationEvent::Operation(s) if s.status == OperationStatus::Running)
        );
        assert!(matches!(&seen[1], OperationEvent::Output(o) if o.data == "a\n"));
        assert!(matches!(&seen[2], OperationEvent::Machine(m) if m.exit_code == Some(0)));
        assert!(matches!(&seen[3], OperationEvent::Operation(s) if s.status.is_finished()));
        assert_eq!(events.last_event_id(), Some(5));
        assert!(
            events.next().await.unwrap().is_none(),
            "the end stays the end"
        );

        let (first, second) = server.await.unwrap();
        assert!(
            first.starts_with(&format!("get /api/v1/operations/{ID}/events ")),
            "{first}"
        );
        assert!(first.contains("authorization: bearer t0ken"), "{first}");
        assert!(!first.contains("last-event-id"), "{first}");
        assert!(second.contains("last-event-id: 2\r\n"), "{second}");
    }

    #[tokio::test]
    async fn errors_of_the_server_are_final_and_drops_are_retried_a_few_times() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let client = Client::new(&url).unwrap();
        let id: OperationId = ID.parse().unwrap();

        let not_found = answer(
            "404 Not Found",
            "application/json",
            r#"{"error":{"code":"not_found","message":"no operation"}}"#,
        );
        let (served, result) = tokio::join!(serve_once(&listener, &not_found), async {
            client.operation_events(id).next().await
        });
        assert!(served.contains("accept: text/event-stream"), "{served}");
        let err = result.unwrap_err();
        assert_eq!(
            (err.status(), err.code()),
            (Some(404), Some("not_found")),
            "{err}"
        );

        // Not an event stream: refused, not read as one.
        let json = answer("200 OK", "application/json", "{}");
        let (_, result) = tokio::join!(serve_once(&listener, &json), async {
            client.operation_events(id).next().await
        });
        assert!(
            matches!(result, Err(ClientError::Decode { .. })),
            "{result:?}"
        );

        // A stream that keeps ending before the operation does: the first try and two more.
        let (_, result) = tokio::join!(
            async {
                for _ in 0..3 {
                    serve_once(&listener, &stream_answer(": nothing yet\n\n")).await;
                }
            },
            async {
                client
                    .operation_events(id)
                    .with_retries(2, Duration::from_millis(10), Duration::from_secs(30))
                    .next()
                    .await
            }
        );
        let err = result.unwrap_err();
        assert!(
            err.to_string()
                .contains("ended before the operation finished"),
            "{err}"
        );

        // A stream with a line past the limit is broken: not retried.
        let huge = stream_answer(&"x".repeat(crate::sse::MAX_LINE + 1));
        let (_, result) = tokio::join!(serve_once(&listener, &huge), async {
            client.operation_events(id).next().await
        });
        let err = result.unwrap_err();
        assert!(err.to_string().contains("a line longer than"), "{err}");
    }
}
