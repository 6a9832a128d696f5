#!/usr/bin/env bash
# A private PostgreSQL cluster for the local HAPI server, from Debian's `postgresql` package, no
# Docker. See deploy/hapi/README.md ("HAPI on PostgreSQL").
#
#   pg.sh install | start | stop | status | createdb NAME | dropdb NAME | password | jdbc-url NAME
#
# install: apt-get the `postgresql` package when no server binaries are found (root or sudo).
# start:   initialise the cluster on first use (initdb, superuser `hapi`, a generated password kept
#          with mode 600 in the data dir; no default password), then start it on 127.0.0.1:$PG_PORT
#          only (scram-sha-256, Unix socket inside the data dir) and wait until it answers.
# As root, the server runs as the `postgres` user that Debian's package creates (PostgreSQL refuses
# to run as root); the data dir is then owned by that user and its parent must be reachable by it.
#
# Env: PG_DATA_DIR (${SIP_FHIR_DATA_DIR:-<repo>/.data}/postgres), PG_PORT (5433: not Debian's 5432),
#      PG_START_TIMEOUT (120 s).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
PG_DATA_DIR="${PG_DATA_DIR:-${SIP_FHIR_DATA_DIR:-$REPO/.data}/postgres}"
PG_PORT="${PG_PORT:-5433}"
PG_START_TIMEOUT="${PG_START_TIMEOUT:-120}"
PG_USER=hapi
RUN_AS=postgres # the OS user the server runs as when this script runs as root

log() { echo "pg.sh: $*" >&2; }
die() { log "$*"; exit 1; }

# Newest installed server version's binaries (Debian keeps them outside PATH).
bin_dir() {
	local dir
	dir="$(find /usr/lib/postgresql -mindepth 2 -maxdepth 2 -name bin -type d 2>/dev/null | sort -V | tail -n 1)"
	[[ -n "$dir" && -x "$dir/initdb" ]] || return 1
	echo "$dir"
}

do_install() {
	if bin_dir >/dev/null; then
		echo "PostgreSQL already installed ($(bin_dir))"
		return 0
	fi
	command -v apt-get >/dev/null || die "no PostgreSQL server found and no apt-get to install it"
	local sudo_cmd=""
	if [[ "$(id -u)" -ne 0 ]]; then
		command -v sudo >/dev/null || die "installing PostgreSQL needs root (or sudo)"
		sudo_cmd="sudo"
	fi
	log "installing Debian's postgresql package (apt-get)"
	$sudo_cmd apt-get update -qq
	$sudo_cmd env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
	# Debian's package may create and start its own cluster on 5432; ours is separate and leaves it alone.
	bin_dir >/dev/null || die "apt-get installed postgresql but no server binaries were found"
	echo "PostgreSQL installed ($(bin_dir))"
}

CLUSTER="" PASSWORD_FILE="" LOG_FILE="" SOCKET_DIR="" BIN=""
paths() {
	mkdir -p "$PG_DATA_DIR"
	PG_DATA_DIR="$(cd "$PG_DATA_DIR" && pwd)"
	CLUSTER="$PG_DATA_DIR/cluster"
	PASSWORD_FILE="$PG_DATA_DIR/password"
	LOG_FILE="$PG_DATA_DIR/postgres.log"
	SOCKET_DIR="$PG_DATA_DIR/socket"
}

need_bin() {
	BIN="$(bin_dir)" || die "PostgreSQL is not installed: run '$0 install' (or deploy/setup.sh with HAPI_DB=postgres)"
}

# Run a server program as the cluster's owner.
as_owner() {
	if [[ "$(id -u)" -eq 0 ]]; then
		runuser -u "$RUN_AS" -- "$@"
	else
		"$@"
	fi
}

do_init() {
	[[ -f "$CLUSTER/PG_VERSION" ]] && return 0
	if [[ "$(id -u)" -eq 0 ]]; then
		getent passwd "$RUN_AS" >/dev/null || die "user $RUN_AS missing (Debian's postgresql package creates it)"
		chown "$RUN_AS:" "$PG_DATA_DIR"
		chmod 700 "$PG_DATA_DIR"
		runuser -u "$RUN_AS" -- test -w "$PG_DATA_DIR" \
			|| die "$PG_DATA_DIR is not reachable for user $RUN_AS (a parent directory is closed); choose another PG_DATA_DIR"
	fi
	rm -rf "$CLUSTER" "$SOCKET_DIR"
	as_owner mkdir -m 700 "$SOCKET_DIR"
	# 32 random bytes, hex: no default password, never on a command line.
	(umask 077 && od -An -tx1 -N32 /dev/urandom | tr -d ' \n' >"$PASSWORD_FILE")
	[[ "$(id -u)" -eq 0 ]] && chown "$RUN_AS:" "$PASSWORD_FILE"
	local t0=$SECONDS
	as_owner "$BIN/initdb" -D "$CLUSTER" -U "$PG_USER" --pwfile="$PASSWORD_FILE" \
		--auth-local=scram-sha-256 --auth-host=scram-sha-256 -E UTF8 --locale=C.UTF-8 \
		>"$PG_DATA_DIR/initdb.log" 2>&1 || { cat "$PG_DATA_DIR/initdb.log" >&2; die "initdb failed"; }
	# Loopback only; the socket in our own directory (Debian's /var/run/postgresql may not exist).
	as_owner tee -a "$CLUSTER/postgresql.conf" >/dev/null <<-EOF
		# sip-fhir (deploy/postgres/pg.sh)
		listen_addresses = '127.0.0.1'
		unix_socket_directories = '$SOCKET_DIR'
	EOF
	log "initialised cluster $CLUSTER in $((SECONDS - t0)) s (superuser $PG_USER, password in $PASSWORD_FILE)"
}

is_running() { [[ -f "$CLUSTER/postmaster.pid" ]] && as_owner "$BIN/pg_ctl" -D "$CLUSTER" status >/dev/null 2>&1; }

# psql on the cluster as its superuser, over TCP with the generated password.
psql_hapi() {
	PGPASSWORD="$(cat "$PASSWORD_FILE")" "$BIN/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 \
		-p "$PG_PORT" -U "$PG_USER" -d postgres "$@"
}

do_start() {
	need_bin
	paths
	exec 7>"$PG_DATA_DIR/.start.lock"
	flock 7
	do_init
	if is_running; then
		echo "PostgreSQL already running ($CLUSTER)"
		return 0
	fi
	local t0=$SECONDS
	as_owner "$BIN/pg_ctl" -D "$CLUSTER" -l "$LOG_FILE" -w -t "$PG_START_TIMEOUT" \
		-o "-p $PG_PORT" start >/dev/null 7>&- || { tail -n 30 "$LOG_FILE" >&2; die "PostgreSQL did not start"; }
	echo "PostgreSQL running on 127.0.0.1:$PG_PORT ($CLUSTER, started in $((SECONDS - t0)) s)"
}

do_stop() {
	need_bin
	paths
	if ! is_running; then
		echo "PostgreSQL not running"
		return 0
	fi
	as_owner "$BIN/pg_ctl" -D "$CLUSTER" -m fast -w stop >/dev/null
	echo "PostgreSQL stopped"
}

do_status() {
	need_bin
	paths
	if is_running; then
		echo "PostgreSQL running ($CLUSTER)"
		return 0
	fi
	echo "PostgreSQL not running ($CLUSTER)"
	return 3
}

valid_name() { [[ "$1" =~ ^[a-z_][a-z0-9_]{0,62}$ ]] || die "invalid database name '$1' (a-z, 0-9, _)"; }

do_createdb() {
	valid_name "$1"
	need_bin
	paths
	local exists
	exists="$(psql_hapi -tA -c "SELECT 1 FROM pg_database WHERE datname = '$1'")"
	if [[ "$exists" == "1" ]]; then
		echo "database $1 exists"
	else
		psql_hapi -c "CREATE DATABASE $1"
		echo "database $1 created"
	fi
}

do_dropdb() {
	valid_name "$1"
	need_bin
	paths
	psql_hapi -c "DROP DATABASE IF EXISTS $1 WITH (FORCE)"
	echo "database $1 dropped"
}

case "${1:-}" in
install) do_install ;;
start) do_start ;;
stop) do_stop ;;
status) do_status ;;
createdb) do_createdb "${2:?database name}" ;;
dropdb) do_dropdb "${2:?database name}" ;;
password) paths && { [[ -f "$PASSWORD_FILE" ]] || die "no cluster in $PG_DATA_DIR yet ('$0 start')"; } && cat "$PASSWORD_FILE" ;;
jdbc-url) valid_name "${2:?database name}" && echo "jdbc:postgresql://127.0.0.1:$PG_PORT/$2" ;;
*)
	echo "usage: $0 install|start|stop|status|createdb NAME|dropdb NAME|password|jdbc-url NAME" >&2
	exit 2
	;;
esac
