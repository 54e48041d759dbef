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
# the same bare server) and two latchkey instances (release, Redis store,
# an [assertion] key; one with the session cache on, the default, one with
# session.cache = false); creates one session and one bearer token; then
# runs rounds of `wrk -t$THREADS -c$CONNS --latency` per case, each round
# running latchkey (or a floor), the bare server and nginx in turn:
#
#   forward-auth          GET /.latchkey/auth, valid cookie + X-Forwarded-*
#   forward-auth-nocache  the same on the instance with session.cache = false
#   proxy                 signed-in GET through latchkey to the bare server
#   proxy-nocache         the same on the instance with session.cache = false
#   public                anonymous GET of a public path through latchkey
#   sign-in               anonymous GET that gets the 302 to sign-in
#   bearer                forward-auth with Authorization: Bearer (a token)
#
# and two floors, what the same libraries cost doing only the I/O (no
# latchkey): they bound the targets from below.
#
#   redis-floor   the bare server + latchkey's Redis round trip per request
#   proxy-floor   a bare hyper-util proxy to the bare server, no auth
#
# Then forward-auth again with $SESSIONS more live sessions in Redis, each
# request carrying the next of them (round-robin, a wrk Lua script), and
# the same on two instances with the session cache at once (the second
# started for it), where each instance hears the other's slides: for that
# case it prints Redis's reads and slides per request.
#
# Per case it prints the medians over rounds of req/s, p99 and server-side
# CPU per request of each side: user+system time (/proc/PID/stat) of every
# server process (latchkey, redis-server, nginx and its workers, the bare
# server, the floors) over the run, divided by the requests wrk counted; on
# a shared machine this moves far less than req/s. Ratios (medians of the
# per-round ratios) are against both baselines of the same round: the bare
# server and nginx proxy_pass. Also latchkey's peak RSS during the case
# (VmHWM, reset before each case) and start-up to ready (median of 5).
#
# Needs: redis-server, nginx, wrk, curl, python3 (scripts/setup installs them).
set -euo pipefail

ROUNDS=${ROUNDS:-5}
DURATION=${DURATION:-10}
CONNS=${CONNS:-64}
THREADS=${THREADS:-2}
SESSIONS=${SESSIONS:-100000}
CASES=${CASES:-"forward-auth forward-auth-nocache redis-floor proxy proxy-nocache proxy-floor public sign-in bearer"}

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
lk_port=$(free_port); lk2_port=$(free_port); lk3_port=$(free_port)
rfloor_port=$(free_port); pfloor_port=$(free_port)

redis-server --bind 127.0.0.1 --port "$redis_port" --save '' --appendonly no \
    --dir "$work" --logfile "$work/redis.log" &
redis_pid=$!
pids+=("$redis_pid")
"$LOADBENCH_BIN" upstream "127.0.0.1:$bare_port" &
bare_pid=$!
pids+=("$bare_pid")
"$LOADBENCH_BIN" proxy-floor "127.0.0.1:$pfloor_port" "http://127.0.0.1:$bare_port" &
pfloor_pid=$!
pids+=("$pfloor_pid")

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

"$LATCHKEY_BIN" keys generate --out "$work/signing.pem" >/dev/null 2>&1

config() { # port [extra toml]
    cat <<EOF
[server]
listen = "127.0.0.1:$1"
public_url = "http://auth.bench.test:$1"
trusted_proxies = ["127.0.0.1"]

[redis]
url = "redis://127.0.0.1:$redis_port/0"

[assertion]
keys = [{ kid = "bench", file = "$work/signing.pem" }]

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
${2:-}
EOF
}
config "$lk_port" >"$work/latchkey.toml"
config "$lk2_port" >"$work/latchkey2.toml"
config "$lk3_port" "$(printf '[session]\ncache = false')" >"$work/latchkey3.toml"

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
"$LATCHKEY_BIN" serve --config "$work/latchkey3.toml" 2>"$work/latchkey3.log" &
lk3_pid=$!
pids+=("$lk3_pid")
wait_port "$lk_port" latchkey
wait_port "$lk3_port" "latchkey (session.cache = false)"

token=$("$LOADBENCH_BIN" sessions "redis://127.0.0.1:$redis_port/0" latchkey: alice@example.com 1)
bearer_token=$("$LATCHKEY_BIN" tokens issue --email alice@example.com --ttl 1d --name bench \
    --config "$work/latchkey.toml" 2>/dev/null)
session_key=$(redis-cli -p "$redis_port" --scan --pattern 'latchkey:s:*' | head -1)
"$LOADBENCH_BIN" redis-floor "127.0.0.1:$rfloor_port" "redis://127.0.0.1:$redis_port/0" "$session_key" &
rfloor_pid=$!
pids+=("$rfloor_pid")
wait_port "$rfloor_port" "the Redis floor"
wait_port "$pfloor_port" "the proxy floor"
cookie="Cookie: theme=dark; latchkey_session=$token; app_sid=abc123"
fwd=(-H "$cookie" -H "X-Forwarded-Method: GET" -H "X-Forwarded-Proto: https"
     -H "X-Forwarded-Host: app.bench.test" -H "X-Forwarded-Uri: /dashboard?tab=1")
app=(-H "Host: app.bench.test")
html=(-H "Accept: text/html,application/xhtml+xml,*/*;q=0.8")

bearer=(-H "Authorization: Bearer $bearer_token" -H "X-Forwarded-Method: GET" -H "X-Forwarded-Proto: https"
     -H "X-Forwarded-Host: app.bench.test" -H "X-Forwarded-Uri: /dashboard?tab=1")

# Each case, side A: latchkey (or a floor), URL + headers. The baselines
# get the same path and headers: bare at the bare server, nginx through
# nginx proxy_pass to it.
case_args() { # case -> sets url (path and query), port and hdrs
    case "$1" in
    forward-auth) port=$lk_port; url=/.latchkey/auth; hdrs=("${fwd[@]}") ;;
    forward-auth-nocache) port=$lk3_port; url=/.latchkey/auth; hdrs=("${fwd[@]}") ;;
    proxy) port=$lk_port; url="/dashboard?tab=1"; hdrs=("${app[@]}" -H "$cookie") ;;
    proxy-nocache) port=$lk3_port; url="/dashboard?tab=1"; hdrs=("${app[@]}" -H "$cookie") ;;
    public) port=$lk_port; url=/public/site.css; hdrs=("${app[@]}") ;;
    sign-in) port=$lk_port; url="/dashboard?tab=1"; hdrs=("${app[@]}" "${html[@]}") ;;
    bearer) port=$lk_port; url=/.latchkey/auth; hdrs=("${bearer[@]}") ;;
    redis-floor) port=$rfloor_port; url=/.latchkey/auth; hdrs=("${fwd[@]}") ;;
    proxy-floor) port=$pfloor_port; url="/dashboard?tab=1"; hdrs=("${app[@]}" -H "$cookie") ;;
    esac
}
side_a_name() { case "$1" in *-floor) echo floor ;; *) echo latchkey ;; esac; }
expect_status() { case "$1" in sign-in) echo 302 ;; *) echo 200 ;; esac; }

# Check every case answers as it should before timing it.
for c in $CASES; do
    case_args "$c"
    got=$(curl -s -o /dev/null -w '%{http_code}' "${hdrs[@]}" "http://127.0.0.1:$port$url")
    if [[ "$got" != "$(expect_status "$c")" ]]; then
        echo "load.sh: $c through latchkey answered $got, expected $(expect_status "$c")" >&2
        cat "$work/latchkey.log" >&2
        exit 1
    fi
done
for c in forward-auth bearer; do
    case_args $c
    curl -s -D - -o /dev/null "${hdrs[@]}" "http://127.0.0.1:$port$url" | grep -qi '^x-auth-email: alice@example.com' || {
        echo "load.sh: $c did not return the identity headers" >&2; exit 1; }
done

to_ms() { # "412.00us" | "1.20ms" | "1.01s" -> ms
    awk -v v="$1" 'BEGIN { n = v + 0; if (v ~ /us$/) n /= 1000; else if (v ~ /ms$/) n += 0; else if (v ~ /s$/) n *= 1000; printf "%.3f", n }'
}
median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{ a[NR] = $1 } END { if (NR % 2) print a[(NR + 1) / 2]; else printf "%.3f\n", (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }

# Server-side CPU: clock ticks (user+system) of each group of processes.
nginx_pid=$(cat "$work/nginx/nginx.pid")
groups() { # -> "name pid,pid.." lines
    echo "latchkey $lk_pid,$lk3_pid"
    echo "redis $redis_pid"
    echo "nginx $nginx_pid,$(pgrep -P "$nginx_pid" | paste -sd,)"
    echo "bare $bare_pid"
    echo "floors $rfloor_pid,$pfloor_pid"
}
ticks() { # -> "latchkey N redis N nginx N bare N floors N"
    groups | while read -r name list; do
        local t=0 p
        for p in ${list//,/ }; do
            [[ -r /proc/$p/stat ]] || continue
            t=$((t + $(sed 's/.*) //' "/proc/$p/stat" | awk '{ print $12 + $13 }')))
        done
        printf '%s %d ' "$name" "$t"
    done
}
hz=$(getconf CLK_TCK)

# Redis's commands so far: all of them, then GET, PTTL and PEXPIRE (what a
# session lookup and a slide send), as "total,get,pttl,pexpire".
redis_commands() {
    redis-cli -p "$redis_port" info all | tr -d '\r' | awk -F'[:=,]' '
        /^total_commands_processed:/ { t = $2 }
        /^cmdstat_get:/ { g = $3 } /^cmdstat_pttl:/ { p = $3 } /^cmdstat_pexpire:/ { e = $3 }
        END { printf "%d,%d,%d,%d\n", t, g, p, e }'
}

run_wrk() { # target(port) duration [lua] -> "rps p99ms errors cpu_us lk redis nginx bare floors redis_cmds get/pttl/pexpire" (µs and commands per request)
    local out before after cmds_before cmds_after
    local script=()
    [[ -n "${3:-}" ]] && script=(-s "$3")
    cmds_before=$(redis_commands)
    before=$(ticks)
    out=$(wrk -t"$THREADS" -c"$CONNS" -d"${2}s" --latency "${script[@]}" "${hdrs[@]}" "http://127.0.0.1:$1$url")
    after=$(ticks)
    cmds_after=$(redis_commands)
    local rps p99 bad n
    rps=$(awk '/^Requests\/sec:/ { print $2 }' <<<"$out")
    p99=$(to_ms "$(awk '$1 == "99%" { print $2 }' <<<"$out")")
    n=$(awk '/requests in/ { print $1 }' <<<"$out")
    bad=$(awk '/Non-2xx or 3xx/ { print $NF } /Socket errors/ { gsub(",", ""); print $4 + $6 + $8 + $10 }' <<<"$out" | awk '{ s += $1 } END { print s + 0 }')
    awk -v b="$before" -v a="$after" -v n="$n" -v hz="$hz" -v head="$rps $p99 $bad" -v c0="$cmds_before" -v c1="$cmds_after" 'BEGIN {
        split(b, x, " "); split(a, y, " "); tot = 0; parts = ""
        for (i = 2; i <= length(y); i += 2) { us = (y[i] - x[i]) * 1e6 / hz / n; tot += us; parts = parts sprintf(" %.1f", us) }
        split(c0, p, ","); split(c1, q, ",")
        printf "%s %.1f%s %.2f %.2f/%.2f/%.2f\n", head, tot, parts, (q[1] - p[1]) / n,
            (q[2] - p[2]) / n, (q[3] - p[3]) / n, (q[4] - p[4]) / n }'
}

hwm_reset() { echo 5 >"/proc/$lk_pid/clear_refs" 2>/dev/null || true; echo 5 >"/proc/$lk3_pid/clear_refs" 2>/dev/null || true; }
hwm_mb() { awk '/^VmHWM:/ { printf "%.1f", $2 / 1024 }' "/proc/$1/status"; }

summary=()
peak=0
bench_case() { # case label [lua [warm-up seconds of latchkey's side]]
    local c=$1 label=$2 lua=${3:-} warm=${4:-2} r
    local a_name; a_name=$(side_a_name "$c")
    case_args "$c"
    local a_port=$port
    run_wrk "$a_port" "$warm" "$lua" >/dev/null # warm-up
    for p in "$bare_port" "$nginx_port"; do run_wrk "$p" 2 "$lua" >/dev/null; done
    hwm_reset
    local a_rps="" a_p99="" a_cpu="" a_lk="" b_rps="" b_p99="" b_cpu="" n_rps="" n_p99="" n_cpu=""
    local rb="" rn="" cb="" cn="" errors=0
    for r in $(seq 1 "$ROUNDS"); do
        local A B N
        # A longer warm-up (the round-robin case) is repeated before each
        # round: the other sides' runs in between leave every session
        # unused for longer than a slide step, so without it each round
        # would begin with one miss per session.
        [[ "$warm" -gt 2 ]] && run_wrk "$a_port" "$warm" "$lua" >/dev/null
        read -r -a A < <(run_wrk "$a_port" "$DURATION" "$lua")
        read -r -a B < <(run_wrk "$bare_port" "$DURATION" "$lua")
        read -r -a N < <(run_wrk "$nginx_port" "$DURATION" "$lua")
        errors=$((errors + A[2]))
        a_rps+=" ${A[0]}"; a_p99+=" ${A[1]}"; a_cpu+=" ${A[3]}"; a_lk+=" $(awk -v a="${A[4]}" -v r="${A[5]}" 'BEGIN { print a + r }')"
        b_rps+=" ${B[0]}"; b_p99+=" ${B[1]}"; b_cpu+=" ${B[3]}"
        n_rps+=" ${N[0]}"; n_p99+=" ${N[1]}"; n_cpu+=" ${N[3]}"
        rb+=" $(awk -v a="${A[0]}" -v b="${B[0]}" 'BEGIN { printf "%.3f", a / b }')"
        rn+=" $(awk -v a="${A[0]}" -v b="${N[0]}" 'BEGIN { printf "%.3f", a / b }')"
        cb+=" $(awk -v a="${A[3]}" -v b="${B[3]}" 'BEGIN { printf "%.2f", a / b }')"
        cn+=" $(awk -v a="${A[3]}" -v b="${N[3]}" 'BEGIN { printf "%.2f", a / b }')"
        printf '  %-24s round %d: %-8s %7.0f req/s %5.1f us/req (lk %s redis %s nginx %s bare %s floors %s; redis commands/req %s, get/pttl/pexpire %s) | bare %7.0f %5.1f us | nginx %7.0f %5.1f us\n' \
            "$label" "$r" "$a_name" "${A[0]}" "${A[3]}" "${A[4]}" "${A[5]}" "${A[6]}" "${A[7]}" "${A[8]}" "${A[9]}" "${A[10]}" \
            "${B[0]}" "${B[3]}" "${N[0]}" "${N[3]}" >&2
    done
    local rss=-
    if [[ "$a_name" == latchkey ]]; then
        rss=$(hwm_mb "$lk_pid")
        [[ "$a_port" == "$lk3_port" ]] && rss=$(hwm_mb "$lk3_pid")
        peak=$(awk -v a="$peak" -v b="$rss" 'BEGIN { print (b > a) ? b : a }')
    fi
    summary+=("$(printf '%-24s %-8s %7.0f req/s p99 %6.3f ms %5.1f us/req (lk+redis %5.1f) | bare %7.0f p99 %6.3f %5.1f us | nginx %7.0f p99 %6.3f %5.1f us | x bare %.3f x nginx %.3f | cpu x bare %.2f x nginx %.2f | RSS %s MB | bad %d' \
        "$label" "$a_name" "$(median <<<"$a_rps")" "$(median <<<"$a_p99")" "$(median <<<"$a_cpu")" "$(median <<<"$a_lk")" \
        "$(median <<<"$b_rps")" "$(median <<<"$b_p99")" "$(median <<<"$b_cpu")" \
        "$(median <<<"$n_rps")" "$(median <<<"$n_p99")" "$(median <<<"$n_cpu")" \
        "$(median <<<"$rb")" "$(median <<<"$rn")" "$(median <<<"$cb")" "$(median <<<"$cn")" "$rss" "$errors")")
}

echo "load.sh: $ROUNDS rounds x ${DURATION}s per side, wrk -t$THREADS -c$CONNS; load average $(cut -d' ' -f1-3 /proc/loadavg)" >&2
for c in $CASES; do bench_case "$c" "$c"; done

if [[ "$SESSIONS" -gt 0 ]]; then
    before=$(redis-cli -p "$redis_port" dbsize)
    "$LOADBENCH_BIN" sessions "redis://127.0.0.1:$redis_port/0" latchkey: alice@example.com "$SESSIONS" >"$work/tokens"
    after=$(redis-cli -p "$redis_port" dbsize)
    echo "  redis keys: $before before, $after after adding $SESSIONS sessions ($(redis-cli -p "$redis_port" info memory | awk -F: '/^used_memory_human/ { print $2 }' | tr -d '\r'))" >&2
    echo "$token" >"$work/one-token"
    # Each wrk thread walks the tokens from its own offset, one a request.
    # The requests are formatted once, in init, so that the Lua cost per
    # request is a table lookup; the same script over a one-line file is
    # the one-session figure these are compared with (wrk running Lua per
    # request is slower than wrk's own static request, on the same cores).
    round_robin() { # tokens-file script-file
        cat >"$2" <<EOF
local reqs = {}
local thread_no = 0
function setup(thread) thread:set("thread_no", thread_no); thread_no = thread_no + 1 end
function init(args)
    for line in io.lines("$1") do
        wrk.headers["Cookie"] = "latchkey_session=" .. line
        reqs[#reqs + 1] = wrk.format()
    end
    i = (thread_no or 0) * math.floor(#reqs / $THREADS)
end
function request()
    i = i % #reqs + 1
    return reqs[i]
end
EOF
    }
    round_robin "$work/one-token" "$work/one.lua"
    round_robin "$work/tokens" "$work/round-robin.lua"
    fwd=(-H "X-Forwarded-Method: GET" -H "X-Forwarded-Proto: https"
         -H "X-Forwarded-Host: app.bench.test" -H "X-Forwarded-Uri: /dashboard?tab=1")
    bench_case forward-auth "forward-auth+1rr" "$work/one.lua"
    one=${summary[-1]}
    # Warmed up, before each round, until every session was looked up at
    # least twice (the first lookup of each is a miss): the rounds measure
    # sessions in steady use, where the misses left are the idle slide's
    # (store::slide_step: each session read again once per 9 s of the
    # default 15 min).
    bench_case forward-auth "forward-auth+${SESSIONS}rr" "$work/round-robin.lua" $((SESSIONS / 12000 + 2))
    many=${summary[-1]}
    # The target: the many-session req/s at least 0.7x the one-session
    # figure, both through the same Lua script.
    summary+=("$(awk -v a="$many" -v b="$one" -v n="$SESSIONS" 'BEGIN {
        split(a, x, " "); split(b, y, " ")
        printf "%s sessions round-robin / one session, same script: req/s x %.3f, us/req x %.2f, latchkey+redis us/req x %.2f", n, x[3] / y[3], x[8] / y[8], x[11] / y[11] }')")

    # Two instances on the one Redis, each walking the same sessions (from
    # opposite ends of the list), half the connections each: every slide
    # one makes reaches the other as an invalidation, and the other reads
    # that session again. What to read is Redis's reads per request (about
    # one GET+PTTL per slide is what coherence costs; the runs measured 0.9
    # to 1.25), not req/s, which has no baseline here.
    "$LATCHKEY_BIN" serve --config "$work/latchkey2.toml" 2>"$work/latchkey2.log" &
    lk2_pid=$!
    pids+=("$lk2_pid")
    wait_port "$lk2_port" "the second latchkey"
    sed 's|^    i = (thread_no.*|    i = math.floor(#reqs / 2)|' "$work/round-robin.lua" >"$work/round-robin2.lua"
    two_rounds() { # seconds -> "requests get pttl pexpire"
        local c0 c1 na nb
        c0=$(redis_commands)
        wrk -t1 -c$((CONNS / 2)) -d"${1}s" -s "$work/round-robin.lua" "${hdrs[@]}" "http://127.0.0.1:$lk_port$url" >"$work/two-a" &
        local wa=$!
        wrk -t1 -c$((CONNS / 2)) -d"${1}s" -s "$work/round-robin2.lua" "${hdrs[@]}" "http://127.0.0.1:$lk2_port$url" >"$work/two-b"
        wait "$wa"
        c1=$(redis_commands)
        na=$(awk '/requests in/ { print $1 }' "$work/two-a"); nb=$(awk '/requests in/ { print $1 }' "$work/two-b")
        awk -v c0="$c0" -v c1="$c1" -v n=$((na + nb)) 'BEGIN { split(c0, p, ","); split(c1, q, ",")
            printf "%d %.3f %.3f %.3f\n", n, (q[2] - p[2]) / n, (q[3] - p[3]) / n, (q[4] - p[4]) / n }'
    }
    case_args forward-auth
    two_rounds $((SESSIONS / 12000 + 2)) >/dev/null # warm-up
    # Rounds of at least 10 s: each covers a whole slide step (9 s) of
    # every session, whatever its phase.
    two="" two_s=$((DURATION > 10 ? DURATION : 10))
    for r in $(seq 1 "$ROUNDS"); do
        read -r -a T < <(two_rounds "$two_s")
        printf '  two instances, %s sessions round-robin, round %d: %7.0f req/s in all, Redis per request: GET %s PTTL %s PEXPIRE %s\n' \
            "$SESSIONS" "$r" "$(awk -v n="${T[0]}" -v d="$two_s" 'BEGIN { print n / d }')" "${T[1]}" "${T[2]}" "${T[3]}" >&2
        two+=" ${T[1]}/${T[3]}"
    done
    summary+=("two instances, $SESSIONS sessions round-robin, Redis GET/PEXPIRE per request by round:$two")
fi

echo
echo "latchkey $("$LATCHKEY_BIN" --version 2>/dev/null || true) ($LATCHKEY_BIN)"
echo "$ROUNDS rounds x ${DURATION}s per side, wrk -t$THREADS -c$CONNS, $(nproc) cores; load average now $(cut -d' ' -f1-3 /proc/loadavg)"
echo "medians over rounds; us/req = server-side CPU (user+system of latchkey, redis, nginx, bare server, floors) per request;"
echo "x bare / x nginx = median of per-round req/s ratios; cpu x = median of per-round us/req ratios"
for line in "${summary[@]}"; do echo "$line"; done
echo "start-up to ready (ms, 5 runs): ${startups[*]} -> median $(echo "${startups[*]}" | median)"
echo "latchkey peak RSS, highest case: $peak MB"
echo "session cache invalidation channel lost during the run: $(grep -c 'invalidation channel lost' "$work/latchkey.log" || true) times"
