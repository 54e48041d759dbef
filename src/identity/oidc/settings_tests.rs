//! Unit tests of `compile_providers`: each preset's documented issuer,
//! endpoints and defaults, and the problems each bad key is reported with.
//! The invalid fixtures (tests/fixtures/invalid/provider_*.toml) are run
//! through `latchkey check` by tests/it/config_check.rs.

use super::*;
use crate::config::FileConfig;

fn compile(toml: &str) -> Result<Vec<ProviderSettings>, Vec<String>> {
    let cfg = FileConfig::from_toml(toml).unwrap();
    compile_providers(&cfg.login.providers)
}

fn one(toml: &str) -> ProviderSettings {
    let mut list = compile(toml).unwrap();
    assert_eq!(list.len(), 1);
    list.remove(0)
}

#[test]
fn oidc_keeps_the_issuer_as_written_and_defaults_the_scopes() {
    let p = one(r#"[[login.providers]]
id = "corp"
kind = "oidc"
name = "Corp SSO"
issuer = "https://idp.example.com/realms/corp"
client_id = "latchkey"
client_secret = "s3cret"
roles_claim = "groups"
role_map = { ops = ["admin"], dev = ["member", "dev"] }
logout = true
"#);
    assert_eq!(p.id, "corp");
    assert_eq!(p.name, "Corp SSO");
    assert_eq!(p.kind, ProviderKind::Oidc);
    assert_eq!(
        p.protocol,
        Protocol::OpenIdConnect {
            issuer: "https://idp.example.com/realms/corp".into()
        }
    );
    assert_eq!(p.scopes, ["openid", "email", "profile"]);
    assert_eq!(p.client_secret.expose(), "s3cret");
    assert_eq!(p.roles_claim.as_deref(), Some("groups"));
    assert_eq!(
        p.role_map["dev"],
        BTreeSet::from(["member".to_owned(), "dev".to_owned()])
    );
    assert_eq!(p.verified_email_claims, ["email_verified"]);
    assert!(p.logout);
    assert_eq!(format!("{:?}", p.client_secret), "ClientSecret(..)");
    assert!(!format!("{p:?}").contains("s3cret"));
}

#[test]
fn google_preset_is_accounts_google_com() {
    let p = one(r#"[[login.providers]]
id = "google"
kind = "google"
client_id = "123.apps.googleusercontent.com"
client_secret = "x"
"#);
    assert_eq!(p.name, "Google");
    assert_eq!(
        p.protocol,
        Protocol::OpenIdConnect {
            issuer: "https://accounts.google.com".into()
        }
    );
    assert_eq!(p.scopes, ["openid", "email", "profile"]);
    assert_eq!(p.verified_email_claims, ["email_verified"]);
}

#[test]
fn microsoft_preset_is_the_tenants_v2_issuer_and_accepts_xms_edov() {
    let p = one(r#"[[login.providers]]
id = "ms"
kind = "microsoft"
tenant = "7f9c5c2e-1111-2222-3333-444455556666"
client_id = "abc"
client_secret = "x"
"#);
    assert_eq!(p.name, "Microsoft");
    assert_eq!(
        p.kind,
        ProviderKind::Microsoft {
            tenant: "7f9c5c2e-1111-2222-3333-444455556666".into()
        }
    );
    assert_eq!(
        p.protocol,
        Protocol::OpenIdConnect {
            issuer: "https://login.microsoftonline.com/7f9c5c2e-1111-2222-3333-444455556666/v2.0"
                .into()
        }
    );
    assert_eq!(p.verified_email_claims, ["email_verified", "xms_edov"]);
}

#[test]
fn github_preset_is_oauth2_with_the_emails_api() {
    let p = one(r#"[[login.providers]]
id = "gh"
kind = "github"
client_id = "Iv1.abc"
client_secret = "x"
allowed_orgs = ["example-org"]
"#);
    assert_eq!(p.name, "GitHub");
    let Protocol::GitHub(gh) = &p.protocol else {
        panic!("not github: {:?}", p.protocol)
    };
    assert_eq!(
        gh.authorize.as_str(),
        "https://github.com/login/oauth/authorize"
    );
    assert_eq!(
        gh.token.as_str(),
        "https://github.com/login/oauth/access_token"
    );
    assert_eq!(gh.user.as_str(), "https://api.github.com/user");
    assert_eq!(gh.emails.as_str(), "https://api.github.com/user/emails");
    assert_eq!(gh.allowed_orgs, ["example-org"]);
    assert_eq!(p.scopes, ["read:user", "user:email", "read:org"]);
}

#[test]
fn loopback_http_issuers_pass_and_the_secret_file_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("secret");
    std::fs::write(&file, "from-file\n").unwrap();
    for issuer in [
        "http://127.0.0.1:9000",
        "http://[::1]:9000/x",
        "http://localhost:9000",
    ] {
        let p = one(&format!(
            "[[login.providers]]\nid = \"dev\"\nkind = \"oidc\"\nissuer = \"{issuer}\"\nclient_id = \"c\"\nclient_secret_file = {:?}\n",
            file.to_str().unwrap()
        ));
        assert_eq!(p.client_secret.expose(), "from-file");
    }
}

#[test]
fn an_unreadable_secret_file_is_named() {
    let err = compile(
        "[[login.providers]]\nid = \"dev\"\nkind = \"oidc\"\nissuer = \"https://idp.example.com\"\nclient_id = \"c\"\nclient_secret_file = \"/nonexistent/secret\"\n",
    )
    .unwrap_err();
    assert!(
        err[0].starts_with(
            "login.providers[0].client_secret_file: \"/nonexistent/secret\" cannot be read"
        ),
        "{err:?}"
    );
}

#[test]
fn github_enterprise_url_moves_every_endpoint_and_orgs_map_to_roles() {
    let p = one(r#"[[login.providers]]
id = "ghe"
kind = "github"
enterprise_url = "https://github.example.com/"
client_id = "Iv1.abc"
client_secret = "x"
roles_claim = "orgs"
role_map = { platform = ["admin"] }
"#);
    let Protocol::GitHub(gh) = &p.protocol else {
        panic!("not github: {:?}", p.protocol)
    };
    assert_eq!(
        gh.authorize.as_str(),
        "https://github.example.com/login/oauth/authorize"
    );
    assert_eq!(
        gh.token.as_str(),
        "https://github.example.com/login/oauth/access_token"
    );
    assert_eq!(gh.user.as_str(), "https://github.example.com/api/v3/user");
    assert_eq!(
        gh.emails.as_str(),
        "https://github.example.com/api/v3/user/emails"
    );
    assert_eq!(
        gh.orgs.as_str(),
        "https://github.example.com/api/v3/user/orgs"
    );
    assert!(gh.allowed_orgs.is_empty());
    // roles_claim = "orgs" needs the organizations, hence read:org.
    assert_eq!(p.scopes, ["read:user", "user:email", "read:org"]);
    let plain = one(
        "[[login.providers]]\nid = \"gh\"\nkind = \"github\"\nclient_id = \"a\"\nclient_secret = \"x\"\n",
    );
    assert_eq!(plain.scopes, ["read:user", "user:email"]);
}
