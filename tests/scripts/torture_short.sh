#!/usr/bin/env bash
# torture_short.sh -- the short tier of `make torture` in `make test`: kappa serve killed
# with SIGKILL and restarted 15 times under concurrent appends, a view rebuild and view
# queries, one SIGSTOP/SIGCONT pause, checked by tests/torture/torture.py (Python standard
# library only). TORTURE_ROUNDS overrides the 15.
export TORTURE_ROUNDS=${TORTURE_ROUNDS:-15}
exec bash "$(dirname "$0")/../torture/run.sh"
