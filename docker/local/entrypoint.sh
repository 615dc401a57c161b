#!/bin/sh
# Entrypoint of the locally built Debian images (docker/images.sh): the subset of the
# official postgres image's contract that vecpg's tests and users rely on.
#   POSTGRES_USER (postgres), POSTGRES_PASSWORD, POSTGRES_DB ($POSTGRES_USER),
#   POSTGRES_HOST_AUTH_METHOD (scram-sha-256; "trust" allows no password),
#   POSTGRES_INITDB_ARGS (extra initdb arguments, e.g. --no-sync: the tests save ~3 s a start),
#   PGDATA (/var/lib/postgresql/data), /docker-entrypoint-initdb.d/*.sh|*.sql on first start.
# Extra arguments ("-c name=value") go to postgres, as with the official image.
set -eu
bin=/usr/lib/postgresql/17/bin
: "${PGDATA:=/var/lib/postgresql/data}"
: "${POSTGRES_USER:=postgres}"
: "${POSTGRES_DB:=$POSTGRES_USER}"
: "${POSTGRES_HOST_AUTH_METHOD:=scram-sha-256}"
export PGDATA
if [ "$(id -u)" = 0 ]; then
  mkdir -p "$PGDATA" /var/run/postgresql
  chown -R postgres:postgres "$PGDATA" /var/run/postgresql
  chmod 700 "$PGDATA"
  # postgres' own HOME, as gosu gives it in the official image: libpq (Citus' connections
  # between nodes, pg_basebackup) looks for ~/.pgpass and ~/.postgresql/ there
  HOME=$(getent passwd postgres | cut -d: -f6) exec setpriv --reuid=postgres --regid=postgres \
      --init-groups "$0" "$@"
fi
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  if [ -z "${POSTGRES_PASSWORD:-}" ] && [ "$POSTGRES_HOST_AUTH_METHOD" != trust ]; then
    echo "POSTGRES_PASSWORD is not set (or set POSTGRES_HOST_AUTH_METHOD=trust)" >&2
    exit 1
  fi
  pwfile=$(mktemp)
  printf '%s\n' "${POSTGRES_PASSWORD:-}" > "$pwfile"
  # UTF8: a SQL_ASCII cluster breaks vecpg's connect()
  "$bin/initdb" -D "$PGDATA" -U "$POSTGRES_USER" --pwfile="$pwfile" \
      --encoding=UTF8 --locale=C.UTF-8 --auth-local=trust --auth-host="$POSTGRES_HOST_AUTH_METHOD" \
      ${POSTGRES_INITDB_ARGS:-} >/dev/null
  rm -f "$pwfile"
  printf 'host all all all %s\nhost replication all all %s\n' \
      "$POSTGRES_HOST_AUTH_METHOD" "$POSTGRES_HOST_AUTH_METHOD" >> "$PGDATA/pg_hba.conf"
  # init scripts run on a socket-only server, so nothing connects over TCP before they end
  "$bin/pg_ctl" -D "$PGDATA" -w -o "-c listen_addresses='' $*" start >/dev/null
  if [ "$POSTGRES_DB" != postgres ]; then
    psql -v ON_ERROR_STOP=1 -U "$POSTGRES_USER" -d postgres \
        -c "CREATE DATABASE \"$POSTGRES_DB\"" >/dev/null
  fi
  for f in /docker-entrypoint-initdb.d/*; do
    case "$f" in
      *.sh) . "$f" ;;
      *.sql) psql -v ON_ERROR_STOP=1 -U "$POSTGRES_USER" -d "$POSTGRES_DB" -f "$f" ;;
    esac
  done
  "$bin/pg_ctl" -D "$PGDATA" -m fast -w stop >/dev/null
fi
exec "$bin/postgres" -D "$PGDATA" -c listen_addresses='*' "$@"
