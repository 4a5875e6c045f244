//! `meshd-server`: the Mesh server. It holds each user's mesh — devices,
//! mesh objects and their members, FeedSync data feeds, a content-addressed
//! chunk store and the change stream — on an embedded default of SQLite and
//! a local chunk directory.

pub mod apps;
pub mod auth;
pub mod awareness;
pub mod blob;
pub mod cli;
pub mod connections;
pub mod db;
pub mod error;
pub mod fanout;
pub mod gc;
pub mod http;
pub mod mail;
pub mod merge_tool;
pub mod notify;
pub mod presence;
pub mod rate;
pub mod server;
pub mod sharing;
pub mod slice_trees;
pub mod slots;
pub mod state;
pub mod store;
pub mod throttle;
pub mod tls;
pub mod totp;
