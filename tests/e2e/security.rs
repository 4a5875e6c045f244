//! Security end to end, with real mounts: names from the server are hostile
//! input, and what meshfs keeps on the device's disk is private to its user.
