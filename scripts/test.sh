#!/usr/bin/env bash
# The test command of the README: installs dependencies, builds, runs every
# test suite (lit, Catch2 unit tests, static-link check) through ctest.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
cd "$SATTN_BUILD"
ctest --output-on-failure -j "$(nproc)"
