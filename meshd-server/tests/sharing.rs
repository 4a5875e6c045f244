//! Sharing against the real meshd, with invitations sent over SMTP to a
//! test receiver: invite → e-mail → accept by token or id, decline, revoke,
//! role changes, removal, leaving, the last-owner rules, and refused
//! tokens (expired, reused, wrong account, forged) that change nothing.

mod common;

use common::smtp::SmtpReceiver;
use common::{Client, Server, error_code, invite_link, new_item, replayed, token_of};
use mesh_protocol::api::{Change, Invitation, InvitationState, MeshObject, Role, ShareOutcome};
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::time::Duration;

/// meshd sending mail to a fresh test receiver, with extra flags.
fn start(flags: &[&str]) -> (Server, SmtpReceiver) {
    let smtp = SmtpReceiver::start();
    let port = smtp.port.to_string();
    let mut all = vec![
        "--smtp-host",
        "127.0.0.1",
        "--smtp-port",
        &port,
        "--smtp-tls",
        "none",
        "--smtp-from",
        "Mesh <mesh@example.org>",
    ];
    all.extend_from_slice(flags);
    (Server::start_with(&all), smtp)
}

async fn accept_token(client: &Client, token: &str) -> reqwest::Response {
    client
        .post("/v1/invitations/accept")
        .json(&json!({ "token": token }))
        .send()
        .await
        .unwrap()
}

async fn answer(client: &Client, id: &str, verb: &str) -> reqwest::Response {
    client
        .post(&format!("/v1/invitations/{id}/{verb}"))
        .send()
        .await
        .unwrap()
}

async fn object_invitations(client: &Client, object: &str) -> Vec<Invitation> {
    client
        .get_json(&format!("/v1/objects/{object}/invitations"))
        .await
}

fn owned(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(e, r)| (e.to_string(), r.to_string()))
        .collect()
}

#[tokio::test]
async fn an_invitation_arrives_by_mail_and_its_link_is_accepted_once() {
    let (server, smtp) = start(&[]);
    let ann = server.device("ann@example.org", "laptop").await;
    let bob = server.device("bob@example.org", "desk").await;
    let photos = ann.create_object("Photos", "list").await;

    let r = ann.share(&photos, "Bob@Example.org", "editor").await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let ShareOutcome::Invited { invitation } = r.json().await.unwrap() else {
        panic!("not an invitation")
    };
    assert_eq!(invitation.state, InvitationState::Pending);
    assert_eq!(invitation.role, Role::Editor);
    assert_eq!(invitation.invited_by, "ann@example.org");
    assert_eq!(invitation.object_name, "Photos");

    // A real e-mail, to the invited address, with a working link.
    let mail = smtp.wait_for(1, Duration::from_secs(10)).remove(0);
    assert_eq!(mail.from, "mesh@example.org");
    assert_eq!(mail.to, ["Bob@Example.org"]);
    let link = invite_link(&mail.data);
    assert!(
        link.starts_with(&format!("{}/invite/", server.url)),
        "{link}"
    );
    assert!(
        mail.data
            .contains(&format!("meshfs accept {}", invitation.id))
    );
    let token = token_of(&link);
    assert!(token.len() >= 32, "at least 128 random bits: {token}");
    let page = reqwest::get(&link).await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);

    // Bob sees it among his invitations, and accepts with the token.
    let mine: Vec<Invitation> = bob.get_json("/v1/invitations").await;
    assert_eq!(mine, std::slice::from_ref(&invitation));
    let r = accept_token(&bob, &token).await;
    assert_eq!(r.status(), StatusCode::OK);
    let object: MeshObject = r.json().await.unwrap();
    assert_eq!(object.name, "Photos");
    assert_eq!(object.role, Role::Editor);
    assert_eq!(object.owner_email, "ann@example.org");
    let bobs: Vec<MeshObject> = bob.get_json("/v1/objects").await;
    assert_eq!(bobs.len(), 1);
    assert_eq!(
        ann.members(&photos).await,
        owned(&[("ann@example.org", "owner"), ("bob@example.org", "editor")])
    );
    assert_eq!(
        bob.post_items(
            &photos,
            json!([new_item(
                "urn:uuid:b1",
                "from bob",
                &bob.device_id,
                "2026-11-27T10:00:00Z"
            )])
        )
        .await
        .status(),
        StatusCode::OK
    );
    assert!(
        bob.get_json::<Vec<Value>>("/v1/invitations")
            .await
            .is_empty()
    );
    let all = object_invitations(&ann, &photos).await;
    assert_eq!(all[0].state, InvitationState::Accepted);

    // The link works once.
    let r = accept_token(&bob, &token).await;
    assert_eq!(r.status(), StatusCode::CONFLICT);
    let body: Value = r.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("accepted"),
        "{body}"
    );
    assert_eq!(ann.members(&photos).await.len(), 2);

    // Audit and change events.
    assert_eq!(
        server.audit(&photos),
        [
            (
                "invited".into(),
                "Bob@Example.org".into(),
                Some("editor".into())
            ),
            (
                "accepted".into(),
                "Bob@Example.org".into(),
                Some("editor".into())
            ),
        ]
    );
    let bobs_changes = replayed(&bob, 0).await;
    assert!(bobs_changes.contains(&Change::InvitationChanged {
        invitation: invitation.id
    }));
    assert!(bobs_changes.contains(&Change::MembersChanged { object: object.id }));
}

#[tokio::test]
async fn invitations_are_accepted_and_declined_by_id_and_revoked_by_owners() {
    let (server, smtp) = start(&[]);
    let ann = server.device("ann@example.org", "laptop").await;
    let bob = server.device("bob@example.org", "desk").await;
    let cat = server.device("cat@example.org", "phone").await;
    let photos = ann.create_object("Photos", "folder").await;

    let to_bob = ann.invite(&photos, "bob@example.org", "reader").await;
    let to_cat = ann.invite(&photos, "cat@example.org", "editor").await;
    // Only the invited address can see or answer an invitation by id.
    assert_eq!(
        answer(&cat, &to_bob, "accept").await.status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        answer(&bob, &to_bob, "accept").await.status(),
        StatusCode::OK
    );
    assert_eq!(
        answer(&cat, &to_cat, "decline").await.status(),
        StatusCode::NO_CONTENT
    );
    let r = answer(&cat, &to_cat, "accept").await;
    assert_eq!(r.status(), StatusCode::CONFLICT);
    assert_eq!(
        ann.members(&photos).await,
        owned(&[("ann@example.org", "owner"), ("bob@example.org", "reader")])
    );
    let states: Vec<(String, InvitationState)> = object_invitations(&ann, &photos)
        .await
        .into_iter()
        .map(|i| (i.email, i.state))
        .collect();
    assert!(states.contains(&("cat@example.org".into(), InvitationState::Declined)));
    assert!(states.contains(&("bob@example.org".into(), InvitationState::Accepted)));

    // Revoking: a reader cannot (the invitation does not exist for them),
    // the owner can, and the revoked link no longer works.
    let again = ann.invite(&photos, "cat@example.org", "reader").await;
    assert_eq!(
        bob.delete(&format!("/v1/invitations/{again}"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        ann.delete(&format!("/v1/invitations/{again}"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::NO_CONTENT
    );
    assert!(
        cat.get_json::<Vec<Value>>("/v1/invitations")
            .await
            .is_empty()
    );
    let mails = smtp.wait_for(3, Duration::from_secs(10));
    let token = token_of(&invite_link(&mails[2].data));
    let r = accept_token(&cat, &token).await;
    assert_eq!(r.status(), StatusCode::CONFLICT);
    assert!(r.text().await.unwrap().contains("revoked"));
    assert_eq!(
        answer(&cat, &again, "accept").await.status(),
        StatusCode::CONFLICT
    );

    // Sharing again with a pending address replaces its invitation.
    let first = ann.invite(&photos, "dan@example.org", "reader").await;
    let second = ann.invite(&photos, "dan@example.org", "editor").await;
    let mails = smtp.wait_for(5, Duration::from_secs(10));
    let (first_token, second_token) = (
        token_of(&invite_link(&mails[3].data)),
        token_of(&invite_link(&mails[4].data)),
    );
    let dan = server.device("dan@example.org", "tablet").await;
    let mine: Vec<Invitation> = dan.get_json("/v1/invitations").await;
    assert_eq!(mine.len(), 1);
    assert_eq!(mine[0].id.to_string(), second);
    assert_eq!(
        accept_token(&dan, &first_token).await.status(),
        StatusCode::CONFLICT
    );
    assert_eq!(
        accept_token(&dan, &second_token).await.status(),
        StatusCode::OK
    );
    let states: Vec<(String, InvitationState)> = object_invitations(&ann, &photos)
        .await
        .into_iter()
        .map(|i| (i.id.to_string(), i.state))
        .collect();
    assert!(states.contains(&(first, InvitationState::Revoked)));
    assert!(states.contains(&(second, InvitationState::Accepted)));
    let actions: Vec<String> = server.audit(&photos).into_iter().map(|a| a.0).collect();
    assert_eq!(
        actions,
        [
            "invited", "invited", "accepted", "declined", "invited", "revoked", "invited",
            "revoked", "invited", "accepted"
        ]
    );
}

#[tokio::test]
async fn roles_change_members_leave_or_are_removed_and_the_last_owner_stays() {
    let (server, _smtp) = start(&[]);
    let ann = server.device("ann@example.org", "laptop").await;
    let bob = server.device("bob@example.org", "desk").await;
    let cat = server.device("cat@example.org", "phone").await;
    let photos = ann.create_object("Photos", "folder").await;
    ann.add_member(&photos, &bob, "bob@example.org", "editor")
        .await;
    ann.add_member(&photos, &cat, "cat@example.org", "reader")
        .await;
    let path = |user: &str| format!("/v1/objects/{photos}/members/{user}");

    // A reader cannot write; an owner changes roles, by PATCH or by
    // sharing again.
    let item = new_item("urn:uuid:c1", "x", &cat.device_id, "2026-11-27T10:00:00Z");
    assert_eq!(
        cat.post_items(&photos, json!([item.clone()]))
            .await
            .status(),
        StatusCode::FORBIDDEN
    );
    let r = ann
        .patch(&path(&bob.user_id))
        .json(&json!({"role": "reader"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let member: Value = r.json().await.unwrap();
    assert_eq!(member["role"], "reader");
    assert_eq!(
        bob.post_items(&photos, json!([item.clone()]))
            .await
            .status(),
        StatusCode::FORBIDDEN
    );
    let r = ann.share(&photos, "BOB@example.org", "editor").await;
    assert_eq!(r.status(), StatusCode::OK);
    let ShareOutcome::RoleChanged { member } = r.json().await.unwrap() else {
        panic!("not a role change")
    };
    assert_eq!(member.role, Role::Editor);
    assert_eq!(member.email, "bob@example.org");

    // Only owners manage members, and no one grants above their own role.
    for (who, target, role) in [
        (&bob, &cat, "editor"),
        (&bob, &cat, "owner"),
        (&cat, &bob, "reader"),
    ] {
        let r = who
            .patch(&path(&target.user_id))
            .json(&json!({ "role": role }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
        assert_eq!(error_code(r).await, "forbidden");
    }
    assert_eq!(
        bob.share(&photos, "eve@example.org", "owner")
            .await
            .status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        cat.share(&photos, "eve@example.org", "reader")
            .await
            .status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        bob.delete(&path(&cat.user_id))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::FORBIDDEN
    );

    // The last owner can neither be demoted nor leave.
    let r = ann
        .patch(&path(&ann.user_id))
        .json(&json!({"role": "editor"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CONFLICT);
    let r = ann.delete(&path(&ann.user_id)).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::CONFLICT);
    assert_eq!(
        ann.members(&photos).await,
        owned(&[
            ("ann@example.org", "owner"),
            ("bob@example.org", "editor"),
            ("cat@example.org", "reader")
        ])
    );

    // Removal: the removed member is told, and loses the object at once.
    let cursor = head(&cat).await;
    assert_eq!(
        ann.delete(&path(&cat.user_id))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::NO_CONTENT
    );
    for p in [
        format!("/v1/objects/{photos}"),
        format!("/v1/objects/{photos}/feed"),
        format!("/v1/objects/{photos}/members"),
    ] {
        assert_eq!(
            cat.get(&p).send().await.unwrap().status(),
            StatusCode::NOT_FOUND,
            "{p}"
        );
    }
    assert!(cat.get_json::<Vec<Value>>("/v1/objects").await.is_empty());
    let object = photos.parse().unwrap();
    assert_eq!(
        replayed(&cat, cursor).await,
        [Change::ObjectChanged { object }]
    );
    assert!(
        replayed(&bob, cursor)
            .await
            .contains(&Change::MembersChanged { object })
    );

    // With a second owner, the first may leave; then the second is the
    // last one.
    let r = ann
        .patch(&path(&bob.user_id))
        .json(&json!({"role": "owner"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        ann.delete(&path(&ann.user_id))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        bob.members(&photos).await,
        owned(&[("bob@example.org", "owner")])
    );
    assert_eq!(
        bob.delete(&path(&bob.user_id))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::CONFLICT
    );
    let actions: Vec<String> = server.audit(&photos).into_iter().map(|a| a.0).collect();
    assert_eq!(
        &actions[4..],
        [
            "role_changed",
            "role_changed",
            "removed",
            "role_changed",
            "left"
        ]
    );
}

/// The newest cursor `client` can see.
async fn head(client: &Client) -> u64 {
    use futures_util::StreamExt;
    let r = client.get("/v1/events?since=0").send().await.unwrap();
    let mut body = r.bytes_stream();
    let mut parser = mesh_protocol::sse::SseParser::default();
    let mut last = 0;
    while let Ok(Some(Ok(bytes))) =
        tokio::time::timeout(Duration::from_millis(300), body.next()).await
    {
        for event in parser.push(&bytes) {
            if let Some(id) = event.id {
                last = id.parse().unwrap();
            }
        }
    }
    last
}

#[tokio::test]
async fn expired_reused_wrong_account_and_forged_tokens_change_nothing() {
    let (server, smtp) = start(&["--invitation-ttl", "1"]);
    let ann = server.device("ann@example.org", "laptop").await;
    let bob = server.device("bob@example.org", "desk").await;
    let photos = ann.create_object("Photos", "folder").await;
    let id = ann.invite(&photos, "bob@example.org", "editor").await;
    let token = token_of(&invite_link(
        &smtp.wait_for(1, Duration::from_secs(10))[0].data,
    ));
    tokio::time::sleep(Duration::from_millis(1500)).await;

    let listed = object_invitations(&ann, &photos).await;
    assert_eq!(listed[0].state, InvitationState::Expired);
    assert!(
        bob.get_json::<Vec<Value>>("/v1/invitations")
            .await
            .is_empty()
    );
    let r = accept_token(&bob, &token).await;
    assert_eq!(r.status(), StatusCode::GONE);
    assert_eq!(error_code(r).await, "gone");
    assert_eq!(answer(&bob, &id, "accept").await.status(), StatusCode::GONE);
    assert_eq!(
        answer(&bob, &id, "decline").await.status(),
        StatusCode::GONE
    );
    let page = reqwest::get(format!("{}/invite/{token}", server.url))
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::GONE);
    assert_eq!(
        ann.members(&photos).await,
        owned(&[("ann@example.org", "owner")])
    );
    assert_eq!(object_invitations(&ann, &photos).await, listed);
}

#[tokio::test]
async fn a_token_for_another_address_or_a_forged_one_is_refused_and_throttled() {
    let (server, smtp) = start(&[]);
    let ann = server.device("ann@example.org", "laptop").await;
    let bob = server.device("bob@example.org", "desk").await;
    let eve = server.device("eve@example.org", "laptop").await;
    let photos = ann.create_object("Photos", "folder").await;
    ann.invite(&photos, "bob@example.org", "editor").await;
    let token = token_of(&invite_link(
        &smtp.wait_for(1, Duration::from_secs(10))[0].data,
    ));

    // Eve holds Bob's link: refused, and nothing changes.
    let r = accept_token(&eve, &token).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        ann.members(&photos).await,
        owned(&[("ann@example.org", "owner")])
    );
    assert_eq!(
        object_invitations(&ann, &photos).await[0].state,
        InvitationState::Pending
    );
    // Forged tokens are unknown; guessing is throttled per user.
    let forged = "ab".repeat(16);
    let mut statuses = Vec::new();
    for _ in 0..12 {
        statuses.push(accept_token(&eve, &forged).await.status());
    }
    assert_eq!(statuses[0], StatusCode::NOT_FOUND);
    assert_eq!(statuses[11], StatusCode::TOO_MANY_REQUESTS);
    let r = accept_token(&eve, &token).await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(r.headers().contains_key("retry-after"));
    assert!(eve.get_json::<Vec<Value>>("/v1/objects").await.is_empty());
    // Bob is not affected, and the link still works for him.
    assert_eq!(accept_token(&bob, &token).await.status(), StatusCode::OK);
}

/// An `application/x-www-form-urlencoded` body, as a browser sends a form.
fn form(fields: &[(&str, &str)]) -> String {
    let encode = |text: &str| -> String {
        text.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => {
                    (b as char).to_string()
                }
                b' ' => "+".into(),
                b => format!("%{b:02X}"),
            })
            .collect()
    };
    fields
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

#[tokio::test]
async fn the_confirmation_page_answers_in_html_and_never_leaks_the_token() {
    let (server, smtp) = start(&["--log", "debug"]);
    let ann = server.device("ann@example.org", "laptop").await;
    let _bob = server.device("bob@example.org", "desk").await;
    let _cat = server.device("cat@example.org", "phone").await;
    // (An object's name cannot hold '/', so no closing tag.)
    let name = r#"<script>alert("x")<\script> & Co"#;
    let object = ann.create_object(name, "folder").await;
    ann.invite(&object, "bob@example.org", "editor").await;
    ann.invite(&object, "cat@example.org", "reader").await;
    let mails = smtp.wait_for(2, Duration::from_secs(10));
    let (to_bob, to_cat) = (invite_link(&mails[0].data), invite_link(&mails[1].data));
    let web = reqwest::Client::new();

    let page = web.get(&to_bob).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    for (name, value) in [
        ("referrer-policy", "no-referrer"),
        ("cache-control", "no-store"),
    ] {
        assert_eq!(page.headers()[name], value);
    }
    assert!(
        page.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let html = page.text().await.unwrap();
    assert!(!html.contains("<script>"), "{html}");
    assert!(
        html.contains("&lt;script&gt;alert(&quot;x&quot;)&lt;\\script&gt; &amp; Co"),
        "{html}"
    );
    for needed in [
        "ann@example.org",
        "editor",
        "bob@example.org",
        "UTC",
        "method=\"post\"",
    ] {
        assert!(html.contains(needed), "{needed} is not in {html}");
    }

    let post = |link: &str, email: &str, password: &str, answer: &str| {
        web.post(link)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form(&[
                ("email", email),
                ("password", password),
                ("answer", answer),
            ]))
            .send()
    };
    // A wrong password, or the wrong account, answers nothing.
    let r = post(&to_bob, "bob@example.org", "wrong password", "accept")
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(r.headers()["referrer-policy"], "no-referrer");
    let r = post(&to_bob, "cat@example.org", common::PASSWORD, "accept")
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        ann.members(&object).await,
        owned(&[("ann@example.org", "owner")])
    );
    // Bob accepts; Cat declines hers; each link then answers 409.
    let r = post(&to_bob, "bob@example.org", common::PASSWORD, "accept")
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["referrer-policy"], "no-referrer");
    assert!(r.text().await.unwrap().contains("an editor"));
    let r = post(&to_cat, "CAT@example.org", common::PASSWORD, "decline")
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.text().await.unwrap().contains("declined"));
    for link in [&to_bob, &to_cat] {
        let r = web.get(link).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::CONFLICT);
        assert_eq!(r.headers()["referrer-policy"], "no-referrer");
    }
    assert_eq!(
        ann.members(&object).await,
        owned(&[("ann@example.org", "owner"), ("bob@example.org", "editor")])
    );
    // An unknown token gets a page too.
    let r = web
        .get(format!("{}/invite/{}", server.url, "0".repeat(32)))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert_eq!(r.headers()["cache-control"], "no-store");
    assert!(r.text().await.unwrap().contains("not valid"));

    // Nothing secret in the log, even at debug level.
    let log = server.log();
    assert!(log.contains("invitation answered"), "{log}");
    for secret in [token_of(&to_bob), token_of(&to_cat)] {
        assert!(!log.contains(&secret), "a token is in the log");
    }
    assert!(!log.contains(common::PASSWORD));
}

#[tokio::test]
async fn without_smtp_invitations_go_to_the_outbox() {
    let server = Server::start();
    let ann = server.device("ann@example.org", "laptop").await;
    let bob = server.device("bob@example.org", "desk").await;
    let photos = ann.create_object("Photos", "folder").await;
    let id = ann.invite(&photos, "bob@example.org", "reader").await;
    let mail = server.outbox_mail(&id);
    assert!(mail.contains("To: bob@example.org"), "{mail}");
    let token = token_of(&invite_link(&mail));
    assert_eq!(accept_token(&bob, &token).await.status(), StatusCode::OK);
    let log = server.log();
    assert!(log.contains(&format!("{id}.eml")), "{log}");
    assert!(!log.contains(&token));
}

#[tokio::test]
async fn a_mail_that_cannot_be_sent_leaves_no_invitation() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
        .to_string();
    let server = Server::start_with(&[
        "--smtp-host",
        "127.0.0.1",
        "--smtp-port",
        &closed,
        "--smtp-tls",
        "none",
    ]);
    let ann = server.device("ann@example.org", "laptop").await;
    let photos = ann.create_object("Photos", "folder").await;
    let r = ann.share(&photos, "bob@example.org", "reader").await;
    assert_eq!(r.status(), StatusCode::BAD_GATEWAY);
    assert_eq!(error_code(r).await, "mail_failed");
    assert!(object_invitations(&ann, &photos).await.is_empty());
    assert!(server.audit(&photos).is_empty());
}

#[tokio::test]
async fn a_removed_member_stops_seeing_the_object_at_once() {
    let (server, _smtp) = start(&[]);
    let ann = server.device("ann@example.org", "laptop").await;
    let bob = server.device("bob@example.org", "desk").await;
    let todo = ann.create_object("Todo", "list").await;
    ann.add_member(&todo, &bob, "bob@example.org", "editor")
        .await;
    let item = new_item(
        "urn:uuid:t1",
        "milk",
        &ann.device_id,
        "2026-11-27T10:00:00Z",
    );
    assert_eq!(
        ann.post_items(&todo, json!([item])).await.status(),
        StatusCode::OK
    );
    assert_eq!(bob.feed(&todo).await["items"].as_array().unwrap().len(), 1);
    let cursor = head(&bob).await;

    let r = ann
        .delete(&format!("/v1/objects/{todo}/members/{}", bob.user_id))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let item = new_item(
        "urn:uuid:t2",
        "eggs",
        &ann.device_id,
        "2026-11-27T10:00:01Z",
    );
    assert_eq!(
        ann.post_items(&todo, json!([item])).await.status(),
        StatusCode::OK
    );
    // Bob's stream tells him once, then nothing more of the object.
    let object = todo.parse().unwrap();
    assert_eq!(
        replayed(&bob, cursor).await,
        [Change::ObjectChanged { object }]
    );
    for path in [
        format!("/v1/objects/{todo}/feed"),
        format!("/v1/objects/{todo}/members"),
    ] {
        assert_eq!(
            bob.get(&path).send().await.unwrap().status(),
            StatusCode::NOT_FOUND
        );
    }
    let later = new_item(
        "urn:uuid:t3",
        "bread",
        &bob.device_id,
        "2026-11-27T10:00:02Z",
    );
    assert_eq!(
        bob.post_items(&todo, json!([later])).await.status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(ann.feed(&todo).await["items"].as_array().unwrap().len(), 2);
}
