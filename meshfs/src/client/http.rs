//! meshd's HTTP API from the client's side: [`MeshApi`] over HTTP (JSON
//! feeds, chunk downloads verified against their hash before anyone sees
//! them, the change stream as Server-Sent Events), and the calls only the
//! commands make (sharing, devices, news).

use async_trait::async_trait;
use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use mesh_cli::fingerprint::Fingerprint;
use mesh_protocol::api::{
    AcceptToken, AccountUsage, CreateObject, Device, DeviceId, ErrorBody, ErrorCode, Invitation,
    InvitationId, Member, MeshObject, MissingRequest, MissingResponse, ObjectId, Role, Share,
    ShareOutcome, StreamMessage, TokenRequest, TokenResponse, TotpBegin, TotpConfirm, TotpDisable,
    TotpKey, UserId,
};
use mesh_protocol::chunk_batch;
use mesh_protocol::content::{self, Hash};
use mesh_protocol::feedsync::Item;
use mesh_protocol::json;
use mesh_protocol::live::{Awareness, FolderAwareness, NewsPage, PresenceLease, PublishAwareness};
use mesh_protocol::sse::SseParser;
use reqwest::{Method, RequestBuilder, StatusCode};
use std::collections::VecDeque;
use std::time::Duration;

use super::{EventStream, FeedPage, MeshApi, Posted, RemoteError, RemoteResult};
use crate::direct_io::AlignedBuf;

impl From<reqwest::Error> for RemoteError {
    fn from(e: reqwest::Error) -> Self {
        // With its causes: a refused certificate is said only there.
        let mut said = e.to_string();
        let mut cause = std::error::Error::source(&e);
        while let Some(c) = cause {
            said = format!("{said}: {c}");
            cause = c.source();
        }
        if e.is_decode() {
            RemoteError::BadAnswer(said)
        } else {
            RemoteError::Offline(said)
        }
    }
}

/// How long the change stream may stay silent before it counts as dead.
const SILENCE: Duration = Duration::from_secs(60);

/// How long a call may wait for the server's answer (from the first byte
/// sent, so an upload of one chunk must fit in it) and then between two
/// reads of the answer, before it fails as offline. Nothing an application
/// waits on waits this long: reads and the root's folder operations have
/// shorter bounds of their own (see `mount::fetch` and `Core`).
const CALL_SILENCE: Duration = Duration::from_secs(30);

/// A device signed in to a meshd by its token.
#[derive(Clone)]
pub struct HttpApi {
    /// Calls: each answer within [`CALL_SILENCE`].
    calls: reqwest::Client,
    /// The change stream, which is silent between heartbeats and is
    /// watched by [`SILENCE`] instead; its own connection, so a stalled
    /// call never holds it up nor it a call.
    stream: reqwest::Client,
    base: String,
    token: String,
}

/// A client; with `pin`, one that trusts only the certificate with that
/// fingerprint (see `client::tls`), else the system's roots.
fn client(silence: Option<Duration>, pin: Option<Fingerprint>) -> reqwest::Client {
    let builder = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(5))
        .tcp_keepalive(Duration::from_secs(15))
        .pool_max_idle_per_host(16);
    let builder = match pin {
        Some(pin) => builder.tls_backend_preconfigured(crate::client::tls::pinned(pin)),
        None => builder,
    };
    match silence {
        Some(silence) => builder.read_timeout(silence),
        None => builder,
    }
    .build()
    .expect("building the HTTP client")
}

/// A feed's `sx:sharing` range as cursors: `(since, until)`.
fn cursors(feed: &mesh_protocol::feed::Feed) -> Option<(u64, u64)> {
    let sharing = feed.sharing.as_ref()?;
    let cursor = |c: &Option<String>| c.as_deref()?.parse().ok();
    Some((cursor(&sharing.since)?, cursor(&sharing.until)?))
}

async fn check(response: reqwest::Response) -> RemoteResult<reqwest::Response> {
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    let (code, message) = match response.json::<ErrorBody>().await {
        Ok(body) => (body.error.code, body.error.message),
        // Not meshd's error body (a proxy's page, say): the status tells.
        Err(_) => (
            match status {
                StatusCode::UNAUTHORIZED => ErrorCode::Unauthorized,
                StatusCode::FORBIDDEN => ErrorCode::Forbidden,
                StatusCode::NOT_FOUND => ErrorCode::NotFound,
                _ => ErrorCode::Unknown(status.as_u16().to_string()),
            },
            status.canonical_reason().unwrap_or("error").to_owned(),
        ),
    };
    Err(match code {
        ErrorCode::Unauthorized => RemoteError::SignedOut,
        ErrorCode::NotFound => RemoteError::NotFound,
        ErrorCode::Forbidden => RemoteError::Forbidden(message),
        code => RemoteError::Refused {
            status: status.as_u16(),
            code,
            message,
        },
    })
}

impl HttpApi {
    /// A device of the server at `base`, trusting only the certificate
    /// `pin` when it is given.
    pub fn new(base: &str, token: String, pin: Option<Fingerprint>) -> HttpApi {
        HttpApi {
            calls: client(Some(CALL_SILENCE), pin),
            stream: client(None, pin),
            base: base.trim_end_matches('/').to_owned(),
            token,
        }
    }

    /// Enrolls a device (no token needed).
    pub async fn enroll(
        base: &str,
        request: &TokenRequest,
        pin: Option<Fingerprint>,
    ) -> RemoteResult<TokenResponse> {
        let url = format!("{}/v1/tokens", base.trim_end_matches('/'));
        let response = client(Some(CALL_SILENCE), pin)
            .post(url)
            .json(request)
            .send()
            .await?;
        Ok(check(response).await?.json().await?)
    }

    fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.request_on(&self.calls, method, path)
    }

    fn request_on(&self, client: &reqwest::Client, method: Method, path: &str) -> RequestBuilder {
        client
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token)
    }

    /// `method path` with an optional JSON body; the answer as JSON.
    async fn call<T: serde::de::DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&impl serde::Serialize>,
    ) -> RemoteResult<T> {
        let mut request = self.request(method, path);
        if let Some(body) = body {
            request = request.json(body);
        }
        Ok(check(request.send().await?).await?.json().await?)
    }

    /// `method path` with an optional JSON body, whose answer has no body.
    async fn call_empty(
        &self,
        method: Method,
        path: &str,
        body: Option<&impl serde::Serialize>,
    ) -> RemoteResult<()> {
        let mut request = self.request(method, path);
        if let Some(body) = body {
            request = request.json(body);
        }
        check(request.send().await?).await?;
        Ok(())
    }

    /// The account's devices.
    pub async fn devices(&self) -> RemoteResult<Vec<Device>> {
        self.call(Method::GET, "/v1/devices", None::<&()>).await
    }

    /// Signs a device out: its token stops working at once.
    pub async fn revoke_device(&self, device: DeviceId) -> RemoteResult<()> {
        self.call_empty(
            Method::DELETE,
            &format!("/v1/devices/{device}"),
            None::<&()>,
        )
        .await
    }

    /// A page of news, newest first: of `object`, or of the whole mesh.
    pub async fn news(
        &self,
        object: Option<ObjectId>,
        before: Option<u64>,
        limit: usize,
    ) -> RemoteResult<NewsPage> {
        let mut path = match object {
            Some(object) => format!("/v1/objects/{object}/news?limit={limit}"),
            None => format!("/v1/news?limit={limit}"),
        };
        if let Some(before) = before {
            path.push_str(&format!("&before={before}"));
        }
        self.call(Method::GET, &path, None::<&()>).await
    }

    pub async fn members(&self, object: ObjectId) -> RemoteResult<Vec<Member>> {
        let path = format!("/v1/objects/{object}/members");
        self.call(Method::GET, &path, None::<&()>).await
    }

    /// Shares `object` with `email`: a member's role changes, anyone else
    /// is invited.
    pub async fn share(
        &self,
        object: ObjectId,
        email: &str,
        role: Role,
    ) -> RemoteResult<ShareOutcome> {
        let body = Share {
            email: email.to_owned(),
            role,
        };
        let path = format!("/v1/objects/{object}/members");
        self.call(Method::POST, &path, Some(&body)).await
    }

    pub async fn remove_member(&self, object: ObjectId, user: UserId) -> RemoteResult<()> {
        let path = format!("/v1/objects/{object}/members/{user}");
        self.call_empty(Method::DELETE, &path, None::<&()>).await
    }

    /// Every invitation to `object` (owners only).
    pub async fn object_invitations(&self, object: ObjectId) -> RemoteResult<Vec<Invitation>> {
        let path = format!("/v1/objects/{object}/invitations");
        self.call(Method::GET, &path, None::<&()>).await
    }

    /// The pending invitations addressed to this account.
    pub async fn my_invitations(&self) -> RemoteResult<Vec<Invitation>> {
        self.call(Method::GET, "/v1/invitations", None::<&()>).await
    }

    pub async fn accept(&self, id: InvitationId) -> RemoteResult<MeshObject> {
        let path = format!("/v1/invitations/{id}/accept");
        self.call(Method::POST, &path, None::<&()>).await
    }

    pub async fn accept_token(&self, token: &str) -> RemoteResult<MeshObject> {
        let body = AcceptToken {
            token: token.to_owned(),
        };
        self.call(Method::POST, "/v1/invitations/accept", Some(&body))
            .await
    }

    pub async fn decline(&self, id: InvitationId) -> RemoteResult<()> {
        self.call_empty(
            Method::POST,
            &format!("/v1/invitations/{id}/decline"),
            None::<&()>,
        )
        .await
    }

    pub async fn revoke(&self, id: InvitationId) -> RemoteResult<()> {
        self.call_empty(
            Method::DELETE,
            &format!("/v1/invitations/{id}"),
            None::<&()>,
        )
        .await
    }

    /// Asks for a new authenticator key for this account (the password
    /// proves it is the owner); it waits for [`HttpApi::confirm_totp`].
    pub async fn begin_totp(&self, password: &str) -> RemoteResult<TotpKey> {
        let body = TotpBegin {
            password: password.to_owned(),
        };
        self.call(Method::POST, "/v1/account/totp", Some(&body))
            .await
    }

    /// Turns the waiting key on with a current code of it.
    pub async fn confirm_totp(&self, code: &str) -> RemoteResult<()> {
        let body = TotpConfirm {
            totp: code.to_owned(),
        };
        self.call_empty(Method::POST, "/v1/account/totp/confirm", Some(&body))
            .await
    }

    /// Turns this account's second factor off.
    pub async fn disable_totp(&self, password: &str, code: &str) -> RemoteResult<()> {
        let body = TotpDisable {
            password: password.to_owned(),
            totp: code.to_owned(),
        };
        self.call_empty(Method::DELETE, "/v1/account/totp", Some(&body))
            .await
    }

    /// A page of this account's audit log, newest first: at most `limit`
    /// entries older than entry `before`.
    pub async fn audit(
        &self,
        before: Option<u64>,
        limit: u32,
    ) -> RemoteResult<Vec<mesh_protocol::api::AuditEntry>> {
        let mut path = format!("/v1/audit?limit={limit}");
        if let Some(before) = before {
            path.push_str(&format!("&before={before}"));
        }
        self.call(Method::GET, &path, None::<&()>).await
    }
}

#[async_trait]
impl MeshApi for HttpApi {
    fn server(&self) -> &str {
        &self.base
    }

    async fn objects(&self) -> RemoteResult<Vec<MeshObject>> {
        let r = self.request(Method::GET, "/v1/objects").send().await?;
        Ok(check(r).await?.json().await?)
    }

    async fn create_object(&self, name: &str, kind: &str) -> RemoteResult<MeshObject> {
        let body = CreateObject {
            name: name.to_owned(),
            kind: kind.to_owned(),
        };
        let r = self
            .request(Method::POST, "/v1/objects")
            .json(&body)
            .send()
            .await?;
        Ok(check(r).await?.json().await?)
    }

    async fn rename_object(&self, id: ObjectId, name: &str) -> RemoteResult<MeshObject> {
        let r = self
            .request(Method::PATCH, &format!("/v1/objects/{id}"))
            .json(&serde_json::json!({ "name": name }))
            .send()
            .await?;
        Ok(check(r).await?.json().await?)
    }

    async fn delete_object(&self, id: ObjectId) -> RemoteResult<()> {
        let r = self
            .request(Method::DELETE, &format!("/v1/objects/{id}"))
            .send()
            .await?;
        check(r).await?;
        Ok(())
    }

    async fn feed(&self, object: ObjectId, since: u64) -> RemoteResult<FeedPage> {
        let path = format!("/v1/objects/{object}/feed?since={since}&limit=1000");
        let r = self.request(Method::GET, &path).send().await?;
        let bytes = check(r).await?.bytes().await?;
        let feed =
            json::feed_from_json(&bytes).map_err(|e| RemoteError::BadAnswer(e.to_string()))?;
        let (since, until) = cursors(&feed)
            .ok_or_else(|| RemoteError::BadAnswer("a feed page without a cursor".into()))?;
        let more = feed.links.iter().any(|l| l.rel.as_deref() == Some("next"));
        Ok(FeedPage {
            items: feed.items,
            since,
            until,
            more,
        })
    }

    /// Posts items for FeedSync merge; returns the merged result of each
    /// and the range of the feed's changes they are.
    async fn post_items(&self, object: ObjectId, items: &[Item]) -> RemoteResult<Posted> {
        #[derive(serde::Serialize)]
        struct Post<'a> {
            items: Vec<json::ItemJson<'a>>,
        }
        let body = Post {
            items: items.iter().map(json::ItemJson).collect(),
        };
        let r = self
            .request(Method::POST, &format!("/v1/objects/{object}/feed"))
            .json(&body)
            .send()
            .await?;
        let bytes = check(r).await?.bytes().await?;
        let feed =
            json::feed_from_json(&bytes).map_err(|e| RemoteError::BadAnswer(e.to_string()))?;
        if feed.items.len() != items.len() {
            return Err(RemoteError::BadAnswer(format!(
                "posted {} items, got {} back",
                items.len(),
                feed.items.len()
            )));
        }
        Ok(Posted {
            covers: cursors(&feed),
            items: feed.items,
        })
    }

    /// A heartbeat: this device is online for another lease.
    async fn renew_presence(&self) -> RemoteResult<PresenceLease> {
        self.call(Method::POST, "/v1/presence", None::<&()>).await
    }

    /// Signs this device off: offline now, its awareness entries gone.
    async fn sign_off(&self) -> RemoteResult<()> {
        self.call_empty(Method::DELETE, "/v1/presence", None::<&()>)
            .await
    }

    /// Publishes which files of `object` are open on this device.
    async fn publish_awareness(
        &self,
        object: ObjectId,
        open: &FolderAwareness,
    ) -> RemoteResult<()> {
        let body = PublishAwareness {
            state: serde_json::to_value(open).expect("awareness encodes"),
        };
        let path = format!("/v1/objects/{object}/awareness");
        self.call_empty(Method::PUT, &path, Some(&body)).await
    }

    /// `object`'s awareness document: who is there, and what they have open.
    async fn awareness(&self, object: ObjectId) -> RemoteResult<Awareness> {
        let path = format!("/v1/objects/{object}/awareness");
        self.call(Method::GET, &path, None::<&()>).await
    }

    async fn usage(&self) -> RemoteResult<AccountUsage> {
        self.call(Method::GET, "/v1/account/usage", None::<&()>)
            .await
    }

    async fn missing(&self, hashes: Vec<Hash>) -> RemoteResult<Vec<Hash>> {
        let r = self
            .request(Method::POST, "/v1/chunks/missing")
            .json(&MissingRequest { hashes })
            .send()
            .await?;
        Ok(check(r).await?.json::<MissingResponse>().await?.missing)
    }

    async fn put_chunks(&self, object: ObjectId, chunks: Vec<(Hash, Bytes)>) -> RemoteResult<()> {
        let body = chunk_batch::encode(chunks.iter().map(|(hash, data)| (hash, &data[..])));
        let r = self
            .request(Method::POST, &format!("/v1/chunks?object={object}"))
            .header(reqwest::header::CONTENT_TYPE, chunk_batch::CONTENT_TYPE)
            .body(body)
            .send()
            .await?;
        check(r).await?;
        Ok(())
    }

    /// Downloads a whole chunk and checks it against its hash.
    async fn get_chunk(&self, hash: Hash) -> RemoteResult<Bytes> {
        let r = self
            .request(Method::GET, &format!("/v1/chunks/{hash}"))
            .send()
            .await?;
        let bytes = chunk_body(check(r).await?, hash).await?;
        let actual = {
            let bytes = bytes.clone();
            tokio::task::spawn_blocking(move || Hash::of(&bytes))
                .await
                .map_err(|e| RemoteError::BadAnswer(e.to_string()))?
        };
        if actual != hash {
            return Err(RemoteError::BadAnswer(format!(
                "chunk {hash} arrived with hash {actual}"
            )));
        }
        Ok(bytes)
    }

    async fn get_chunk_slice(
        &self,
        hash: Hash,
        size: u64,
        offset: u64,
        len: u64,
    ) -> RemoteResult<Bytes> {
        let r = self
            .request(
                Method::GET,
                &format!("/v1/chunks/{hash}?slice={offset},{len}"),
            )
            .send()
            .await?;
        let encoded = check(r).await?.bytes().await?;
        let verified = mesh_protocol::slice::verify(&hash, size, offset, len, &encoded)
            .map_err(|e| RemoteError::BadAnswer(e.to_string()))?;
        Ok(Bytes::from(verified))
    }

    /// Opens the change stream after `since`, calls `on_open` once the
    /// server has accepted it, and hands each message to `on_message` until
    /// the stream ends or fails.
    async fn events(&self, since: Option<u64>) -> RemoteResult<EventStream> {
        let path = match since {
            Some(s) => format!("/v1/events?since={s}"),
            None => "/v1/events".to_owned(),
        };
        let opening = self.request_on(&self.stream, Method::GET, &path).send();
        let response = tokio::time::timeout(SILENCE, opening)
            .await
            .map_err(|_| RemoteError::Offline("the change stream did not open".into()))??;
        let body = check(response).await?.bytes_stream();
        Ok(messages(body).boxed())
    }
}

/// A chunk's body, collected into a buffer the chunk cache can write with
/// direct I/O; refused past the largest chunk, whatever the server says.
async fn chunk_body(mut r: reqwest::Response, hash: Hash) -> RemoteResult<Bytes> {
    let max = content::MAX_CHUNK_SIZE as usize;
    let too_big = || RemoteError::BadAnswer(format!("chunk {hash} arrived larger than any chunk"));
    let declared = r.content_length().unwrap_or(0) as usize;
    if declared > max {
        return Err(too_big());
    }
    let mut body = AlignedBuf::with_capacity(if declared > 0 { declared } else { max });
    while let Some(frame) = r.chunk().await? {
        if body.len() + frame.len() > max {
            return Err(too_big());
        }
        body.extend_from_slice(&frame);
    }
    Ok(body.freeze())
}

/// The change stream's messages, one per Server-Sent Event, in order. The
/// stream ends after the first error; heartbeats come every 15 s, so a
/// silent minute means a dead link.
fn messages(
    body: impl Stream<Item = reqwest::Result<Bytes>> + Send + 'static,
) -> impl Stream<Item = RemoteResult<StreamMessage>> + Send + 'static {
    struct Reading<B> {
        body: std::pin::Pin<Box<B>>,
        parser: SseParser,
        ready: VecDeque<RemoteResult<StreamMessage>>,
        ended: bool,
    }
    let reading = Reading {
        body: Box::pin(body),
        parser: SseParser::default(),
        ready: VecDeque::new(),
        ended: false,
    };
    futures_util::stream::unfold(reading, |mut r| async move {
        loop {
            if let Some(next) = r.ready.pop_front() {
                if next.is_err() {
                    r.ended = true;
                    r.ready.clear();
                }
                return Some((next, r));
            }
            if r.ended {
                return None;
            }
            let failed = match tokio::time::timeout(SILENCE, r.body.next()).await {
                Err(_) => RemoteError::Offline("the change stream went silent".into()),
                Ok(None) => return None,
                Ok(Some(Err(e))) => e.into(),
                Ok(Some(Ok(bytes))) => {
                    for event in r.parser.push(&bytes) {
                        r.ready
                            .push_back(serde_json::from_str(&event.data).map_err(|e| {
                                RemoteError::BadAnswer(format!("change stream: {e}"))
                            }));
                    }
                    continue;
                }
            };
            r.ended = true;
            return Some((Err(failed), r));
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A server that answers every request with `response` (raw HTTP).
    async fn serve_raw(response: &'static [u8]) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let mut buf = [0u8; 4096];
                let _ = socket.read(&mut buf).await;
                let _ = socket.write_all(response).await;
                let _ = socket.shutdown().await;
            }
        });
        format!("http://{addr}")
    }

    #[tokio::test]
    async fn a_chunk_with_the_wrong_bytes_is_refused() {
        let url = serve_raw(b"HTTP/1.1 200 OK\r\ncontent-length: 7\r\n\r\ngarbage").await;
        let remote = HttpApi::new(&url, "t".into(), None);
        let err = remote
            .get_chunk(Hash::of(b"what we asked for"))
            .await
            .unwrap_err();
        assert!(matches!(err, RemoteError::BadAnswer(_)), "{err}");
    }

    #[tokio::test]
    async fn a_chunk_larger_than_any_chunk_is_refused_before_it_fills_the_memory() {
        let max = content::MAX_CHUNK_SIZE as usize;
        // Declared too big, and sent without a length (chunked, unending
        // as far as the client knows).
        let declared = format!("HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\nx", max + 1);
        let mut chunked = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n".to_vec();
        for _ in 0..=max / (1 << 16) {
            chunked.extend_from_slice(b"10000\r\n");
            chunked.extend_from_slice(&[7u8; 1 << 16]);
            chunked.extend_from_slice(b"\r\n");
        }
        chunked.extend_from_slice(b"0\r\n\r\n");
        for response in [declared.into_bytes(), chunked] {
            let url = serve_raw(Box::leak(response.into_boxed_slice())).await;
            let remote = HttpApi::new(&url, "t".into(), None);
            let err = remote.get_chunk(Hash::of(b"x")).await.unwrap_err();
            assert!(
                matches!(&err, RemoteError::BadAnswer(m) if m.contains("larger than any chunk")),
                "{err}"
            );
        }
    }

    #[tokio::test]
    async fn a_chunk_arrives_aligned_for_the_cache_to_write_it_directly() {
        let chunk: Vec<u8> = (0..300_000u32).map(|i| (i % 253) as u8).collect();
        let mut response =
            format!("HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n", chunk.len()).into_bytes();
        response.extend_from_slice(&chunk);
        let url = serve_raw(Box::leak(response.into_boxed_slice())).await;
        let remote = HttpApi::new(&url, "t".into(), None);
        let got = remote.get_chunk(Hash::of(&chunk)).await.unwrap();
        assert_eq!(&got[..], &chunk[..]);
        assert!(crate::direct_io::is_aligned(&got));
    }

    #[tokio::test]
    async fn a_slice_of_a_tampered_chunk_is_refused() {
        let mut chunk: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        let hash = Hash::of(&chunk);
        chunk[50_100] ^= 1;
        let body = mesh_protocol::slice::extract(
            &chunk,
            &mesh_protocol::slice::outboard(&chunk),
            50_000,
            4096,
        );
        let mut response =
            format!("HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n", body.len()).into_bytes();
        response.extend_from_slice(&body);
        let url = serve_raw(Box::leak(response.into_boxed_slice())).await;
        let remote = HttpApi::new(&url, "t".into(), None);
        let err = remote
            .get_chunk_slice(hash, 100_000, 50_000, 4096)
            .await
            .unwrap_err();
        assert!(matches!(err, RemoteError::BadAnswer(_)), "{err}");
    }

    #[tokio::test]
    async fn a_transfer_cut_short_fails_instead_of_hanging() {
        let url =
            serve_raw(b"HTTP/1.1 200 OK\r\ncontent-length: 100000\r\n\r\nonly a little").await;
        let remote = HttpApi::new(&url, "t".into(), None);
        let result =
            tokio::time::timeout(Duration::from_secs(10), remote.get_chunk(Hash::of(b"x")))
                .await
                .expect("no hang");
        assert!(
            matches!(
                result,
                Err(RemoteError::Offline(_) | RemoteError::BadAnswer(_))
            ),
            "{result:?}"
        );
    }

    #[tokio::test]
    async fn garbage_instead_of_a_feed_is_a_bad_answer() {
        let url = serve_raw(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 9\r\n\r\n{\"items\":").await;
        let remote = HttpApi::new(&url, "t".into(), None);
        let err = remote.feed(ObjectId::generate(), 0).await.err().unwrap();
        assert!(matches!(err, RemoteError::BadAnswer(_)), "{err}");
    }

    #[tokio::test]
    async fn a_closed_port_is_offline_and_a_refused_token_is_signed_out() {
        let remote = HttpApi::new("http://127.0.0.1:1", "t".into(), None);
        assert!(matches!(
            remote.objects().await,
            Err(RemoteError::Offline(_))
        ));
        let url = serve_raw(
            b"HTTP/1.1 401 Unauthorized\r\ncontent-type: application/json\r\ncontent-length: 55\r\n\r\n{\"error\":{\"code\":\"unauthorized\",\"message\":\"no token\"}}",
        )
        .await;
        let remote = HttpApi::new(&url, "t".into(), None);
        assert!(matches!(
            remote.objects().await,
            Err(RemoteError::SignedOut)
        ));
    }
}
