//! Generated directories: realistic enough to exercise every path of the model.

use std::fmt::Write as _;

/// `n` users (2–4 proxy addresses in example.com / example.de / the tenant domain, every
/// tenth disabled, every 50th without any address), n/100 groups and n/200 contacts, below
/// `OU=AADDC Users,DC=example,DC=com`. The same `n` always gives the same text.
pub fn directory(n: usize) -> String {
    let mut s = String::with_capacity(n * 400);
    let base = "OU=AADDC Users,DC=example,DC=com";
    for i in 0..n {
        let uac = if i % 10 == 3 { 514 } else { 512 };
        let _ = write!(
            s,
            "dn: CN=User {i:06},{base}\nobjectClass: top\nobjectClass: person\nobjectClass: organizationalPerson\nobjectClass: user\n\
             cn: User {i:06}\nsn: User\nsAMAccountName: user{i}\nuserAccountControl: {uac}\ndisplayName: User {i:06}\n"
        );
        if i % 50 == 49 {
            s.push('\n');
            continue;
        }
        let _ = write!(s, "mail: user.{i}@example.com\nproxyAddresses: SMTP:User.{i}@example.com\nproxyAddresses: smtp:u{i}@example.com\n");
        if i % 2 == 0 {
            let _ = writeln!(s, "proxyAddresses: smtp:user.{i}@example.de");
        }
        if i % 3 == 0 {
            let _ = writeln!(s, "proxyAddresses: smtp:user.{i}@example.onmicrosoft.com");
        }
        let _ = write!(
            s,
            "proxyAddresses: X500:/o=ExchangeLabs/cn=Recipients/cn=u{i}\n\n"
        );
    }
    for g in 0..(n / 100).max(1) {
        let _ = write!(
            s,
            "dn: CN=Group {g},{base}\nobjectClass: top\nobjectClass: group\ncn: Group {g}\ngroupType: 8\n\
             mail: group{g}@example.com\nproxyAddresses: SMTP:group{g}@example.com\nproxyAddresses: smtp:gruppe{g}@example.de\n"
        );
        for m in (g * 100)..(g * 100 + 20).min(n) {
            let _ = writeln!(s, "member: CN=User {m:06},{base}");
        }
        s.push('\n');
    }
    for c in 0..(n / 200).max(1) {
        let _ = write!(
            s,
            "dn: CN=Contact {c},{base}\nobjectClass: top\nobjectClass: person\nobjectClass: organizationalPerson\nobjectClass: contact\n\
             cn: Contact {c}\nsn: Contact\nmail: partner{c}@partner.org\nproxyAddresses: SMTP:partner{c}@partner.org\n\n"
        );
    }
    s
}
