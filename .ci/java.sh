#!/usr/bin/env bash
# A Java runtime for the Spark tests (PySpark starts a JVM). Idempotent; Debian's OpenJDK 17.
set -euo pipefail
if ! command -v java >/dev/null 2>&1; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openjdk-17-jre-headless >/dev/null
fi
java -version 2>&1 | head -n 1
