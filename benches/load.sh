#!/usr/bin/env bash
# Load benchmark: latchkey side by side with a bare hyper server and nginx,
# in one run, on this machine's loopback only. Run by hand, never in CI.
#
#   benches/load.sh                       # builds release, 5 rounds x 10 s per side
#   ROUNDS=3 DURATION=5 benches/load.sh   # shorter
#   LATCHKEY_BIN=/tmp/latchkey-old benches/load.sh   # compare another build
#   LATCHKEY_LOG=warn benches/load.sh     # latchkey at another log level
#
# Starts redis-server, the bare hyper server (benches/tools/loadbench.rs:
# the baseline and the upstream), nginx (proxy_pass + upstream keepalive to
# the same bare server) and latchkey (release, Redis store); creates one
# session through latchkey's store; then alternates A B A B rounds of
# `wrk -t$THREADS -c$CONNS --latency` per case:
#
#   forward-auth  GET /.latchkey/auth, valid cookie + X-Forwarded-*  vs the bare server
#   proxy         signed-in GET through latchkey to the bare server  vs nginx proxy_pass
#   public        anonymous GET of a public path through latchkey    vs nginx proxy_pass
#   sign-in       anonymous GET that gets the 302 to sign-in         vs the bare server
#
# and two floors, what the same libraries cost doing only the I/O (no
# latchkey): they bound the two targets from below.
#
#   redis-floor   the bare server + latchkey's Redis round trip per request  vs the bare server
#   proxy-floor   a bare hyper-util proxy to the bare server, no auth        vs nginx proxy_pass
#
# and prints per case the medians of req/s, p50 and p99 over the rounds,
# latchkey's peak RSS during the case (VmHWM, reset before each case), and
# the ratio latchkey/baseline as the median of the per-round ratios. Then
# start-up to ready (median of 5), and forward-auth again with 100k more
# live sessions in Redis.
#
# Needs: redis-server, nginx, wrk, curl, python3 (scripts/setup installs them).
set -euo pipefail

ROUNDS=${ROUNDS:-5}
DURATION=${DURATION:-10}
CONNS=${CONNS:-64}
THREADS=${THREADS:-2}
SESSIONS=${SESSIONS:-100000}
CASES=${CASES:-"forward-auth redis-floor proxy proxy-floor public sign-in"}

here=$(cd "$(dirname "$0")/.." && pwd)
for p in redis-server redis-cli nginx wrk curl python3; do
    command -v "$p" >/dev/null || { echo "load.sh: $p is missing (run scripts/setup, or apt-get install $p)" >&2; exit 1; }
done

if [[ -z "${LATCHKEY_BIN:-}" || -z "${LOADBENCH_BIN:-}" ]]; then
    (cd "$here" && cargo build --release --bin latchkey --example loadbench) >&2
fi
LATCHKEY_BIN=${LATCHKEY_BIN:-$here/target/release/latchkey}
LOADBENCH_BIN=${LOADBENCH_BIN:-$here/target/release/examples/loadbench}

work=$(mktemp -d /tmp/latchkey-load.XXXXXX)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
wait_port() { # port, what
    for _ in $(seq 1 200); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.05
    done
    echo "load.sh: $2 did not listen on port $1" >&2
    exit 1
}

redis_port=$(free_port); bare_port=$(free_port); nginx_port=$(free_port)
lk_port=$(free_port); lk2_port=$(free_port)
rfloor_port=$(free_port); pfloor_port=$(free_port)

redis-server --bind 127.0.0.1 --port "$redis_port" --save '' --appendonly no \
    --dir "$work" --logfile "$work/redis.log" &
pids+=($!)
"$LOADBENCH_BIN" upstream "127.0.0.1:$bare_port" &
pids+=($!)
"$LOADBENCH_BIN" proxy-floor "127.0.0.1:$pfloor_port" "http://127.0.0.1:$bare_port" &
pids+=($!)

mkdir -p "$work/nginx"
cat >"$work/nginx/nginx.conf" <<EOF
# As many workers as cores, like latchkey's runtime.
worker_processes auto;
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $work/nginx/body;
    proxy_temp_path $work/nginx/proxy;
    fastcgi_temp_path $work/nginx/fastcgi;
    uwsgi_temp_path $work/nginx/uwsgi;
    scgi_temp_path $work/nginx/scgi;
    upstream bare {
        server 127.0.0.1:$bare_port;
        keepalive 128;
    }
    server {
        listen 127.0.0.1:$nginx_port;
        location / {
            proxy_pass http://bare;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host \$host;
            proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto \$scheme;
        }
    }
}
EOF
nginx -p "$work/nginx" -c "$work/nginx/nginx.conf" -g 'daemon off;' &
pids+=($!)

config() { # port
    cat <<EOF
[server]
listen = "127.0.0.1:$1"
public_url = "http://auth.bench.test:$1"
trusted_proxies = ["127.0.0.1"]

[redis]
url = "redis://127.0.0.1:$redis_port/0"

[mail]
transport = "console"
from = "Sign-in <login@example.com>"

[[users]]
email = "alice@example.com"
roles = ["admin", "member"]

[[apps]]
host = "app.bench.test"
upstream = "http://127.0.0.1:$bare_port"

[[rules]]
path = "/public/**"
policy = "public"

[[rules]]
path = "/admin/**"
policy = "roles"
roles = ["admin"]
EOF
}
config "$lk_port" >"$work/latchkey.toml"
config "$lk2_port" >"$work/latchkey2.toml"

wait_port "$redis_port" redis-server
wait_port "$bare_port" "the bare server"
wait_port "$nginx_port" nginx

# Start-up to ready, before the main instance competes for the cores.
startups=()
for _ in 1 2 3 4 5; do
    startups+=("$("$LOADBENCH_BIN" ready "127.0.0.1:$lk2_port" -- \
        "$LATCHKEY_BIN" serve --config "$work/latchkey2.toml")")
done

# At the default log level (info) unless LATCHKEY_LOG says otherwise: what
# users run. Nothing is logged per request at info, but each request opens
# a tracing span carrying its request id (about 4% of forward-auth's
# throughput against LATCHKEY_LOG=warn, measured).
"$LATCHKEY_BIN" serve --config "$work/latchkey.toml" 2>"$work/latchkey.log" &
lk_pid=$!
pids+=("$lk_pid")
wait_port "$lk_port" latchkey

token=$("$LOADBENCH_BIN" sessions "redis://127.0.0.1:$redis_port/0" latchkey: alice@example.com 1)
session_key=$(redis-cli -p "$redis_port" --scan --pattern 'latchkey:s:*' | head -1)
"$LOADBENCH_BIN" redis-floor "127.0.0.1:$rfloor_port" "redis://127.0.0.1:$redis_port/0" "$session_key" &
pids+=($!)
wait_port "$rfloor_port" "the Redis floor"
wait_port "$pfloor_port" "the proxy floor"
cookie="Cookie: theme=dark; latchkey_session=$token; app_sid=abc123"
fwd=(-H "$cookie" -H "X-Forwarded-Method: GET" -H "X-Forwarded-Proto: https"
     -H "X-Forwarded-Host: app.bench.test" -H "X-Forwarded-Uri: /dashboard?tab=1")
app=(-H "Host: app.bench.test")
html=(-H "Accept: text/html,application/xhtml+xml,*/*;q=0.8")

# Each case: "latchkey URL + headers" against "baseline URL + headers".
case_args() { # case side(A|B) -> sets url and hdrs
    case "$1:$2" in
    forward-auth:A) url="http://127.0.0.1:$lk_port/.latchkey/auth"; hdrs=("${fwd[@]}") ;;
    forward-auth:B) url="http://127.0.0.1:$bare_port/.latchkey/auth"; hdrs=("${fwd[@]}") ;;
    proxy:A) url="http://127.0.0.1:$lk_port/dashboard?tab=1"; hdrs=("${app[@]}" -H "$cookie") ;;
    proxy:B) url="http://127.0.0.1:$nginx_port/dashboard?tab=1"; hdrs=("${app[@]}" -H "$cookie") ;;
    public:A) url="http://127.0.0.1:$lk_port/public/site.css"; hdrs=("${app[@]}") ;;
    public:B) url="http://127.0.0.1:$nginx_port/public/site.css"; hdrs=("${app[@]}") ;;
    sign-in:A) url="http://127.0.0.1:$lk_port/dashboard?tab=1"; hdrs=("${app[@]}" "${html[@]}") ;;
    sign-in:B) url="http://127.0.0.1:$bare_port/dashboard?tab=1"; hdrs=("${app[@]}" "${html[@]}") ;;
    redis-floor:A) url="http://127.0.0.1:$rfloor_port/.latchkey/auth"; hdrs=("${fwd[@]}") ;;
    redis-floor:B) case_args forward-auth B ;;
    proxy-floor:A) url="http://127.0.0.1:$pfloor_port/dashboard?tab=1"; hdrs=("${app[@]}" -H "$cookie") ;;
    proxy-floor:B) case_args proxy B ;;
    esac
}
baseline_name() { case "$1" in proxy | public | proxy-floor) echo nginx ;; *) echo bare ;; esac; }
side_a_name() { case "$1" in *-floor) echo floor ;; *) echo latchkey ;; esac; }
expect_status() { case "$1" in sign-in) echo 302 ;; *) echo 200 ;; esac; }

# Check every case answers as it should before timing it.
for c in $CASES; do
    case_args "$c" A
    got=$(curl -s -o /dev/null -w '%{http_code}' "${hdrs[@]}" "$url")
    if [[ "$got" != "$(expect_status "$c")" ]]; then
        echo "load.sh: $c through latchkey answered $got, expected $(expect_status "$c")" >&2
        cat "$work/latchkey.log" >&2
        exit 1
    fi
done
case_args forward-auth A
curl -s -D - -o /dev/null "${hdrs[@]}" "$url" | grep -qi '^x-auth-email: alice@example.com' || {
    echo "load.sh: forward-auth did not return the identity headers" >&2; exit 1; }

to_ms() { # "412.00us" | "1.20ms" | "1.01s" -> ms
    awk -v v="$1" 'BEGIN { n = v + 0; if (v ~ /us$/) n /= 1000; else if (v ~ /ms$/) n += 0; else if (v ~ /s$/) n *= 1000; printf "%.3f", n }'
}
median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{ a[NR] = $1 } END { if (NR % 2) print a[(NR + 1) / 2]; else printf "%.3f\n", (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
spread() { # "min-max as % of the median"
    tr ' ' '\n' | grep -v '^$' | sort -g | awk '{ a[NR] = $1 } END { m = (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2; if (m > 0) printf "%.0f%%", (a[NR] - a[1]) * 100 / m; else print "-" }'
}

run_wrk() { # duration -> "rps p50ms p99ms errors"
    local out
    out=$(wrk -t"$THREADS" -c"$CONNS" -d"${1}s" --latency "${hdrs[@]}" "$url")
    local rps p50 p99 bad
    rps=$(awk '/^Requests\/sec:/ { print $2 }' <<<"$out")
    p50=$(to_ms "$(awk '$1 == "50%" { print $2 }' <<<"$out")")
    p99=$(to_ms "$(awk '$1 == "99%" { print $2 }' <<<"$out")")
    bad=$(awk '/Non-2xx or 3xx/ { print $NF } /Socket errors/ { gsub(",", ""); print $4 + $6 + $8 + $10 }' <<<"$out" | awk '{ s += $1 } END { print s + 0 }')
    echo "$rps $p50 $p99 $bad"
}

hwm_reset() { echo 5 >"/proc/$lk_pid/clear_refs" 2>/dev/null || true; }
hwm_mb() { awk '/^VmHWM:/ { printf "%.1f", $2 / 1024 }' "/proc/$lk_pid/status"; }

summary=()
peak=0
bench_case() { # case label
    local c=$1 label=$2 r
    local a_rps="" a_p50="" a_p99="" b_rps="" b_p50="" b_p99="" ratios="" errors=0
    local a_name; a_name=$(side_a_name "$c")
    for side in A B; do case_args "$c" "$side"; run_wrk 2 >/dev/null; done # warm-up
    hwm_reset
    for r in $(seq 1 "$ROUNDS"); do
        local ra rb
        case_args "$c" A; read -r rps p50 p99 bad < <(run_wrk "$DURATION")
        a_rps+=" $rps"; a_p50+=" $p50"; a_p99+=" $p99"; errors=$((errors + bad)); ra=$rps
        case_args "$c" B; read -r rps p50 p99 bad < <(run_wrk "$DURATION")
        b_rps+=" $rps"; b_p50+=" $p50"; b_p99+=" $p99"; rb=$rps
        ratios+=" $(awk -v a="$ra" -v b="$rb" 'BEGIN { printf "%.3f", a / b }')"
        printf '  %-22s round %d: %-8s %9.0f req/s  %-5s %9.0f req/s  ratio %s\n' \
            "$label" "$r" "$a_name" "$ra" "$(baseline_name "$c")" "$rb" "${ratios##* }" >&2
    done
    local line rss=-
    if [[ "$a_name" == latchkey ]]; then
        rss=$(hwm_mb)
        peak=$(awk -v a="$peak" -v b="$rss" 'BEGIN { print (b > a) ? b : a }')
    fi
    line=$(printf '%-22s %-8s %8.0f req/s p50 %6.3f p99 %6.3f ms | %-5s %8.0f req/s p50 %6.3f p99 %6.3f ms | ratio %.3f (rounds %s) | RSS %s MB | spread %s/%s | bad %d' \
        "$label" "$a_name" "$(median <<<"$a_rps")" "$(median <<<"$a_p50")" "$(median <<<"$a_p99")" \
        "$(baseline_name "$c")" "$(median <<<"$b_rps")" "$(median <<<"$b_p50")" "$(median <<<"$b_p99")" \
        "$(median <<<"$ratios")" "$(echo $ratios | tr ' ' ',')" "$rss" \
        "$(spread <<<"$a_rps")" "$(spread <<<"$b_rps")" "$errors")
    summary+=("$line")
}

echo "load.sh: $ROUNDS rounds x ${DURATION}s per side, wrk -t$THREADS -c$CONNS; load average $(cut -d' ' -f1-3 /proc/loadavg)" >&2
for c in $CASES; do bench_case "$c" "$c"; done

if [[ "$SESSIONS" -gt 0 ]]; then
    before=$(redis-cli -p "$redis_port" dbsize)
    "$LOADBENCH_BIN" sessions "redis://127.0.0.1:$redis_port/0" latchkey: alice@example.com "$SESSIONS" >/dev/null
    after=$(redis-cli -p "$redis_port" dbsize)
    echo "  redis keys: $before before, $after after adding $SESSIONS sessions ($(redis-cli -p "$redis_port" info memory | awk -F: '/^used_memory_human/ { print $2 }' | tr -d '\r'))" >&2
    bench_case forward-auth "forward-auth+${SESSIONS}s"
fi

echo
echo "latchkey $("$LATCHKEY_BIN" --version 2>/dev/null || true) ($LATCHKEY_BIN)"
echo "$ROUNDS rounds x ${DURATION}s per side, wrk -t$THREADS -c$CONNS, $(nproc) cores; load average now $(cut -d' ' -f1-3 /proc/loadavg)"
echo "medians over rounds; ratio = median of per-round latchkey (or floor)/baseline; spread = (max-min)/median of req/s, latchkey/baseline"
for line in "${summary[@]}"; do echo "$line"; done
echo "start-up to ready (ms, 5 runs): ${startups[*]} -> median $(echo "${startups[*]}" | median)"
echo "latchkey peak RSS, highest case: $peak MB"
