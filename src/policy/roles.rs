//! What a role name is: the one check used by `[[rules]].roles`,
//! `[[users]].roles`, `login.default_roles` and `latchkey users --roles`. A
//! role is a word: not empty, no commas (roles travel comma-joined in
//! `X-Auth-Roles`), no whitespace or control characters (Unicode's, not
//! only ASCII's). Saying where the bad name was is the caller's.

/// `Ok` for a usable role name, else why not, worded to follow the quoted
/// name: `"a b" is not a role name; expected ...`.
pub fn check_role_name(role: &str) -> Result<(), &'static str> {
    if role.is_empty() {
        Err("is empty; expected a role name")
    } else if role
        .chars()
        .any(|c| c == ',' || c.is_whitespace() || c.is_control())
    {
        Err("is not a role name; expected no commas, spaces or control characters")
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_names() {
        let cases: &[(&str, Option<&str>)] = &[
            ("admin", None),
            ("team-a.editor_2", None),
            ("ÉQUIPE", None),
            ("", Some("is empty")),
            ("a,b", Some("is not a role name")),
            ("a b", Some("is not a role name")),
            ("a\tb", Some("is not a role name")),
            ("a\u{a0}b", Some("is not a role name")),
            ("a\u{2003}b", Some("is not a role name")),
            ("a\u{7f}", Some("is not a role name")),
            ("a\u{85}", Some("is not a role name")),
        ];
        for (role, want) in cases {
            match (check_role_name(role), want) {
                (Ok(()), None) => {}
                (Err(why), Some(w)) => assert!(why.starts_with(w), "{role:?}: {why}"),
                (got, _) => panic!("{role:?}: {got:?}, expected {want:?}"),
            }
        }
    }
}
