#!/usr/bin/env bash
# Packs the package as npm would publish it and checks the tarball with publint and arethetypeswrong.
set -euo pipefail
cd "$(dirname "$0")/.."
rm -f hotpath-*.tgz
tarball=$(npm pack --silent | tail -n 1)
trap 'rm -f "$tarball"' EXIT
npx --no-install publint "$tarball" --strict
npx --no-install attw "$tarball" --profile node16
