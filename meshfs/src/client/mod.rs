//! What the client asks of the server. `http` is meshd's HTTP API.

pub mod http;
