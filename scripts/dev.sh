#!/usr/bin/env bash
# The bootstrap behind `make run` and `make test`.
#
# It creates .venv, installs the project, and makes sure PostgreSQL and Redis are reachable:
# DATABASE_URL / REDIS_URL when they are set, otherwise servers of our own started from the
# machine's packages under .data/ (git-ignored), on ports of their own so that servers already
# running on the standard ports are neither used nor disturbed. Missing packages are installed with
# apt-get (as root, or with password-less sudo).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
DATA="$ROOT/.data"
VENV="$ROOT/.venv"
PG_PORT=${CLEARINGHOUSE_PG_PORT:-55432}
REDIS_PORT=${CLEARINGHOUSE_REDIS_PORT:-56379}
export PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONUNBUFFERED=1

say() { printf '==> %s\n' "$*"; }
die() { printf '\nerror: %s\n' "$*" >&2; exit 1; }

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"
  elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then sudo -n "$@"
  else return 1
  fi
}

APT_UPDATED=""
apt_install() {
  command -v apt-get >/dev/null 2>&1 || die "$* missing and no apt-get here: install $* yourself, or point DATABASE_URL/REDIS_URL at running servers"
  say "installing $* with apt-get (this happens once per machine)"
  if [ -z "$APT_UPDATED" ]; then
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq \
      || die "apt-get update failed: run it as root, then run this command again"
    APT_UPDATED=1
  fi
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" </dev/null \
    || die "could not install $*: install them as root (apt-get install $*), or set DATABASE_URL/REDIS_URL"
}

ensure_venv() {
  local python=${PYTHON:-python3}
  command -v "$python" >/dev/null || die "python3 (3.11 or newer) is needed: apt-get install python3 python3-venv"
  if [ ! -x "$VENV/bin/python" ]; then
    say "creating the virtualenv in .venv"
    "$python" -m venv "$VENV" || die "could not create .venv: apt-get install python3-venv, then retry"
  fi
  local stamp
  stamp="$VENV/.installed-$(cat pyproject.toml | sha256sum | cut -c1-16)"
  if [ ! -f "$stamp" ]; then
    say "installing the project and its dependencies into .venv"
    "$VENV/bin/python" -m pip install -q --upgrade pip
    "$VENV/bin/python" -m pip install --progress-bar on -e '.[dev]' \
      || die "pip install failed: check that PyPI is reachable, then run the command again"
    rm -f "$VENV"/.installed-*
    touch "$stamp"
  fi
}

pg_bindir() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1; }

# PostgreSQL refuses to run as root; as root we run it as the 'postgres' user the package creates,
# which then needs to traverse the folders down to .data (a traverse bit only, no listing).
grant_traverse() {
  local dir=$1
  while [ "$dir" != "/" ]; do
    if ! runuser -u postgres -- test -x "$dir" 2>/dev/null; then
      say "letting the postgres user traverse $dir (chmod o+x)"
      chmod o+x "$dir"
    fi
    dir=$(dirname "$dir")
  done
}

ensure_postgres() {
  if [ -n "${DATABASE_URL:-}" ]; then
    say "using DATABASE_URL"
    "$VENV/bin/python" - <<'PY' || die "DATABASE_URL is set but PostgreSQL does not answer there: start it, or unset DATABASE_URL to let the bootstrap start its own"
import os, psycopg
psycopg.connect(os.environ["DATABASE_URL"], connect_timeout=5).close()
PY
    return
  fi
  export DATABASE_URL="postgres://postgres@127.0.0.1:$PG_PORT/clearinghouse"
  local bindir
  bindir=$(pg_bindir)
  if [ -z "$bindir" ] || [ ! -x "$bindir/initdb" ]; then
    apt_install postgresql
    bindir=$(pg_bindir)
    [ -x "$bindir/initdb" ] || die "PostgreSQL's initdb was not found after installing postgresql"
  fi
  local pgdata="$DATA/postgres" run=()
  mkdir -p "$DATA/run"
  if [ "$(id -u)" = 0 ]; then
    id postgres >/dev/null 2>&1 || die "running as root needs the 'postgres' user that Debian's postgresql package creates"
    run=(runuser -u postgres --)
    grant_traverse "$DATA"
    chown postgres "$DATA/run"
  fi
  if ! "$bindir/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT"; then
    if [ ! -f "$pgdata/PG_VERSION" ]; then
      say "creating a PostgreSQL cluster in .data/postgres (port $PG_PORT)"
      mkdir -p "$pgdata"
      [ "$(id -u)" = 0 ] && chown postgres "$pgdata"
      "${run[@]}" "$bindir/initdb" -D "$pgdata" -U postgres -A trust -E UTF8 --no-instructions >"$DATA/initdb.log" 2>&1 \
        || die "initdb failed, see .data/initdb.log"
    fi
    say "starting PostgreSQL on 127.0.0.1:$PG_PORT"
    [ "$(id -u)" = 0 ] && touch "$DATA/postgres.log" && chown postgres "$DATA/postgres.log"
    "${run[@]}" "$bindir/pg_ctl" -D "$pgdata" -l "$DATA/postgres.log" -w -t 60 \
      -o "-p $PG_PORT -k $DATA/run -c listen_addresses=127.0.0.1 -c max_connections=200" start >/dev/null \
      || die "PostgreSQL did not start, see .data/postgres.log"
  fi
  if [ "$("$bindir/psql" -h 127.0.0.1 -p "$PG_PORT" -U postgres -tAc "select 1 from pg_database where datname='clearinghouse'")" != 1 ]; then
    "$bindir/createdb" -h 127.0.0.1 -p "$PG_PORT" -U postgres clearinghouse
  fi
}

ensure_redis() {
  if [ -n "${REDIS_URL:-}" ]; then
    say "using REDIS_URL"
    "$VENV/bin/python" -c 'import os, redis; redis.from_url(os.environ["REDIS_URL"], socket_connect_timeout=5).ping()' \
      || die "REDIS_URL is set but Redis does not answer there: start it, or unset REDIS_URL to let the bootstrap start its own"
    return
  fi
  export REDIS_URL="redis://127.0.0.1:$REDIS_PORT/0"
  command -v redis-server >/dev/null 2>&1 || apt_install redis-server
  if redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1; then return; fi
  say "starting Redis on 127.0.0.1:$REDIS_PORT (data in .data/redis)"
  mkdir -p "$DATA/redis"
  redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --dir "$DATA/redis" --daemonize yes \
    --pidfile "$DATA/redis/redis.pid" --logfile "$DATA/redis/redis.log" \
    --appendonly yes --appendfsync everysec --save "" >/dev/null \
    || die "Redis did not start, see .data/redis/redis.log"
  for _ in $(seq 50); do redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && return; sleep 0.1; done
  die "Redis did not answer on port $REDIS_PORT, see .data/redis/redis.log"
}

ensure_chromium() {
  if [ -n "${CHROMIUM_PATH:-}" ]; then return; fi
  if ! command -v chromium >/dev/null 2>&1; then
    apt_install chromium fonts-dejavu-core
  fi
  export CHROMIUM_PATH
  CHROMIUM_PATH=$(command -v chromium)
}

bootstrap() {
  mkdir -p "$DATA"
  ensure_venv
  ensure_postgres
  ensure_redis
  export PATH="$VENV/bin:$PATH"
}

stop_services() {
  local bindir
  bindir=$(pg_bindir)
  if [ -f "$DATA/postgres/postmaster.pid" ] && [ -n "$bindir" ]; then
    say "stopping PostgreSQL"
    if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$bindir/pg_ctl" -D "$DATA/postgres" -m fast stop
    else "$bindir/pg_ctl" -D "$DATA/postgres" -m fast stop; fi
  fi
  if redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1; then
    say "stopping Redis"
    redis-cli -p "$REDIS_PORT" shutdown nosave >/dev/null 2>&1 || true
  fi
}

cmd=${1:-}
case "$cmd" in
  bootstrap)
    bootstrap
    printf 'DATABASE_URL=%s\nREDIS_URL=%s\n' "$DATABASE_URL" "$REDIS_URL"
    ;;
  run)
    bootstrap
    export DJANGO_SETTINGS_MODULE=${DJANGO_SETTINGS_MODULE:-clearinghouse.settings.development}
    say "migrating the database"
    python manage.py migrate --noinput
    say "loading the demo"
    python manage.py load_demo
    exec python scripts/serve.py
    ;;
  test)
    bootstrap
    ensure_chromium
    say "ruff"
    ruff check . && ruff format --check . || die "ruff found problems: run 'make format' and look at what is left"
    say "django checks"
    DJANGO_SETTINGS_MODULE=clearinghouse.settings.test python manage.py check --fail-level WARNING
    DJANGO_SETTINGS_MODULE=clearinghouse.settings.test python manage.py makemigrations --check --dry-run >/dev/null \
      || die "models and migrations differ: run 'python manage.py makemigrations' and commit the result"
    say "pytest"
    shift || true
    python -m pytest "$@"
    ;;
  fuzz)
    bootstrap
    export FUZZ_EXAMPLES=${FUZZ_EXAMPLES:-100} FUZZ_RANDOM=${FUZZ_RANDOM:-1} FUZZ_TABLE=1
    say "fuzzing every API operation (by /api/schema/ and beyond it) and every form ($FUZZ_EXAMPLES examples each)"
    shift || true
    python -m pytest tests/test_fuzz_api.py tests/test_fuzz_bodies.py tests/test_fuzz_forms.py \
      -p no:cacheprovider "$@"
    ;;
  lint)
    ensure_venv
    "$VENV/bin/ruff" check . && "$VENV/bin/ruff" format --check .
    ;;
  bench)
    bootstrap
    export DJANGO_SETTINGS_MODULE=clearinghouse.settings.development
    python manage.py migrate --noinput >/dev/null
    for script in bench/bench_*.py; do
      [ -e "$script" ] || continue
      say "$script"
      python "$script"
    done
    ;;
  load)
    bootstrap
    shift || true
    # As `make run` serves: two processes a core, two threads each, so that a read is not queued
    # behind a batch in a sync worker nor behind another thread's parsing in one interpreter.
    python bench/load.py --workers $((2 * $(nproc))) --threads 2 "$@"
    ;;
  stop)
    stop_services
    ;;
  *)
    echo "usage: scripts/dev.sh run|test|fuzz|bootstrap|lint|bench|load|stop" >&2
    exit 2
    ;;
esac
