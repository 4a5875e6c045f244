//! `GET /invite/{token}` and `POST /invite/{token}`: the confirmation page
//! an invitation e-mail links to. It shows the invitation (object, inviter,
//! role, expiry) with a form to sign in as the invited address and accept
//! or decline it. Every page — errors too — is plain HTML with everything
//! escaped, no scripts, and headers that keep the token in its URL from
//! leaking (`Referrer-Policy: no-referrer`) or being cached.

use axum::Form;
use axum::extract::rejection::FormRejection;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use mesh_protocol::api::{Invitation, InvitationState, Role};
use serde::Deserialize;
use std::net::{IpAddr, SocketAddr};

use crate::auth::{self, TokenHash};
use crate::error::{ApiError, ApiResult};
use crate::sharing::{self, Answering};
use crate::state::AppState;
use crate::store::invitations;
use crate::store::news::Actor;

/// Escapes text for HTML content and attribute values.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A whole page around `body` (already HTML); `title` is text.
fn document(title: &str, body: &str) -> Html<String> {
    Html(format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title} · Mesh</title>\
         <style>body{{font-family:sans-serif;max-width:34em;margin:3em auto;padding:0 1em;\
         line-height:1.5}}label{{display:block;margin:.6em 0}}input{{font-size:1em}}\
         button{{font-size:1em;margin-right:.5em}}</style></head>\
         <body><h1>{title}</h1>\n{body}\n</body></html>\n",
        title = escape(title),
    ))
}

/// Adds the headers every page of this module carries.
fn secured(mut response: Response) -> Response {
    let headers = response.headers_mut();
    for (name, value) in [
        (header::REFERRER_POLICY, "no-referrer"),
        (header::CACHE_CONTROL, "no-store"),
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; \
             frame-ancestors 'none'",
        ),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}

fn page(status: StatusCode, title: &str, body: &str) -> Response {
    secured((status, document(title, body)).into_response())
}

/// An error as a page, with the status (and headers) the API gives it.
fn error_page(error: ApiError) -> Response {
    let title = match error.status() {
        _ if matches!(error, ApiError::SecondFactorRequired) => "Authentication code needed",
        _ if matches!(error, ApiError::BadSecondFactor) => "Wrong authentication code",
        StatusCode::NOT_FOUND => "Unknown invitation",
        StatusCode::CONFLICT => "Invitation already answered",
        StatusCode::GONE => "Invitation expired",
        StatusCode::UNAUTHORIZED => "Wrong e-mail address or password",
        StatusCode::FORBIDDEN => "Wrong account",
        StatusCode::TOO_MANY_REQUESTS => "Too many attempts",
        StatusCode::BAD_REQUEST => "Incomplete form",
        _ => "Something went wrong",
    };
    let detail = match &error {
        ApiError::NotFound => "This invitation link is not valid: it may be mistyped or cut \
                               short, or the shared object is gone."
            .to_owned(),
        ApiError::Internal(_) => "The server could not answer; please try again later.".to_owned(),
        other => format!("{}.", other.to_string().trim_end_matches('.')),
    };
    let body = format!(
        "<p>{}</p><p>Ask whoever shared it with you to send a new invitation if you need one.</p>",
        escape(&capitalized(&detail))
    );
    secured(error.respond_with(|_, _| document(title, &body)))
}

fn capitalized(text: &str) -> String {
    let mut chars = text.chars();
    chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

/// The pending invitation the token names.
async fn pending(state: &AppState, token: &str) -> ApiResult<Invitation> {
    let hash = TokenHash::of(token);
    let invitation = state
        .db
        .read(move |conn| Ok::<_, ApiError>(invitations::by_token(conn, &hash)?))
        .await?
        .ok_or(ApiError::NotFound)?;
    sharing::check_pending(&invitation)?;
    Ok(invitation)
}

fn when(invitation: &Invitation) -> String {
    invitation.expires.format("%Y-%m-%d %H:%M UTC").to_string()
}

pub async fn show(
    State(state): State<AppState>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    Path(token): Path<String>,
) -> Response {
    if let Err(e) = state.public_rate.check(client.ip()) {
        return error_page(e);
    }
    let invitation = match pending(&state, &token).await {
        Ok(i) => i,
        Err(e) => return error_page(e),
    };
    let body = format!(
        "<p><strong>{inviter}</strong> invited you to <strong>“{name}”</strong> as \
         <strong>{role}</strong>.</p>\
         <p>The invitation is for {email} and expires {expires}. Sign in with that \
         address to answer it.</p>\
         <form method=\"post\">\
         <label>E-mail address<br><input type=\"email\" name=\"email\" value=\"{email}\" \
         required autocomplete=\"username\"></label>\
         <label>Password<br><input type=\"password\" name=\"password\" required \
         autocomplete=\"current-password\"></label>\
         <label>Authentication code, if your account has one<br><input name=\"totp\" \
         inputmode=\"numeric\" autocomplete=\"one-time-code\"></label>\
         <p><button type=\"submit\" name=\"answer\" value=\"accept\">Accept</button>\
         <button type=\"submit\" name=\"answer\" value=\"decline\">Decline</button></p>\
         </form>",
        inviter = escape(&invitation.invited_by),
        name = escape(&invitation.object_name),
        role = escape(invitation.role.as_str()),
        email = escape(&invitation.email),
        expires = escape(&when(&invitation)),
    );
    page(StatusCode::OK, "You are invited", &body)
}

#[derive(Deserialize)]
pub struct AnswerForm {
    email: String,
    password: String,
    /// The account's second factor, if it has one (empty when not typed).
    #[serde(default)]
    totp: Option<String>,
    answer: String,
}

pub async fn answer(
    State(state): State<AppState>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    Path(token): Path<String>,
    form: Result<Form<AnswerForm>, FormRejection>,
) -> Response {
    if let Err(e) = state.public_rate.check(client.ip()) {
        return error_page(e);
    }
    match answered(&state, client.ip(), &token, form).await {
        Ok(body) => page(StatusCode::OK, "Done", &body),
        Err(e) => error_page(e),
    }
}

/// Signs in with the form's address and password and answers the
/// invitation as that account; the page to show.
async fn answered(
    state: &AppState,
    client: IpAddr,
    token: &str,
    form: Result<Form<AnswerForm>, FormRejection>,
) -> ApiResult<String> {
    let Form(form) = form.map_err(|_| {
        ApiError::BadRequest("the form needs an e-mail address, a password and an answer".into())
    })?;
    let accept = match form.answer.as_str() {
        "accept" => true,
        "decline" => false,
        _ => return Err(ApiError::BadRequest("answer accept or decline".into())),
    };
    // Refuse an unknown or settled invitation before spending a password check.
    pending(state, token).await?;
    let user = auth::sign_in(state, client, &form.email, form.password, form.totp)
        .await?
        .user;
    let which = Answering::Token(TokenHash::of(token));
    // Signed in on the page, not on a device.
    let by = Actor {
        user: user.id,
        device: None,
    };
    let (invitation, object) = state
        .write(move |tx| sharing::answer(tx, by, &which, accept))
        .await?;
    tracing::info!(
        invitation = %invitation.id,
        state = invitation.state.as_str(),
        "invitation answered on its page"
    );
    let name = escape(&invitation.object_name);
    Ok(match (invitation.state, object) {
        (InvitationState::Accepted, Some(object)) => format!(
            "<p>You are now {role} of <strong>“{name}”</strong>, shared by {owner}.</p>\
             <p>It appears in your Mesh (<code>meshfs mount</code>) in a moment.</p>",
            role = match object.role {
                Role::Owner => "an owner",
                Role::Editor => "an editor",
                Role::Reader => "a reader",
            },
            owner = escape(&object.owner_email),
        ),
        _ => format!("<p>You declined the invitation to <strong>“{name}”</strong>.</p>"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_everything_html_could_read_as_markup() {
        assert_eq!(
            escape(r#"<a href="x">Tom & 'Jerry'</a>"#),
            "&lt;a href=&quot;x&quot;&gt;Tom &amp; &#39;Jerry&#39;&lt;/a&gt;"
        );
        assert_eq!(escape("“Fotos” ok"), "“Fotos” ok");
    }
}
