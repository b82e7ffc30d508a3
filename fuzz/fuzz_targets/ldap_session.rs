//! The LDAP client's response handling, coverage-guided: the input is what a server sends
//! (its first byte sets the read size). Any input must end in entries or an error.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|server: &[u8]| {
    let _ = dirsync::source::ldap::scripted::session(server);
});
