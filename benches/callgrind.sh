#!/usr/bin/env bash
# Instructions per request, counted by valgrind's callgrind: repeatable on
# a shared, noisy machine where wall time is not. Run by hand, never in CI.
#
#   benches/callgrind.sh                          # release build, 500 requests per case
#   LATCHKEY_BIN=/tmp/latchkey-old benches/callgrind.sh   # the same for another build
#   NOKEYS=1 benches/callgrind.sh                 # without [assertion] keys (nothing signed)
#   LATCHKEY_LOG=warn benches/callgrind.sh        # without the per-request tracing span
#   KEEP=/tmp/cg benches/callgrind.sh             # keeps each case's dump as /tmp/cg/CASE.out
#       (then: callgrind_annotate --inclusive=yes /tmp/cg/forward-auth.out | head -60)
#
# Starts redis-server and the bare upstream (benches/tools/loadbench.rs),
# latchkey under `valgrind --tool=callgrind` (Redis store, an ES256
# assertion key, the session cache on), one session and one bearer token;
# then per case sends 50 requests to warm up, zeroes the counters
# (`callgrind_control -z`), sends N requests on one keep-alive connection,
# dumps (`callgrind_control -d`) and prints the instructions per request
# (every thread of latchkey, background tasks included):
#
#   forward-auth  GET /.latchkey/auth, cookie + X-Forwarded-* + a browser User-Agent
#   bearer        the same with Authorization: Bearer instead of the cookie
#   proxy         signed-in GET proxied to the bare server
#   public        anonymous GET of a public path, proxied
#   sign-in       anonymous browser GET answered with the 302 to sign-in
#   bare          the forward-auth request sent to the bare hyper server
#                 (loadbench upstream, also under callgrind): hyper's own
#                 floor for one keep-alive request, the part of every case
#                 above that is not latchkey's
#
# Needs: valgrind, redis-server, python3.
set -euo pipefail
N=${N:-500}
here=$(cd "$(dirname "$0")/.." && pwd)
for p in valgrind callgrind_control redis-server python3; do
    command -v "$p" >/dev/null || { echo "callgrind.sh: $p is missing (apt-get install valgrind redis-server python3)" >&2; exit 1; }
done
if [[ -z "${LATCHKEY_BIN:-}" || -z "${LOADBENCH_BIN:-}" ]]; then
    (cd "$here" && cargo build --release --bin latchkey --example loadbench) >&2
fi
LK=${LATCHKEY_BIN:-$here/target/release/latchkey}
LB=${LOADBENCH_BIN:-$here/target/release/examples/loadbench}

w=$(mktemp -d /tmp/latchkey-callgrind.XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$w"; }
trap cleanup EXIT
fp() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
rp=$(fp); up=$(fp); lp=$(fp); bp=$(fp)
redis-server --bind 127.0.0.1 --port "$rp" --save '' --appendonly no --dir "$w" --logfile "$w/redis.log" &
pids+=($!)
"$LB" upstream "127.0.0.1:$up" &
pids+=($!)
"$LK" keys generate --out "$w/k.pem" >/dev/null 2>&1
cat >"$w/lk.toml" <<EOF
[server]
listen = "127.0.0.1:$lp"
public_url = "http://auth.bench.test:$lp"
trusted_proxies = ["127.0.0.1"]
[redis]
url = "redis://127.0.0.1:$rp/0"
[assertion]
keys = [{ kid = "bench", file = "$w/k.pem" }]
[mail]
transport = "console"
from = "Sign-in <login@example.com>"
[[users]]
email = "alice@example.com"
roles = ["admin", "member"]
[[apps]]
host = "app.bench.test"
upstream = "http://127.0.0.1:$up"
[[rules]]
path = "/public/**"
policy = "public"
EOF
for _ in $(seq 1 100); do (exec 3<>"/dev/tcp/127.0.0.1/$rp") 2>/dev/null && break; sleep 0.05; done
bt=$("$LK" tokens issue --email alice@example.com --ttl 1d --name callgrind --config "$w/lk.toml" 2>/dev/null)
[[ -n "${NOKEYS:-}" ]] && sed -i '/^\[assertion\]/d; /^keys = /d' "$w/lk.toml"
tok=$("$LB" sessions "redis://127.0.0.1:$rp/0" latchkey: alice@example.com 1)

cat >"$w/client.py" <<'EOF'
import http.client, sys
port, n, path = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
hdrs = dict(h.split(": ", 1) for h in sys.argv[4:])
c = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
for i in range(n):
    c.request("GET", path, headers=hdrs)
    r = c.getresponse(); r.read()
    if i == 0 and r.status >= 400:
        sys.exit(f"callgrind.sh: {path} answered {r.status}")
EOF
(cd "$w" && exec valgrind --tool=callgrind --callgrind-out-file="$w/cg.out" "$LK" serve --config "$w/lk.toml" 2>"$w/valgrind.log") &
vg=$!
pids+=("$vg")
(cd "$w" && exec valgrind --tool=callgrind --callgrind-out-file="$w/bare.out" "$LB" upstream "127.0.0.1:$bp" 2>"$w/valgrind-bare.log") &
vb=$!
pids+=("$vb")
for port in "$lp" "$bp"; do
    for _ in $(seq 1 600); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
done
sleep 2 # the invalidation channel comes up shortly after start

UA="User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36"
FWD=("X-Forwarded-Method: GET" "X-Forwarded-Proto: https" "X-Forwarded-Host: app.bench.test"
     "X-Forwarded-Uri: /dashboard?tab=1" "$UA")
C="Cookie: theme=dark; latchkey_session=$tok; app_sid=abc123"
count() { # name path headers.. (of latchkey; PORT, PID and OUT pick another server)
    local name=$1 path=$2 port=${PORT:-$lp} pid=${PID:-$vg} out=${OUT:-cg.out}; shift 2
    python3 "$w/client.py" "$port" 50 "$path" "$@"
    callgrind_control -z "$pid" >/dev/null 2>&1
    python3 "$w/client.py" "$port" "$N" "$path" "$@"
    callgrind_control -d "$pid" >/dev/null 2>&1
    local f; f=$(ls -t "$w/$out".* | head -1)
    [[ -n "${KEEP:-}" ]] && mkdir -p "$KEEP" && cp "$f" "$KEEP/$name.out"
    printf '%-14s %9d instructions/request\n' "$name" "$(( $(awk '/^(summary|totals):/ { print $2; exit }' "$f") / N ))"
}
echo "latchkey $("$LK" --version 2>/dev/null || true) ($LK), N=$N${NOKEYS:+, no [assertion] keys}${LATCHKEY_LOG:+, LATCHKEY_LOG=$LATCHKEY_LOG}"
count forward-auth /.latchkey/auth "$C" "${FWD[@]}"
[[ -z "${NOKEYS:-}" ]] && count bearer /.latchkey/auth "Authorization: Bearer $bt" "${FWD[@]}"
count proxy "/dashboard?tab=1" "Host: app.bench.test" "$C" "$UA"
count public /public/site.css "Host: app.bench.test" "$UA"
count sign-in "/dashboard?tab=1" "Host: app.bench.test" "$UA" "Accept: text/html,application/xhtml+xml,*/*;q=0.8"
PORT=$bp PID=$vb OUT=bare.out count bare /.latchkey/auth "$C" "${FWD[@]}"
