//! The test SMTP receiver, which lives in `mesh-testkit`. This file stays
//! because meshd's own unit tests (`src/mail.rs`) include it by path.

// Not every test that includes this file names both.
#![allow(unused_imports)]

pub use mesh_testkit::smtp::{Received, SmtpReceiver};
