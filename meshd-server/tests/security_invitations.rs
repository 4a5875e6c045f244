//! Security of invitations against the real meshd (#15 item 5): an
//! invitation grants its role only while its sender may grant it. A
//! sender demoted after inviting cannot make the invitee an owner (nor
//! anything), by id or by the e-mailed link, and the refusal changes
//! nothing; a sender who is removed or leaves takes their pending
//! invitations with them.

mod common;

use common::{Client, Server, error_code, invite_link, token_of};
use mesh_protocol::api::{Invitation, InvitationState};
use reqwest::StatusCode;
use serde_json::{Value, json};

const ANN: &str = "ann@example.org";
const CAROL: &str = "carol@example.org";
const DAVE: &str = "dave@example.org";

async fn set_role(owner: &Client, object: &str, member: &Client, role: &str) {
    let r = owner
        .patch(&format!("/v1/objects/{object}/members/{}", member.user_id))
        .json(&json!({ "role": role }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
}

async fn accept_by_id(client: &Client, id: &str) -> reqwest::Response {
    client
        .post(&format!("/v1/invitations/{id}/accept"))
        .send()
        .await
        .unwrap()
}

async fn accept_by_token(client: &Client, token: &str) -> reqwest::Response {
    client
        .post("/v1/invitations/accept")
        .json(&json!({ "token": token }))
        .send()
        .await
        .unwrap()
}

async fn state_of(owner: &Client, object: &str, id: &str) -> InvitationState {
    let list: Vec<Invitation> = owner
        .get_json(&format!("/v1/objects/{object}/invitations"))
        .await;
    list.iter()
        .find(|i| i.id.to_string() == id)
        .unwrap_or_else(|| panic!("no invitation {id} in {list:?}"))
        .state
}

/// How many times Dave accepted, as the audit log says.
fn acceptances(audit: Vec<(String, String, Option<String>)>) -> usize {
    audit
        .into_iter()
        .filter(|(action, subject, _)| action == "accepted" && subject == DAVE)
        .count()
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(e, r)| (e.to_string(), r.to_string()))
        .collect()
}

#[tokio::test]
async fn a_demoted_inviter_s_invitation_grants_nothing_until_they_may_grant_again() {
    let server = Server::start();
    let ann = server.device(ANN, "ann-laptop").await;
    let carol = server.device(CAROL, "carol-laptop").await;
    let dave = server.device(DAVE, "dave-laptop").await;
    let object = ann.create_object("Plans", "folder").await;
    ann.add_member(&object, &carol, CAROL, "owner").await;
    let id = carol.invite(&object, DAVE, "owner").await;
    let token = token_of(&invite_link(&server.outbox_mail(&id)));

    for demoted_to in ["reader", "editor"] {
        set_role(&ann, &object, &carol, demoted_to).await;
        let before = ann.members(&object).await;
        for r in [
            accept_by_token(&dave, &token).await,
            accept_by_id(&dave, &id).await,
        ] {
            assert_eq!(r.status(), StatusCode::CONFLICT);
            let body: Value = r.json().await.unwrap();
            let message = body["error"]["message"].as_str().unwrap();
            assert!(
                message.contains("can no longer be accepted")
                    && message.contains(CAROL)
                    && message.contains("may no longer grant the role owner"),
                "{message}"
            );
        }
        // Refused, and nothing changed: Dave is no member, the invitation
        // is still pending, and the audit log holds no acceptance.
        assert_eq!(ann.members(&object).await, before);
        let seen = dave.get(&format!("/v1/objects/{object}")).send().await;
        assert_eq!(seen.unwrap().status(), StatusCode::NOT_FOUND);
        assert_eq!(state_of(&ann, &object, &id).await, InvitationState::Pending);
        assert_eq!(acceptances(server.audit(&object)), 0);
    }

    // An owner again, Carol may grant the role, and her invitation does.
    set_role(&ann, &object, &carol, "owner").await;
    let r = accept_by_id(&dave, &id).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        ann.members(&object).await,
        pairs(&[(ANN, "owner"), (CAROL, "owner"), (DAVE, "owner")])
    );
    assert_eq!(acceptances(server.audit(&object)), 1);
}

#[tokio::test]
async fn an_inviter_who_is_removed_or_leaves_takes_their_pending_invitations_along() {
    let server = Server::start();
    let ann = server.device(ANN, "ann-laptop").await;
    let carol = server.device(CAROL, "carol-laptop").await;
    let dave = server.device(DAVE, "dave-laptop").await;
    let object = ann.create_object("Plans", "folder").await;
    ann.add_member(&object, &carol, CAROL, "owner").await;
    let carols = carol.invite(&object, DAVE, "editor").await;
    let anns = ann.invite(&object, "erin@example.org", "reader").await;

    let r = ann
        .delete(&format!("/v1/objects/{object}/members/{}", carol.user_id))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        state_of(&ann, &object, &carols).await,
        InvitationState::Revoked
    );
    // Ann's own invitation is not Carol's to take along.
    assert_eq!(
        state_of(&ann, &object, &anns).await,
        InvitationState::Pending
    );
    let mine: Vec<Invitation> = dave.get_json("/v1/invitations").await;
    assert!(mine.is_empty(), "{mine:?}");
    let r = accept_by_id(&dave, &carols).await;
    assert_eq!(r.status(), StatusCode::CONFLICT);
    assert_eq!(error_code(r).await, "conflict");
    assert_eq!(
        ann.members(&object).await,
        pairs(&[(ANN, "owner")]),
        "the refused acceptance changed nothing"
    );
    assert!(
        server
            .audit(&object)
            .contains(&("revoked".into(), DAVE.into(), Some("editor".into()))),
        "{:?}",
        server.audit(&object)
    );

    // Leaving does the same.
    ann.add_member(&object, &carol, CAROL, "owner").await;
    let again = carol.invite(&object, DAVE, "reader").await;
    let r = carol
        .delete(&format!("/v1/objects/{object}/members/{}", carol.user_id))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        state_of(&ann, &object, &again).await,
        InvitationState::Revoked
    );
    let r = accept_by_id(&dave, &again).await;
    assert_eq!(r.status(), StatusCode::CONFLICT);
    assert_eq!(ann.members(&object).await, pairs(&[(ANN, "owner")]));
}
