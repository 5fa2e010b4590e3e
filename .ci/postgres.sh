#!/usr/bin/env bash
# Install and start PostgreSQL for the registry tests; create user and database mlreg_test.
# Idempotent. Prints the SQLAlchemy URI the tests read from MLREG_TEST_POSTGRES_URI.
set -euo pipefail
if ! command -v pg_ctlcluster >/dev/null 2>&1 || ! ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
fi
version=$(ls /usr/lib/postgresql | sort -V | tail -n 1)
if ! pg_lsclusters -h | grep -q "^$version *main"; then
  pg_createcluster "$version" main >/dev/null
fi
pg_ctlcluster "$version" main start 2>/dev/null || true
for _ in $(seq 1 30); do
  su postgres -c "pg_isready -q -h 127.0.0.1" && break
  sleep 1
done
su postgres -c "psql -qtAc \"SELECT 1 FROM pg_roles WHERE rolname='mlreg'\"" | grep -q 1 ||
  su postgres -c "psql -qc \"CREATE USER mlreg PASSWORD 'mlreg' SUPERUSER\""
su postgres -c "psql -qtAc \"SELECT 1 FROM pg_database WHERE datname='mlreg_test'\"" | grep -q 1 ||
  su postgres -c "createdb -O mlreg mlreg_test"
echo "postgresql+psycopg://mlreg:mlreg@127.0.0.1:5432/mlreg_test"
