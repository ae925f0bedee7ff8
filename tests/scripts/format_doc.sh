#!/usr/bin/env bash
# format_doc.sh -- docs/format.md checked against kappa by an independent Python writer.
set -euo pipefail
cd "$(dirname "$0")/../.."
exec python3 tests/scripts/format_doc.py
