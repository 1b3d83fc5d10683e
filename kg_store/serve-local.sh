#!/usr/bin/env bash
# Start a local Bolt server (ArcadeDB from the arcadedb-embedded wheel) for development:
#   kg_store/serve-local.sh --port 7687 [--password-file FILE] [--load]   (password kept in DIR/root-password)
# It is `kerec kg serve`; the test suite starts its own server through kerec.kg.server instead.
set -euo pipefail
exec "${KEREC_VENV:-$(dirname "$0")/../.venv}/bin/kerec" kg serve "$@"
