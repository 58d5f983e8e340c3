#!/usr/bin/env bash
set -euo pipefail
source ./lib.sh

PREFIX="${PREFIX:-/usr/local}"

install_binary() {
  mkdir -p "$PREFIX/bin"
  cp cove "$PREFIX/bin/"
}

install_binary
