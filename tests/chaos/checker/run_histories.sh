#!/bin/sh
# Runs linearizability-check on every histories/*.history and compares the exit code with the file's
# "# expect-exit: N" line, and the output with each "# expect-output: TEXT" line (a substring).
# An "# expect-args: ARGS" line adds options before the file name.
set -u
checker=$1
directory=$2
failures=0
count=0
for history in "$directory"/*.history; do
	count=$((count + 1))
	expected=$(sed -n 's/^# expect-exit: *\([0-9]*\).*/\1/p' "$history" | head -n 1)
	if [ -z "$expected" ]; then
		echo "FAIL $history: no '# expect-exit: N' line"
		failures=$((failures + 1))
		continue
	fi
	arguments=$(sed -n 's/^# expect-args: *//p' "$history" | head -n 1)
	# shellcheck disable=SC2086 # the options are meant to split into words
	output=$("$checker" $arguments "$history" 2>&1)
	actual=$?
	ok=1
	if [ "$actual" != "$expected" ]; then
		echo "FAIL $history: exit $actual, expected $expected"
		ok=0
	fi
	sed -n 's/^# expect-output: *//p' "$history" > "${TMPDIR:-/tmp}/expect-output.$$"
	while IFS= read -r text; do
		case $output in
		*"$text"*) ;;
		*) echo "FAIL $history: output lacks '$text'"; ok=0 ;;
		esac
	done < "${TMPDIR:-/tmp}/expect-output.$$"
	rm -f "${TMPDIR:-/tmp}/expect-output.$$"
	if [ $ok = 0 ]; then
		failures=$((failures + 1))
		echo "--- output of: $checker $history"
		echo "$output"
		echo "---"
	else
		echo "ok   $(basename "$history"): exit $actual"
	fi
done
echo "$count histories, $failures failed"
[ "$count" -gt 0 ] && [ "$failures" = 0 ]
