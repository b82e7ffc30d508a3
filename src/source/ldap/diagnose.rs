//! What an LDAP result code or a bind diagnostic means, in the words of the server families
//! admins run (Active Directory / Entra Domain Services, OpenLDAP, 389-ds), and what to do.

use ldap3_proto::proto::LdapResult;

/// "result code 4 sizeLimitExceeded (…what it is on AD, OpenLDAP, 389-ds…) (the server's text)".
pub fn describe_result(result: &LdapResult) -> String {
    let mut out = result_code_name(result.code.clone() as i64);
    let text = result.message.trim();
    if !text.is_empty() {
        out.push_str(&format!(" (server: {text})"));
    }
    out
}

/// Names of the result codes an admin may meet, with what they mean here.
pub fn result_code_name(rc: i64) -> String {
    let name = match rc {
        3 => {
            "timeLimitExceeded: the server's time limit per query (AD / Entra DS: \
             MaxQueryDuration, 120 s; OpenLDAP: timelimit; 389-ds: nsslapd-timelimit) — narrow \
             source.base_dn or the filter, or raise the limit for the bind account"
        }
        4 => {
            "sizeLimitExceeded: the server's size limit (AD / Entra DS: MaxPageSize or \
             MaxResultSetSize; OpenLDAP: sizelimit size.soft/size.hard/size.prtotal; 389-ds: \
             nsslapd-sizelimit or nsslapd-pagedsizelimit) — the bind account needs a limit at \
             least as large as the directory"
        }
        10 => "referral: the base is not held by this server — check source.base_dn",
        11 => {
            "adminLimitExceeded: an administrative limit of the server (AD / Entra DS: \
             MaxPageSize, MaxResultSetSize or MaxTempTableSize; OpenLDAP: the lookthrough limit \
             sizelimit size.unchecked, or a page size above size.pr; 389-ds: \
             nsslapd-lookthroughlimit or nsslapd-pagedlookthroughlimit) — lower \
             source.page_size, or raise the limit for the bind account"
        }
        32 => "noSuchObject: check source.base_dn",
        50 => "insufficientAccessRights: the bind account may not read this",
        51 => "busy: the server is overloaded; the next run tries again",
        52 => "unavailable: the server is shutting down or not serving; the next run tries again",
        53 => "unwillingToPerform",
        80 => "other",
        _ => "",
    };
    if name.is_empty() {
        format!("result code {rc}")
    } else {
        format!("result code {rc} {name}")
    }
}

/// AD's bind diagnostics carry `data 52e` and the like; say what each probably means.
pub fn bind_failure_causes(text: &str) -> String {
    let code = text
        .split("data ")
        .nth(1)
        .and_then(|rest| rest.split(|c: char| !c.is_ascii_hexdigit()).next())
        .unwrap_or("");
    let specific = match code {
        "52e" => "the password is wrong;",
        "525" => "the account does not exist (check bind_dn);",
        "530" | "531" => "the account may not log on at this time or from this machine;",
        "532" => "the password has expired (Entra DS: after 90 days) — change it, then update the secret;",
        "533" => "the account is disabled;",
        "701" => "the account has expired;",
        "773" => "the password must be changed before first use;",
        "775" => "the account is locked out (Entra DS: 30 minutes after 5 failures) — wait, then fix the password;",
        _ => "",
    };
    format!(
        "{specific} a wrong password; for a cloud-only account in Entra Domain Services, no \
         password hash in the managed domain yet (change the password once, then wait for the \
         sync); the password expired (90 days); the account is locked (30 minutes after 5 \
         failures)."
    )
    .trim_start()
    .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bind_causes_name_the_ad_data_code() {
        let text = "80090308: LdapErr: DSID-0C09044E, comment: AcceptSecurityContext error, data 775, v4563";
        assert!(bind_failure_causes(text).starts_with("the account is locked out"));
        assert!(bind_failure_causes("").starts_with("a wrong password;"));
    }

    #[test]
    fn limits_are_named_for_each_server_family() {
        for rc in [3, 4, 11] {
            let text = result_code_name(rc);
            assert!(text.contains("AD / Entra DS"), "{text}");
            assert!(text.contains("OpenLDAP"), "{text}");
            assert!(text.contains("389-ds"), "{text}");
        }
    }
}
