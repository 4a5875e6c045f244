//! The authorization matrix against the real meshd: every route × (owner,
//! editor, reader, non-member, revoked device, no token, app in scope, app
//! out of scope, revoked app), with the exact status each must get, and
//! checks that nothing reaches a non-member or an app out of scope — not
//! an object, an entry, a chunk, an event, a member list, awareness or
//! news — and that a private object cannot be told from a missing one.

mod common;

use common::{Client, Server, invite_link, replayed, token_of};
use mesh_protocol::api::Change;
use mesh_protocol::chunk_batch;
use mesh_protocol::content::{ChunkRef, ContentRef, Hash};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const OWNER: &str = "owner@example.org";
const EDITOR: &str = "editor@example.org";
const READER: &str = "reader@example.org";
const OUTSIDER: &str = "outsider@example.org";

/// Who calls, in the order of the matrix's columns. The apps are the
/// owner's: in scope with the role owner on the fixture's object (so
/// whatever an app cannot do, no role of its makes it able to), out of
/// scope (an editor of another object), and revoked (it had the object).
const ACTORS: [&str; 9] = [
    "owner",
    "editor",
    "reader",
    "non-member",
    "revoked device",
    "no token",
    "app in scope",
    "app out of scope",
    "revoked app",
];

/// The first column of the apps, which each fixture makes its own.
const APPS: usize = 6;

/// A chunk anyone may upload.
const UPLOAD: &[u8] = b"an upload of one's own";

/// One route and the status each actor must get.
struct Route {
    method: &'static str,
    /// With `{obj}`, `{chunk}`, `{inv}`, `{editor}`, `{reader}`, `{dev}`,
    /// `{app}`, `{upload}` standing for the fixture's ids.
    path: &'static str,
    /// JSON, with `{chunk}` and `{token}` standing for the fixture's.
    body: Option<&'static str>,
    /// Whether the call changes the fixture, so each actor needs its own.
    fresh: bool,
    expect: [u16; 9],
}

const fn route(
    method: &'static str,
    path: &'static str,
    body: Option<&'static str>,
    fresh: bool,
    expect: [u16; 9],
) -> Route {
    Route {
        method,
        path,
        body,
        fresh,
        expect,
    }
}

#[rustfmt::skip]
const MATRIX: &[Route] = &[
    //     method    path                                         body                                          fresh   owner editor reader non-m revoked none app-in app-out app-revoked
    route("GET",    "/v1/objects",                               None,                                          false, [200, 200, 200, 200, 401, 401, 403, 403, 401]),
    route("GET",    "/v1/objects/{obj}",                         None,                                          false, [200, 200, 200, 404, 401, 401, 403, 403, 401]),
    route("PATCH",  "/v1/objects/{obj}",                         Some(r#"{"name":"Renamed"}"#),                 false, [200, 403, 403, 404, 401, 401, 403, 403, 401]),
    route("DELETE", "/v1/objects/{obj}",                         None,                                          true,  [204, 403, 403, 404, 401, 401, 403, 403, 401]),
    route("GET",    "/v1/objects/{obj}/feed",                    None,                                          false, [200, 200, 200, 404, 401, 401, 200, 404, 401]),
    route("POST",   "/v1/objects/{obj}/feed",                    Some(r#"{"items":[]}"#),                       false, [200, 200, 403, 404, 401, 401, 200, 404, 401]),
    route("PUT",    "/v1/chunks/{upload}",                       None,                                          false, [201, 201, 201, 201, 401, 401, 403, 403, 401]),
    route("POST",   "/v1/chunks",                                None,                                          false, [201, 201, 201, 201, 401, 401, 403, 403, 401]),
    route("GET",    "/v1/chunks/{chunk}",                        None,                                          false, [200, 200, 200, 404, 401, 401, 200, 404, 401]),
    route("HEAD",   "/v1/chunks/{chunk}",                        None,                                          false, [200, 200, 200, 404, 401, 401, 200, 404, 401]),
    route("POST",   "/v1/chunks/missing",                        Some(r#"{"hashes":["{chunk}"]}"#),             false, [200, 200, 200, 200, 401, 401, 403, 403, 401]),
    route("GET",    "/v1/objects/{obj}/members",                 None,                                          false, [200, 200, 200, 404, 401, 401, 403, 403, 401]),
    route("POST",   "/v1/objects/{obj}/members",                 Some(r#"{"email":"new@example.org","role":"reader"}"#), false, [201, 403, 403, 404, 401, 401, 403, 403, 401]),
    route("PATCH",  "/v1/objects/{obj}/members/{reader}",        Some(r#"{"role":"reader"}"#),                  false, [200, 403, 403, 404, 401, 401, 403, 403, 401]),
    route("DELETE", "/v1/objects/{obj}/members/{editor}",        None,                                          true,  [204, 204, 403, 404, 401, 401, 403, 403, 401]),
    route("GET",    "/v1/objects/{obj}/invitations",             None,                                          false, [200, 403, 403, 404, 401, 401, 403, 403, 401]),
    route("DELETE", "/v1/invitations/{inv}",                     None,                                          true,  [204, 404, 404, 404, 401, 401, 403, 403, 401]),
    route("POST",   "/v1/invitations/{inv}/accept",              None,                                          true,  [404, 404, 404, 200, 401, 401, 403, 403, 401]),
    route("POST",   "/v1/invitations/{inv}/decline",             None,                                          true,  [404, 404, 404, 204, 401, 401, 403, 403, 401]),
    route("POST",   "/v1/invitations/accept",                    Some(r#"{"token":"{token}"}"#),                true,  [403, 403, 403, 200, 401, 401, 403, 403, 401]),
    route("GET",    "/v1/invitations",                           None,                                          false, [200, 200, 200, 200, 401, 401, 403, 403, 401]),
    route("GET",    "/v1/events",                                None,                                          false, [200, 200, 200, 200, 401, 401, 200, 200, 401]),
    route("GET",    "/v1/devices",                               None,                                          false, [200, 200, 200, 200, 401, 401, 403, 403, 401]),
    route("GET",    "/v1/audit",                                 None,                                          false, [200, 200, 200, 200, 401, 401, 403, 403, 401]),
    route("GET",    "/v1/account/usage",                         None,                                          false, [200, 200, 200, 200, 401, 401, 403, 403, 401]),
    route("GET",    "/v1/news",                                  None,                                          false, [200, 200, 200, 200, 401, 401, 403, 403, 401]),
    route("POST",   "/v1/news",                                  Some(r#"{"title":"Mine"}"#),                   false, [201, 201, 201, 201, 401, 401, 403, 403, 401]),
    route("GET",    "/v1/objects/{obj}/news",                    None,                                          false, [200, 200, 200, 404, 401, 401, 200, 404, 401]),
    route("POST",   "/v1/objects/{obj}/news",                    Some(r#"{"title":"Shared"}"#),                 false, [201, 201, 403, 404, 401, 401, 201, 404, 401]),
    route("DELETE", "/v1/devices/{dev}",                         None,                                          true,  [204, 404, 404, 404, 401, 401, 403, 403, 401]),
    route("GET",    "/v1/events?subscribe=feed:{obj}",           None,                                          false, [200, 200, 200, 404, 401, 401, 200, 404, 401]),
    route("POST",   "/v1/presence",                              None,                                          false, [200, 200, 200, 200, 401, 401, 403, 403, 401]),
    route("DELETE", "/v1/presence",                              None,                                          false, [204, 204, 204, 204, 401, 401, 403, 403, 401]),
    route("GET",    "/v1/objects/{obj}/awareness",               None,                                          false, [200, 200, 200, 404, 401, 401, 403, 403, 401]),
    route("PUT",    "/v1/objects/{obj}/awareness",               Some(r#"{"state":{"open":[]}}"#),              false, [204, 204, 204, 404, 401, 401, 403, 403, 401]),
    route("DELETE", "/v1/objects/{obj}/awareness",               None,                                          false, [204, 204, 204, 404, 401, 401, 403, 403, 401]),
    route("GET",    "/v1/apps",                                  None,                                          false, [200, 200, 200, 200, 401, 401, 403, 403, 401]),
    route("POST",   "/v1/apps",                                  Some(r#"{"name":"Bot","objects":[{"object":"{obj}","role":"reader"}]}"#), false, [201, 201, 201, 400, 401, 401, 403, 403, 401]),
    route("DELETE", "/v1/apps/{app}",                            None,                                          true,  [204, 404, 404, 404, 401, 401, 403, 403, 401]),
    route("POST",   "/v1/objects/{obj}/apps",                    Some(r#"{"app":"{app}","role":"reader"}"#),    true,  [201, 403, 403, 404, 401, 401, 403, 403, 401]),
    route("DELETE", "/v1/objects/{obj}/apps/{app}",              None,                                          true,  [204, 403, 403, 404, 401, 401, 403, 403, 401]),
];

/// An object shared with the editor and the reader, holding a file entry
/// whose chunk only they can read, a pending invitation of the non-member
/// (addressed to them), and the owner's apps of the matrix's last columns.
struct Fixture {
    object: String,
    chunk: Hash,
    invitation: String,
    token: String,
    /// A spare device of the owner's, for the route that revokes one.
    spare_device: Option<String>,
    /// A spare app of the owner's, for the route that revokes one.
    spare_app: Option<String>,
    /// In scope, out of scope, revoked.
    apps: Vec<Client>,
}

struct World {
    server: Server,
    /// owner, editor, reader, non-member, revoked device, no token (the
    /// apps are each fixture's).
    actors: Vec<Client>,
}

impl World {
    async fn start() -> World {
        let server = Server::start();
        let owner = server.device(OWNER, "laptop").await;
        let editor = server.device(EDITOR, "laptop").await;
        let reader = server.device(READER, "laptop").await;
        let outsider = server.device(OUTSIDER, "laptop").await;
        let revoked = server.device(OWNER, "lost phone").await;
        owner.revoke(&revoked).await;
        let anonymous = server.anonymous();
        World {
            server,
            actors: vec![owner, editor, reader, outsider, revoked, anonymous],
        }
    }

    fn owner(&self) -> &Client {
        &self.actors[0]
    }

    /// A fixture, with the spare device or app that the route's path and
    /// body (`route`) name.
    async fn fixture(&self, route: &str) -> Fixture {
        let path = route;
        let owner = self.owner();
        let object = owner.create_object("Private", "list").await;
        owner
            .add_member(&object, &self.actors[1], EDITOR, "editor")
            .await;
        owner
            .add_member(&object, &self.actors[2], READER, "reader")
            .await;
        // Content of its own, so that no other fixture puts it in anyone's scope.
        let data = format!("the private content of {object}").into_bytes();
        let chunk = Hash::of(&data);
        let r = owner
            .put(&format!("/v1/chunks/{chunk}"))
            .body(data.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::CREATED);
        let content = ContentRef {
            hash: chunk,
            length: data.len() as u64,
            chunks: vec![ChunkRef {
                hash: chunk,
                size: data.len() as u32,
            }],
        };
        let item = json!({
            "sync": {"id": "urn:uuid:secret-entry", "updates": 1,
                     "history": [{"sequence": 1, "when": "2026-11-27T10:00:00Z", "by": owner.device_id}]},
            "title": {"type": "text", "value": "secret entry"},
            "enclosure": content,
        });
        assert_eq!(
            owner.post_items(&object, json!([item])).await.status(),
            StatusCode::OK
        );
        let invitation = owner.invite(&object, OUTSIDER, "reader").await;
        let token = token_of(&invite_link(&self.server.outbox_mail(&invitation)));
        let spare_device = match path.contains("{dev}") {
            true => Some(self.server.device(OWNER, "spare").await.device_id),
            false => None,
        };
        let spare_app = match path.contains("{app}") {
            true => Some(owner.app("Spare", &[(&object, "reader")]).await.device_id),
            false => None,
        };
        let elsewhere = owner.create_object("Elsewhere", "list").await;
        let revoked = owner.app("Revoked", &[(&object, "owner")]).await;
        owner.revoke_app(&revoked).await;
        let apps = vec![
            owner.app("In scope", &[(&object, "owner")]).await,
            owner.app("Out of scope", &[(&elsewhere, "editor")]).await,
            revoked,
        ];
        Fixture {
            object,
            chunk,
            invitation,
            token,
            spare_device,
            spare_app,
            apps,
        }
    }

    /// Who calls in `column` of the matrix, with fixture `f`.
    fn actor<'a>(&'a self, column: usize, f: &'a Fixture) -> &'a Client {
        match column.checked_sub(APPS) {
            Some(app) => &f.apps[app],
            None => &self.actors[column],
        }
    }

    fn fill(&self, template: &str, f: &Fixture) -> String {
        template
            .replace("{obj}", &f.object)
            .replace("{chunk}", &f.chunk.to_string())
            .replace("{upload}", &Hash::of(UPLOAD).to_string())
            .replace("{inv}", &f.invitation)
            .replace("{token}", &f.token)
            .replace("{editor}", &self.actors[1].user_id)
            .replace("{reader}", &self.actors[2].user_id)
            .replace("{dev}", f.spare_device.as_deref().unwrap_or(""))
            .replace("{app}", f.spare_app.as_deref().unwrap_or(""))
    }

    /// Calls the route as `client`; the status and the body (the first
    /// bytes only of an event stream, which does not end).
    async fn call(&self, client: &Client, route: &Route, f: &Fixture) -> (u16, String) {
        let method: Method = route.method.parse().unwrap();
        let mut request = client.request(method, &self.fill(route.path, f));
        if let Some(body) = route.body {
            request = request
                .header("content-type", "application/json")
                .body(self.fill(body, f));
        } else if route.path.contains("{upload}") {
            request = request.body(UPLOAD);
        } else if route.path == "/v1/chunks" {
            request = request
                .header("content-type", chunk_batch::CONTENT_TYPE)
                .body(chunk_batch::encode([(&Hash::of(UPLOAD), UPLOAD)]));
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        // A stream that opened never ends: its status is the answer.
        if route.path.starts_with("/v1/events") && status == 200 {
            return (status, String::new());
        }
        (status, response.text().await.unwrap())
    }
}

#[tokio::test]
async fn every_route_answers_every_caller_exactly_and_leaks_nothing() {
    let world = World::start().await;
    let shared = world.fixture("").await;
    let mut wrong = Vec::new();
    let mut calls = 0;
    for route in MATRIX {
        for (column, actor) in ACTORS.iter().enumerate() {
            let own;
            let f = if route.fresh {
                own = world
                    .fixture(&format!("{} {}", route.path, route.body.unwrap_or("")))
                    .await;
                &own
            } else {
                &shared
            };
            let client = world.actor(column, f);
            let (status, body) = world.call(client, route, f).await;
            calls += 1;
            let expected = route.expect[column];
            if status != expected {
                wrong.push(format!(
                    "{} {} as {}: {status}, not {expected}: {body}",
                    route.method, route.path, actor
                ));
            }
            // A 404 for something that exists reads exactly like the 404
            // for something that does not.
            if expected == 404 && status == 404 {
                let unknown = Fixture {
                    object: "6b1f4a6e-1b8e-4a43-9a51-2a4f3f0c9d11".into(),
                    chunk: Hash::of(b"no such chunk"),
                    invitation: "9d2a1c1e-7f4b-4c7e-8a0e-3f6c2b1d0e9f".into(),
                    token: "0".repeat(32),
                    spare_device: Some("5c0ffee0-0000-4000-8000-000000000000".into()),
                    spare_app: Some("5c0ffee0-0000-4000-8000-0000000000a9".into()),
                    apps: Vec::new(),
                };
                let (other_status, other_body) = world.call(client, route, &unknown).await;
                if (other_status, &other_body) != (status, &body) {
                    wrong.push(format!(
                        "{} {} as {}: a real id answers {status} {body:?}, an unknown one \
                         {other_status} {other_body:?}",
                        route.method, route.path, actor
                    ));
                }
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "{} wrong answers of {calls}:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
    assert_eq!(calls, MATRIX.len() * ACTORS.len());

    // Nothing of the shared object reaches the non-member: not in their
    // object list, not their chunk scope, not their event stream.
    let outsider = &world.actors[3];
    let listed: Vec<Value> = outsider.get_json("/v1/objects").await;
    assert!(
        listed.iter().all(|o| o["id"] != json!(shared.object)),
        "{listed:?}"
    );
    let r: Value = outsider
        .post("/v1/chunks/missing")
        .json(&json!({"hashes": [shared.chunk]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(r["missing"], json!([shared.chunk]));
    let news: Value = outsider.get_json("/v1/news?limit=500").await;
    assert!(
        news["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|i| i["object"] != json!(shared.object)),
        "{news}"
    );
    let members_of = |c: &Change| c.topic().1.map(|o| o.to_string());
    let seen: Vec<String> = replayed(outsider, 0)
        .await
        .iter()
        .filter_map(members_of)
        .collect();
    assert!(
        !seen.contains(&shared.object),
        "the non-member saw events of the shared object: {seen:?}"
    );
    // Nor the app out of scope; it is told nothing of the owner's but its
    // own object.
    let [in_scope, out_of_scope, _] = &shared.apps[..] else {
        unreachable!()
    };
    let told = replayed(out_of_scope, 0).await;
    let seen: Vec<String> = told.iter().filter_map(members_of).collect();
    assert!(
        !seen.contains(&shared.object),
        "the app out of scope saw events of the shared object: {seen:?}"
    );
    assert!(
        told.iter().all(|c| c.topic().1.is_some()),
        "the app out of scope was told of its owner's own changes: {told:?}"
    );
    // The members do see them, and so does the app in scope.
    for client in [&world.actors[2], in_scope] {
        let seen: Vec<String> = replayed(client, 0)
            .await
            .iter()
            .filter_map(members_of)
            .collect();
        assert!(seen.contains(&shared.object));
    }
}
