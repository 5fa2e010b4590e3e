#!/usr/bin/env bash
# Start a Docker engine for the image tests and make the base image they build on.
# Idempotent. Follows ../shared/ENVIRONMENT.md: vfs storage, no bridge network, and a
# Debian bookworm base image made with debootstrap because no registry can be pulled from.
set -euo pipefail
BASE_IMAGE=${MLREG_TEST_BASE_IMAGE:-mlreg-test/python:3.11-bookworm}
export DEBIAN_FRONTEND=noninteractive
if ! command -v dockerd >/dev/null 2>&1 || ! command -v debootstrap >/dev/null 2>&1; then
  apt-get update -qq
  apt-get install -y -qq docker.io debootstrap >/dev/null
fi
if ! docker info >/dev/null 2>&1; then
  nohup dockerd --storage-driver=vfs --iptables=false --bridge=none >/tmp/dockerd.log 2>&1 &
  for _ in $(seq 1 60); do
    docker info >/dev/null 2>&1 && break
    sleep 1
  done
  docker info >/dev/null 2>&1 || { echo "dockerd did not start; see /tmp/dockerd.log" >&2; exit 1; }
fi
if ! docker image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
  rootfs=$(mktemp -d /tmp/mlreg-rootfs.XXXXXX)
  debootstrap --variant=minbase --include=python3,python3-venv,python3-pip,ca-certificates,binutils \
    bookworm "$rootfs" >/tmp/debootstrap.log 2>&1 || { tail -20 /tmp/debootstrap.log >&2; exit 1; }
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
  chmod 0755 "$rootfs"  # mktemp made it 0700, which would become the image's /
  tar -C "$rootfs" -c . | docker import - "$BASE_IMAGE" >/dev/null
  rm -rf "$rootfs"
fi
echo "docker engine ready; base image $BASE_IMAGE"
