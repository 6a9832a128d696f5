#!/usr/bin/env bash
# Local HAPI FHIR JPA (R4) server for sip-fhir, without Docker. See README.md beside this file.
#
#   hapi.sh build | build-if-stale | start | stop | restart | status
#
# start builds the jar first when it is missing or older than pom.xml / src/, then waits until
# $BASE/metadata answers 200. Several servers can run at once with different ports and data dirs.
#
# Env: HAPI_PORT (8080), HAPI_DATA_DIR (${SIP_FHIR_DATA_DIR:-<repo>/.data}/hapi), HAPI_START_TIMEOUT (300 s),
#      HAPI_DB (h2: H2 file DB in the data dir, the default; postgres: a local PostgreSQL cluster that
#      deploy/postgres/pg.sh starts (and `stop` stops), database HAPI_PG_DATABASE (hapi), PG_DATA_DIR, PG_PORT),
#      HAPI_DB_URL / HAPI_DB_USERNAME / HAPI_DB_PASSWORD (any other PostgreSQL; wins over HAPI_DB),
#      HAPI_JAVA_OPTS (extra JVM options),
#      HAPI_BIND_ADDRESS (127.0.0.1), HAPI_AUTH (none|jwt) + HAPI_JWT_*, HAPI_TLS_CERT/_KEY/_CLIENT_CA
#      (read by the server; see README "Security"), HAPI_PROBE_CERT/_KEY (client certificate for the
#      readiness probe when HAPI_TLS_CLIENT_CA makes one mandatory).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
JAR="$HERE/target/sip-fhir-hapi.jar"

HAPI_PORT="${HAPI_PORT:-8080}"
HAPI_DATA_DIR="${HAPI_DATA_DIR:-${SIP_FHIR_DATA_DIR:-$REPO/.data}/hapi}"
HAPI_START_TIMEOUT="${HAPI_START_TIMEOUT:-300}"
HAPI_JAVA_OPTS="${HAPI_JAVA_OPTS:-}"
# Exported so that an empty value reaches the server as the default too, not as "all interfaces".
export HAPI_BIND_ADDRESS="${HAPI_BIND_ADDRESS:-127.0.0.1}"
# The probe and the printed URL use the bound address, or localhost when that reaches it.
case "$HAPI_BIND_ADDRESS" in
127.0.0.1 | 0.0.0.0 | :: | localhost) HOST=localhost ;;
*:*) HOST="[$HAPI_BIND_ADDRESS]" ;;
*) HOST="$HAPI_BIND_ADDRESS" ;;
esac
SCHEME=http
[[ -n "${HAPI_TLS_CERT:-}" ]] && SCHEME=https
BASE_URL="${SCHEME}://${HOST}:${HAPI_PORT}/fhir"
PROBE_TLS=()
if [[ "$SCHEME" == https ]]; then
	# The probe asks the process this script started, for a capability statement (no patient data, no
	# token sent), so it does not need to verify the server's certificate.
	PROBE_TLS=(--insecure)
	[[ -n "${HAPI_PROBE_CERT:-}" ]] && PROBE_TLS+=(--cert "$HAPI_PROBE_CERT")
	[[ -n "${HAPI_PROBE_KEY:-}" ]] && PROBE_TLS+=(--key "$HAPI_PROBE_KEY")
fi
PID_FILE="$HAPI_DATA_DIR/hapi.pid"
LOG_FILE="$HAPI_DATA_DIR/hapi.log"
JAVA="${JAVA_HOME:+$JAVA_HOME/bin/}java"
HAPI_DB="${HAPI_DB:-h2}"
HAPI_PG_DATABASE="${HAPI_PG_DATABASE:-hapi}"
PG_SCRIPT="$REPO/deploy/postgres/pg.sh"

log() { echo "hapi.sh: $*" >&2; }
die() { log "$*"; exit 1; }

now() { echo "${EPOCHREALTIME:-$(date +%s.%N)}"; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

# The pid in the pid file, if that process is alive and is our jar (pids get reused).
running_pid() {
	[[ -f "$PID_FILE" ]] || return 1
	local pid
	pid="$(cat "$PID_FILE" 2>/dev/null || true)"
	[[ "$pid" =~ ^[0-9]+$ ]] || return 1
	kill -0 "$pid" 2>/dev/null || return 1
	tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q 'sip-fhir-hapi.jar' || return 1
	echo "$pid"
}

metadata_ok() {
	local code
	code="$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 "${PROBE_TLS[@]}" "$BASE_URL/metadata" 2>/dev/null || true)"
	[[ "$code" == "200" ]]
}

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$HAPI_PORT") 2>/dev/null; }

jar_is_stale() {
	[[ -f "$JAR" ]] || return 0
	[[ "$HERE/pom.xml" -nt "$JAR" ]] && return 0
	[[ -n "$(find "$HERE/src" -newer "$JAR" -print -quit)" ]]
}

do_build() {
	mkdir -p "$HERE/target"
	# One build at a time (parallel test sessions may all call start).
	exec 9>"$HERE/target/.build.lock"
	flock 9
	if [[ "${1:-}" == "if-stale" ]] && ! jar_is_stale; then
		exec 9>&-
		[[ "${2:-}" == "quiet" ]] || echo "up to date: $JAR"
		return 0
	fi
	command -v mvn >/dev/null || die "mvn not found (Maven 3.8+ and Java 17 are needed to build)"
	local t0
	t0="$(now)"
	log "building $JAR ..."
	# A new file, not an overwrite: a server still running from the old jar keeps its open copy.
	rm -f "$JAR"
	if ! (cd "$HERE" && mvn -B -q package -DskipTests) >"$HERE/target/build.log" 2>&1; then
		tail -n 50 "$HERE/target/build.log" >&2
		die "build failed (full output: $HERE/target/build.log)"
	fi
	exec 9>&-
	echo "built $JAR in $(elapsed "$t0") s"
}

# HAPI_DB=postgres: the local cluster up, the database there, HAPI_DB_* pointing at it.
use_local_postgres() {
	[[ -z "${HAPI_DB_URL:-}" ]] || return 0 # an explicit database wins
	bash "$PG_SCRIPT" start >&2
	bash "$PG_SCRIPT" createdb "$HAPI_PG_DATABASE" >&2
	HAPI_DB_URL="$(bash "$PG_SCRIPT" jdbc-url "$HAPI_PG_DATABASE")"
	HAPI_DB_USERNAME=hapi
	HAPI_DB_PASSWORD="$(bash "$PG_SCRIPT" password)"
	export HAPI_DB_URL HAPI_DB_USERNAME HAPI_DB_PASSWORD
}

check_db_setting() {
	case "$HAPI_DB" in
	h2 | postgres) ;;
	*) die "HAPI_DB=$HAPI_DB: use h2 (default) or postgres" ;;
	esac
}

do_start() {
	check_db_setting
	if [[ -n "${HAPI_TLS_CLIENT_CA:-}" && -z "${HAPI_PROBE_CERT:-}" ]]; then
		die "HAPI_TLS_CLIENT_CA requires client certificates: set HAPI_PROBE_CERT (and HAPI_PROBE_KEY) for the readiness probe"
	fi
	mkdir -p "$HAPI_DATA_DIR"
	HAPI_DATA_DIR="$(cd "$HAPI_DATA_DIR" && pwd)"
	PID_FILE="$HAPI_DATA_DIR/hapi.pid"
	LOG_FILE="$HAPI_DATA_DIR/hapi.log"
	local t0 pid
	t0="$(now)"
	# One start at a time per data dir: a second caller waits, then finds the first one's server.
	exec 8>"$HAPI_DATA_DIR/.start.lock"
	flock 8

	if pid="$(running_pid)"; then
		if metadata_ok; then
			echo "already running (pid $pid) at $BASE_URL"
			return 0
		fi
		log "pid $pid is alive but $BASE_URL/metadata does not answer yet; waiting for it"
	else
		rm -f "$PID_FILE"
		# A server killed a moment ago may still hold its port for a few seconds.
		local i
		for ((i = 0; i < 30; i++)); do
			port_in_use || break
			sleep 0.5
		done
		port_in_use && die "port $HAPI_PORT is already in use by another process (set HAPI_PORT)"
		do_build if-stale quiet
		[[ -f "$JAR" ]] || die "no jar at $JAR"
		[[ "$HAPI_DB" == postgres ]] && use_local_postgres
		[[ -f "$LOG_FILE" ]] && mv -f "$LOG_FILE" "$LOG_FILE.1"
		# setsid + nohup: the server outlives the calling shell and its process group.
		# C1-only JIT and the serial GC halve the CPU a start (and a test run's worth of requests)
		# costs on 2 cores; see README. HAPI_JAVA_OPTS comes last, so it can override them. 3 GB heap:
		# at 1.5 GB the test run's session server was full by mid-run (old gen 91 %, young GCs of ~4 s each).
		# shellcheck disable=SC2086  # HAPI_JAVA_OPTS is a list of options
		(cd "$HAPI_DATA_DIR" && HAPI_PORT="$HAPI_PORT" HAPI_DATA_DIR="$HAPI_DATA_DIR" \
			exec setsid nohup "$JAVA" -Xms512m -Xmx3g -XX:TieredStopAtLevel=1 -XX:+UseSerialGC \
			$HAPI_JAVA_OPTS -jar "$JAR" \
			>"$LOG_FILE" 2>&1 </dev/null 8>&- 9>&-) &
		pid=$!
		echo "$pid" >"$PID_FILE"
		log "started pid $pid, log $LOG_FILE; waiting for $BASE_URL/metadata (timeout ${HAPI_START_TIMEOUT}s)"
	fi
	exec 8>&-

	local deadline=$((SECONDS + HAPI_START_TIMEOUT))
	while ((SECONDS < deadline)); do
		if ! kill -0 "$pid" 2>/dev/null; then
			log "the server process died during start-up; last 50 log lines:"
			tail -n 50 "$LOG_FILE" >&2 || true
			rm -f "$PID_FILE"
			exit 1
		fi
		if metadata_ok; then
			echo "HAPI FHIR running at $BASE_URL (pid $pid, started in $(elapsed "$t0") s)"
			return 0
		fi
		sleep 0.5
	done
	log "no answer from $BASE_URL/metadata within ${HAPI_START_TIMEOUT}s; last 50 log lines:"
	tail -n 50 "$LOG_FILE" >&2 || true
	do_stop >/dev/null
	exit 1
}

do_stop() {
	local pid
	if ! pid="$(running_pid)"; then
		rm -f "$PID_FILE"
		echo "not running"
		return 0
	fi
	kill -TERM "$pid" 2>/dev/null || true
	local i
	for ((i = 0; i < 60; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.5
	done
	if kill -0 "$pid" 2>/dev/null; then
		log "pid $pid did not stop within 30 s; killing it"
		kill -KILL "$pid" 2>/dev/null || true
	fi
	rm -f "$PID_FILE"
	echo "stopped (pid $pid)"
}

# stop: the server, then (HAPI_DB=postgres) the local cluster it started.
do_stop_all() {
	check_db_setting
	do_stop
	if [[ "$HAPI_DB" == postgres && -z "${HAPI_DB_URL:-}" ]]; then
		bash "$PG_SCRIPT" stop
	fi
}

do_status() {
	local pid
	if pid="$(running_pid)" && metadata_ok; then
		echo "running (pid $pid) at $BASE_URL"
		return 0
	elif [[ -n "${pid:-}" ]]; then
		echo "starting or not answering (pid $pid) at $BASE_URL"
	else
		echo "not running ($BASE_URL)"
	fi
	return 3
}

case "${1:-}" in
build) do_build ;;
build-if-stale) do_build if-stale ;;
start) do_start ;;
stop) do_stop_all ;;
restart) do_stop && do_start ;;
status) do_status ;;
*)
	echo "usage: $0 build|build-if-stale|start|stop|restart|status" >&2
	exit 2
	;;
esac
