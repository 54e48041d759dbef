//! The Lua scripts that make one Redis operation one atomic round trip
//! (storing a record with its index, revoking, listing, judging a code,
//! counting a hit, reading a token with its user). Each documents its
//! KEYS and ARGV. The ones that touch more than one key, or build keys
//! from what they read, run on one node only (URL or sentinel); a cluster
//! runs only the single-key ones (`INDEX_SESSION`, `INDEX_MEMBERS`,
//! `UNINDEX`, `CHECK_CODE`, `HIT`) and splits the rest into single-key
//! steps (see `sessions.rs`, `tokens.rs`).

use redis::Script;

pub(super) struct Scripts {
    pub(super) put_indexed: Script,
    pub(super) index_session: Script,
    pub(super) index_members: Script,
    pub(super) unindex: Script,
    pub(super) revoke_session: Script,
    pub(super) list_sessions: Script,
    pub(super) revoke_user_sessions: Script,
    pub(super) check_code: Script,
    pub(super) hit: Script,
    pub(super) get_token: Script,
    pub(super) revoke_token: Script,
    pub(super) list_tokens: Script,
}

impl Scripts {
    pub(super) fn new() -> Scripts {
        let indexed = |body: &str| Script::new(&format!("{SORTED}{body}"));
        Scripts {
            put_indexed: indexed(PUT_INDEXED),
            index_session: indexed(INDEX_SESSION),
            index_members: indexed(INDEX_MEMBERS),
            unindex: indexed(UNINDEX),
            revoke_session: indexed(REVOKE_SESSION),
            list_sessions: indexed(LIST_SESSIONS),
            revoke_user_sessions: indexed(REVOKE_USER_SESSIONS),
            check_code: Script::new(CHECK_CODE),
            hit: Script::new(HIT),
            get_token: Script::new(GET_TOKEN),
            revoke_token: indexed(REVOKE_TOKEN),
            list_tokens: indexed(LIST_TOKENS),
        }
    }
}

/// Prepended to every script that touches an index (`{p}us:{user_id}`,
/// `{p}tokens`). Each index is a sorted set of members scored by their
/// absolute end (Unix ms), trimmed of ended members whenever one is added,
/// so it holds what is alive, not everything ever issued. An index an
/// older latchkey wrote is a plain set: `sorted` turns it into the sorted
/// set in place, scoring every member by the set's own end (it outlived
/// all of them) plus an hour for clock skew, and keeps a TTL on it. One
/// key, so a cluster runs it too.
const SORTED: &str = r"
local function sorted(key)
  if redis.call('TYPE', key).ok ~= 'set' then return end
  local members = redis.call('SMEMBERS', key)
  local left = redis.call('PTTL', key)
  if left < 0 then left = 0 end
  local t = redis.call('TIME')
  local score = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) + left + 3600000
  redis.call('DEL', key)
  for _, m in ipairs(members) do redis.call('ZADD', key, score, m) end
  if #members > 0 then redis.call('PEXPIRE', key, left + 3600000) end
end
";

/// KEYS[1] a record, KEYS[2] the index of it; ARGV: record JSON, its TTL
/// ms, how long it may live at most (ms), its member name in the index,
/// now (Unix ms), its absolute end (Unix ms, the score). Drops the index's
/// ended members; the index lives at least as long as its longest-lived
/// member. Stores sessions (in their user's index) and API tokens (in the
/// token index).
const PUT_INDEXED: &str = r"
sorted(KEYS[2])
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[5])
redis.call('ZADD', KEYS[2], ARGV[6], ARGV[4])
local left = redis.call('PTTL', KEYS[2])
if left < tonumber(ARGV[3]) then
  redis.call('PEXPIRE', KEYS[2], ARGV[3])
end
return 1
";

/// KEYS[1] an index; ARGV: member, ms until its absolute end, now (Unix
/// ms), its absolute end (Unix ms). The cluster's half of `PUT_INDEXED`
/// (run before the record is stored).
const INDEX_SESSION: &str = r"
sorted(KEYS[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[3])
redis.call('ZADD', KEYS[1], ARGV[4], ARGV[1])
local left = redis.call('PTTL', KEYS[1])
if left < tonumber(ARGV[2]) then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 1
";

/// KEYS[1] an index. Its members (for a cluster's single-key steps).
const INDEX_MEMBERS: &str = r"
sorted(KEYS[1])
return redis.call('ZRANGE', KEYS[1], 0, -1)
";

/// KEYS[1] an index; ARGV: member. Removes it (for a cluster's steps).
const UNINDEX: &str = r"
sorted(KEYS[1])
return redis.call('ZREM', KEYS[1], ARGV[1])
";

/// KEYS[1] session; ARGV: user index prefix, session hash. Returns 1 if
/// the session existed.
const REVOKE_SESSION: &str = r"
local raw = redis.call('GET', KEYS[1])
if not raw then return 0 end
redis.call('DEL', KEYS[1])
local ok, rec = pcall(cjson.decode, raw)
if ok and type(rec) == 'table' and type(rec.user_id) == 'string' then
  sorted(ARGV[1] .. rec.user_id)
  redis.call('ZREM', ARGV[1] .. rec.user_id, ARGV[2])
end
return 1
";

/// KEYS[1] user index; ARGV: session key prefix. Returns a flat list of
/// {hash, session JSON, PTTL} and drops dead hashes from the index.
const LIST_SESSIONS: &str = r"
sorted(KEYS[1])
local out = {}
for _, h in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  local k = ARGV[1] .. h
  local raw = redis.call('GET', k)
  if raw then
    out[#out + 1] = h
    out[#out + 1] = raw
    out[#out + 1] = tostring(redis.call('PTTL', k))
  else
    redis.call('ZREM', KEYS[1], h)
  end
end
return out
";

/// KEYS[1] user index; ARGV: session key prefix. Atomic, so a session
/// created meanwhile cannot slip out of the index and survive.
const REVOKE_USER_SESSIONS: &str = r"
sorted(KEYS[1])
local n = 0
for _, h in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  n = n + redis.call('DEL', ARGV[1] .. h)
end
redis.call('DEL', KEYS[1])
return n
";

/// KEYS[1] attempt; ARGV: the typed code's hash (hex, "" for no code),
/// the most failures allowed. Compares, counts and deletes in one atomic
/// step (one key, so a cluster runs it too). Returns {verdict, tries left,
/// attempt JSON or false}: 0 no attempt, 1 right (deleted), 2 wrong
/// (counted, KEEPTTL keeps the attempt's remaining lifetime), 3 voided
/// (deleted: the limit is reached). The comparison reads every byte of the
/// typed hash whatever matches (constant time, like `TokenHash`'s). The
/// record is rewritten by cjson, which keeps 14 significant digits of
/// numbers: fine for its fields (strings and a small count), worth knowing
/// before adding more.
const CHECK_CODE: &str = r"
local raw = redis.call('GET', KEYS[1])
if not raw then return {0, 0, false} end
local rec = cjson.decode(raw)
local max = tonumber(ARGV[2])
local failures = tonumber(rec.failures) or 0
if failures >= max then
  redis.call('DEL', KEYS[1])
  return {3, 0, raw}
end
local typed = ARGV[1]
local stored = type(rec.code) == 'string' and rec.code or ''
local diff = 0
if #typed ~= #stored or #typed == 0 then diff = 1 end
for i = 1, #typed do
  diff = bit.bor(diff, bit.bxor(string.byte(typed, i), string.byte(stored, i) or 0))
end
if diff == 0 then
  redis.call('DEL', KEYS[1])
  return {1, 0, raw}
end
failures = failures + 1
if failures >= max then
  redis.call('DEL', KEYS[1])
  rec.failures = failures
  return {3, 0, cjson.encode(rec)}
end
rec.failures = failures
redis.call('SET', KEYS[1], cjson.encode(rec), 'KEEPTTL')
return {2, max - failures, false}
";

/// KEYS[1] token; ARGV: user key prefix. Returns nil, or {token JSON, user
/// JSON or nil}. The user key is not declared in KEYS: on a cluster the
/// prefix is empty and the caller reads the user itself. A record that does
/// not decode is returned as is for the caller to report.
const GET_TOKEN: &str = r"
local raw = redis.call('GET', KEYS[1])
if not raw then return nil end
local ok, rec = pcall(cjson.decode, raw)
if not ok or type(rec) ~= 'table' or type(rec.user_id) ~= 'string' then
  return {raw, false}
end
return {raw, redis.call('GET', ARGV[1] .. rec.user_id)}
";

/// KEYS[1] token, KEYS[2] token index; ARGV: jti. Returns 1 if it existed.
const REVOKE_TOKEN: &str = r"
sorted(KEYS[2])
local n = redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[1])
return n
";

/// KEYS[1] token index; ARGV: token key prefix. Returns every live token's
/// JSON and drops dead jtis from the index.
const LIST_TOKENS: &str = r"
sorted(KEYS[1])
local out = {}
for _, j in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  local raw = redis.call('GET', ARGV[1] .. j)
  if raw then
    out[#out + 1] = raw
  else
    redis.call('ZREM', KEYS[1], j)
  end
end
return out
";

/// KEYS[1] counter; ARGV: window ms. Returns {count, ms left}. A counter
/// found without a TTL (it cannot happen, but would block forever) gets one.
const HIT: &str = r"
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
local left = redis.call('PTTL', KEYS[1])
if left < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  left = tonumber(ARGV[1])
end
return {n, left}
";
