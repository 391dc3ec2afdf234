#!/bin/sh
# Start PostgreSQL on $PGDATA; on the first start (an empty volume) make the cluster: the user
# POSTGRES_USER (default postgres) with the password POSTGRES_PASSWORD, the database POSTGRES_DB
# (default: the user's name). Password logins (scram-sha-256) from any address of the container's
# networks; the local socket trusts, for pg_isready and maintenance inside the container.
set -eu
user="${POSTGRES_USER:-postgres}"
db="${POSTGRES_DB:-$user}"
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  if [ -z "${POSTGRES_PASSWORD:-}" ]; then
    echo "executor-postgres: set POSTGRES_PASSWORD (the password of $user)" >&2
    exit 2
  fi
  pwfile="$(mktemp)"
  printf '%s\n' "$POSTGRES_PASSWORD" >"$pwfile"
  initdb -D "$PGDATA" -U "$user" --pwfile="$pwfile" -E UTF8 \
    --auth-local=trust --auth-host=scram-sha-256 >/dev/null
  rm -f "$pwfile"
  echo "host all all all scram-sha-256" >>"$PGDATA/pg_hba.conf"
  if [ "$db" != postgres ]; then
    escaped="$(printf '%s' "$db" | sed 's/"/""/g')"
    owner="$(printf '%s' "$user" | sed 's/"/""/g')"
    echo "CREATE DATABASE \"$escaped\" OWNER \"$owner\"" \
      | postgres --single -D "$PGDATA" -j postgres >/dev/null
  fi
  echo "executor-postgres: made the cluster in $PGDATA (user $user, database $db)" >&2
fi
exec postgres -D "$PGDATA" -c listen_addresses='*' "$@"
