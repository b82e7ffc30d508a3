//! Integration tests: the built `dirsync` binary run in a temporary folder, checked the way an
//! admin would check it — exit code, the message, the exact MAP bytes, files left untouched.

mod util;

mod cli;
mod sync_ldif;
