//! `latchkey demo` as a newcomer uses it: no files, no services; open the
//! page, ask for a link, copy it from the terminal, land on the echo app.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::flow::{csrf_of, link_token};
use crate::support::http::Browser;
use crate::support::{free_port, latchkey::binary, wait_for_port, ChildGuard};

#[tokio::test]
async fn the_demo_signs_a_newcomer_in_from_the_printed_link() {
    let port = free_port();
    let out = tempfile::NamedTempFile::new().expect("temp file");
    let mut demo = ChildGuard::spawn(
        "latchkey demo",
        Command::new(binary())
            .args(["demo", "--listen", &format!("127.0.0.1:{port}")])
            .stdout(Stdio::from(out.reopen().expect("reopen")))
            .stderr(Stdio::null()),
    );
    let addr = format!("127.0.0.1:{port}").parse().expect("addr");
    wait_for_port(addr, "latchkey demo");
    let printed = || {
        let mut s = String::new();
        let _ = out.reopen().expect("reopen").read_to_string(&mut s);
        s
    };
    assert!(
        printed().contains(&format!("http://localhost:{port}/")),
        "says what to open:\n{}",
        printed()
    );

    let b = Browser::new(addr).with_host(&format!("localhost:{port}"));
    let first = b.get("/", &[]).await;
    assert_eq!(first.status, 302, "sent to sign in");
    let page = b
        .get(first.header("location").expect("location"), &[])
        .await;
    let csrf = csrf_of(&page.body);
    let sent = b
        .post_form(
            "/.latchkey/login",
            &[("email", "newcomer@example.com"), ("csrf", &csrf)],
            &[],
        )
        .await;
    assert_eq!(sent.status, 200);

    let deadline = Instant::now() + Duration::from_secs(10);
    while !printed().contains("token=") {
        assert!(Instant::now() < deadline, "no link printed:\n{}", printed());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let text = printed();
    assert!(
        text.contains(&format!("http://localhost:{port}/.latchkey/verify?token=")),
        "{text}"
    );
    let token = link_token(&text);
    let confirm = b
        .get(&format!("/.latchkey/verify?token={token}"), &[])
        .await;
    let csrf = csrf_of(&confirm.body);
    let done = b
        .post_form(
            "/.latchkey/verify",
            &[("token", &token), ("csrf", &csrf)],
            &[],
        )
        .await;
    assert_eq!(done.status, 303);
    let app = b.get("/", &[]).await;
    assert_eq!(app.status, 200);
    assert!(
        app.body.contains("newcomer@example.com"),
        "the echo app shows who signed in:\n{}",
        app.body
    );
    let admin = b.get("/admin/", &[]).await;
    assert_eq!(admin.status, 403, "a newcomer is a member, not an admin");
    let _ = demo.child.kill();
}
