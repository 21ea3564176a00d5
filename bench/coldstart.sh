#!/usr/bin/env bash
# Measures fresh processes against a jamtest server (TestFreshProcesses in
# coldstart_test.go, with bench/cmd/fresh): from the first line of main to
# the first verified token, go-jam, go-jam with Precompute and go-oidc in
# turns; then busy processes verifying 300 tokens none has seen, go-jam
# with and without the fast verifier. It prints medians and ranges and
# fails if a median misses its target. It needs only Go, and takes a
# minute or two.
#
#   JAM_FRESH_PAIRS   rounds to the first token, at least 21 (default 21)
#   JAM_FRESH_BUSY    rounds of busy processes (default 7)
set -euo pipefail
cd "$(dirname "$0")"

pairs=${JAM_FRESH_PAIRS:-21}
busy=${JAM_FRESH_BUSY:-7}
if ! [[ $pairs =~ ^[0-9]+$ ]] || ((pairs < 21)); then
	echo "coldstart.sh: JAM_FRESH_PAIRS=$pairs: want at least 21 rounds" >&2
	exit 2
fi
if ! [[ $busy =~ ^[0-9]+$ ]] || ((busy < 1)); then
	echo "coldstart.sh: JAM_FRESH_BUSY=$busy: want a positive number of rounds" >&2
	exit 2
fi
go test -run '^TestFreshProcesses$' -count=1 -v -timeout 30m -fresh.pairs="$pairs" -fresh.busy="$busy" . |
	sed -n 's/^ *coldstart_test.go:[0-9]*: /    /p; /^--- /p; /^ok\|^FAIL/p'
