#!/usr/bin/env bash
# Make a local PostgreSQL server available for the postgres tests and sweeps. Idempotent.
#   1. install postgresql if missing (Debian/Ubuntu, needs root)
#   2. make sure a cluster exists, accepts password (scram) logins on 127.0.0.1, and runs
#      (started directly with pg_ctlcluster: no systemd here); wait until pg_isready answers
#   3. create/update the role `harness` (CREATEDB, so tests can make a fresh database each)
#      and the database `harness` owned by it
# Progress goes to stderr; the last line, on stdout, is the SQLAlchemy URL:
#   postgresql+psycopg://harness:<password>@127.0.0.1:5432/harness
# The password is a fixed one for this local test server only (never reuse it for a real
# server); override with HARNESS_PG_PASSWORD, the port with HARNESS_PG_PORT.
# Usage: url=$(scripts/setup_postgres.sh)
set -euo pipefail

PORT=${HARNESS_PG_PORT:-5432}
ROLE=harness
DB=harness
PASSWORD=${HARNESS_PG_PASSWORD:-harness-test-pw}
say() { echo "setup_postgres: $*" >&2; }

if ! command -v pg_ctlcluster >/dev/null 2>&1 || ! ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1; then
    say "installing postgresql"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq postgresql >/dev/null
fi

# The cluster on $PORT if there is one, else `main` of the newest installed version.
read -r VER NAME < <(pg_lsclusters -h | awk -v p="$PORT" '$3 == p {print $1, $2; exit}') || true
if [ -z "${VER:-}" ]; then
    VER=$(ls /usr/lib/postgresql | sort -V | tail -n 1)
    NAME=main
    say "creating cluster $VER/$NAME on port $PORT"
    pg_createcluster "$VER" "$NAME" -p "$PORT" >&2
fi
CONF=/etc/postgresql/$VER/$NAME

# Password logins over TCP on localhost (Debian's default pg_hba already has these lines).
hba=$CONF/pg_hba.conf
if ! grep -Eq '^host[[:space:]]+all[[:space:]]+all[[:space:]]+127\.0\.0\.1/32[[:space:]]+(scram-sha-256|md5)' "$hba"; then
    say "allowing scram-sha-256 logins from 127.0.0.1 in $hba"
    printf 'host    all    all    127.0.0.1/32    scram-sha-256\nhost    all    all    ::1/128    scram-sha-256\n' >>"$hba"
    reload=1
fi

install -d -o postgres -g postgres -m 2775 /var/run/postgresql
ready() { pg_isready -q -h 127.0.0.1 -p "$PORT"; }
if ! ready; then
    say "starting cluster $VER/$NAME (log: /var/log/postgresql/postgresql-$VER-$NAME.log)"
    # Retried: after a crash the old server's processes may take a moment to exit (until then
    # its lock files look live); a stale pid file is removed by pg_ctlcluster itself.
    for _ in $(seq 1 10); do
        out=$(pg_ctlcluster "$VER" "$NAME" start 2>&1) || true
        for _ in $(seq 1 10); do ready && break 2; sleep 0.5; done
    done
    ready || {
        echo "$out" >&2
        say "server did not answer in 50s; see /var/log/postgresql/postgresql-$VER-$NAME.log"
        exit 1
    }
elif [ -n "${reload:-}" ]; then
    pg_ctlcluster "$VER" "$NAME" reload >&2
fi

psql_su() { su postgres -c "psql -X -q -v ON_ERROR_STOP=1 -p $PORT -tA $*"; }
# Role and password are (re)set on every run: cheap, and it repairs a changed password.
psql_su -d postgres >&2 <<SQL
SELECT format('CREATE ROLE %I LOGIN', '$ROLE') WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '$ROLE')
\\gexec
ALTER ROLE "$ROLE" LOGIN CREATEDB PASSWORD '$PASSWORD';
SELECT format('CREATE DATABASE %I OWNER %I', '$DB', '$ROLE') WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = '$DB')
\\gexec
SQL
say "PostgreSQL $VER ($VER/$NAME) answers on 127.0.0.1:$PORT; role $ROLE, database $DB"
echo "postgresql+psycopg://$ROLE:$PASSWORD@127.0.0.1:$PORT/$DB"
