#!/usr/bin/env bash
# demo.sh — README command 1: installs what is missing, builds the release
# configuration, and starts patchbay. The relay (patchbay serve) is not
# built yet, so for now this prints the command's help and versions.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh release
bin=build/release/cli/patchbay
echo
"$bin" --help
echo
"$bin" version
echo
echo "The relay and its demo room are not built yet (see README.md)."
