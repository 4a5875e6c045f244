//! Mesh objects against the real meshd: create, list, read, rename, delete,
//! and that another user's object is indistinguishable from a missing one.

mod common;

use common::{Server, error_code};
use reqwest::StatusCode;
use serde_json::{Value, json};

#[tokio::test]
async fn create_list_rename_delete() {
    let server = Server::start();
    let ann = server.device("ann@example.org", "laptop").await;
    let photos = ann.create_object("Photos", "folder").await;
    let todo = ann.create_object("Todo", "list").await;
    let app = ann.create_object("Scores", "com.example.game").await;

    let list: Vec<Value> = ann.get_json("/v1/objects").await;
    let names: Vec<&str> = list.iter().map(|o| o["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["Photos", "Scores", "Todo"]);
    assert!(
        list.iter()
            .all(|o| o["role"] == "owner" && o["owner"] == json!(ann.user_id))
    );
    let folders: Vec<Value> = ann.get_json("/v1/objects?kind=folder").await;
    assert_eq!(folders.len(), 1);
    assert_eq!(folders[0]["id"], json!(photos));

    let r = ann
        .request(reqwest::Method::PATCH, &format!("/v1/objects/{todo}"))
        .json(&json!({"name": "Groceries"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let o: Value = ann.get_json(&format!("/v1/objects/{todo}")).await;
    assert_eq!(o["name"], "Groceries");
    assert_eq!(o["kind"], "list");

    let r = ann
        .delete(&format!("/v1/objects/{app}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        ann.get(&format!("/v1/objects/{app}"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        ann.delete(&format!("/v1/objects/{app}"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::NOT_FOUND
    );
    let list: Vec<Value> = ann.get_json("/v1/objects").await;
    assert_eq!(list.len(), 2);
}

#[tokio::test]
async fn invalid_objects_are_refused_and_change_nothing() {
    let server = Server::start();
    let ann = server.device("ann@example.org", "laptop").await;
    for body in [
        json!({"name": "", "kind": "folder"}),
        json!({"name": "   ", "kind": "folder"}),
        json!({"name": "a\u{0}b", "kind": "folder"}),
        json!({"name": "x".repeat(256), "kind": "folder"}),
        json!({"name": "ok", "kind": "Folder"}),
        json!({"name": "ok", "kind": "../etc"}),
        json!({"name": "ok"}),
        json!({"name": "ok", "kind": "list", "extra": 1}),
    ] {
        let r = ann.post("/v1/objects").json(&body).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(error_code(r).await, "bad_request");
    }
    let r = ann
        .post("/v1/objects")
        .body("not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let list: Vec<Value> = ann.get_json("/v1/objects").await;
    assert!(list.is_empty());

    let id = ann.create_object("Todo", "list").await;
    let r = ann
        .request(reqwest::Method::PATCH, &format!("/v1/objects/{id}"))
        .json(&json!({"name": ""}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let o: Value = ann.get_json(&format!("/v1/objects/{id}")).await;
    assert_eq!(o["name"], "Todo");
}

#[tokio::test]
async fn another_users_object_is_indistinguishable_from_a_missing_one() {
    let server = Server::start();
    let ann = server.device("ann@example.org", "laptop").await;
    let bob = server.device("bob@example.org", "desk").await;
    let private = ann.create_object("Diary", "list").await;
    let unknown = "6b1f4a6e-1b8e-4a43-9a51-2a4f3f0c9d11";

    let mut answers = Vec::new();
    for id in [private.as_str(), unknown] {
        for (method, path, body) in [
            ("GET", format!("/v1/objects/{id}"), json!(null)),
            (
                "PATCH",
                format!("/v1/objects/{id}"),
                json!({"name": "mine"}),
            ),
            ("DELETE", format!("/v1/objects/{id}"), json!(null)),
            ("GET", format!("/v1/objects/{id}/feed"), json!(null)),
            (
                "POST",
                format!("/v1/objects/{id}/feed"),
                json!({"items": []}),
            ),
        ] {
            let r = bob
                .request(method.parse().unwrap(), &path)
                .json(&body)
                .send()
                .await
                .unwrap();
            let status = r.status();
            let text = r.text().await.unwrap();
            answers.push((method, status, text));
        }
    }
    let (private_answers, unknown_answers) = answers.split_at(5);
    assert_eq!(private_answers, unknown_answers);
    assert!(
        private_answers
            .iter()
            .all(|(_, s, _)| *s == StatusCode::NOT_FOUND)
    );
    let list: Vec<Value> = bob.get_json("/v1/objects").await;
    assert!(list.is_empty());
    let o: Value = ann.get_json(&format!("/v1/objects/{private}")).await;
    assert_eq!(o["name"], "Diary");
}
