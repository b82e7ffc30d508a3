//! Integration tests: the built `dirsync` binary run in a temporary folder, checked the way an
//! admin would check it — exit code, the message, the exact MAP bytes, files left untouched.

mod fake_ad;
mod gen;
mod hostile;
mod pki;
mod samba;
mod slapd;
mod sshd;
mod util;

mod ad;
mod catalogue;
mod cli;
mod docs;
mod exchange;
mod faults;
mod graph;
mod graph_standin;
mod ldap;
mod ops;
mod rules;
mod secrets;
mod sources;
mod sync_ldif;
mod upload;
mod windows;
