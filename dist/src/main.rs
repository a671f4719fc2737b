//! Builds man pages and shell completions for the Debian package.
fn main() {}
