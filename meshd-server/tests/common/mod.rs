//! Test harness: starts the real `meshd` binary on a temporary data
//! directory and a free port, adds users with the real CLI (both with
//! `mesh-testkit`, which the end-to-end tests share), and talks HTTP to it.
//! The server is stopped by process id when the harness is dropped, also
//! when a test fails.
#![allow(dead_code)]

pub mod events;
pub mod smtp;

use reqwest::{Method, RequestBuilder, Response, StatusCode};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use mesh_testkit::Meshd;

pub const PASSWORD: &str = "correct horse battery";

/// The `meshd` under test.
fn meshd_bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_meshd"))
}

/// The `meshd` under test, reading no configuration file (not even
/// `/etc/meshd/meshd.toml`, should this machine have one).
pub fn meshd() -> Command {
    mesh_testkit::meshd_command(meshd_bin())
}

/// A running meshd (see [`Meshd`]) logging at debug level.
pub struct Server {
    meshd: Meshd,
    pub url: String,
    pub data: PathBuf,
}

impl Server {
    pub fn start() -> Server {
        Server::start_with(&[])
    }

    /// Starts meshd with extra `serve` flags.
    pub fn start_with(flags: &[&str]) -> Server {
        Server::of(Meshd::start(
            meshd_bin(),
            flags,
            &[("RUST_LOG", "meshd_server=debug,info")],
        ))
    }

    /// Starts meshd with extra `serve` flags and at most `max_files` file
    /// descriptors.
    pub fn start_with_max_files(flags: &[&str], max_files: u64) -> Server {
        Server::of(Meshd::start_with_max_files(
            meshd_bin(),
            flags,
            &[("RUST_LOG", "meshd_server=debug,info")],
            max_files,
        ))
    }

    fn of(meshd: Meshd) -> Server {
        Server {
            url: meshd.url().to_owned(),
            data: meshd.data().to_owned(),
            meshd,
        }
    }

    pub fn log(&self) -> String {
        self.meshd.log()
    }

    pub fn pid(&self) -> u32 {
        self.meshd.pid().expect("meshd is running")
    }

    /// Sends SIGTERM and waits for the exit status.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        self.meshd.terminate().expect("meshd is running")
    }

    /// Stops meshd (SIGTERM) and starts it again on the same data and
    /// address; devices stay signed in.
    pub fn restart(&mut self) {
        self.meshd.terminate();
        self.meshd.restart();
    }

    pub fn add_user(&self, email: &str, password: &str) {
        add_user(&self.data, email, password).expect("adding a user");
    }

    /// Adds the user if needed and enrolls a device for them.
    pub async fn device(&self, email: &str, device: &str) -> Client {
        let _ = add_user(&self.data, email, PASSWORD);
        let response = self
            .anonymous()
            .post("/v1/tokens")
            .json(&json!({"email": email, "password": PASSWORD, "device_name": device}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::CREATED);
        let body: Value = response.json().await.unwrap();
        Client {
            base: self.url.clone(),
            http: reqwest::Client::new(),
            token: Some(body["token"].as_str().unwrap().to_owned()),
            device_id: body["device_id"].as_str().unwrap().to_owned(),
            user_id: body["user_id"].as_str().unwrap().to_owned(),
        }
    }

    pub fn anonymous(&self) -> Client {
        Client {
            base: self.url.clone(),
            http: reqwest::Client::new(),
            token: None,
            device_id: String::new(),
            user_id: String::new(),
        }
    }
}

/// Runs `meshd user add`; Err holds stderr.
pub fn add_user(data: &Path, email: &str, password: &str) -> Result<(), String> {
    mesh_testkit::add_user(meshd_bin(), data, email, password)
}

/// An HTTP client acting as one device (or as nobody).
#[derive(Clone)]
pub struct Client {
    pub base: String,
    pub http: reqwest::Client,
    pub token: Option<String>,
    pub device_id: String,
    pub user_id: String,
}

impl Client {
    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        let r = self.http.request(method, format!("{}{path}", self.base));
        match &self.token {
            Some(t) => r.bearer_auth(t),
            None => r,
        }
    }

    pub fn get(&self, path: &str) -> RequestBuilder {
        self.request(Method::GET, path)
    }

    pub fn post(&self, path: &str) -> RequestBuilder {
        self.request(Method::POST, path)
    }

    pub fn put(&self, path: &str) -> RequestBuilder {
        self.request(Method::PUT, path)
    }

    pub fn delete(&self, path: &str) -> RequestBuilder {
        self.request(Method::DELETE, path)
    }

    pub fn patch(&self, path: &str) -> RequestBuilder {
        self.request(Method::PATCH, path)
    }

    /// GETs `path` and parses the JSON answer.
    pub async fn get_json<T: serde::de::DeserializeOwned>(&self, path: &str) -> T {
        self.get(path).send().await.unwrap().json().await.unwrap()
    }

    /// Creates an object and returns its id.
    pub async fn create_object(&self, name: &str, kind: &str) -> String {
        let r = self
            .post("/v1/objects")
            .json(&json!({"name": name, "kind": kind}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::CREATED);
        let body: Value = r.json().await.unwrap();
        body["id"].as_str().unwrap().to_owned()
    }

    /// Posts a JSON feed of items and returns the answer.
    pub async fn post_items(&self, object: &str, items: Value) -> Response {
        self.post(&format!("/v1/objects/{object}/feed"))
            .json(&json!({ "items": items }))
            .send()
            .await
            .unwrap()
    }

    /// The whole JSON feed of an object.
    pub async fn feed(&self, object: &str) -> Value {
        let r = self
            .get(&format!("/v1/objects/{object}/feed"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        r.json().await.unwrap()
    }
}

/// A new JSON item as device `by` creates it.
pub fn new_item(id: &str, title: &str, by: &str, when: &str) -> Value {
    json!({
        "sync": {"id": id, "updates": 1, "deleted": false, "noconflicts": false,
                 "history": [{"sequence": 1, "when": when, "by": by}]},
        "title": {"type": "text", "value": title},
    })
}

/// The next version of `item` as device `by` changes it.
pub fn updated(item: &Value, title: &str, by: &str, when: &str) -> Value {
    let mut next = item.clone();
    let updates = item["sync"]["updates"].as_u64().unwrap() + 1;
    next["sync"]["updates"] = json!(updates);
    let mut history = vec![json!({"sequence": updates, "when": when, "by": by})];
    history.extend(item["sync"]["history"].as_array().unwrap().iter().cloned());
    next["sync"]["history"] = json!(history);
    next["title"] = json!({"type": "text", "value": title});
    next
}

/// The error code of an error answer.
pub async fn error_code(r: Response) -> String {
    let body: Value = r.json().await.unwrap();
    body["error"]["code"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

impl Client {
    /// Revokes `device`, another device of this client's user.
    pub async fn revoke(&self, device: &Client) {
        let r = self
            .delete(&format!("/v1/devices/{}", device.device_id))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::NO_CONTENT);
    }

    /// `POST /v1/objects/{object}/members`: shares an object with an address.
    pub async fn share(&self, object: &str, email: &str, role: &str) -> Response {
        self.post(&format!("/v1/objects/{object}/members"))
            .json(&json!({"email": email, "role": role}))
            .send()
            .await
            .unwrap()
    }

    /// Invites `email` and returns the invitation's id.
    pub async fn invite(&self, object: &str, email: &str, role: &str) -> String {
        let r = self.share(object, email, role).await;
        assert_eq!(r.status(), StatusCode::CREATED);
        let outcome: Value = r.json().await.unwrap();
        assert_eq!(outcome["result"], "invited", "{outcome}");
        outcome["invitation"]["id"].as_str().unwrap().to_owned()
    }

    /// Makes `member` (signed in as `email`) a member of `object` with
    /// `role`: invited by this client, accepted by id.
    pub async fn add_member(&self, object: &str, member: &Client, email: &str, role: &str) {
        let id = self.invite(object, email, role).await;
        let r = member
            .post(&format!("/v1/invitations/{id}/accept"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
    }

    /// The member list of an object, as `(email, role)` pairs.
    pub async fn members(&self, object: &str) -> Vec<(String, String)> {
        let list: Vec<Value> = self
            .get_json(&format!("/v1/objects/{object}/members"))
            .await;
        list.iter()
            .map(|m| {
                (
                    m["email"].as_str().unwrap().to_owned(),
                    m["role"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    }
}

impl Client {
    /// `POST /v1/apps`: a new app of this client's user, with `grants` as
    /// `(object, role)`; the answer as it came.
    pub async fn add_app(&self, name: &str, grants: &[(&str, &str)]) -> Response {
        let objects: Vec<Value> = grants
            .iter()
            .map(|(object, role)| json!({"object": object, "role": role}))
            .collect();
        self.post("/v1/apps")
            .json(&json!({"name": name, "objects": objects}))
            .send()
            .await
            .unwrap()
    }

    /// A new app of this client's user, as a client holding its token:
    /// `device_id` is the app's id, `user_id` its owner's.
    pub async fn app(&self, name: &str, grants: &[(&str, &str)]) -> Client {
        let r = self.add_app(name, grants).await;
        assert_eq!(r.status(), StatusCode::CREATED);
        let body: Value = r.json().await.unwrap();
        Client {
            base: self.base.clone(),
            http: reqwest::Client::new(),
            token: Some(body["token"].as_str().unwrap().to_owned()),
            device_id: body["app"]["id"].as_str().unwrap().to_owned(),
            user_id: self.user_id.clone(),
        }
    }

    /// Revokes `app`, an app of this client's user.
    pub async fn revoke_app(&self, app: &Client) {
        let r = self
            .delete(&format!("/v1/apps/{}", app.device_id))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::NO_CONTENT);
    }
}

/// The confirmation link in an invitation e-mail.
pub fn invite_link(mail: &str) -> String {
    mail.lines()
        .map(str::trim)
        .find(|l| l.starts_with("http") && l.contains("/invite/"))
        .unwrap_or_else(|| panic!("no invitation link in {mail}"))
        .to_owned()
}

/// The token of an invitation link.
pub fn token_of(link: &str) -> String {
    link.rsplit('/').next().unwrap().to_owned()
}

impl Server {
    /// The invitation e-mail meshd wrote to its outbox (no SMTP server).
    pub fn outbox_mail(&self, invitation: &str) -> String {
        std::fs::read_to_string(self.data.join("outbox").join(format!("{invitation}.eml")))
            .unwrap_or_else(|e| panic!("no outbox mail for {invitation}: {e}"))
    }

    /// The audit log: `(action, subject, role)` for one object, oldest first.
    pub fn audit(&self, object: &str) -> Vec<(String, String, Option<String>)> {
        let db = rusqlite::Connection::open_with_flags(
            self.data.join("meshd.sqlite3"),
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
        )
        .unwrap();
        let mut stmt = db
            .prepare("SELECT action, subject, role FROM audit WHERE object_id = ?1 ORDER BY seq")
            .unwrap();
        stmt.query_map([object], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    }
}

/// The changes `client`'s event stream replays after cursor `since`, read
/// until it has been quiet for half a second (presence changes left out).
pub async fn replayed(client: &Client, since: u64) -> Vec<mesh_protocol::api::Change> {
    use futures_util::StreamExt;
    use mesh_protocol::api::{Change, StreamMessage};
    let r = client
        .get(&format!("/v1/events?since={since}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let mut body = r.bytes_stream();
    let mut parser = mesh_protocol::sse::SseParser::default();
    let mut changes = Vec::new();
    while let Ok(Some(Ok(bytes))) =
        tokio::time::timeout(Duration::from_millis(500), body.next()).await
    {
        for event in parser.push(&bytes) {
            if let Ok(StreamMessage::Event(e)) = serde_json::from_str(&event.data)
                && !matches!(e.change, Change::DevicePresence { .. })
            {
                changes.push(e.change);
            }
        }
    }
    changes
}
