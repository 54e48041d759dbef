//! A person signing in, in a real browser: headless Chromium (Debian's
//! `chromium`) driven by playwright-core through `tests/browser/signin.mjs`,
//! against latchkey in front of the echo app with a real SMTP server. The
//! script saves screenshots of every page at phone and desktop widths under
//! `target/screenshots/`, the account and step-up pages also in dark mode.

use std::path::PathBuf;
use std::time::Duration;

use crate::flow::Stack;
use crate::support::require_program;

#[tokio::test]
async fn a_person_signs_in_with_a_real_browser() {
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
    let shots = root.join("target/screenshots");
    let _ = std::fs::remove_dir_all(&shots);

    let stack =
        Stack::start("[[rules]]\npath = \"/vault/**\"\npolicy = \"authenticated\"\nmfa = true\n")
            .await;
    let run = tokio::process::Command::new(node)
        .arg(scripts.join("signin.mjs"))
        .current_dir(&scripts)
        .env("APP_URL", format!("http://{}", stack.host()))
        .env("MAIL_DIR", stack.smtp.dir())
        .env("SHOT_DIR", &shots)
        .env("CHROMIUM", chromium)
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
        "the browser flow failed ({}):\n{stdout}\n{stderr}\n--- latchkey log ---\n{}",
        out.status,
        stack.lk.log()
    );
    for page in [
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
    ] {
        for size in ["phone", "desktop"] {
            let file = shots.join(format!("{page}-{size}.png"));
            assert!(file.is_file(), "no screenshot {}", file.display());
        }
    }
}
