//! `[[users]]`: the people listed in the config, by normalized email.
//! They win over users kept in the store (identity joins them); this file
//! checks addresses and role names and refuses duplicates.

use std::collections::HashMap;

use super::problems::Problems;
use crate::config::UserConfig;
use crate::store::records::{normalize_email, user_id, User};

pub(super) fn compile(p: &mut Problems, list: &[UserConfig]) -> HashMap<String, User> {
    let mut users = HashMap::new();
    for (i, u) in list.iter().enumerate() {
        let Some(email) = normalize_email(&u.email) else {
            p.add(format!(
                "users[{i}].email: {:?} is not an email address; expected like \"alice@example.com\"",
                u.email
            ));
            continue;
        };
        check_roles(p, &format!("users[{i}].roles"), &u.roles);
        let user = User {
            id: user_id(&email),
            email: email.clone(),
            roles: u.roles.clone(),
            created_at: 0,
        };
        if users.insert(email.clone(), user).is_some() {
            p.add(format!(
                "users[{i}].email: {email:?} is listed twice; expected each user once"
            ));
        }
    }
    users
}

pub(super) fn check_roles(p: &mut Problems, key: &str, roles: &[String]) {
    for (i, r) in roles.iter().enumerate() {
        if let Err(why) = crate::policy::check_role_name(r) {
            p.add(format!("{key}[{i}]: {r:?} {why}"));
        }
    }
}
