#!/usr/bin/env bash
# Installs what the router needs, from Debian's packages only (no OpenResty): nginx,
# the NDK and Lua modules, lua-resty-core and lrucache, cjson, and the DNS client.
# The Redis client is router/lua/dynroute/redis.lua (Debian's needs nginx-extras).
set -euo pipefail
# openssl: dynroute-router makes the placeholder certificate a TLS listener without a default needs.
packages=(nginx-light libnginx-mod-http-ndk libnginx-mod-http-lua lua-resty-core lua-resty-lrucache lua-cjson lua-nginx-dns openssl)
missing=()
for p in "${packages[@]}"; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p"); done
if [ ${#missing[@]} -eq 0 ]; then echo "router packages: all installed"; exit 0; fi
if [ "$(id -u)" -ne 0 ]; then echo "router/install.sh: run as root to install: ${missing[*]}" >&2; exit 1; fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# The package's own nginx service is not used: dynroute-router runs nginx with a prefix of its own.
apt-get install -y -qq --no-install-recommends "${missing[@]}"
echo "router packages: installed ${missing[*]}"
if command -v systemctl >/dev/null && systemctl is-active --quiet nginx 2>/dev/null; then
  echo "note: the package started its own nginx service (port 80); dynroute-router does not use it: systemctl disable --now nginx" >&2
fi
