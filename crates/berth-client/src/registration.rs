//! Self-service sign-up (`/api/v1/auth/register`) and the invites admins make for it
//! (`/api/v1/invites…`).

use berth_types::InviteId;
use berth_types::api::{
    InviteCreated, InviteList, InviteView, NewInvite, RegisterRequest, Registered,
};
use http::Method;

use crate::error::ClientError;
use crate::transport::Client;

impl Client {
    /// `POST /api/v1/auth/register`: a new account, when main.yaml `registration.mode` allows
    /// it (403 `registration_disabled` when it is `off`); log in with it next. Needs no token.
    pub async fn register(&self, request: &RegisterRequest) -> Result<Registered, ClientError> {
        self.json(Method::POST, "/api/v1/auth/register", Some(request))
            .await
    }

    /// `POST /api/v1/invites` (admins): a one-time sign-up code, shown this once, and the
    /// sign-up page's URL with it.
    pub async fn create_invite(&self, invite: &NewInvite) -> Result<InviteCreated, ClientError> {
        self.json(Method::POST, "/api/v1/invites", Some(invite))
            .await
    }

    /// `GET /api/v1/invites` (admins): every invite, newest first, without their codes.
    pub async fn list_invites(&self) -> Result<Vec<InviteView>, ClientError> {
        let list: InviteList = self
            .json(Method::GET, "/api/v1/invites", None::<&()>)
            .await?;
        Ok(list.invites)
    }

    /// `DELETE /api/v1/invites/{id}` (admins): the code is no longer accepted.
    pub async fn delete_invite(&self, id: InviteId) -> Result<(), ClientError> {
        self.empty(Method::DELETE, &format!("/api/v1/invites/{id}"))
            .await
    }
}

#[cfg(test)]
mod tests {
    use berth_types::api::Secret;
    use tokio::net::TcpListener;

    use super::*;
    use crate::clusters::tests::{answer, serve_once};

    const ID: &str = "8b1c2a3b-0000-4000-8000-000000000002";

    #[tokio::test]
    async fn sign_up_and_invites_speak_the_api_types() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let client = Client::new(&url).unwrap();

        let request = RegisterRequest {
            username: "bob".parse().unwrap(),
            password: Secret::new("correct horse battery"),
            invite: Some(Secret::new("c0de")),
        };
        let registered = answer(
            "201 Created",
            "application/json",
            r#"{"username":"bob","templates":["base"],"clusters":true}"#,
        );
        let (sent, result) = tokio::join!(
            serve_once(&listener, &registered),
            client.register(&request)
        );
        assert!(sent.starts_with("post /api/v1/auth/register "), "{sent}");
        assert!(!sent.contains("authorization:"), "{sent}");
        assert!(
            sent.ends_with(
                r#"{"username":"bob","password":"correct horse battery","invite":"c0de"}"#
            ),
            "{sent}"
        );
        let registered = result.unwrap();
        assert!(registered.clusters && registered.templates == ["base"]);

        let off = answer(
            "403 Forbidden",
            "application/json",
            r#"{"error":{"code":"registration_disabled","message":"sign-up is off"}}"#,
        );
        let (_, result) = tokio::join!(serve_once(&listener, &off), client.register(&request));
        assert_eq!(result.unwrap_err().code(), Some("registration_disabled"));

        let admin = client.with_token("adm1n");
        let invite = format!(
            r#"{{"id":"{ID}","created_by":"admin","note":"course","created_at":"2026-12-04T03:00:00Z",
            "expires_at":"2026-12-11T03:00:00Z"}}"#
        );
        let created = answer(
            "201 Created",
            "application/json",
            &format!(
                r#"{}, "code":"s3cret","url":"http://b/register?invite=s3cret"}}"#,
                invite.trim_end_matches('}')
            ),
        );
        let new = NewInvite {
            expires_in: None,
            note: "course".into(),
        };
        let (sent, result) =
            tokio::join!(serve_once(&listener, &created), admin.create_invite(&new));
        assert!(sent.starts_with("post /api/v1/invites "), "{sent}");
        assert!(sent.contains("authorization: bearer adm1n"), "{sent}");
        assert!(sent.ends_with(r#"{"note":"course"}"#), "{sent}");
        let created = result.unwrap();
        assert_eq!(created.code.expose(), "s3cret");
        assert_eq!(created.invite.id.to_string(), ID);
        assert!(created.url.ends_with("/register?invite=s3cret"));

        let list = answer(
            "200 OK",
            "application/json",
            &format!(r#"{{"invites":[{invite}]}}"#),
        );
        let (sent, result) = tokio::join!(serve_once(&listener, &list), admin.list_invites());
        assert!(sent.starts_with("get /api/v1/invites "), "{sent}");
        assert_eq!(result.unwrap()[0].note, "course");

        let gone = "HTTP/1.1 204 No Content\r\nconnection: close\r\n\r\n";
        let (sent, result) = tokio::join!(
            serve_once(&listener, gone),
            admin.delete_invite(ID.parse().unwrap())
        );
        assert!(
            sent.starts_with(&format!("delete /api/v1/invites/{ID} ")),
            "{sent}"
        );
        result.unwrap();
    }
}
