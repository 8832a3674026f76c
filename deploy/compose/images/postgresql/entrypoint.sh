#!/bin/sh
# First start: initdb, the user and database from POSTGRES_*; then postgres on PGHOST:PGPORT.
set -eu
bin=/usr/lib/postgresql/15/bin
data=/var/lib/postgresql/data
if [ ! -s "$data/PG_VERSION" ]; then
  pwfile=$(mktemp)
  echo "$POSTGRES_PASSWORD" > "$pwfile"
  "$bin/initdb" -D "$data" -U postgres --auth-local=trust --auth-host=scram-sha-256 >/dev/null
  rm -f "$pwfile"
  "$bin/pg_ctl" -D "$data" -o "-c listen_addresses='' -c unix_socket_directories=/var/run/postgresql" -w start >/dev/null
  psql -h /var/run/postgresql -U postgres -v ON_ERROR_STOP=1 -q \
    -c "CREATE USER \"$POSTGRES_USER\" PASSWORD '$POSTGRES_PASSWORD'" \
    -c "CREATE DATABASE \"$POSTGRES_DB\" OWNER \"$POSTGRES_USER\""
  "$bin/pg_ctl" -D "$data" -m fast -w stop >/dev/null
fi
exec "$bin/postgres" -D "$data" -c listen_addresses="$PGHOST" -p "$PGPORT" \
  -c unix_socket_directories=/var/run/postgresql
