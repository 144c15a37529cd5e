# Throwaway services for CI, sourced by .ci/run (bash). Each service is a start_<name>
# function that starts it on a free loopback port with its data in $CI_TMP, exports the
# KILN_TEST_* variable the tests read, and registers its stop function; stop_services stops
# them all in reverse order and removes $CI_TMP. Call stop_services from an EXIT trap so a
# failing test run still leaves nothing behind. A new backend (Redis, an S3 server) is one
# more start_/stop_ pair here and one line in .ci/run.

CI_STOPS=()
CI_TMP=""

ci_tmp() {
  if [ -z "$CI_TMP" ]; then
    CI_TMP="$(mktemp -d "${TMPDIR:-/tmp}/kiln-ci.XXXXXX")"
    # Service users (postgres when we are root) must be able to reach their data folders.
    chmod 755 "$CI_TMP"
  fi
}

# A port nobody listens on now, chosen by the kernel (node is already required by the tests).
free_port() {
  node -e "const s=require('node:net').createServer();s.listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})"
}

stop_services() {
  local i
  for ((i = ${#CI_STOPS[@]} - 1; i >= 0; i--)); do
    "${CI_STOPS[i]}" || echo "ci: ${CI_STOPS[i]} failed" >&2
  done
  CI_STOPS=()
  if [ -n "$CI_TMP" ]; then rm -rf "$CI_TMP"; CI_TMP=""; fi
}

# --- PostgreSQL 15 (Debian postgresql-15) ----------------------------------------------
PG_BIN=/usr/lib/postgresql/15/bin
PG_DIR=""
PG_AS=()

# initdb and pg_ctl refuse to run as root: as root, run them as the postgres user the
# Debian package creates; otherwise as ourselves.
start_postgres() {
  local port="${1:-$(free_port)}"
  ci_tmp
  PG_DIR="$CI_TMP/postgres"
  mkdir -p "$PG_DIR"
  if [ "$(id -u)" = "0" ]; then
    chown postgres: "$PG_DIR"
    PG_AS=(runuser -u postgres --)
  fi
  # From a folder the postgres user can enter (the checkout may not be one).
  cd "$PG_DIR" || return 1
  "${PG_AS[@]}" "$PG_BIN/initdb" -D "$PG_DIR/data" -U postgres --auth=trust -E UTF8 --no-sync >"$PG_DIR/initdb.log" ||
    { cat "$PG_DIR/initdb.log" >&2; return 1; }
  # A test cluster: durability off (fsync, synchronous commit) trades nothing we need for speed;
  # the socket goes in our folder because /var/run/postgresql may not exist or be ours.
  "${PG_AS[@]}" "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/server.log" -w -t 60 \
    -o "-c listen_addresses=127.0.0.1 -p $port -k $PG_DIR -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
    start >/dev/null || { cat "$PG_DIR/server.log" >&2; return 1; }
  cd - >/dev/null || return 1
  CI_STOPS+=(stop_postgres)
  export KILN_TEST_POSTGRES="postgres://postgres@127.0.0.1:$port/postgres"
  echo "ci: PostgreSQL $("$PG_BIN/postgres" --version | awk '{print $3}') at $KILN_TEST_POSTGRES"
}

stop_postgres() {
  "${PG_AS[@]}" "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m fast -w stop >/dev/null
}

# --- Redis (Debian redis-server) ---------------------------------------------------------
REDIS_DIR=""
REDIS_PORT=""

# No persistence (a test server), loopback only, daemonised with its pid and log in our folder.
start_redis() {
  REDIS_PORT="${1:-$(free_port)}"
  ci_tmp
  REDIS_DIR="$CI_TMP/redis"
  mkdir -p "$REDIS_DIR"
  redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no \
    --dir "$REDIS_DIR" --pidfile "$REDIS_DIR/redis.pid" --logfile "$REDIS_DIR/redis.log" --daemonize yes ||
    return 1
  local i
  for ((i = 0; i < 100; i++)); do
    redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break
    sleep 0.1
  done
  redis-cli -p "$REDIS_PORT" ping >/dev/null || { cat "$REDIS_DIR/redis.log" >&2; return 1; }
  CI_STOPS+=(stop_redis)
  export KILN_TEST_REDIS="redis://127.0.0.1:$REDIS_PORT"
  echo "ci: Redis $(redis-server --version | awk '{print $3}') at $KILN_TEST_REDIS"
}

stop_redis() {
  redis-cli -p "$REDIS_PORT" shutdown nosave >/dev/null 2>&1 || kill "$(cat "$REDIS_DIR/redis.pid")"
}
