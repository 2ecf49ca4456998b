#!/usr/bin/env bash
# The real `kustomize`, built once from the Go module proxy (no binary download), so the
# manifest tests can compare their resolver with it on any machine that has Go.
#
#   scripts/kustomize.sh path    build it if missing (cached), then print its path
#
# Environment (optional): KUSTOMIZE_BIN_DIR (~/.cache/isams-sync/kustomize-<version>/bin)
set -euo pipefail

VERSION="v5.5.0"
BIN_DIR="${KUSTOMIZE_BIN_DIR:-$HOME/.cache/isams-sync/kustomize-$VERSION/bin}"
BINARY="$BIN_DIR/kustomize"

say() { printf 'kustomize.sh: %s\n' "$*" >&2; }

build() {
  [[ -x "$BINARY" ]] && return 0
  command -v go >/dev/null || { say "go not found: the Go toolchain builds kustomize"; exit 1; }
  say "building kustomize $VERSION from the Go module proxy into $BIN_DIR (once, ~1 min)"
  mkdir -p "$BIN_DIR"
  local work
  work="$(mktemp -d)"
  # Outside any module, with a private build cache: the repository is not a Go module.
  (cd "$work" && GOBIN="$BIN_DIR" GOFLAGS=-mod=mod go install "sigs.k8s.io/kustomize/kustomize/v5@$VERSION")
  rm -rf "$work"
  [[ -x "$BINARY" ]] || { say "the build finished without $BINARY"; exit 1; }
}

case "${1:-path}" in
  path) build; printf '%s\n' "$BINARY" ;;
  *) say "usage: $0 path"; exit 2 ;;
esac
