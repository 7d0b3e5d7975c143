# tests/lib/harness.sh: what every shell integration test shares — logging, the cleanup trap that kills only
# the PIDs the test started, and assertions that print expected against actual. Sourced by the suites'
# own lib.sh after they set:
#   TEST_NAME      the test's name (its file name without .sh)
#   TMP            the test's private temp dir (removed at exit unless KEEP_TMP is set)
#   STARTED_PIDS   array: every PID the test started (killed with -9 and waited for at exit)
#   HARNESS_LABEL  optional: appended to the PASS/FAIL line (e.g. " against etcd")
# On failure the last lines of every TMP/*.log are printed, so a CI log shows what the members said.
TEST_FAILED=0
HARNESS_LABEL=${HARNESS_LABEL:-}

log() { printf '[%s %s] %s\n' "$(date +%T.%3N)" "$TEST_NAME" "$*" >&2; }

cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	local p
	for p in "${STARTED_PIDS[@]}"; do
		kill -9 "$p" 2>/dev/null || true
	done
	for p in "${STARTED_PIDS[@]}"; do
		wait "$p" 2>/dev/null || true
	done
	if [ "$rc" -ne 0 ] || [ "$TEST_FAILED" -ne 0 ]; then
		local f
		for f in "$TMP"/*.log; do
			[ -e "$f" ] || continue
			echo "---- last lines of $(basename "$f") ----" >&2
			tail -n 30 "$f" >&2 || true
		done
		echo "FAIL: $TEST_NAME$HARNESS_LABEL (exit code $rc)" >&2
	else
		echo "PASS: $TEST_NAME$HARNESS_LABEL ($SECONDS s)" >&2
	fi
	[ -n "${KEEP_TMP:-}" ] || rm -rf "$TMP"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

fail() {
	TEST_FAILED=1
	echo "ASSERTION FAILED: $*" >&2
	exit 1
}

# assert_eq DESCRIPTION EXPECTED ACTUAL
assert_eq() {
	if [ "$2" != "$3" ]; then
		TEST_FAILED=1
		{
			echo "ASSERTION FAILED: $1"
			echo "--- expected ---"
			printf '%s\n' "$2"
			echo "--- actual ---"
			printf '%s\n' "$3"
			echo "--- diff (expected vs actual) ---"
			diff <(printf '%s\n' "$2") <(printf '%s\n' "$3") || true
		} >&2
		exit 1
	fi
}

# assert_contains DESCRIPTION NEEDLE HAYSTACK
assert_contains() {
	case "$3" in
	*"$2"*) ;;
	*) TEST_FAILED=1
	   printf 'ASSERTION FAILED: %s\n--- expected to contain ---\n%s\n--- actual ---\n%s\n' "$1" "$2" "$3" >&2
	   exit 1 ;;
	esac
}

# assert_match DESCRIPTION EXTENDED_REGEX ACTUAL: ACTUAL as a whole (all its lines) matches the regex.
assert_match() {
	if ! [[ "$3" =~ ^$2$ ]]; then
		TEST_FAILED=1
		printf 'ASSERTION FAILED: %s\n--- expected to match ---\n%s\n--- actual ---\n%s\n' "$1" "$2" "$3" >&2
		exit 1
	fi
}
