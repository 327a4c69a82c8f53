#!/usr/bin/env bash
# bench/proxy.sh compares aviary's built-in proxy with HAProxy and nginx on
# this machine: two small upstreams, each proxy splitting 90/10 between them
# with keep-alive to the upstreams, wrk against each proxy in turn
# (interleaved, ROUNDS rounds). It prints requests per second, p50 and p99
# latency, and each proxy's CPU time per request (utime+stime from
# /proc/PID/stat, summed over the proxy's processes), with ratios to HAProxy.
#
# Needs: go, haproxy, nginx (nginx-light is enough), wrk.
# Knobs (environment): DURATION (seconds per run, default 10), ROUNDS (3),
# CONNS (wrk connections, 32), THREADS (wrk threads, 1), BASE_PORT (18080),
# TLS (1: every proxy terminates TLS with a self-signed certificate made by
# openssl, and wrk speaks HTTPS over kept-alive connections).
# All traffic goes to 127.0.0.1; every run is bounded by DURATION.
set -euo pipefail

DURATION=${DURATION:-10}
ROUNDS=${ROUNDS:-3}
CONNS=${CONNS:-32}
THREADS=${THREADS:-1}
BASE_PORT=${BASE_PORT:-18080}
TLS=${TLS:-0}

cd "$(dirname "$0")/.."
OUT=$PWD/bench/out/proxy
rm -rf "$OUT"
mkdir -p "$OUT"

tools="go haproxy nginx wrk curl"
[ "$TLS" = 1 ] && tools="$tools openssl"
for tool in $tools; do
	command -v "$tool" >/dev/null || { echo "bench/proxy.sh: $tool not found (apt-get install haproxy nginx-light wrk)" >&2; exit 1; }
done

UP1=$((BASE_PORT + 1)) UP2=$((BASE_PORT + 2))
declare -A PORT=([aviary]=$((BASE_PORT + 10)) [haproxy]=$((BASE_PORT + 11)) [nginx]=$((BASE_PORT + 12)) [aviary-nethttp]=$((BASE_PORT + 13)))
# aviary-nethttp is aviary's proxy behind net/http's server (as for h2c
# listeners and HTTP/2 over TLS), for scale.
PROXIES=(aviary haproxy nginx aviary-nethttp)
declare -A PID=()
PIDS=()

cleanup() {
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
}
trap cleanup EXIT

SCHEME=http TLSARGS=() HAPROXY_SSL="" NGINX_SSL=""
if [ "$TLS" = 1 ]; then
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 -subj /CN=127.0.0.1 \
		-keyout "$OUT/tls.key" -out "$OUT/tls.crt" 2>/dev/null
	cat "$OUT/tls.crt" "$OUT/tls.key" >"$OUT/tls.pem"
	SCHEME=https
	TLSARGS=(-cert "$OUT/tls.crt" -key "$OUT/tls.key")
	HAPROXY_SSL="ssl crt $OUT/tls.pem alpn http/1.1"
	NGINX_SSL="ssl; ssl_certificate $OUT/tls.crt; ssl_certificate_key $OUT/tls.key"
fi

go build -o "$OUT/benchupstream" ./bench/cmd/benchupstream
go build -o "$OUT/proxybench" ./bench/cmd/proxybench

"$OUT/benchupstream" -listen 127.0.0.1:$UP1 -name stable &
PIDS+=($!)
"$OUT/benchupstream" -listen 127.0.0.1:$UP2 -name canary &
PIDS+=($!)

"$OUT/proxybench" "${TLSARGS[@]}" -listen 127.0.0.1:${PORT[aviary]} -stable http://127.0.0.1:$UP1 -canary http://127.0.0.1:$UP2 -weight 10 >"$OUT/aviary.log" 2>&1 &
PID[aviary]=$!
PIDS+=($!)
"$OUT/proxybench" "${TLSARGS[@]}" -nethttp -listen 127.0.0.1:${PORT[aviary-nethttp]} -stable http://127.0.0.1:$UP1 -canary http://127.0.0.1:$UP2 -weight 10 >"$OUT/aviary-nethttp.log" 2>&1 &
PID[aviary-nethttp]=$!
PIDS+=($!)

cat >"$OUT/haproxy.cfg" <<EOF
global
	nbthread 2
	maxconn 4096
defaults
	mode http
	timeout connect 5s
	timeout client 60s
	timeout server 60s
	option http-keep-alive
	http-reuse always
frontend fe
	bind 127.0.0.1:${PORT[haproxy]} $HAPROXY_SSL
	default_backend be
backend be
	balance roundrobin
	server stable 127.0.0.1:$UP1 weight 90
	server canary 127.0.0.1:$UP2 weight 10
EOF
haproxy -db -f "$OUT/haproxy.cfg" >"$OUT/haproxy.log" 2>&1 &
PID[haproxy]=$!
PIDS+=($!)

cat >"$OUT/nginx.conf" <<EOF
worker_processes 2;
pid $OUT/nginx.pid;
error_log $OUT/nginx-error.log;
events { worker_connections 4096; }
http {
	access_log off;
	client_body_temp_path $OUT/nginx-tmp;
	proxy_temp_path $OUT/nginx-tmp;
	upstream app {
		server 127.0.0.1:$UP1 weight=9;
		server 127.0.0.1:$UP2 weight=1;
		keepalive 64;
	}
	server {
		listen 127.0.0.1:${PORT[nginx]} $NGINX_SSL;
		location / {
			proxy_pass http://app;
			proxy_http_version 1.1;
			proxy_set_header Connection "";
		}
	}
}
EOF
nginx -p "$OUT" -c "$OUT/nginx.conf" -g 'daemon off;' >"$OUT/nginx.log" 2>&1 &
PID[nginx]=$!
PIDS+=($!)

# Wait until every proxy answers through to an upstream.
for p in "${PROXIES[@]}"; do
	for _ in $(seq 50); do
		if curl -kfsS -o /dev/null "$SCHEME://127.0.0.1:${PORT[$p]}/" 2>/dev/null; then continue 2; fi
		sleep 0.2
	done
	echo "bench/proxy.sh: $p did not come up; see $OUT/$p.log" >&2
	exit 1
done

TICKS=$(getconf CLK_TCK)

# cpu_ticks PID: utime+stime of PID and its children processes (nginx workers).
cpu_ticks() {
	local total=0 pid
	for pid in "$1" $(pgrep -P "$1" || true); do
		# Fields 14 and 15, counted after the command name in parentheses.
		total=$((total + $(sed 's/.*) //' "/proc/$pid/stat" | awk '{print $12 + $13}')))
	done
	echo "$total"
}

# to_ms VALUE: wrk's latency ("812.00us", "1.20ms", "1.01s") in milliseconds.
to_ms() {
	awk -v v="$1" 'BEGIN {
		n = v + 0
		if (v ~ /us$/) n /= 1000
		else if (v ~ /ms$/) n = n
		else if (v ~ /m$/) n *= 60000
		else if (v ~ /s$/) n *= 1000
		printf "%.3f", n
	}'
}

# Warm up every proxy (connections, JIT-free but caches and pools).
for p in "${PROXIES[@]}"; do
	wrk -t"$THREADS" -c"$CONNS" -d2s "$SCHEME://127.0.0.1:${PORT[$p]}/" >/dev/null
done

RESULTS=$OUT/results.tsv
: >"$RESULTS"
echo "round proxy req/s p50_ms p99_ms cpu_us_per_req errors"
for round in $(seq "$ROUNDS"); do
	# Rotate the order so no proxy always runs first or last.
	k=$(((round - 1) % ${#PROXIES[@]}))
	order=("${PROXIES[@]:$k}" "${PROXIES[@]:0:$k}")
	for p in "${order[@]}"; do
		before=$(cpu_ticks "${PID[$p]}")
		wrk -t"$THREADS" -c"$CONNS" -d"${DURATION}s" --latency "$SCHEME://127.0.0.1:${PORT[$p]}/" >"$OUT/wrk-$p-$round.txt"
		after=$(cpu_ticks "${PID[$p]}")
		f=$OUT/wrk-$p-$round.txt
		reqs=$(awk '/requests in/ {print $1}' "$f")
		rps=$(awk '/^Requests\/sec/ {print $2}' "$f")
		p50=$(to_ms "$(awk '$1 == "50%" {print $2}' "$f")")
		p99=$(to_ms "$(awk '$1 == "99%" {print $2}' "$f")")
		errs=$(awk '/Non-2xx|Socket errors/ {s = s $0 "; "} END {print (s == "" ? "0" : s)}' "$f")
		cpu=$(awk -v d=$((after - before)) -v t="$TICKS" -v n="$reqs" 'BEGIN {printf "%.2f", d * 1e6 / t / n}')
		printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$round" "$p" "$rps" "$p50" "$p99" "$cpu" "$errs" | tee -a "$RESULTS"
	done
done

echo
echo "Mean over $ROUNDS rounds (ratio to HAProxy in parentheses):"
awk -F'\t' '
	{ n[$2]++; rps[$2] += $3; p50[$2] += $4; p99[$2] += $5; cpu[$2] += $6 }
	END {
		h = "haproxy"
		printf "| proxy | req/s | p50 ms | p99 ms | CPU µs/req |\n|---|---|---|---|---|\n"
		split("aviary haproxy nginx aviary-nethttp", names, " ")
		for (i = 1; i <= 4; i++) {
			p = names[i]; k = n[p]
			printf "| %s | %.0f (%.2fx) | %.3f (%.2fx) | %.3f (%.2fx) | %.1f (%.2fx) |\n", p,
				rps[p]/k, rps[p]/rps[h], p50[p]/k, p50[p]/p50[h], p99[p]/k, p99[p]/p99[h], cpu[p]/k, cpu[p]/cpu[h]
		}
	}' "$RESULTS"
