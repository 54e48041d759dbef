//! The store conformance suite: each check is written once, generic over
//! `Store`, and run against `MemoryStore` (`store::memory::*`), against
//! `EmbeddedStore` on a real redb file (`store::embedded::*`), and against
//! `RedisStore` on a real redis-server (`store::redis::*`) and on a real
//! 3-master Redis Cluster (`store::cluster::*`). Redis-only
//! checks (outages, what keys hold, expiries) follow at the end.
//!
//! Time: every check gets the store and the `Clock` its callers read. The
//! memory and embedded stores run on a manual clock, so its expiry checks (idle and
//! absolute session ends, link and attempt TTLs, rate-limit windows, token
//! ends: the `ends_*` checks) move that clock to the very millisecond an
//! entry must die, and sleep not at all. Redis counts TTLs itself, in real
//! time, so it gets the system clock and two real-time checks
//! (`real_time_*`) that sleep through one short TTL each, with margins
//! of a second or more for a loaded machine: an entry is checked alive
//! well inside its TTL and dead only after a sleep past it (a sleep is
//! never shorter than asked, so load cannot make those fail).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use latchkey::identity::secret::Secret;
use latchkey::obs::clock::Clock;

use latchkey::store::records::{
    AttemptRecord, LinkRecord, OAuthRecord, PasskeyRecord, SessionRecord, TokenHash, TokenRecord,
    User,
};
use latchkey::store::{slide_step, CodeCheck, RedisStore, Store, StoreError};

use crate::support::redis::RedisServer;

const PREFIX: &str = "latchkey:";

/// Where the memory store's manual clock starts (2026-01-01, Unix ms): far
/// from the real time, so a store that read the system clock instead of
/// its own would be caught.
const START: u64 = 1_767_225_600_000;

fn now() -> u64 {
    latchkey::unix_ms(SystemTime::now())
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn token() -> Secret {
    Secret::generate(&mut rand::rng())
}

fn hash() -> TokenHash {
    token().hash()
}

fn user(email: &str, roles: &[&str]) -> User {
    User {
        id: latchkey::store::records::user_id(email),
        email: email.to_owned(),
        roles: roles.iter().map(|r| r.to_string()).collect(),
        created_at: now(),
    }
}

fn session_of(user: &User, expires_at: u64) -> SessionRecord {
    SessionRecord {
        user_id: user.id.clone(),
        email: user.email.clone(),
        created_at: now(),
        expires_at,
        ip: "192.0.2.1".into(),
        user_agent: "conformance".into(),
        amr: "email".into(),
        extra_roles: Vec::new(),
    }
}

fn link(email: &str) -> LinkRecord {
    LinkRecord {
        email: email.to_owned(),
        return_to: "/after".into(),
        attempt: hash().to_hex(),
        created_at: now(),
        expires_at: now() + 600_000,
        ip: "192.0.2.1".into(),
        user_agent: "conformance".into(),
    }
}

fn attempt() -> AttemptRecord {
    AttemptRecord {
        link: hash().to_hex(),
        code: hash().to_hex(),
        failures: 0,
    }
}

fn token_of(user: &User, jti: &str, created_at: u64, expires_at: u64) -> TokenRecord {
    TokenRecord {
        jti: jti.to_owned(),
        user_id: user.id.clone(),
        email: user.email.clone(),
        name: "ci".into(),
        created_at,
        expires_at,
        session: None,
    }
}

/// Whether `user`'s live sessions at `now` include `h` (a read that, unlike
/// a touch, does not slide the idle end).
async fn listed<S: Store>(store: &S, user: &User, h: &TokenHash, now: u64) -> bool {
    let sessions = store.list_sessions(&user.id, now).await.unwrap();
    sessions.iter().any(|s| s.id == h.to_hex())
}

async fn sleep_until(start: Instant, ms: u64) {
    tokio::time::sleep_until((start + Duration::from_millis(ms)).into()).await;
}

// --- the checks, on every store ----------------------------------------

/// A touch slides the idle end to `now + idle` (a backend may skip a move
/// shorter than a slide step), never past the absolute end; a session
/// already over is never live; revoking one leaves the others alone.
async fn sessions<S: Store>(store: Arc<S>, clock: Clock) {
    let alice = user("alice@example.com", &["admin"]);
    let idle = ms(1500);
    let step = slide_step(idle).as_millis() as u64;
    let t0 = clock.now_ms();
    let (open, capped, over) = (hash(), hash(), hash());
    let open_record = session_of(&alice, t0 + 60_000);
    let capped_record = session_of(&alice, t0 + 1000);
    for (h, r) in [(&open, &open_record), (&capped, &capped_record)] {
        store.create_session(h, r, idle, t0).await.unwrap();
    }
    store
        .create_session(&over, &session_of(&alice, t0), idle, t0)
        .await
        .unwrap();

    let t = clock.now_ms();
    let (got, idle_end) = store.touch_session(&open, idle, t).await.unwrap().unwrap();
    assert_eq!(got, open_record);
    assert!(
        idle_end <= t + 1500 && idle_end + step >= t + 1500,
        "the idle end is now + idle, within a step: {idle_end} at {t}"
    );
    let (got, idle_end) = store
        .touch_session(&capped, idle, t)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got, capped_record);
    assert!(
        idle_end <= t0 + 1000 && idle_end + step >= t0 + 1000,
        "never past the absolute end: {idle_end}"
    );
    assert!(
        store.touch_session(&over, idle, t).await.unwrap().is_none(),
        "a session already over is never live"
    );

    // Revoking one session leaves the others alone.
    assert!(store.revoke_session(&open).await.unwrap());
    assert!(!store.revoke_session(&open).await.unwrap(), "already gone");
    let t = clock.now_ms();
    assert!(store.touch_session(&open, idle, t).await.unwrap().is_none());
    assert!(store
        .touch_session(&capped, idle, t)
        .await
        .unwrap()
        .is_some());
    let listed = store.list_sessions(&alice.id, t).await.unwrap();
    assert_eq!(
        listed.iter().map(|s| s.id.clone()).collect::<Vec<_>>(),
        [capped.to_hex()]
    );
}

/// A user's sessions are listed with their idle ends and revoked together;
/// other users' sessions stay.
async fn user_sessions<S: Store>(store: Arc<S>, clock: Clock) {
    let bob = user("bob@example.com", &[]);
    let carol = user("carol@example.com", &[]);
    let idle = Duration::from_secs(600);
    let t = clock.now_ms();
    let expires_at = t + 3_600_000;
    let bobs: Vec<TokenHash> = (0..3).map(|_| hash()).collect();
    for h in &bobs {
        store
            .create_session(h, &session_of(&bob, expires_at), idle, t)
            .await
            .unwrap();
    }
    let carols = hash();
    store
        .create_session(&carols, &session_of(&carol, expires_at), idle, t)
        .await
        .unwrap();

    let listed = store.list_sessions(&bob.id, clock.now_ms()).await.unwrap();
    let ids: HashSet<String> = listed.iter().map(|s| s.id.clone()).collect();
    let want: HashSet<String> = bobs.iter().map(TokenHash::to_hex).collect();
    assert_eq!(ids, want);
    for s in &listed {
        assert_eq!(s.record.user_id, bob.id);
        assert!(s.idle_expires_at <= s.record.expires_at);
        // Allow for clock granularity and the time the test took.
        let expected = t + 600_000;
        assert!(s.idle_expires_at.abs_diff(expected) < 5_000, "{s:?}");
    }
    let t = clock.now_ms();
    assert!(store.list_sessions("nobody", t).await.unwrap().is_empty());

    assert_eq!(store.revoke_user_sessions(&bob.id).await.unwrap(), 3);
    for h in &bobs {
        assert!(store.touch_session(h, idle, t).await.unwrap().is_none());
    }
    assert!(store.list_sessions(&bob.id, t).await.unwrap().is_empty());
    assert_eq!(store.revoke_user_sessions(&bob.id).await.unwrap(), 0);
    assert!(store
        .touch_session(&carols, idle, t)
        .await
        .unwrap()
        .is_some());
    assert_eq!(store.list_sessions(&carol.id, t).await.unwrap().len(), 1);
}

/// User records are read as stored right now, and a session outlives its
/// user's record (identity then refuses it).
async fn users<S: Store>(store: Arc<S>, clock: Clock) {
    let dave = user("dave@example.com", &["member"]);
    let erin = user("erin@example.com", &["admin"]);
    let idle = Duration::from_secs(600);
    let h = hash();
    let t = clock.now_ms();
    store
        .create_session(&h, &session_of(&dave, t + 3_600_000), idle, t)
        .await
        .unwrap();
    assert_eq!(store.get_user(&dave.id).await.unwrap(), None);

    store.put_user(&dave).await.unwrap();
    store.put_user(&erin).await.unwrap();
    assert_eq!(
        store.get_user(&dave.id).await.unwrap().as_ref(),
        Some(&dave)
    );
    assert_eq!(store.get_user("nobody").await.unwrap(), None);

    let promoted = User {
        roles: vec!["member".into(), "admin".into()],
        ..dave.clone()
    };
    store.put_user(&promoted).await.unwrap();
    assert_eq!(
        store.get_user(&dave.id).await.unwrap().unwrap().roles,
        ["member", "admin"],
        "new roles seen at once"
    );

    // Ordered by email, whatever the order of insertion or ids.
    let zed = user("zed@example.com", &[]);
    let amy = user("amy@example.com", &[]);
    store.put_user(&zed).await.unwrap();
    store.put_user(&amy).await.unwrap();
    let emails: Vec<String> = store
        .list_users()
        .await
        .unwrap()
        .into_iter()
        .map(|u| u.email)
        .collect();
    assert_eq!(
        emails,
        [
            "amy@example.com",
            "dave@example.com",
            "erin@example.com",
            "zed@example.com"
        ]
    );

    assert!(store.delete_user(&dave.id).await.unwrap());
    assert!(!store.delete_user(&dave.id).await.unwrap());
    assert_eq!(store.get_user(&dave.id).await.unwrap(), None);
    assert!(store
        .touch_session(&h, idle, clock.now_ms())
        .await
        .unwrap()
        .is_some());
    assert_eq!(store.list_users().await.unwrap().len(), 3);
}

/// Links: peek leaves them, take uses them up exactly once, even under a
/// race; a zero TTL stores nothing.
async fn links<S: Store + 'static>(store: Arc<S>, _clock: Clock) {
    let ttl = Duration::from_secs(600);
    let h = hash();
    let l = link("frank@example.com");
    store.put_link(&h, &l, ttl).await.unwrap();
    assert_eq!(store.peek_link(&h).await.unwrap().as_ref(), Some(&l));
    assert_eq!(store.peek_link(&h).await.unwrap().as_ref(), Some(&l));
    assert_eq!(store.take_link(&h).await.unwrap().as_ref(), Some(&l));
    assert_eq!(store.take_link(&h).await.unwrap(), None);
    assert_eq!(store.peek_link(&h).await.unwrap(), None);
    assert_eq!(store.take_link(&hash()).await.unwrap(), None);

    let raced = hash();
    store.put_link(&raced, &l, ttl).await.unwrap();
    let mut takers = tokio::task::JoinSet::new();
    for _ in 0..20 {
        let store = store.clone();
        takers.spawn(async move { store.take_link(&raced).await.unwrap() });
    }
    let won = takers.join_all().await.into_iter().flatten().count();
    assert_eq!(won, 1, "exactly one concurrent take gets the link");

    let dead = hash();
    store.put_link(&dead, &l, Duration::ZERO).await.unwrap();
    assert_eq!(store.peek_link(&dead).await.unwrap(), None);
    assert_eq!(store.take_link(&dead).await.unwrap(), None);
}

/// Provider sign-ins in flight: taken once, exactly one of concurrent
/// takes wins, an expired one is gone.
async fn oauth<S: Store + 'static>(store: Arc<S>, _clock: Clock) {
    let ttl = Duration::from_secs(600);
    let h = hash();
    let r = OAuthRecord::Pending {
        provider: "corp".into(),
        state: token().expose().to_owned(),
        nonce: token().expose().to_owned(),
        code_verifier: token().expose().to_owned(),
        return_to: "/after".into(),
        bind: String::new(),
    };
    store.put_oauth(&h, &r, ttl).await.unwrap();
    assert_eq!(store.take_oauth(&h).await.unwrap().as_ref(), Some(&r));
    assert_eq!(store.take_oauth(&h).await.unwrap(), None);
    assert_eq!(store.take_oauth(&hash()).await.unwrap(), None);

    let raced = hash();
    store.put_oauth(&raced, &r, ttl).await.unwrap();
    let mut takers = tokio::task::JoinSet::new();
    for _ in 0..20 {
        let store = store.clone();
        takers.spawn(async move { store.take_oauth(&raced).await.unwrap() });
    }
    let won = takers.join_all().await.into_iter().flatten().count();
    assert_eq!(won, 1, "exactly one concurrent take gets the record");

    let dead = hash();
    store.put_oauth(&dead, &r, Duration::ZERO).await.unwrap();
    assert_eq!(store.take_oauth(&dead).await.unwrap(), None);
}

/// Attempts: stored; a code is judged in one step (wrong ones counted,
/// the right one uses the attempt up, the limit voids it); gone when
/// deleted.
async fn attempts<S: Store>(store: Arc<S>, _clock: Clock) {
    let ttl = Duration::from_secs(600);
    let code = token();
    let (right, wrong) = (code.hash(), hash());
    let a = AttemptRecord {
        code: right.to_hex(),
        ..attempt()
    };
    let h = hash();
    store.put_attempt(&h, &a, ttl).await.unwrap();
    assert_eq!(store.get_attempt(&h).await.unwrap().as_ref(), Some(&a));
    assert_eq!(
        store.check_code(&h, Some(&wrong), 3).await.unwrap(),
        CodeCheck::Wrong { left: 2 }
    );
    assert_eq!(
        store.check_code(&h, None, 3).await.unwrap(),
        CodeCheck::Wrong { left: 1 },
        "no code at all counts as wrong"
    );
    let got = store.get_attempt(&h).await.unwrap().unwrap();
    assert_eq!(
        got,
        AttemptRecord {
            failures: 2,
            ..a.clone()
        }
    );
    assert_eq!(
        store.check_code(&h, Some(&right), 3).await.unwrap(),
        CodeCheck::Match(got.clone()),
        "the right code within the limit"
    );
    assert_eq!(store.get_attempt(&h).await.unwrap(), None, "used up");
    assert_eq!(
        store.check_code(&h, Some(&right), 3).await.unwrap(),
        CodeCheck::Missing,
        "used once only"
    );

    // The wrong code that reaches the limit voids it; the right one then fails.
    let v = hash();
    store.put_attempt(&v, &a, ttl).await.unwrap();
    for left in [2, 1] {
        assert_eq!(
            store.check_code(&v, Some(&wrong), 3).await.unwrap(),
            CodeCheck::Wrong { left }
        );
    }
    assert_eq!(
        store.check_code(&v, Some(&wrong), 3).await.unwrap(),
        CodeCheck::Voided(AttemptRecord {
            failures: 3,
            ..a.clone()
        })
    );
    assert_eq!(
        store.check_code(&v, Some(&right), 3).await.unwrap(),
        CodeCheck::Missing
    );
    assert_eq!(store.get_attempt(&v).await.unwrap(), None);

    // A limit lowered below the failures so far voids even the right code.
    let lowered = hash();
    store.put_attempt(&lowered, &a, ttl).await.unwrap();
    store.check_code(&lowered, Some(&wrong), 3).await.unwrap();
    store.check_code(&lowered, Some(&wrong), 3).await.unwrap();
    assert!(matches!(
        store.check_code(&lowered, Some(&right), 1).await.unwrap(),
        CodeCheck::Voided(_)
    ));

    store.put_attempt(&h, &a, ttl).await.unwrap();
    store.delete_attempt(&h).await.unwrap();
    assert_eq!(store.get_attempt(&h).await.unwrap(), None);
    assert_eq!(
        store.check_code(&h, Some(&wrong), 3).await.unwrap(),
        CodeCheck::Missing,
        "gone: nothing to count"
    );
    assert_eq!(
        store.get_attempt(&h).await.unwrap(),
        None,
        "judging does not revive it"
    );
    store.delete_attempt(&hash()).await.unwrap();
}

/// Codes under fire: 24 wrong codes and the right one at once, 20 times
/// over. At most `max` are judged each time, and never the right one
/// after the attempt was voided.
async fn codes_under_fire<S: Store + 'static>(store: Arc<S>, _clock: Clock) {
    let max = 3;
    for round in 0..20 {
        let code = token();
        let a = AttemptRecord {
            code: code.hash().to_hex(),
            ..attempt()
        };
        let h = hash();
        store
            .put_attempt(&h, &a, Duration::from_secs(60))
            .await
            .unwrap();
        let mut guesses = tokio::task::JoinSet::new();
        for i in 0..25 {
            let store = store.clone();
            let guess = if i == 24 { code.hash() } else { hash() };
            guesses.spawn(async move { store.check_code(&h, Some(&guess), max).await.unwrap() });
        }
        let got = guesses.join_all().await;
        let of = |f: fn(&CodeCheck) -> bool| got.iter().filter(|c| f(c)).count();
        let (matched, wrong, voided) = (
            of(|c| matches!(c, CodeCheck::Match(_))),
            of(|c| matches!(c, CodeCheck::Wrong { .. })),
            of(|c| matches!(c, CodeCheck::Voided(_))),
        );
        assert!(
            matched + wrong + voided <= max as usize,
            "round {round}: {matched} right, {wrong} wrong, {voided} voiding judged; at most {max}"
        );
        assert!(matched + voided == 1, "round {round}: {got:?}");
        assert_eq!(store.get_attempt(&h).await.unwrap(), None);
    }
}

/// Counters under fire: 50 hits at once on one key each get their own
/// count, so a cap of `n` lets exactly `n` through.
async fn hits_under_fire<S: Store + 'static>(store: Arc<S>, _clock: Clock) {
    let key = format!("fire:{}", hash().to_hex());
    let mut hits = tokio::task::JoinSet::new();
    for _ in 0..50 {
        let (store, key) = (store.clone(), key.clone());
        hits.spawn(async move { store.hit(&key, Duration::from_secs(60)).await.unwrap().0 });
    }
    let mut counts = hits.join_all().await;
    counts.sort_unstable();
    assert_eq!(counts, (1..=50).collect::<Vec<u64>>());
}

/// Fixed windows: counts climb within one, each hit told the time left;
/// keys are independent.
async fn rate_limits<S: Store>(store: Arc<S>, _clock: Clock) {
    let window = Duration::from_secs(60);
    for n in 1..=3 {
        let (count, left) = store.hit("email:g@example.com", window).await.unwrap();
        assert_eq!(count, n);
        assert!(left <= window && left > window / 2, "{left:?}");
    }
    assert_eq!(store.hit("ip:192.0.2.1", window).await.unwrap().0, 1);
    assert_eq!(store.hit("ip:192.0.2.1", window).await.unwrap().0, 2);
}

/// Bearer token records: read back with their user's stored record (or
/// none), listed oldest first, gone when revoked; one already past its end
/// is not stored.
async fn tokens<S: Store>(store: Arc<S>, clock: Clock) {
    let tess = user("tess@example.com", &["member"]);
    let ghost = user("ghost@example.com", &["member"]);
    store.put_user(&tess).await.unwrap();
    let t = clock.now_ms();
    let long = token_of(&tess, "jti-long", t, t + 600_000);
    let other = token_of(&tess, "jti-other", t + 1, t + 600_000);
    let orphan = token_of(&ghost, "jti-orphan", t + 2, t + 600_000);
    for r in [&long, &other, &orphan] {
        store.put_token(r, t).await.unwrap();
    }
    assert_eq!(
        store.get_token("jti-long").await.unwrap(),
        Some((long.clone(), Some(tess.clone())))
    );
    assert_eq!(
        store.get_token("jti-orphan").await.unwrap(),
        Some((orphan.clone(), None)),
        "a user not in the store comes back as None"
    );
    assert_eq!(store.get_token("jti-unknown").await.unwrap(), None);
    assert_eq!(
        store.list_tokens().await.unwrap(),
        vec![long.clone(), other.clone(), orphan.clone()]
    );

    assert!(store.revoke_token("jti-long").await.unwrap());
    assert_eq!(store.get_token("jti-long").await.unwrap(), None);
    assert!(!store.revoke_token("jti-long").await.unwrap());
    assert_eq!(store.list_tokens().await.unwrap(), vec![other, orphan]);

    let dead = token_of(&tess, "jti-dead", t, t);
    store.put_token(&dead, t).await.unwrap();
    assert_eq!(store.get_token("jti-dead").await.unwrap(), None);
}

async fn ping<S: Store>(store: Arc<S>, _clock: Clock) {
    store.ping().await.unwrap();
}

// --- expiry on a store that runs on the clock (memory) ------------------

/// The idle end slides on a touch and an untouched session dies at it; no
/// session lives past its absolute end. Each to the millisecond.
async fn ends_of_sessions<S: Store>(store: Arc<S>, clock: Clock) {
    let alice = user("alice@example.com", &["admin"]);
    let idle = ms(1500);
    let t0 = clock.now_ms();
    let expires_at = t0 + 3500;
    let (slid, idle_only) = (hash(), hash());
    let record = session_of(&alice, expires_at);
    store
        .create_session(&slid, &record, idle, t0)
        .await
        .unwrap();
    store
        .create_session(&idle_only, &session_of(&alice, t0 + 60_000), idle, t0)
        .await
        .unwrap();

    clock.advance(ms(1000));
    let t = clock.now_ms();
    let (got, idle_end) = store.touch_session(&slid, idle, t).await.unwrap().unwrap();
    assert_eq!(got, record);
    assert_eq!(idle_end, t + 1500, "the idle end slides");

    // The untouched session ends at t0 + idle, not a millisecond later.
    clock.advance(ms(499));
    assert!(listed(&*store, &alice, &idle_only, clock.now_ms()).await);
    clock.advance(ms(1));
    assert!(!listed(&*store, &alice, &idle_only, clock.now_ms()).await);
    let t = clock.now_ms();
    assert!(store
        .touch_session(&idle_only, idle, t)
        .await
        .unwrap()
        .is_none());

    // The touched one lives on to its slid end, t0 + 2500.
    clock.advance(ms(999));
    let t = clock.now_ms();
    let (_, idle_end) = store.touch_session(&slid, idle, t).await.unwrap().unwrap();
    assert_eq!(idle_end, expires_at, "never past the absolute end");

    // Touched 1 s ago, idle-alive for 0.5 s more, but at its absolute end.
    clock.advance(ms(1000));
    assert!(listed(&*store, &alice, &slid, clock.now_ms()).await);
    clock.advance(ms(1));
    let t = clock.now_ms();
    assert_eq!(t, expires_at);
    assert!(!listed(&*store, &alice, &slid, t).await);
    assert!(store.touch_session(&slid, idle, t).await.unwrap().is_none());
    assert!(store.list_sessions(&alice.id, t).await.unwrap().is_empty());
}

/// A link lives exactly its TTL, for peeks and takes alike.
async fn ends_of_links<S: Store>(store: Arc<S>, clock: Clock) {
    let l = link("frank@example.com");
    let (peeked, taken) = (hash(), hash());
    store.put_link(&peeked, &l, ms(300)).await.unwrap();
    store.put_link(&taken, &l, ms(300)).await.unwrap();
    clock.advance(ms(299));
    assert!(store.peek_link(&peeked).await.unwrap().is_some());
    assert_eq!(store.take_link(&taken).await.unwrap(), Some(l.clone()));
    store.put_link(&taken, &l, ms(1)).await.unwrap();
    clock.advance(ms(1));
    assert_eq!(store.peek_link(&peeked).await.unwrap(), None);
    assert_eq!(store.take_link(&peeked).await.unwrap(), None);
    assert_eq!(store.take_link(&taken).await.unwrap(), None);
}

fn passkey(user_id: &str, id: &str, created_at: u64) -> PasskeyRecord {
    PasskeyRecord {
        user_id: user_id.to_owned(),
        id: id.to_owned(),
        name: format!("key {id}"),
        created_at,
        last_used: 0,
        sign_count: 0,
        transports: vec!["internal".into(), "hybrid".into()],
        credential: r#"{"cred":{"cred_id":"x","counter":0}}"#.into(),
    }
}

/// Passkeys are kept per user and credential id, listed oldest first,
/// replaced in place (a rename, a new sign count) and removed one by one.
async fn passkeys<S: Store>(store: Arc<S>, _clock: Clock) {
    let (lea, max) = ("lea-id", "max-id");
    assert!(store.list_passkeys(lea).await.unwrap().is_empty());
    let newer = passkey(lea, "b_2-Z", 2_000);
    let older = passkey(lea, "a1", 1_000);
    store.put_passkey(&newer).await.unwrap();
    store.put_passkey(&older).await.unwrap();
    store.put_passkey(&passkey(max, "a1", 500)).await.unwrap();
    assert_eq!(
        store.list_passkeys(lea).await.unwrap(),
        vec![older.clone(), newer.clone()]
    );
    assert_eq!(
        store.get_passkey(lea, "a1").await.unwrap(),
        Some(older.clone())
    );
    assert_eq!(store.get_passkey(lea, "nope").await.unwrap(), None);
    assert_eq!(store.get_passkey("nobody", "a1").await.unwrap(), None);

    let used = PasskeyRecord {
        name: "Laptop".into(),
        last_used: 3_000,
        sign_count: 7,
        ..older.clone()
    };
    store.put_passkey(&used).await.unwrap();
    assert_eq!(store.get_passkey(lea, "a1").await.unwrap(), Some(used));
    assert_eq!(store.list_passkeys(lea).await.unwrap().len(), 2);

    // Another user's credential of the same id is theirs alone.
    assert!(store.delete_passkey(lea, "a1").await.unwrap());
    assert!(!store.delete_passkey(lea, "a1").await.unwrap());
    assert_eq!(store.list_passkeys(lea).await.unwrap(), vec![newer]);
    assert_eq!(store.list_passkeys(max).await.unwrap().len(), 1);
    assert!(store.delete_passkey(lea, "b_2-Z").await.unwrap());
    assert!(store.list_passkeys(lea).await.unwrap().is_empty());
    assert!(!store.delete_passkey("nobody", "a1").await.unwrap());
}

/// A browser is new to a user once: the next sign-in there is known,
/// another user's first sign-in on it is new again.
async fn devices<S: Store>(store: Arc<S>, _clock: Clock) {
    let (d, other) = (hash(), hash());
    let ttl = Duration::from_secs(3600);
    assert!(store.note_device("ivy", &d, ttl).await.unwrap());
    assert!(!store.note_device("ivy", &d, ttl).await.unwrap());
    assert!(!store.note_device("ivy", &d, ttl).await.unwrap());
    assert!(store.note_device("jon", &d, ttl).await.unwrap());
    assert!(store.note_device("ivy", &other, ttl).await.unwrap());
}

/// A known browser is forgotten exactly its TTL after the last sign-in
/// there (each one renews it).
async fn ends_of_devices<S: Store>(store: Arc<S>, clock: Clock) {
    let d = hash();
    assert!(store.note_device("kim", &d, ms(300)).await.unwrap());
    clock.advance(ms(299));
    assert!(!store.note_device("kim", &d, ms(300)).await.unwrap());
    clock.advance(ms(299));
    assert!(!store.note_device("kim", &d, ms(300)).await.unwrap());
    clock.advance(ms(300));
    assert!(store.note_device("kim", &d, ms(300)).await.unwrap());
}

/// An attempt lives exactly its TTL, and a wrong code does not extend it.
async fn ends_of_attempts<S: Store>(store: Arc<S>, clock: Clock) {
    let code = token();
    let a = AttemptRecord {
        code: code.hash().to_hex(),
        ..attempt()
    };
    let h = hash();
    store.put_attempt(&h, &a, ms(400)).await.unwrap();
    clock.advance(ms(200));
    assert_eq!(
        store.check_code(&h, Some(&hash()), 3).await.unwrap(),
        CodeCheck::Wrong { left: 2 }
    );
    clock.advance(ms(199));
    assert_eq!(store.get_attempt(&h).await.unwrap().unwrap().failures, 1);
    clock.advance(ms(1));
    assert_eq!(store.get_attempt(&h).await.unwrap(), None);
    assert_eq!(
        store.check_code(&h, Some(&code.hash()), 3).await.unwrap(),
        CodeCheck::Missing
    );
}

/// A window lasts exactly its length from its first hit, tells each hit
/// what is left of it, and a new one starts after it.
async fn ends_of_windows<S: Store>(store: Arc<S>, clock: Clock) {
    let window = ms(1000);
    let key = "email:g@example.com";
    assert_eq!(store.hit(key, window).await.unwrap(), (1, window));
    clock.advance(ms(400));
    assert_eq!(
        store.hit("ip:192.0.2.1", window).await.unwrap(),
        (1, window)
    );
    assert_eq!(store.hit(key, window).await.unwrap(), (2, ms(600)));
    clock.advance(ms(599));
    assert_eq!(store.hit(key, window).await.unwrap(), (3, ms(1)));
    clock.advance(ms(1));
    assert_eq!(
        store.hit(key, window).await.unwrap(),
        (1, window),
        "a new window after the old one ended"
    );
    assert_eq!(
        store.hit("ip:192.0.2.1", window).await.unwrap(),
        (2, ms(400))
    );
}

/// A token lives until its `expires_at`: read, listed and revocable until
/// then, gone from all three after.
async fn ends_of_tokens<S: Store>(store: Arc<S>, clock: Clock) {
    let tess = user("tess@example.com", &["member"]);
    let t = clock.now_ms();
    let short = token_of(&tess, "jti-short", t, t + 600);
    let other = token_of(&tess, "jti-other", t + 1, t + 600);
    let long = token_of(&tess, "jti-long", t + 2, t + 600_000);
    for r in [&short, &other, &long] {
        store.put_token(r, t).await.unwrap();
    }
    clock.advance(ms(599));
    assert!(store.get_token("jti-short").await.unwrap().is_some());
    assert_eq!(store.list_tokens().await.unwrap().len(), 3);
    clock.advance(ms(1));
    assert_eq!(store.get_token("jti-short").await.unwrap(), None);
    assert!(
        !store.revoke_token("jti-other").await.unwrap(),
        "already over"
    );
    assert_eq!(store.list_tokens().await.unwrap(), vec![long]);
}

// --- expiry on Redis, which keeps real time ------------------------------

/// Sessions on Redis's own clock: the idle end slides on a touch, an
/// untouched session dies after `idle`, a touched one at its absolute end.
/// About 6 s. Every "still alive" check has at least 1.2 s to spare.
async fn real_time_sessions<S: Store>(store: Arc<S>, clock: Clock) {
    let alice = user("alice@example.com", &["admin"]);
    let idle = ms(3000);
    let t0 = clock.now_ms();
    let expires_at = t0 + 6000;
    let (slid, idle_only) = (hash(), hash());
    let record = session_of(&alice, expires_at);
    store
        .create_session(&slid, &record, idle, t0)
        .await
        .unwrap();
    store
        .create_session(&idle_only, &session_of(&alice, t0 + 60_000), idle, t0)
        .await
        .unwrap();
    // Both keys were written before `start`: each ends by start + idle.
    let start = Instant::now();

    sleep_until(start, 1500).await;
    let t = clock.now_ms();
    let (got, idle_end) = store.touch_session(&slid, idle, t).await.unwrap().unwrap();
    assert_eq!(got, record);
    assert_eq!(idle_end, t + 3000, "the idle end slides");

    // Past the untouched session's idle end, well within the touched one's.
    sleep_until(start, 3300).await;
    let t = clock.now_ms();
    assert!(store
        .touch_session(&idle_only, idle, t)
        .await
        .unwrap()
        .is_none());
    let (_, idle_end) = store.touch_session(&slid, idle, t).await.unwrap().unwrap();
    assert_eq!(idle_end, expires_at, "never past the absolute end");

    // Past the absolute end (t0 + 6000), within the idle end it would have
    // had (touched at 3300 or later: 6300).
    sleep_until(start, 6100).await;
    let t = clock.now_ms();
    assert!(store.touch_session(&slid, idle, t).await.unwrap().is_none());
    assert!(store.list_sessions(&alice.id, t).await.unwrap().is_empty());
}

/// Links, attempts (a wrong code keeping the TTL), rate-limit windows and
/// tokens on Redis's own clock: alive within their 2 s, gone after. About
/// 2.3 s; 2 s to spare for the checks that they are still there.
async fn real_time_ttls<S: Store>(store: Arc<S>, clock: Clock) {
    let ttl = ms(2000);
    let l = link("frank@example.com");
    let code = token();
    let a = AttemptRecord {
        code: code.hash().to_hex(),
        ..attempt()
    };
    let (lh, ah, key) = (hash(), hash(), format!("email:{}", hash().to_hex()));
    let tess = user("tess@example.com", &["member"]);
    let t = clock.now_ms();
    let tok = token_of(&tess, "jti-real-time", t, t + 2000);
    store.put_link(&lh, &l, ttl).await.unwrap();
    store.put_attempt(&ah, &a, ttl).await.unwrap();
    assert_eq!(store.hit(&key, ttl).await.unwrap().0, 1);
    store.put_token(&tok, t).await.unwrap();
    // Everything was written before `start`: it all ends by start + 2 s.
    let start = Instant::now();

    assert_eq!(store.peek_link(&lh).await.unwrap(), Some(l));
    assert_eq!(
        store.check_code(&ah, Some(&hash()), 3).await.unwrap(),
        CodeCheck::Wrong { left: 2 }
    );
    let (count, left) = store.hit(&key, ttl).await.unwrap();
    assert_eq!(count, 2);
    assert!(left <= ttl && left > Duration::ZERO, "{left:?}");
    assert!(store.get_token("jti-real-time").await.unwrap().is_some());

    sleep_until(start, 2300).await;
    assert_eq!(store.peek_link(&lh).await.unwrap(), None);
    assert_eq!(store.take_link(&lh).await.unwrap(), None);
    assert_eq!(store.get_attempt(&ah).await.unwrap(), None, "TTL kept");
    assert_eq!(
        store.check_code(&ah, Some(&code.hash()), 3).await.unwrap(),
        CodeCheck::Missing
    );
    assert_eq!(
        store.hit(&key, ttl).await.unwrap().0,
        1,
        "a new window after the old one ended"
    );
    assert_eq!(store.get_token("jti-real-time").await.unwrap(), None);
    assert!(store.list_tokens().await.unwrap().is_empty());
}

// --- running them against each store ---------------------------------

/// `everywhere`: on every store, with no time passing. `on_the_clock`: the
/// memory and embedded stores, on a manual clock the check moves.
/// `real_time`: Redis and the cluster only, on the system clock.
macro_rules! conformance {
    (
        everywhere: [$($check:ident),* $(,)?],
        on_the_clock: [$($clocked:ident),* $(,)?],
        real_time: [$($real:ident),* $(,)?] $(,)?
    ) => {
        mod memory {
            use latchkey::obs::clock::Clock;
            use latchkey::store::MemoryStore;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $check() {
                    let clock = Clock::manual(super::START);
                    let store = std::sync::Arc::new(MemoryStore::new(clock.clone()));
                    super::$check(store, clock).await;
                }
            )*
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $clocked() {
                    let clock = Clock::manual(super::START);
                    let store = std::sync::Arc::new(MemoryStore::new(clock.clone()));
                    super::$clocked(store, clock).await;
                }
            )*
        }
        mod embedded {
            use latchkey::obs::clock::Clock;
            use latchkey::store::EmbeddedStore;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $check() {
                    let dir = crate::support::temp_dir();
                    let clock = Clock::manual(super::START);
                    let store = EmbeddedStore::open(&dir.path().join("store"), clock.clone())
                        .expect("embedded store");
                    super::$check(std::sync::Arc::new(store), clock).await;
                }
            )*
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $clocked() {
                    let dir = crate::support::temp_dir();
                    let clock = Clock::manual(super::START);
                    let store = EmbeddedStore::open(&dir.path().join("store"), clock.clone())
                        .expect("embedded store");
                    super::$clocked(std::sync::Arc::new(store), clock).await;
                }
            )*
        }
        mod redis {
            use latchkey::obs::clock::Clock;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $check() {
                    let server = crate::support::redis::RedisServer::start();
                    let store = latchkey::store::RedisStore::new(&server.url(), super::PREFIX)
                        .expect("redis store");
                    super::$check(std::sync::Arc::new(store), Clock::system()).await;
                }
            )*
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $real() {
                    let server = crate::support::redis::RedisServer::start();
                    let store = latchkey::store::RedisStore::new(&server.url(), super::PREFIX)
                        .expect("redis store");
                    super::$real(std::sync::Arc::new(store), Clock::system()).await;
                }
            )*
        }
        mod cluster {
            use latchkey::obs::clock::Clock;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $check() {
                    let cluster = crate::support::redis_ha::Cluster::start();
                    let target = latchkey::store::redis::Target::Cluster(cluster.urls());
                    let store = latchkey::store::RedisStore::open(&target, super::PREFIX, None)
                        .expect("redis store");
                    super::$check(std::sync::Arc::new(store), Clock::system()).await;
                }
            )*
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $real() {
                    let cluster = crate::support::redis_ha::Cluster::start();
                    let target = latchkey::store::redis::Target::Cluster(cluster.urls());
                    let store = latchkey::store::RedisStore::open(&target, super::PREFIX, None)
                        .expect("redis store");
                    super::$real(std::sync::Arc::new(store), Clock::system()).await;
                }
            )*
        }
    };
}

conformance!(
    everywhere: [
        sessions,
        user_sessions,
        users,
        links,
        oauth,
        attempts,
        codes_under_fire,
        rate_limits,
        hits_under_fire,
        tokens,
        passkeys,
        devices,
        ping,
    ],
    on_the_clock: [
        ends_of_sessions,
        ends_of_links,
        ends_of_attempts,
        ends_of_windows,
        ends_of_tokens,
        ends_of_devices,
    ],
    real_time: [real_time_sessions, real_time_ttls],
);

// --- Redis only --------------------------------------------------------

fn redis_store(server: &RedisServer) -> RedisStore {
    RedisStore::new(&server.url(), PREFIX).expect("redis store")
}

/// Every key in the server with its PTTL (-1: none).
async fn keys_and_ttls(server: &RedisServer) -> Vec<(String, i64)> {
    let client = ::redis::Client::open(server.url()).unwrap();
    let mut con = client.get_multiplexed_async_connection().await.unwrap();
    let keys: Vec<String> = ::redis::cmd("KEYS")
        .arg("*")
        .query_async(&mut con)
        .await
        .unwrap();
    let mut out = Vec::new();
    for k in keys {
        let ttl: i64 = ::redis::cmd("PTTL")
            .arg(&k)
            .query_async(&mut con)
            .await
            .unwrap();
        out.push((k, ttl));
    }
    out
}

/// Stores one of everything; returns the raw tokens used.
async fn fill(store: &RedisStore) -> Vec<Secret> {
    let hana = user("hana@example.com", &["member"]);
    store.put_user(&hana).await.unwrap();
    let (s, l, a) = (token(), token(), token());
    let idle = Duration::from_secs(600);
    let t = now();
    store
        .create_session(&s.hash(), &session_of(&hana, t + 3_600_000), idle, t)
        .await
        .unwrap();
    store
        .touch_session(&s.hash(), idle, now())
        .await
        .unwrap()
        .unwrap();
    store
        .put_link(&l.hash(), &link(&hana.email), Duration::from_secs(600))
        .await
        .unwrap();
    store
        .put_attempt(&a.hash(), &attempt(), Duration::from_secs(600))
        .await
        .unwrap();
    store.check_code(&a.hash(), Some(&hash()), 3).await.unwrap();
    store
        .hit("email:hana@example.com", Duration::from_secs(60))
        .await
        .unwrap();
    store
        .hit("email:hana@example.com", Duration::from_secs(60))
        .await
        .unwrap();
    store
        .put_token(&token_of(&hana, "jti-hana", t, t + 3_600_000), t)
        .await
        .unwrap();
    vec![s, l, a]
}

#[tokio::test]
async fn redis_keys_hold_only_hashes() {
    let server = RedisServer::start();
    let store = redis_store(&server);
    let tokens = fill(&store).await;
    let keys = keys_and_ttls(&server).await;
    assert!(keys.len() >= 7, "{keys:?}");
    let client = ::redis::Client::open(server.url()).unwrap();
    let mut con = client.get_multiplexed_async_connection().await.unwrap();
    for (key, _) in &keys {
        assert!(key.starts_with(PREFIX), "{key}");
        let dump: Vec<u8> = ::redis::cmd("DUMP")
            .arg(key)
            .query_async(&mut con)
            .await
            .unwrap();
        let dump = String::from_utf8_lossy(&dump);
        for t in &tokens {
            assert!(!key.contains(t.expose()), "raw token in key {key}");
            assert!(
                !dump.contains(t.expose()),
                "raw token in the value of {key}"
            );
        }
    }
    for t in &tokens {
        let hex = t.hash().to_hex();
        assert!(
            keys.iter().any(|(k, _)| k.ends_with(&hex)),
            "no key for a hash"
        );
    }
}

/// Every key latchkey writes, the indexes included, has a TTL, also after
/// the operations that rewrite an index (listing, revoking, adding).
#[tokio::test]
async fn redis_keys_all_expire() {
    let server = RedisServer::start();
    let store = redis_store(&server);
    fill(&store).await;
    let hana = user("hana@example.com", &["member"]);
    let (idle, t) = (Duration::from_secs(600), now());
    let gone = hash();
    store
        .create_session(&gone, &session_of(&hana, t + 60_000), idle, t)
        .await
        .unwrap();
    assert!(store.revoke_session(&gone).await.unwrap());
    assert_eq!(store.list_sessions(&hana.id, now()).await.unwrap().len(), 1);
    let spare = token_of(&hana, "jti-spare", t, t + 60_000);
    store.put_token(&spare, t).await.unwrap();
    assert!(store.revoke_token("jti-spare").await.unwrap());
    assert_eq!(store.list_tokens().await.unwrap().len(), 1);
    store
        .note_device(&hana.id, &hash(), Duration::from_secs(60))
        .await
        .unwrap();
    let keys = keys_and_ttls(&server).await;
    let expiring = ["s:", "us:", "l:", "a:", "rl:", "t:", "tokens", "dev:"];
    let permanent = ["u:", "users", "pk:"];
    for (key, ttl) in &keys {
        let rest = key.strip_prefix(PREFIX).unwrap();
        if expiring.iter().any(|p| rest.starts_with(p)) {
            assert!(*ttl > 0, "{key} has no TTL ({ttl})");
        } else {
            assert!(
                permanent.iter().any(|p| rest.starts_with(p)),
                "unexpected key {key}"
            );
        }
    }
    for kind in expiring {
        assert!(
            keys.iter()
                .any(|(k, _)| k.starts_with(&format!("{PREFIX}{kind}"))),
            "no {kind} key written"
        );
    }
}

async fn redis_con(server: &RedisServer) -> ::redis::aio::MultiplexedConnection {
    let client = ::redis::Client::open(server.url()).unwrap();
    client.get_multiplexed_async_connection().await.unwrap()
}

/// How many keys match `pattern`, and how many members `index` holds.
async fn live_and_indexed(server: &RedisServer, pattern: &str, index: &str) -> (usize, usize) {
    let mut con = redis_con(server).await;
    let keys: Vec<String> = ::redis::cmd("KEYS")
        .arg(pattern)
        .query_async(&mut con)
        .await
        .unwrap();
    let members: usize = ::redis::cmd("ZCARD")
        .arg(index)
        .query_async(&mut con)
        .await
        .unwrap();
    (keys.len(), members)
}

/// Steady issuance does not grow the indexes: 8 tokens and 8 sessions of
/// one user every 300 ms, each living 1 s, for 4 s. After every batch the
/// token index and the user's session index hold at most the live records
/// plus one batch (those that ended since the last trim), not all 120.
#[tokio::test]
async fn redis_indexes_stay_bounded_by_what_is_live() {
    let server = RedisServer::start();
    let store = redis_store(&server);
    let tess = user("tess@example.com", &["member"]);
    let idle = Duration::from_secs(600);
    let (mut most_tokens, mut most_sessions) = (0, 0);
    for round in 0..15 {
        let t = now();
        for i in 0..8 {
            let jti = format!("jti-{round}-{i}");
            store
                .put_token(&token_of(&tess, &jti, t, t + 1000), t)
                .await
                .unwrap();
            store
                .create_session(&hash(), &session_of(&tess, t + 1000), idle, t)
                .await
                .unwrap();
        }
        let (live, indexed) =
            live_and_indexed(&server, &format!("{PREFIX}t:*"), &format!("{PREFIX}tokens")).await;
        assert!(
            indexed <= live + 8,
            "round {round}: {indexed} jtis indexed, {live} tokens live"
        );
        most_tokens = most_tokens.max(indexed);
        let (live, indexed) = live_and_indexed(
            &server,
            &format!("{PREFIX}s:*"),
            &format!("{PREFIX}us:{}", tess.id),
        )
        .await;
        assert!(
            indexed <= live + 8,
            "round {round}: {indexed} sessions indexed, {live} live"
        );
        most_sessions = most_sessions.max(indexed);
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert!(
        most_tokens <= 48 && most_sessions <= 48,
        "{most_tokens} {most_sessions}"
    );
}

/// Indexes an older latchkey wrote as plain sets are turned into sorted
/// sets on first touch, losing no member and keeping a TTL: the session in
/// one is still listed and revoked with its user's, the token still listed.
#[tokio::test]
async fn redis_old_set_indexes_are_upgraded_in_place() {
    let server = RedisServer::start();
    let store = redis_store(&server);
    let mut con = redis_con(&server).await;
    let ola = user("ola@example.com", &[]);
    let (h, t) = (hash(), now());
    let record = session_of(&ola, t + 3_600_000);
    let token = token_of(&ola, "jti-old", t, t + 3_600_000);
    let index = format!("{PREFIX}us:{}", ola.id);
    let tokens = format!("{PREFIX}tokens");
    ::redis::pipe()
        .cmd("SET")
        .arg(format!("{PREFIX}s:{}", h.to_hex()))
        .arg(serde_json::to_string(&record).unwrap())
        .arg("PX")
        .arg(600_000)
        .cmd("SADD")
        .arg(&index)
        .arg(h.to_hex())
        .cmd("PEXPIRE")
        .arg(&index)
        .arg(3_600_000)
        .cmd("SET")
        .arg(format!("{PREFIX}t:jti-old"))
        .arg(serde_json::to_string(&token).unwrap())
        .arg("PX")
        .arg(3_600_000)
        .cmd("SADD")
        .arg(&tokens)
        .arg("jti-old")
        .cmd("PEXPIRE")
        .arg(&tokens)
        .arg(3_600_000)
        .exec_async(&mut con)
        .await
        .unwrap();

    let listed = store.list_sessions(&ola.id, now()).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(store.list_tokens().await.unwrap(), vec![token]);
    for key in [&index, &tokens] {
        let kind: String = ::redis::cmd("TYPE")
            .arg(key)
            .query_async(&mut con)
            .await
            .unwrap();
        assert_eq!(kind, "zset", "{key}");
        let ttl: i64 = ::redis::cmd("PTTL")
            .arg(key)
            .query_async(&mut con)
            .await
            .unwrap();
        assert!(ttl > 3_600_000, "{key} keeps a TTL: {ttl}");
    }
    // A new session joins the upgraded index; both are revoked together.
    store
        .create_session(&hash(), &record, Duration::from_secs(600), now())
        .await
        .unwrap();
    assert_eq!(store.revoke_user_sessions(&ola.id).await.unwrap(), 2);
    assert!(store
        .touch_session(&h, Duration::from_secs(600), now())
        .await
        .unwrap()
        .is_none());
}

/// Fails within `limit`, and fails rather than hangs.
async fn fails_fast<T: std::fmt::Debug>(
    what: &str,
    call: impl std::future::Future<Output = Result<T, StoreError>>,
) {
    let started = Instant::now();
    let outcome = tokio::time::timeout(Duration::from_secs(5), call).await;
    let took = started.elapsed();
    assert!(matches!(outcome, Ok(Err(_))), "{what}: {outcome:?}");
    assert!(took < Duration::from_secs(3), "{what} took {took:?}");
}

/// Retries `ping` until it answers, as readiness checks would.
async fn comes_back(store: &RedisStore) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match store.ping().await {
            Ok(()) => return,
            Err(e) if Instant::now() > deadline => panic!("redis never came back: {e}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_outages_fail_fast_and_heal() {
    let mut server = RedisServer::start();
    server.stop();
    // Built while Redis is down: construction does not fail or wait.
    let started = Instant::now();
    let store = redis_store(&server);
    assert!(started.elapsed() < Duration::from_millis(100));
    fails_fast("ping", store.ping()).await;
    let h = hash();
    let ivan = user("ivan@example.com", &[]);
    let idle = Duration::from_secs(600);
    let record = session_of(&ivan, now() + 3_600_000);
    fails_fast("create", store.create_session(&h, &record, idle, now())).await;
    fails_fast("touch", store.touch_session(&h, idle, now())).await;

    // Redis comes up: the same store works, nothing rebuilt.
    server.restart();
    comes_back(&store).await;
    store
        .create_session(&h, &record, idle, now())
        .await
        .unwrap();
    assert!(store
        .touch_session(&h, idle, now())
        .await
        .unwrap()
        .is_some());

    // Redis goes away after the connection was made, then returns.
    server.stop();
    fails_fast("touch while down", store.touch_session(&h, idle, now())).await;
    fails_fast("take while down", store.take_link(&h)).await;
    server.restart();
    comes_back(&store).await;
    assert!(
        store
            .touch_session(&h, idle, now())
            .await
            .unwrap()
            .is_none(),
        "a fresh server holds no session"
    );
    store
        .create_session(&h, &record, idle, now())
        .await
        .unwrap();
    assert!(store
        .touch_session(&h, idle, now())
        .await
        .unwrap()
        .is_some());
}

/// Redis restarts (empty) with nobody noticing, or after calls failed
/// while it was down: 100 ms after it accepts connections again, the very
/// first calls succeed, the non-idempotent ones (HIT, GETDEL, CHECK_CODE)
/// and the multi-command pipeline (`touch_session`) included.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_restarts_fail_no_call_once_it_is_back() {
    let mut server = RedisServer::start();
    let store = redis_store(&server);
    let idle = Duration::from_secs(600);
    let ivan = user("ivan@example.com", &[]);
    for round in 0..6 {
        store.ping().await.unwrap();
        if round % 2 == 0 {
            server.restart(); // quiet: no call while it is down
        } else {
            server.stop();
            fails_fast("hit while down", store.hit("k", Duration::from_secs(60))).await;
            server.restart();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        let (count, _) = store
            .hit(&format!("k{round}"), Duration::from_secs(60))
            .await
            .unwrap_or_else(|e| panic!("round {round}: the first call failed: {e}"));
        assert_eq!(count, 1);
        let h = hash();
        store
            .create_session(&h, &session_of(&ivan, now() + 60_000), idle, now())
            .await
            .unwrap();
        assert!(store
            .touch_session(&h, idle, now())
            .await
            .unwrap()
            .is_some());
    }
}

/// A busy session is written once per slide step, not on every request
/// (Redis, its replicas and its AOF see one PEXPIRE), and its idle end
/// still moves once the step has passed. Real time: the step is measured
/// by the key's PTTL, so the caller's clock cannot skip it; the 50 touches
/// have the whole 1.2 s step, room for a loaded machine. Real time: the step is measured
/// by the key's PTTL, so a caller's clock cannot skip it. 50 touches get
/// the whole 1.2 s step, a loaded machine's margin.
#[tokio::test]
async fn redis_touches_write_once_per_slide_step() {
    async fn pexpires(server: &RedisServer) -> u64 {
        let client = ::redis::Client::open(server.url()).unwrap();
        let mut con = client.get_multiplexed_async_connection().await.unwrap();
        let info: String = ::redis::cmd("INFO")
            .arg("commandstats")
            .query_async(&mut con)
            .await
            .unwrap();
        info.lines()
            .find_map(|l| l.strip_prefix("cmdstat_pexpire:calls="))
            .map_or(0, |rest| rest.split(',').next().unwrap().parse().unwrap())
    }
    let server = RedisServer::start();
    let store = redis_store(&server);
    let idle = Duration::from_secs(120); // a step of 1.2 s
    let h = hash();
    let record = session_of(&user("kim@example.com", &[]), now() + 3_600_000);
    store
        .create_session(&h, &record, idle, now())
        .await
        .unwrap();
    let before = pexpires(&server).await;
    for _ in 0..50 {
        let (_, end) = store.touch_session(&h, idle, now()).await.unwrap().unwrap();
        assert!(end > now() + 118_000, "{end}");
    }
    assert_eq!(pexpires(&server).await, before, "no write within the step");

    tokio::time::sleep(Duration::from_millis(1300)).await;
    let t = now();
    let (_, end) = store.touch_session(&h, idle, t).await.unwrap().unwrap();
    assert_eq!(end, t + 120_000, "slid once the step passed");
    assert_eq!(pexpires(&server).await, before + 1);
    let left: i64 = ::redis::cmd("PTTL")
        .arg(format!("{PREFIX}s:{}", h.to_hex()))
        .query_async(
            &mut ::redis::Client::open(server.url())
                .unwrap()
                .get_multiplexed_async_connection()
                .await
                .unwrap(),
        )
        .await
        .unwrap();
    assert!(left > 118_000, "Redis holds the new idle end: {left} ms");
}

/// A Redis that accepts connections but never answers (hung, or a wrong
/// service on the port) costs a request at most a few seconds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_silence_times_out() {
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("redis://{}/0", silent.local_addr().unwrap());
    let store = RedisStore::new(&url, PREFIX).unwrap();
    fails_fast("ping a silent port", store.ping()).await;

    // Connected, then frozen: commands time out, and it heals on resume.
    let server = RedisServer::start();
    let store = redis_store(&server);
    store.ping().await.unwrap();
    server.pause();
    let h = hash();
    fails_fast(
        "touch while frozen",
        store.touch_session(&h, Duration::from_secs(60), now()),
    )
    .await;
    server.resume();
    comes_back(&store).await;
    store.hit("k", Duration::from_secs(60)).await.unwrap();
    assert_eq!(store.hit("k", Duration::from_secs(60)).await.unwrap().0, 2);
}

#[tokio::test]
async fn redis_bad_url_is_refused_at_once() {
    assert!(RedisStore::new("not a url", PREFIX).is_err());
    assert!(RedisStore::new("http://127.0.0.1:6379", PREFIX).is_err());
}

/// cjson rewrites attempts in `check_code`; serde must still read them.
#[tokio::test]
async fn redis_attempts_survive_script_rewrites() {
    let server = RedisServer::start();
    let store = redis_store(&server);
    let h = hash();
    let a = AttemptRecord {
        link: "l/\"quoted\"\\".into(),
        code: "c\u{e9}\u{1F511}".into(),
        failures: 0,
    };
    store
        .put_attempt(&h, &a, Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(
        store.check_code(&h, Some(&hash()), 3).await.unwrap(),
        CodeCheck::Wrong { left: 2 }
    );
    let want = AttemptRecord { failures: 1, ..a };
    assert_eq!(store.get_attempt(&h).await.unwrap(), Some(want.clone()));
    store.check_code(&h, None, 3).await.unwrap();
    assert_eq!(
        store.check_code(&h, None, 3).await.unwrap(),
        CodeCheck::Voided(AttemptRecord {
            failures: 3,
            ..want
        })
    );
}

/// A record that does not decode is an error, never a missing session.
#[tokio::test]
async fn redis_corrupt_records_are_errors() {
    let server = RedisServer::start();
    let store = redis_store(&server);
    let client = ::redis::Client::open(server.url()).unwrap();
    let mut con = client.get_multiplexed_async_connection().await.unwrap();
    let (s, l) = (hash(), hash());
    for (key, value) in [
        (format!("{PREFIX}s:{}", s.to_hex()), "{not json"),
        (format!("{PREFIX}l:{}", l.to_hex()), "[]"),
    ] {
        ::redis::cmd("SET")
            .arg(key)
            .arg(value)
            .arg("PX")
            .arg(60_000)
            .exec_async(&mut con)
            .await
            .unwrap();
    }
    let touched = store
        .touch_session(&s, Duration::from_secs(60), now())
        .await;
    assert!(
        matches!(touched, Err(StoreError::Corrupt(_))),
        "{touched:?}"
    );
    let peeked = store.peek_link(&l).await;
    assert!(matches!(peeked, Err(StoreError::Corrupt(_))), "{peeked:?}");
}
