#!/usr/bin/env bash
# Tools built with `go install` through the Go module proxy into ~/.cache/rtml/bin (override with
# RTML_TOOLS_BIN): helm and terraform for the offline validation of the Kubernetes artefacts, and
# vegeta, the open-loop HTTP load generator of `rtml verify overload` (a Go binary: on 2 cores a
# Python load generator took the CPU that the server under test needed).
# Idempotent and cached: a tool already at its pinned version is not rebuilt, so a second run is
# instant. Without Go it warns and exits 0 — the k8s tests then skip with the reason.
#
# SeaweedFS's `weed` is the S3-compatible object store of `rtml up --profile cluster` and of
# tests/cluster (MinIO is AGPL; SeaweedFS is Apache-2.0).
#
# Why these versions: helm v3.22.0's go.mod has no replace directives, so `go install` works.
# Terraform >= 1.6 has replace directives (and is BUSL) and cannot be `go install`ed; 1.5.7 is the
# last release that can, and its `fmt` and `validate` cover the HCL this project writes.
set -euo pipefail

HELM_VERSION="v3.22.0"
TERRAFORM_VERSION="v1.5.7"
VEGETA_VERSION="v12.13.0"
# SeaweedFS publishes no semver tags that the module proxy serves (its tags are like "4.01"), so
# the pin is a pseudo-version of its main branch. Its go.mod has a replace directive, which
# `go install pkg@version` refuses: install_module builds it inside the downloaded module instead.
SEAWEEDFS_VERSION="v0.0.0-20261109003541-7506e5f91cd6"
BIN="${RTML_TOOLS_BIN:-$HOME/.cache/rtml/bin}"
mkdir -p "$BIN"

if ! command -v go >/dev/null; then
  echo "install-tools: go not found; helm/terraform not installed (k8s tests will skip)" >&2
  exit 0
fi

# install NAME MODULE@VERSION VERSION — builds only when the stamp file does not match.
install() {
  local name="$1" pkg="$2" version="$3"
  local stamp="$BIN/.$name.version"
  if [ -x "$BIN/$name" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$version" ]; then
    return 0
  fi
  echo "install-tools: building $name $version (go install, a few minutes on 2 cores)"
  GOBIN="$BIN" GOFLAGS="-buildvcs=false" nice -n 10 go install "$pkg@$version"
  echo "$version" >"$stamp"
}

# install_module NAME MODULE PACKAGE VERSION — for a module whose go.mod has replace directives:
# the module proxy's source of MODULE@VERSION (`go mod download`, checked against the checksum
# database), built as the main module in a scratch copy.
install_module() {
  local name="$1" module="$2" package="$3" version="$4"
  local stamp="$BIN/.$name.version"
  if [ -x "$BIN/$name" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$version" ]; then
    return 0
  fi
  echo "install-tools: building $name $version (go build in the module, 10+ minutes on 2 cores)"
  local dir work
  work="$(mktemp -d)"
  trap 'rm -rf "$work"' RETURN
  dir="$(cd "$work" && go mod download -json "$module@$version" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')"
  [ -d "$dir" ] || { echo "install-tools: go mod download $module@$version failed" >&2; exit 1; }
  cp -r "$dir/." "$work"
  chmod -R u+w "$work"
  (cd "$work" && GOFLAGS="-buildvcs=false" nice -n 10 go build -o "$BIN/$name" "$package")
  echo "$version" >"$stamp"
}

install helm helm.sh/helm/v3/cmd/helm "$HELM_VERSION"
install terraform github.com/hashicorp/terraform "$TERRAFORM_VERSION"
install vegeta github.com/tsenart/vegeta/v12 "$VEGETA_VERSION"
install_module weed github.com/seaweedfs/seaweedfs ./weed "$SEAWEEDFS_VERSION"
