#!/usr/bin/env bash
# The default suite, in two pytest processes at once: the Spark Connect tests need one of
# their own (a remote session puts the whole process in Connect mode), and much of their
# time is spent waiting on the server and on processes of their own, so they run beside the
# rest instead of after it. Their output is shown when both are done; the exit status is
# non-zero when either failed. Each process lists its slowest tests, to keep the suite's time
# in view.
set -uo pipefail
python="$1"
# The tests start their JVMs against the fresh install's jars: on a new machine a background
# class-data archive build (engine/class_archive.py) would compete with them for its first
# minutes and serve few later starts. Its real build runs under `make test-slow`.
export ODIBI_CLASS_ARCHIVE="${ODIBI_CLASS_ARCHIVE:-off}"
log="$(mktemp -t odibi-connect-tests.XXXXXX)"
"$python" -m pytest -v --durations=15 -m "connect and not slow" tests/connect >"$log" 2>&1 &
connect=$!
trap 'kill "$connect" 2>/dev/null; rm -f "$log"' INT TERM
"$python" -m pytest -v --durations=25 -m "not slow and not connect"
main=$?
wait "$connect"
connect_status=$?
echo "---- the Spark Connect tests (run at the same time as the tests above) ----"
cat "$log"
rm -f "$log"
exit $((main != 0 || connect_status != 0))
