//! The LDAP source against a real Active Directory implementation (Samba AD DC): UPN bind,
//! a search from the domain root (continuation references), memberOf, binary objectGUIDs,
//! and a simple bind refused without TLS. One test, one DC: Samba's ports are fixed.

use crate::pki::{Ca, Validity};
use crate::samba::{Samba, BASE, BIND_PASSWORD, BIND_UPN};
use crate::util::Case;

const PW_ENV: &str = "DIRSYNC_TEST_AD_PASSWORD";

fn data() -> String {
    let users = format!("CN=Users,{BASE}");
    format!(
        "dn: CN=Alice Example,{users}\nobjectClass: user\nsAMAccountName: alice\nuserAccountControl: 544\n\
         mail: alice@example.com\nproxyAddresses: SMTP:Alice@Example.com\nproxyAddresses: smtp:a@example.com\n\
         proxyAddresses: smtp:alice@example.de\nproxyAddresses: smtp:alice@example.onmicrosoft.com\n\
         proxyAddresses: X500:/o=ExchangeLabs/cn=Recipients/cn=alice\n\n\
         dn: CN=Shared Info,{users}\nobjectClass: user\nsAMAccountName: info\nuserAccountControl: 514\n\
         mail: info@example.com\nproxyAddresses: SMTP:info@example.com\n\n\
         dn: CN=Team,{users}\nobjectClass: group\nsAMAccountName: team\nmail: team@example.com\n\
         proxyAddresses: SMTP:team@example.com\nproxyAddresses: smtp:team@example.de\nproxyAddresses: smtp:helpdesk@example.com\n\
         member: CN=Alice Example,{users}\n\n\
         dn: CN=Anna Helper,{users}\nobjectClass: user\nsAMAccountName: anna\nuserAccountControl: 512\n\
         proxyAddresses: SMTP:anna.helper@example.com\nproxyAddresses: smtp:helpdesk@example.com\n\n\
         dn: CN=Partner,{users}\nobjectClass: contact\nmail: partner@partner.org\n\
         proxyAddresses: SMTP:partner@partner.org\nproxyAddresses: smtp:partner@example.de\n"
    )
}

fn config(case: &Case, url: &str, extra: &str) {
    case.write(
        "dirsync.toml",
        format!(
            "customer_id = \"12345\"\ndomains = [\"example.com\", \"example.de\"]\n\
             [source]\ntype = \"ldap\"\nurl = \"{url}\"\nbind_dn = \"{BIND_UPN}\"\npassword_env = \"{PW_ENV}\"\n\
             base_dn = \"{BASE}\"\n{extra}\n[output]\npath = \"out/retarus.map\"\n"
        ),
    );
}

#[test]
fn samba_ad_sync_by_upn_from_the_domain_root() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new("dirsync test CA (AD)");
    let ca_pem = ca.write_pem(&dir.path().join("ca.pem"));
    let cert = ca.server(
        dir.path(),
        "dc1",
        &["localhost", "127.0.0.1"],
        Validity::Current,
    );
    let samba = Samba::start(&cert, &ca_pem, &data());
    let case = Case::new();
    config(
        &case,
        "ldaps://127.0.0.1",
        &format!("ca_file = {:?}", ca_pem.display().to_string()),
    );
    let env = [(PW_ENV, BIND_PASSWORD)];

    let run = case.run_env(&["sync", "--config", "dirsync.toml"], &env);
    assert_eq!(run.code, 0, "{run:?}");
    let map = String::from_utf8(case.read("out/retarus.map").unwrap()).unwrap();
    assert_eq!(
        map.replace("\r\n", "\n"),
        "12345|example.com\tDOMAIN:\texample.com\n\
         12345|example.com\tDIR:\ta@example.com\n\
         12345|example.com\tDIR:\talice@example.com\n\
         12345|example.com\tDIR:\tanna.helper@example.com\n\
         12345|example.com\tDIR:\thelpdesk@example.com\n\
         12345|example.com\tDIR:\tinfo@example.com\n\
         12345|example.com\tDIR:\tteam@example.com\n\
         12345|example.com\tMAP:\ta@example.com\talice@example.com\n\
         12345|example.de\tDOMAIN:\texample.de\n\
         12345|example.de\tDIR:\talice@example.de\n\
         12345|example.de\tDIR:\tpartner@example.de\n\
         12345|example.de\tDIR:\tteam@example.de\n\
         12345|example.de\tMAP:\talice@example.de\talice@example.com\n\
         12345|example.de\tMAP:\tteam@example.de\tteam@example.com\n\
         ++++\n"
    );

    // helpdesk@ is an alias of Anna Helper and of the Team, the primary of neither: one DIR
    // line above, no MAP line, and a warning naming both.
    assert!(
        run.stderr
            .contains("address helpdesk@example.com is an alias of")
            && run.stderr.contains("the primary address of none"),
        "{run:?}"
    );

    // The domain root returns continuation references (skipped, counted) and AD's own objects.
    let run = case.run_env(&["check", "--config", "dirsync.toml"], &env);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stdout.contains("continuation references skipped"),
        "{run:?}"
    );

    // objectGUID in AD's text form, as Samba's own tools print it; memberOf as AD maintains it.
    let run = case.run_env(
        &["explain", "--config", "dirsync.toml", "alice@example.de"],
        &env,
    );
    assert_eq!(run.code, 0, "{run:?}");
    let guid = samba.ldb_attribute("(sAMAccountName=alice)", "objectGUID");
    assert_eq!(guid.len(), 36, "ldbsearch gave {guid:?}");
    assert!(
        run.stdout.contains(&format!("  objectGUID {guid}")),
        "{run:?}"
    );
    assert!(
        run.stdout
            .contains(&format!("  member of CN=Team,CN=Users,{BASE}")),
        "{run:?}"
    );
    let run = case.run_env(
        &["explain", "--config", "dirsync.toml", "info@example.com"],
        &env,
    );
    assert!(run.stdout.contains("(user, disabled)"), "{run:?}");

    // A simple bind without TLS is refused by AD: exit 4, saying to use TLS.
    config(&case, "ldap://127.0.0.1", "allow_plaintext = true");
    let run = case.run_env(&["sync", "--config", "dirsync.toml"], &env);
    assert_eq!(run.code, 4, "{run:?}");
    assert!(
        run.error_line().contains("refuses a simple bind")
            && run.error_line().contains("use ldaps://"),
        "{run:?}"
    );
    assert!(
        run.stderr.contains("unencrypted"),
        "the plaintext warning: {run:?}"
    );
    drop(samba);
}
