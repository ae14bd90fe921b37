#!/usr/bin/env bash
# The whole suite, as `make test` runs it (the Makefile exports the test settings, the
# query log and PY; tests/conftest.py says which tests are exclusive or heavy). At once:
#   - the tests that share a stack: on TEST_WORKERS (2) xdist workers against `test`;
#   - the exclusive stack tests, one at a time, on a stack of their own, `test2`.
# Then the heavy tests, one at a time and alone on the machine, on a fresh stack, `test4`
# (started when the exclusive tests end): hundreds of tasks at once, a killed worker,
# time budgets and attempt counts. Beside the parallel run, or on a worn stack, they
# failed (503s from the hot counter documents of issue 17, Gemini calls past their
# deadline, a delivery waiting out its ack deadline). Last the index coverage, which
# reads what all of them ran.
# Exit: 0 when every part passed; a part that collected no test (pytest's 5) fails too.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
py=${PY:?PY must name the venv python}
workers=${TEST_WORKERS:-2}
logs=.stack
stacks=(test test2 test4)  # `down` of a stack that never started is a no-op
failed=()

down_all() {
    for name in "${stacks[@]}"; do "$py" -m dev.stack down --name "$name"; done
}
trap down_all EXIT

up() {  # up NAME: start a stack; its output in .stack/NAME-up.log
    "$py" -m dev.stack up --name "$1" >"$logs/$1-up.log" 2>&1 || {
        tail -n 40 "$logs/$1-up.log" >&2
        return 1
    }
}

on() {  # on STACK COMMAND...: the command with that stack's environment
    local name=$1
    shift
    (eval "$("$py" -m dev.stack env --name "$name")" && "$@")
}

check() {  # check PART EXIT: remember a failed part
    if [ "$2" -eq 5 ]; then echo "make test: $1 collected no tests" >&2; fi
    if [ "$2" -ne 0 ]; then failed+=("$1 (pytest exit $2)"); fi
}

alone=("$py" -m pytest -p no:xdist -m "exclusive and not heavy" --durations=10)

# The shared tests start as soon as their stack is up (~15 s); the exclusive tests'
# stack starts meanwhile, and when they end, their job starts the heavy tests' stack.
up test || exit 1
cat "$logs/test-up.log"
(up test2 && on test2 "${alone[@]}"; rc=$?; up test4; exit "$rc") >"$logs/test2-tests.log" 2>&1 &
exclusive_pid=$!

on test "$py" -m pytest -n "$workers" --dist loadgroup -m "not exclusive and not heavy" \
    --deselect tests/infra/test_index_coverage.py --durations=15
check "the shared tests" $?

wait "$exclusive_pid"
rc=$?
echo "== the exclusive stack tests, one at a time on stack test2:"
cat "$logs/test2-tests.log"
check "the exclusive tests" "$rc"

if up test4; then  # already up (the exclusive tests' job started it): a quick check
    echo "== the heavy tests, alone on the machine, on a fresh stack (test4):"
    on test4 "$py" -m pytest -p no:xdist -m heavy --durations=5
    check "the heavy tests" $?
else
    failed+=("stack test4 did not start")
fi

if [ "${#failed[@]}" -eq 0 ]; then
    "$py" -m pytest -p no:xdist tests/infra/test_index_coverage.py
    check "the index coverage" $?
fi
if [ "${#failed[@]}" -ne 0 ]; then
    printf 'make test: failed: %s\n' "${failed[@]}" >&2
    exit 1
fi
