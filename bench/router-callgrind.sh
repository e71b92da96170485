#!/usr/bin/env bash
# Instructions per request (valgrind callgrind), which machine load barely changes: one nginx
# process (master_process off) under callgrind, behind wrk at a fixed number of connections;
# counters zeroed after a warm-up, dumped after the measured run, divided by wrk's request count.
# Scenarios: the static nginx keepalive proxy (bench/router.ts's baseline), the router with its
# cache, and without (Redis per request). Per-phase split: callgrind_annotate --inclusive=yes on
# the dumps left in $OUT (the nginx/Lua module entry points are named in the summary).
#   bash bench/router-callgrind.sh [static|cached|nocache ...]
# Settings: ROUTER_SRC [this checkout's router/], CG_SECONDS [10] measured wrk run, CG_CONNECTIONS [16], OUT [mktemp],
#   CG_HOST_HEADER [bench.example] the Host header sent (bench.example:8080: a port, as clients to a port other than 80 send)
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ROUTER_SRC=${ROUTER_SRC:-$here/router} # another checkout's router/ for before/after pairs
SECONDS_RUN=${CG_SECONDS:-10}
CONNS=${CG_CONNECTIONS:-16}
OUT=${OUT:-$(mktemp -d /tmp/dynroute-callgrind-XXXXXX)}
HOST=bench.example
HOST_HEADER=${CG_HOST_HEADER:-$HOST}
scenarios=("$@"); [[ ${#scenarios[@]} -gt 0 ]] || scenarios=(static cached nocache)
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT
user=""; [[ $(id -u) == 0 ]] && user="user root;"

redis_port=$(free_port)
redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no --daemonize no >"$OUT/redis.log" 2>&1 &
pids+=($!)
backend_port=$(free_port)
mkdir -p "$OUT/backend/logs" "$OUT/backend/tmp"
cat >"$OUT/backend/nginx.conf" <<CONF
$user
worker_processes 1; pid $OUT/backend/nginx.pid; error_log $OUT/backend/logs/error.log warn;
events { worker_connections 4096; }
http { access_log off; client_body_temp_path $OUT/backend/tmp; proxy_temp_path $OUT/backend/tmp;
  fastcgi_temp_path $OUT/backend/tmp; uwsgi_temp_path $OUT/backend/tmp; scgi_temp_path $OUT/backend/tmp;
  keepalive_requests 100000;
  server { listen 127.0.0.1:$backend_port; location / { return 200 "x"; } } }
CONF
nginx -p "$OUT/backend" -c "$OUT/backend/nginx.conf" -e "$OUT/backend/logs/error.log" -g "daemon off;" &
pids+=($!)
for _ in $(seq 50); do redis-cli -p "$redis_port" ping >/dev/null 2>&1 && curl -s -o /dev/null "http://127.0.0.1:$backend_port/" && break; sleep 0.1; done
redis-cli -p "$redis_port" hset "route:$HOST" backends "[\"http://127.0.0.1:$backend_port\"]" >/dev/null
redis-cli -p "$redis_port" set backend-policy '{"rules":[{"cidr":"127.0.0.0/8","action":"allow"}]}' >/dev/null

# A config for one process: the router's as dynroute-router renders it, or the static proxy.
config() {
  local name=$1 port=$2 dir="$OUT/$1"
  mkdir -p "$dir/logs" "$dir/tmp"
  case $name in
    static)
      cat >"$dir/nginx.conf" <<CONF
$user
worker_processes 1; pid $dir/nginx.pid; error_log $dir/logs/error.log warn;
events { worker_connections 4096; }
http { access_log off; client_body_temp_path $dir/tmp; proxy_temp_path $dir/tmp;
  fastcgi_temp_path $dir/tmp; uwsgi_temp_path $dir/tmp; scgi_temp_path $dir/tmp;
  upstream routed { server 127.0.0.1:$backend_port; keepalive 64; }
  map \$http_upgrade \$connection_upgrade { default upgrade; "" ""; }
  server { listen 127.0.0.1:$port reuseport;
    location / { proxy_pass http://routed; proxy_http_version 1.1;
      proxy_set_header Host \$http_host; proxy_set_header Upgrade \$http_upgrade;
      proxy_set_header Connection \$connection_upgrade; proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Proto \$scheme; proxy_set_header X-Forwarded-Host \$host;
      proxy_request_buffering off; proxy_buffering off; proxy_next_upstream error timeout; } } }
CONF
      ;;
    *)
      local ttl=300; [[ $name == nocache ]] && ttl=0
      env -i PATH="$PATH" ROUTER_PREFIX="$dir" ROUTER_LISTEN="127.0.0.1:$port" ROUTER_REDIS_PORT="$redis_port" \
        ROUTER_WORKERS=1 ROUTER_CACHE_TTL=$ttl ROUTER_ACCESS_LOG=off ROUTER_USER=root \
        "$ROUTER_SRC/dynroute-router" render >/dev/null
      ;;
  esac
}

printf '%-10s %12s %10s %14s\n' scenario requests "Ir (M)" "Ir per request"
for name in "${scenarios[@]}"; do
  port=$(free_port)
  config "$name" "$port"
  valgrind --tool=callgrind --smc-check=all-non-file --callgrind-out-file="$OUT/$name.%p.out" \
    nginx -p "$OUT/$name" -c "$OUT/$name/nginx.conf" -e "$OUT/$name/logs/error.log" -g "daemon off; master_process off;" \
    >"$OUT/$name.valgrind.log" 2>&1 &
  pid=$!
  pids+=($pid)
  for _ in $(seq 300); do [[ $(curl -s -H "Host: $HOST_HEADER" "http://127.0.0.1:$port/") == x ]] && break; sleep 0.2; done
  # Warm-up (JIT traces, pools, caches), then measure from zero.
  wrk -t1 -c"$CONNS" -d5s -H "Host: $HOST_HEADER" "http://127.0.0.1:$port/" >/dev/null
  callgrind_control -z "$pid" >/dev/null 2>&1
  requests=$(wrk -t1 -c"$CONNS" -d"${SECONDS_RUN}s" -H "Host: $HOST_HEADER" "http://127.0.0.1:$port/" | awk '/requests in/ { print $1 }')
  callgrind_control -d "measured" "$pid" >/dev/null 2>&1
  sleep 1
  dump=$(ls -t "$OUT/$name".*.out.* 2>/dev/null | head -1)
  ir=$(awk '/^summary:/ { print $2 }' "$dump")
  cp "$dump" "$OUT/$name.measured.out"
  printf '%-10s %12s %10.1f %14.0f\n' "$name" "$requests" "$(echo "$ir / 1000000" | bc -l)" "$(echo "$ir / $requests" | bc -l)"
  kill "$pid"; wait "$pid" 2>/dev/null || true
done
echo "dumps: $OUT/<scenario>.measured.out"
