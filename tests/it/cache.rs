//! The session cache (`session.cache`, on by default with Redis) against a
//! real redis-server and two running latchkey instances: a revocation made
//! anywhere is refused by the other instance within 10 ms; while an
//! instance's invalidation channel is down it answers nothing from memory
//! and flushes when it is back; the idle timeout still slides, once for a
//! burst of requests on a due session; the cache
//! stays within `session.cache_entries`; a Sentinel failover flushes it;
//! a reused identity assertion always says what the identity headers say.
//! Whether an answer came from the cache is read off Redis's own command
//! counters (`INFO commandstats`).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant, SystemTime};

use latchkey::identity::secret::Secret;
use latchkey::store::records::SessionRecord;
use latchkey::store::{RedisStore, Store};

use crate::flow::{csrf_of, sign_in, Opts, Stack};
use crate::support::http::{send, Browser};
use crate::support::latchkey::binary;
use crate::support::redis_ha::{cli as cli_ha, current_master, SentinelSetup};

/// The bound the design promises between a revocation returning and every
/// other instance refusing the session.
const COHERENT_WITHIN: Duration = Duration::from_millis(10);

fn cli(config: &Path, args: &[&str]) -> Output {
    let out = Command::new(binary())
        .args(args)
        .arg("--config")
        .arg(config)
        .env_remove("LATCHKEY_CONFIG")
        .output()
        .expect("run latchkey");
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// The status of GET `path` on `stack` with the session `token`.
async fn status(stack: &Stack, token: &str, path: &str) -> u16 {
    let cookie = format!("latchkey_session={token}");
    send(
        stack.lk.addr,
        "GET",
        path,
        &[
            ("host", &stack.host()),
            ("cookie", &cookie),
            ("accept", "application/json"),
        ],
        b"",
    )
    .await
    .status
}

fn redis_conn(url: &str) -> redis::Connection {
    redis::Client::open(url)
        .unwrap()
        .get_connection()
        .expect("connect to redis-server")
}

/// How many times Redis ran `command` so far.
fn calls(url: &str, command: &str) -> u64 {
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query(&mut redis_conn(url))
        .unwrap();
    let tag = format!("cmdstat_{command}:calls=");
    info.lines()
        .find_map(|l| l.strip_prefix(tag.as_str()))
        .and_then(|rest| rest.split(',').next())
        .map_or(0, |n| n.parse().unwrap())
}

/// Two instances on one redis-server, and a config file for the CLI.
struct Pair {
    a: Stack,
    b: Stack,
    url: String,
    config: PathBuf,
    _dir: tempfile::TempDir,
}

/// Tests here sign in often.
const LIMITS: &str = "[limits]\nlinks_per_email = 100\nlinks_per_ip = 100\nverify_per_ip = 100\n";

async fn pair(extra: &str) -> Pair {
    let extra = &format!("{LIMITS}{extra}");
    let a = Stack::start(extra).await;
    let url = a.redis.as_ref().expect("redis").url();
    let redis_toml = format!("[redis]\nurl = \"{url}\"");
    let b = Stack::start_opts(Opts {
        redis_toml: Some(&redis_toml),
        extra,
        ..Default::default()
    })
    .await;
    let dir = crate::support::temp_dir();
    let config = dir.path().join("latchkey.toml");
    std::fs::write(&config, format!("{redis_toml}\n{extra}\n")).unwrap();
    Pair {
        a,
        b,
        url,
        config,
        _dir: dir,
    }
}

/// Waits until `stack` answers `token` from its cache: two requests in a
/// row that Redis did not see (the channel comes up shortly after start).
async fn until_cached(stack: &Stack, url: &str, token: &str, path: &str, want: u16) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        assert_eq!(status(stack, token, path).await, want);
        let before = calls(url, "get");
        assert_eq!(status(stack, token, path).await, want);
        if calls(url, "get") == before {
            return;
        }
        assert!(Instant::now() < deadline, "the cache never answered");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Right after `revoked` returned, polls `stack` until it answers `want`:
/// every request made later than [`COHERENT_WITHIN`] after must get it.
async fn refused_within_bound(stack: &Stack, token: &str, path: &str, want: u16, what: &str) {
    let revoked = Instant::now();
    for _ in 0..10_000 {
        let asked = revoked.elapsed();
        let got = status(stack, token, path).await;
        if got == want {
            return;
        }
        assert!(
            asked <= COHERENT_WITHIN,
            "{what}: still answered {got} by the other instance {asked:?} after it returned"
        );
    }
    panic!("{what}: never answered {want}");
}

async fn logout(browser: &Browser) {
    let page = browser.get("/.latchkey/logout", &[]).await;
    let csrf = csrf_of(&page.body);
    let done = browser
        .post_form("/.latchkey/logout", &[("csrf", &csrf)], &[])
        .await;
    assert!(done.status < 400, "logout: {}", done.status);
}

#[tokio::test]
async fn revocations_anywhere_are_refused_by_the_other_instance_within_10_ms() {
    let p = pair("").await;
    for round in 0..3 {
        // A logout on A, while B holds the session in its cache.
        let bob = p.a.browser();
        sign_in(&p.a, &bob, "bob@example.com").await;
        let token = bob.cookie("latchkey_session").unwrap();
        until_cached(&p.b, &p.url, &token, "/reports", 200).await;
        logout(&bob).await;
        refused_within_bound(&p.b, &token, "/reports", 401, &format!("logout {round}")).await;

        // `sessions revoke` from the CLI (straight in Redis).
        let bob = p.b.browser();
        sign_in(&p.b, &bob, "bob@example.com").await;
        let token = bob.cookie("latchkey_session").unwrap();
        until_cached(&p.a, &p.url, &token, "/reports", 200).await;
        until_cached(&p.b, &p.url, &token, "/reports", 200).await;
        cli(
            &p.config,
            &["sessions", "revoke", "--user", "bob@example.com"],
        );
        refused_within_bound(&p.a, &token, "/reports", 401, "sessions revoke on A").await;
        assert_eq!(status(&p.b, &token, "/reports").await, 401);

        // A stored user given other roles, then removed, from the CLI.
        let email = format!("carol{round}@example.com");
        cli(&p.config, &["users", "add", &email, "--roles", "member"]);
        let carol = p.a.browser();
        sign_in(&p.a, &carol, &email).await;
        let token = carol.cookie("latchkey_session").unwrap();
        until_cached(&p.b, &p.url, &token, "/admin/x", 403).await;
        cli(&p.config, &["users", "set-roles", &email, "admin"]);
        refused_within_bound(&p.b, &token, "/admin/x", 200, "set-roles (granted)").await;
        until_cached(&p.b, &p.url, &token, "/admin/x", 200).await;
        cli(&p.config, &["users", "set-roles", &email, "member"]);
        refused_within_bound(&p.b, &token, "/admin/x", 403, "set-roles (taken)").await;
        until_cached(&p.b, &p.url, &token, "/reports", 200).await;
        cli(&p.config, &["users", "remove", &email]);
        refused_within_bound(&p.b, &token, "/reports", 401, "users remove").await;
    }
}

/// Kills every latchkey invalidation channel on the server and, in the
/// same breath (one pipeline, so before any channel can reconnect), deletes
/// every session: a revocation no channel hears of. Returns how many
/// channels there were.
fn kill_channels_then_revoke_all(url: &str) -> usize {
    let mut con = redis_conn(url);
    let list: String = redis::cmd("CLIENT").arg("LIST").query(&mut con).unwrap();
    let ids: Vec<String> = list
        .lines()
        .filter(|l| l.contains("name=latchkey-tracking "))
        .filter_map(|l| l.split(' ').find_map(|f| f.strip_prefix("id=")))
        .map(str::to_owned)
        .collect();
    let sessions: Vec<String> = redis::cmd("KEYS")
        .arg("latchkey:s:*")
        .query(&mut con)
        .unwrap();
    assert!(!sessions.is_empty());
    let mut pipe = redis::pipe();
    for id in &ids {
        pipe.cmd("CLIENT").arg("KILL").arg("ID").arg(id).ignore();
    }
    pipe.cmd("DEL").arg(&sessions).ignore();
    let () = pipe.query(&mut con).unwrap();
    ids.len()
}

#[tokio::test]
async fn a_lost_invalidation_channel_flushes_the_cache_and_serves_nothing_from_it_meanwhile() {
    let mut p = pair("").await;
    for round in 0..3 {
        let bob = p.a.browser();
        sign_in(&p.a, &bob, "bob@example.com").await;
        let token = bob.cookie("latchkey_session").unwrap();
        until_cached(&p.b, &p.url, &token, "/reports", 200).await;
        // Both instances' channels are cut and, before either is back,
        // the session is revoked: no channel hears of it, yet it is seen.
        assert_eq!(
            kill_channels_then_revoke_all(&p.url),
            2,
            "round {round}: one channel per instance"
        );
        // B learns of the cut from its socket, as it would have learnt of
        // the revocation from a push: the same bound holds.
        refused_within_bound(
            &p.b,
            &token,
            "/reports",
            401,
            &format!("round {round}: revoked while B's channel was down"),
        )
        .await;
    }

    // Redis itself restarts (empty): nothing cached survives it.
    let bob = p.a.browser();
    sign_in(&p.a, &bob, "bob@example.com").await;
    let token = bob.cookie("latchkey_session").unwrap();
    until_cached(&p.b, &p.url, &token, "/reports", 200).await;
    p.a.redis.as_mut().unwrap().restart();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let got = status(&p.b, &token, "/reports").await;
        assert_ne!(got, 200, "served from the cache across a Redis restart");
        if got == 401 {
            break;
        }
        assert_eq!(got, 503, "a store error is no sign-out");
        assert!(Instant::now() < deadline, "Redis never came back");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // And the cache is back at work once the channel is.
    while status(&p.a, &token, "/reports").await != 401 {
        assert!(Instant::now() < deadline, "Redis never came back for A");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let carol = p.a.browser();
    sign_in(&p.a, &carol, "alice@example.com").await;
    let token = carol.cookie("latchkey_session").unwrap();
    until_cached(&p.b, &p.url, &token, "/reports", 200).await;
}

#[tokio::test]
async fn the_idle_timeout_still_slides_behind_the_cache() {
    // A 6 s idle timeout slides in steps of 60 ms (wide enough for two
    // requests in a row to fit inside one step on a busy machine).
    let p = pair("[session]\nidle_timeout = \"6s\"\n").await;
    let bob = p.a.browser();
    sign_in(&p.a, &bob, "bob@example.com").await;
    let token = bob.cookie("latchkey_session").unwrap();
    until_cached(&p.b, &p.url, &token, "/reports", 200).await;
    let (gets, slides) = (calls(&p.url, "get"), calls(&p.url, "pexpire"));
    let started = Instant::now();
    let mut asked = 0;
    while started.elapsed() < Duration::from_secs(8) {
        assert_eq!(
            status(&p.b, &token, "/reports").await,
            200,
            "used every 10 ms, the session outlives its idle timeout ({:?} in)",
            started.elapsed()
        );
        asked += 1;
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let (gets, slides) = (
        calls(&p.url, "get") - gets,
        calls(&p.url, "pexpire") - slides,
    );
    assert!(slides > 0, "the idle end was written");
    assert!(
        gets < asked,
        "{gets} reads for {asked} requests: the cache answered some"
    );
    // Each slide went over B's invalidation channel, which Redis does not
    // tell of its own writes: B kept its entry and read the session again
    // for none of them (over the data connection, each slide came back as
    // an invalidation and cost a read).
    assert!(
        gets * 4 < slides,
        "{gets} reads of the session for {slides} slides: a slide cost a read"
    );
    // Unused, it ends after its idle timeout, cache or not.
    tokio::time::sleep(Duration::from_millis(6_300)).await;
    assert_eq!(status(&p.b, &token, "/reports").await, 401);
    assert_eq!(status(&p.a, &token, "/reports").await, 401);
}

/// A burst of requests on a due session (a page loading its parts) slides
/// it once: the first request writes the new end, and the rest, arriving
/// while it does, are served from the entry as it is.
#[tokio::test]
async fn a_burst_on_a_due_session_slides_it_once() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let p = pair("[session]\nidle_timeout = \"20s\"\n").await;
    let bob = p.a.browser();
    sign_in(&p.a, &bob, "bob@example.com").await;
    let token = bob.cookie("latchkey_session").unwrap();
    until_cached(&p.b, &p.url, &token, "/reports", 200).await;
    let request = format!(
        "GET /reports HTTP/1.1\r\nHost: {}\r\nCookie: latchkey_session={token}\r\n\
         Accept: application/json\r\nConnection: close\r\n\r\n",
        p.b.host()
    );
    for burst in 0..3 {
        // Past a slide step (200 ms of 20 s): due again.
        tokio::time::sleep(Duration::from_millis(250)).await;
        // All connected first, then every request written at once, so that
        // they reach latchkey together.
        let mut streams = Vec::new();
        for _ in 0..32 {
            streams.push(tokio::net::TcpStream::connect(p.b.lk.addr).await.unwrap());
        }
        let (gets, slides) = (calls(&p.url, "get"), calls(&p.url, "pexpire"));
        for s in &mut streams {
            s.write_all(request.as_bytes()).await.unwrap();
        }
        for s in &mut streams {
            let mut answer = Vec::new();
            s.read_to_end(&mut answer).await.unwrap();
            assert!(
                answer.starts_with(b"HTTP/1.1 200"),
                "burst {burst}: {}",
                String::from_utf8_lossy(&answer)
            );
        }
        assert_eq!(
            calls(&p.url, "pexpire") - slides,
            1,
            "burst {burst}: 32 requests on a due session slid it once"
        );
        assert_eq!(calls(&p.url, "get"), gets, "burst {burst}: no read");
    }
}

/// A slide on one instance is heard by the other (Redis leaves out only
/// the instance that wrote it): A forgets its copy and reads again.
#[tokio::test]
async fn a_slide_on_one_instance_is_heard_by_the_other() {
    let p = pair("[session]\nidle_timeout = \"20s\"\n").await;
    let bob = p.a.browser();
    sign_in(&p.a, &bob, "bob@example.com").await;
    let token = bob.cookie("latchkey_session").unwrap();
    until_cached(&p.a, &p.url, &token, "/reports", 200).await;
    until_cached(&p.b, &p.url, &token, "/reports", 200).await;
    // Past a slide step (200 ms of 20 s), B slides: a write, no read.
    tokio::time::sleep(Duration::from_millis(250)).await;
    let (gets, slides) = (calls(&p.url, "get"), calls(&p.url, "pexpire"));
    assert_eq!(status(&p.b, &token, "/reports").await, 200);
    assert_eq!(calls(&p.url, "pexpire") - slides, 1, "B slid the idle end");
    assert_eq!(calls(&p.url, "get"), gets, "B kept its entry");
    // A heard of it: its copy is gone, so it reads the session again
    // (had it not heard, its own due entry would slide, without a read).
    let heard = Instant::now() + Duration::from_secs(2);
    loop {
        let before = calls(&p.url, "get");
        assert_eq!(status(&p.a, &token, "/reports").await, 200);
        if calls(&p.url, "get") > before {
            break;
        }
        assert!(Instant::now() < heard, "A never heard of B's slide");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn the_cache_holds_no_more_than_its_bound() {
    let stack = Stack::start("[session]\ncache_entries = 10\n").await;
    let url = stack.redis.as_ref().unwrap().url();
    let store = RedisStore::new(&url, "latchkey:").unwrap();
    let now = latchkey::unix_ms(SystemTime::now());
    let record = SessionRecord {
        user_id: "bob".into(),
        email: "bob@example.com".into(),
        created_at: now,
        expires_at: now + 3_600_000,
        ip: "127.0.0.1".into(),
        user_agent: "test".into(),
        amr: "email".into(),
        extra_roles: Vec::new(),
    };
    let mut tokens = Vec::new();
    for _ in 0..50 {
        let t = Secret::generate(&mut rand::rng());
        store
            .create_session(&t.hash(), &record, Duration::from_secs(900), now)
            .await
            .unwrap();
        tokens.push(t.expose().to_owned());
    }
    // Within the bound, a second pass is answered from memory.
    until_cached(&stack, &url, &tokens[0], "/reports", 200).await;
    for t in &tokens[..5] {
        assert_eq!(status(&stack, t, "/reports").await, 200);
    }
    let before = calls(&url, "get");
    for t in &tokens[..5] {
        assert_eq!(status(&stack, t, "/reports").await, 200);
    }
    assert_eq!(calls(&url, "get"), before, "5 sessions fit in 10 entries");
    // Past it, most of a second pass has to ask Redis again.
    for _ in 0..2 {
        for t in &tokens {
            assert_eq!(status(&stack, t, "/reports").await, 200);
        }
    }
    let before = calls(&url, "get");
    for t in &tokens {
        assert_eq!(status(&stack, t, "/reports").await, 200);
    }
    let reads = calls(&url, "get") - before;
    assert!(
        reads >= 35,
        "50 sessions through 10 entries: only {reads} reached Redis"
    );
}

/// Polls until `port`'s Redis lists a latchkey invalidation channel.
async fn until_channel_on(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !cli_ha(port, &["client", "list"]).contains("name=latchkey-tracking ") {
        assert!(
            Instant::now() < deadline,
            "no invalidation channel on the new master"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sentinel_failover_flushes_the_cache() {
    let setup = SentinelSetup::start();
    let stack = Stack::start_opts(Opts {
        redis_toml: Some(&setup.toml()),
        // A slide step (1% of the idle timeout, at most 60 s) longer than
        // the test: no entry is dropped to write a new idle end.
        extra: &format!("{LIMITS}[session]\nidle_timeout = \"2h\"\n"),
        ..Default::default()
    })
    .await;
    let old = format!("redis://127.0.0.1:{}", setup.master_port);
    let new = format!("redis://127.0.0.1:{}", setup.replica_port);
    let (bob, carol) = (stack.browser(), stack.browser());
    sign_in(&stack, &bob, "bob@example.com").await;
    sign_in(&stack, &carol, "alice@example.com").await;
    let bob = bob.cookie("latchkey_session").unwrap();
    let carol = carol.cookie("latchkey_session").unwrap();
    until_cached(&stack, &old, &bob, "/reports", 200).await;
    setup.sync();
    // Bob's session is gone on the replica only (writes lost to a failover
    // look the same): once it is promoted, no server has it, and only a
    // flushed cache stops answering it.
    let rp = setup.replica_port;
    assert_eq!(
        cli_ha(rp, &["config", "set", "replica-read-only", "no"]),
        "OK\n"
    );
    let key = format!(
        "latchkey:s:{}",
        Secret::parse(&bob).unwrap().hash().to_hex()
    );
    assert_eq!(
        cli_ha(rp, &["del", &key]).trim(),
        "1",
        "the replica had {key}"
    );
    assert_eq!(status(&stack, &bob, "/reports").await, 200, "still cached");

    let sp = setup.sentinel_port;
    assert_eq!(
        cli_ha(sp, &["sentinel", "failover", "mymaster"]).trim(),
        "OK"
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while current_master(sp) != rp || !cli_ha(setup.master_port, &["role"]).starts_with("slave") {
        assert!(Instant::now() < deadline, "no failover within 30 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The cache answers again (on the new master's channel): Carol's
    // session, asked for meanwhile, comes from memory ...
    until_channel_on(rp).await;
    until_cached(&stack, &new, &carol, "/reports", 200).await;
    // ... but Bob's, cached before, was forgotten and is asked again.
    assert_eq!(
        status(&stack, &bob, "/reports").await,
        401,
        "a session cached before the failover was answered from memory"
    );
}

/// The roles header and the assertion's roles the app got for one request.
async fn roles_seen(b: &Browser) -> (String, serde_json::Value, String) {
    let v = crate::flow::echoed(&b.get("/x", &[("accept", "application/json")]).await);
    let header = crate::flow::echoed_header(&v, "x-auth-roles").join(",");
    let jwt = crate::flow::echoed_header(&v, "x-auth-assertion").join("");
    let part = jwt.split('.').nth(1).expect("an assertion");
    let claims: serde_json::Value = serde_json::from_slice(
        &base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, part).unwrap(),
    )
    .unwrap();
    (header, claims["roles"].clone(), jwt)
}

#[tokio::test]
async fn a_reused_assertion_never_outlives_a_role_change() {
    let dir = crate::support::temp_dir();
    let key = crate::assertion::write_key(dir.path(), "k", latchkey::identity::keys::Alg::EdDsa);
    let p = pair(&crate::assertion::assertion_toml(&[("k", &key)], "")).await;
    let email = "dave@example.com";
    cli(&p.config, &["users", "add", email, "--roles", "member"]);
    let b = p.a.browser();
    sign_in(&p.a, &b, email).await;
    let (_, _, first) = roles_seen(&b).await;
    let (_, _, again) = roles_seen(&b).await;
    assert_eq!(first, again, "the same caller, claims unchanged: reused");
    for (roles, want) in [("admin", "admin"), ("member", "member")] {
        cli(&p.config, &["users", "set-roles", email, roles]);
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let (header, claimed, _) = roles_seen(&b).await;
            // Every answer's assertion says what its roles header says.
            assert_eq!(
                claimed,
                serde_json::json!(header.split(',').collect::<Vec<_>>()),
                "the assertion disagrees with X-Auth-Roles"
            );
            if header == want {
                break;
            }
            assert!(Instant::now() < deadline, "roles never became {want}");
        }
    }
}
