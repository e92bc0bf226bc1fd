#!/usr/bin/env bash
# A throwaway PostgreSQL 15 server for the test suite and the benchmark.
#
#   eval "$(bash .ci/postgres.sh)"                           # start; exports the two variables below
#   eval "$(bash .ci/postgres.sh start --fsync)"             # the same, durable (fsync on): for the benchmark
#   bash .ci/postgres.sh stop "$RETOUCH_TEST_POSTGRES_DIR"   # stop and delete everything
#
# Start prints `export RETOUCH_TEST_POSTGRES_URL=postgresql://postgres@127.0.0.1:PORT/postgres` and
# `export RETOUCH_TEST_POSTGRES_DIR=…` on stdout; everything else goes to stderr. The server listens on
# 127.0.0.1 and a unix socket in its own directory only, trusts every local connection, and runs with
# fsync off: it holds test data that is thrown away, never anything worth keeping. `--fsync` keeps
# PostgreSQL's durable default instead, so benchmark figures are those of a server that loses nothing.
set -euo pipefail

PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
# The server refuses to run as root, so as root it runs as this unprivileged user.
CI_USER=${RETOUCH_CI_USER:-retouchci}

as_server_user() {
    if [ "$(id -u)" = 0 ]; then
        runuser -u "$CI_USER" -- "$@"
    else
        "$@"
    fi
}

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

start() {
    local fsync=off
    case "${1:-}" in
        --fsync) fsync=on ;;
        "") ;;
        *) echo "usage: $0 start [--fsync]" >&2; exit 2 ;;
    esac
    [ -x "$PG_BIN/initdb" ] || { echo "PostgreSQL server binaries not found in $PG_BIN" >&2; exit 1; }
    local dir port
    dir=$(mktemp -d "${TMPDIR:-/tmp}/retouch-pg.XXXXXX")
    if [ "$(id -u)" = 0 ]; then
        id -u "$CI_USER" >/dev/null 2>&1 || useradd --create-home "$CI_USER"
        chown "$CI_USER" "$dir"
    fi
    as_server_user "$PG_BIN/initdb" -D "$dir/data" -U postgres --auth=trust --encoding=UTF8 --no-sync >&2
    port=$(free_port)
    as_server_user "$PG_BIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 start -o \
        "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=$fsync -c max_connections=300" >&2 \
        || { cat "$dir/server.log" >&2; exit 1; }
    for _ in $(seq 1 60); do
        "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$port" -U postgres && break
        sleep 0.5
    done
    "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$port" -U postgres \
        || { echo "PostgreSQL did not become ready; log:" >&2; cat "$dir/server.log" >&2; exit 1; }
    echo "export RETOUCH_TEST_POSTGRES_URL=postgresql://postgres@127.0.0.1:$port/postgres"
    echo "export RETOUCH_TEST_POSTGRES_DIR=$dir"
}

stop() {
    local dir=${1:?usage: postgres.sh stop DIR (the RETOUCH_TEST_POSTGRES_DIR that start printed)}
    [ -d "$dir/data" ] || { echo "no PostgreSQL data directory in $dir" >&2; exit 1; }
    as_server_user "$PG_BIN/pg_ctl" -D "$dir/data" -m fast -w stop >&2 || true
    rm -rf "$dir"
}

case "${1:-start}" in
    start) start "${2:-}" ;;
    stop) stop "${2:-}" ;;
    *) echo "usage: $0 [start [--fsync] | stop DIR]" >&2; exit 2 ;;
esac
