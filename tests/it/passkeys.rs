//! `latchkey users passkeys list|remove EMAIL` against a real
//! redis-server: ops see a person's passkeys (stored by the store's
//! passkey records) and remove one or all; `users remove` takes them too.
//! (Registering and using passkeys in a browser is not built yet.)

use std::path::Path;
use std::process::{Command, Output};

use latchkey::store::records::{user_id, PasskeyRecord};
use latchkey::store::{RedisStore, Store};

use crate::support::latchkey::binary;
use crate::support::redis::RedisServer;

fn cli(config: &Path, args: &[&str]) -> Output {
    Command::new(binary())
        .args(args)
        .arg("--config")
        .arg(config)
        .env_remove("LATCHKEY_CONFIG")
        .output()
        .expect("run latchkey")
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn key(email: &str, id: &str, name: &str, created_at: u64) -> PasskeyRecord {
    PasskeyRecord {
        user_id: user_id(email),
        id: id.into(),
        name: name.into(),
        created_at,
        last_used: 0,
        sign_count: 0,
        transports: vec!["internal".into()],
        credential: "{}".into(),
    }
}

#[tokio::test]
async fn ops_list_and_remove_a_persons_passkeys() {
    let redis = RedisServer::start();
    let dir = crate::support::temp_dir();
    let config = dir.path().join("latchkey.toml");
    std::fs::write(
        &config,
        format!(
            "[redis]\nurl = \"{}\"\n[[users]]\nemail = \"alice@example.com\"\nroles = [\"admin\"]\n",
            redis.url()
        ),
    )
    .unwrap();
    let store = RedisStore::new(&redis.url(), "latchkey:").unwrap();
    let t = 1_767_225_600_000;
    for k in [
        key("alice@example.com", "cred-laptop", "Laptop", t),
        key("alice@example.com", "cred-phone", "Phone", t + 1),
        key("carol@example.com", "cred-carol", "Carol's key", t),
    ] {
        store.put_passkey(&k).await.unwrap();
    }

    let list = cli(&config, &["users", "passkeys", "list", "Alice@Example.com"]);
    assert!(list.status.success(), "{}", text(&list));
    let out = text(&list);
    assert!(
        out.contains("cred-laptop") && out.contains("Laptop"),
        "{out}"
    );
    assert!(out.contains("cred-phone") && out.contains("never"), "{out}");
    assert!(out.contains("2026-01-01T00:00:00Z"), "{out}");
    assert!(!out.contains("cred-carol"), "{out}");

    let gone = cli(
        &config,
        &[
            "users",
            "passkeys",
            "remove",
            "alice@example.com",
            "--id",
            "cred-phone",
        ],
    );
    assert!(gone.status.success(), "{}", text(&gone));
    assert_eq!(
        store
            .list_passkeys(&user_id("alice@example.com"))
            .await
            .unwrap()
            .len(),
        1
    );
    // A wrong id: a clear error, exit 1, nothing removed.
    let wrong = cli(
        &config,
        &[
            "users",
            "passkeys",
            "remove",
            "alice@example.com",
            "--id",
            "cred-carol",
        ],
    );
    assert_eq!(wrong.status.code(), Some(1));
    assert!(
        text(&wrong).contains("no passkey with the id \"cred-carol\""),
        "{}",
        text(&wrong)
    );
    assert_eq!(
        store
            .list_passkeys(&user_id("carol@example.com"))
            .await
            .unwrap()
            .len(),
        1
    );
    let all = cli(
        &config,
        &["users", "passkeys", "remove", "alice@example.com", "--all"],
    );
    assert!(
        text(&all).contains("removed 1 passkey(s)"),
        "{}",
        text(&all)
    );
    let none = cli(&config, &["users", "passkeys", "list", "alice@example.com"]);
    assert!(text(&none).contains("has no passkeys"), "{}", text(&none));
    let bad = cli(&config, &["users", "passkeys", "list", "not-an-email"]);
    assert_eq!(bad.status.code(), Some(1));

    // Removing a stored user removes their passkeys.
    let added = cli(&config, &["users", "add", "carol@example.com"]);
    assert!(added.status.success(), "{}", text(&added));
    let removed = cli(&config, &["users", "remove", "carol@example.com"]);
    assert!(removed.status.success(), "{}", text(&removed));
    assert!(store
        .list_passkeys(&user_id("carol@example.com"))
        .await
        .unwrap()
        .is_empty());
}
