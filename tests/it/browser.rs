//! A person signing in, in a real browser: headless Chromium (Debian's
//! `chromium`) driven by playwright-core through `tests/browser/signin.mjs`,
//! against latchkey in front of the echo app with a real SMTP server. The
//! script saves screenshots of every page at phone and desktop widths under
//! `target/screenshots/`, the account and step-up pages also in dark
//! mode. And sign-in with a provider (`tests/browser/providers.mjs`):
//! panva's oidc-provider and the GitHub stand-in, from an app host to
//! the provider's login form and back to the exact return URL.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::flow::{Opts, Stack};
use crate::support::github::{self, GitHubStandIn};
use crate::support::oidc::OidcProvider;
use crate::support::{free_port, require_program};

/// Runs `tests/browser/{script}` with node and Chromium; panics with its
/// output (and latchkey's log) unless it succeeds.
async fn run_script(script: &str, stack: &Stack, env: &[(&str, &std::ffi::OsStr)]) {
    let app_url = format!("http://{}", stack.host());
    run_node(script, &app_url, &stack.lk, env).await;
}

/// Runs `tests/browser/{script}` against latchkey at `app_url` (as
/// `APP_URL`); panics with its output and latchkey's log unless it succeeds.
pub async fn run_node(
    script: &str,
    app_url: &str,
    lk: &crate::support::latchkey::Latchkey,
    env: &[(&str, &std::ffi::OsStr)],
) {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let node = require_program("node", &[], "apt-get install nodejs npm");
    let chromium = require_program(
        "chromium",
        &[PathBuf::from("/usr/bin/chromium")],
        "apt-get install chromium",
    );
    let scripts = root.join("tests/browser");
    assert!(
        scripts.join("node_modules/playwright-core").is_dir(),
        "playwright-core is missing in tests/browser/node_modules: run scripts/setup \
         (it runs `npm install` there)"
    );
    let run = tokio::process::Command::new(node)
        .arg(scripts.join(script))
        .current_dir(&scripts)
        .env("APP_URL", app_url)
        .env("CHROMIUM", chromium)
        .envs(env.iter().copied())
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(180), run)
        .await
        .expect("the browser script took over 180s")
        .expect("run node");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the browser flow {script} failed ({}):\n{stdout}\n{stderr}\n--- latchkey log ---\n{}",
        out.status,
        lk.log()
    );
}

pub fn screenshots() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/screenshots")
}

pub fn assert_shots(dir: &Path, pages: &[&str]) {
    for page in pages {
        for size in ["phone", "desktop"] {
            let file = dir.join(format!("{page}-{size}.png"));
            assert!(file.is_file(), "no screenshot {}", file.display());
        }
    }
}

#[tokio::test]
async fn a_person_signs_in_with_a_real_browser() {
    let shots = screenshots();
    let pages = [
        "login",
        "check_email",
        "confirm",
        "wrong_browser",
        "signed_out",
        "forbidden",
        "error",
        "account",
        "account-dark",
        "step_up",
        "step_up-dark",
    ];
    // Only this test's files: the provider test writes beside them.
    for page in pages {
        for size in ["phone", "desktop"] {
            let _ = std::fs::remove_file(shots.join(format!("{page}-{size}.png")));
        }
    }
    let stack =
        Stack::start("[[rules]]\npath = \"/vault/**\"\npolicy = \"authenticated\"\nmfa = true\n")
            .await;
    run_script(
        "signin.mjs",
        &stack,
        &[
            ("MAIL_DIR", stack.smtp.dir().as_os_str()),
            ("SHOT_DIR", shots.as_os_str()),
        ],
    )
    .await;
    assert_shots(&shots, &pages);
}

#[tokio::test]
async fn a_person_signs_in_with_a_provider_in_a_real_browser() {
    let shots = screenshots();
    let pages = ["login-providers", "app-after-provider"];
    for page in pages {
        for size in ["phone", "desktop"] {
            let _ = std::fs::remove_file(shots.join(format!("{page}-{size}.png")));
        }
    }
    let gh = GitHubStandIn::start().await;
    let port = free_port();
    let callback = |id: &str| format!("http://auth.test:{port}/.latchkey/oauth/{id}/callback");
    gh.register(&callback("gh"));
    let corp = OidcProvider::start_for(&callback("corp"));
    let config = format!(
        r#"
[[login.providers]]
id = "corp"
kind = "oidc"
name = "Corp SSO"
issuer = "{}"
client_id = "latchkey"
client_secret = "latchkey-secret"
scopes = ["openid", "email", "groups"]
roles_claim = "groups"
role_map = {{ ops = ["operator"] }}

[[login.providers]]
id = "gh"
kind = "github"
enterprise_url = "{}"
client_id = "{}"
client_secret = "{}"
"#,
        corp.issuer,
        gh.url(),
        github::CLIENT_ID,
        github::CLIENT_SECRET
    );
    let stack = Stack::start_opts(Opts {
        extra: &config,
        port: Some(port),
        ..Opts::default()
    })
    .await;
    // Discovery runs in the background: wait for the live button first.
    let b = stack.browser();
    crate::oidc::through_latchkey::wait_for_button(&stack, &b, "corp").await;
    run_script("providers.mjs", &stack, &[("SHOT_DIR", shots.as_os_str())]).await;
    assert_shots(&shots, &pages);
}
