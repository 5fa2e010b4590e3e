#!/usr/bin/env bash
# Start a Docker engine for the image tests and make the base images they build on.
# Idempotent. Follows ../shared/ENVIRONMENT.md: no bridge network, and Debian bookworm base
# images made with debootstrap because no registry can be pulled from.
set -euo pipefail
BASE_IMAGE=${MLREG_TEST_BASE_IMAGE:-mlreg-test/python:3.11-bookworm}
BUILD_IMAGE=${MLREG_TEST_BUILD_IMAGE:-mlreg-test/python:3.11-bookworm-build}
export DEBIAN_FRONTEND=noninteractive
if ! command -v dockerd >/dev/null 2>&1 || ! command -v debootstrap >/dev/null 2>&1; then
  apt-get update -qq
  apt-get install -y -qq docker.io debootstrap >/dev/null
fi
if ! docker info >/dev/null 2>&1; then
  # overlay2 shares layers; vfs copies the whole file system at every build step and every
  # `docker run` (measured here: full build 287 s vs 51 s, model-only rebuild 56-76 s vs
  # 2 s, docker run to ready 32 s vs 6 s). vfs only where the kernel has no overlayfs.
  for driver in overlay2 vfs; do
    nohup dockerd --storage-driver="$driver" --iptables=false --bridge=none >/tmp/dockerd.log 2>&1 &
    pid=$!
    for _ in $(seq 1 60); do
      docker info >/dev/null 2>&1 && break
      kill -0 "$pid" 2>/dev/null || break
      sleep 1
    done
    docker info >/dev/null 2>&1 && break
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  docker info >/dev/null 2>&1 || { echo "dockerd did not start; see /tmp/dockerd.log" >&2; exit 1; }
fi
if ! docker image inspect "$BASE_IMAGE" "$BUILD_IMAGE" >/dev/null 2>&1; then
  rootfs=$(mktemp -d /tmp/mlreg-rootfs.XXXXXX)
  debootstrap --variant=minbase --include=python3,python3-venv,python3-pip,ca-certificates,binutils \
    bookworm "$rootfs" >/tmp/debootstrap.log 2>&1 || { tail -20 /tmp/debootstrap.log >&2; exit 1; }
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
  chmod 0755 "$rootfs"  # mktemp made it 0700, which would become the image's /
  # The build stage strips TensorFlow's libraries with binutils; the runtime base has none.
  tar -C "$rootfs" -c . | docker import - "$BUILD_IMAGE" >/dev/null
  chroot "$rootfs" dpkg --purge binutils binutils-x86-64-linux-gnu binutils-common libbinutils \
    libctf0 libctf-nobfd0 libgprofng0 libjansson4 >/dev/null
  tar -C "$rootfs" -c . | docker import - "$BASE_IMAGE" >/dev/null
  rm -rf "$rootfs"
fi
echo "docker engine ready ($(docker info --format '{{.Driver}}')); base image $BASE_IMAGE, build image $BUILD_IMAGE"
