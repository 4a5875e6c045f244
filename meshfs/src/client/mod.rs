//! What the client asks of the server, behind one trait: [`MeshApi`] is
//! everything a mount needs (the Live Folder list, feeds and FeedSync
//! merges, chunks, the change stream, presence and awareness), with one
//! error type that tells "the server is unreachable" apart from "the
//! server said no".
//!
//! - `http` speaks meshd's HTTP API (and offers the commands' calls —
//!   sharing, devices, news — beside the trait);
//! - `memory` is a server in memory, built on mesh-protocol's FeedSync
//!   merge, that unit tests drive several devices against;
//! - `faulty` wraps either and fails, delays or cuts chosen calls.

pub mod faulty;
pub mod http;
pub mod memory;
pub mod tls;

use async_trait::async_trait;
use bytes::Bytes;
use futures_util::stream::BoxStream;
use mesh_protocol::api::{AccountUsage, ErrorCode, MeshObject, ObjectId, StreamMessage};
use mesh_protocol::content::Hash;
use mesh_protocol::feedsync::Item;
use mesh_protocol::live::{Awareness, FolderAwareness, PresenceLease};

/// Why a call to the server failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum RemoteError {
    /// The server could not be reached (or stopped answering).
    #[error("the server is unreachable: {0}")]
    Offline(String),
    /// The device's token was refused: it was revoked or signed out.
    #[error("this device is signed out (its token was refused); run `meshfs login` again")]
    SignedOut,
    #[error("not found on the server")]
    NotFound,
    #[error("not allowed: {0}")]
    Forbidden(String),
    /// The server refused the request; the code and the message are the
    /// server's.
    #[error("the server refused the request ({status}): {message}")]
    Refused {
        status: u16,
        code: ErrorCode,
        message: String,
    },
    /// The server answered something that does not follow the protocol.
    #[error("the server's answer is not valid: {0}")]
    BadAnswer(String),
}

pub type RemoteResult<T> = Result<T, RemoteError>;

/// A page of an object's feed.
#[derive(Debug, Clone)]
pub struct FeedPage {
    pub items: Vec<Item>,
    /// The cursor the page starts from: the one asked for, or an earlier
    /// one (0) when the server answers with its complete feed because it
    /// compacted deletions after the cursor asked for.
    pub since: u64,
    /// The cursor to ask from next time.
    pub until: u64,
    pub more: bool,
}

/// The server's answer to posted items.
#[derive(Debug, Clone)]
pub struct Posted {
    /// Each item as merged, in the order posted.
    pub items: Vec<Item>,
    /// `(since, until)`: every change of the feed after cursor `since` up
    /// to `until` is among `items`, as the server says (`None`: it does
    /// not say).
    pub covers: Option<(u64, u64)>,
}

/// The change stream once the server has accepted it: every message in
/// order, until it ends (`None`) or fails (an error, then `None`).
pub type EventStream = BoxStream<'static, RemoteResult<StreamMessage>>;

/// What a mount asks of the server, as one signed-in device.
#[async_trait]
pub trait MeshApi: Send + Sync + 'static {
    /// Where the server is, for log lines.
    fn server(&self) -> &str;

    /// The mesh objects this user owns or is a member of.
    async fn objects(&self) -> RemoteResult<Vec<MeshObject>>;
    async fn create_object(&self, name: &str, kind: &str) -> RemoteResult<MeshObject>;
    async fn rename_object(&self, id: ObjectId, name: &str) -> RemoteResult<MeshObject>;
    async fn delete_object(&self, id: ObjectId) -> RemoteResult<()>;

    /// The items of `object`'s feed changed after cursor `since`, oldest
    /// change first, one page at a time.
    async fn feed(&self, object: ObjectId, since: u64) -> RemoteResult<FeedPage>;
    /// Posts items for FeedSync merge; returns the merged result of each,
    /// in the order posted, and the range of the feed's changes they are.
    async fn post_items(&self, object: ObjectId, items: &[Item]) -> RemoteResult<Posted>;

    /// Which of `hashes` the server lacks.
    async fn missing(&self, hashes: Vec<Hash>) -> RemoteResult<Vec<Hash>>;
    /// Uploads chunks of content for `object` (they count against the
    /// quota of the object's owner), all of them or none, in one request;
    /// at most `chunk_batch::MAX_BATCH_BYTES` and `MAX_BATCH_CHUNKS`.
    async fn put_chunks(&self, object: ObjectId, chunks: Vec<(Hash, Bytes)>) -> RemoteResult<()>;
    /// A whole chunk, checked against its hash.
    async fn get_chunk(&self, hash: Hash) -> RemoteResult<Bytes>;
    /// Bytes `offset..offset+len` of a chunk of `size` bytes (fewer at its
    /// end), every one proven against its hash. By default cut from the
    /// whole chunk; the HTTP client asks the server for a verified slice.
    async fn get_chunk_slice(
        &self,
        hash: Hash,
        size: u64,
        offset: u64,
        len: u64,
    ) -> RemoteResult<Bytes> {
        let whole = self.get_chunk(hash).await?;
        let start = (offset.min(size) as usize).min(whole.len());
        let end = (offset.saturating_add(len).min(size) as usize).min(whole.len());
        Ok(whole.slice(start..end))
    }

    /// Opens the change stream after `since` (from now, without one).
    async fn events(&self, since: Option<u64>) -> RemoteResult<EventStream>;

    /// A heartbeat: this device is online for another lease.
    async fn renew_presence(&self) -> RemoteResult<PresenceLease>;
    /// Signs this device off: offline now, its awareness entries gone.
    async fn sign_off(&self) -> RemoteResult<()>;
    /// Publishes which files of `object` are open on this device.
    async fn publish_awareness(&self, object: ObjectId, open: &FolderAwareness)
    -> RemoteResult<()>;
    /// `object`'s awareness document: who is there, and what they have open.
    async fn awareness(&self, object: ObjectId) -> RemoteResult<Awareness>;
    /// What the account's objects store on the server, and its quota.
    async fn usage(&self) -> RemoteResult<AccountUsage>;
}
