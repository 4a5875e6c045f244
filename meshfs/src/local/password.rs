//! Reading a password (from standard input or the terminal, with echo
//! off): `mesh_cli::password`, which meshd's `user` commands share.

pub use mesh_cli::password::read;
