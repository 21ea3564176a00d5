#!/usr/bin/env bash
# Runs the benchmarks of bench/ and prints benchstat's tables (ns/op, B/op,
# allocs/op; each implementation against the floor) and the ratios BENCHMARKS.md
# sets targets for. It needs only Go, and takes two minutes or so.
#
#   JAM_BENCH_COUNT   runs of each benchmark, at least 6 (default 8)
#   JAM_BENCH_TIME    go test -benchtime of each run (default 1s)
#   JAM_BENCH_OUT     a directory to keep the raw results and CSVs in
#                     (default: a temporary one, removed at the end)
#
# Progress goes to stderr, the tables to stdout.
set -euo pipefail
cd "$(dirname "$0")"

count=${JAM_BENCH_COUNT:-8}
benchtime=${JAM_BENCH_TIME:-1s}
benchstat=(go run golang.org/x/perf/cmd/benchstat@v0.0.0-20260908200009-22c9c6c9d4da)

if ! [[ $count =~ ^[0-9]+$ ]] || ((count < 6)); then
	echo "run.sh: JAM_BENCH_COUNT=$count: want a number of runs of at least 6, or benchstat cannot tell a difference from noise" >&2
	exit 2
fi
if [[ -n ${JAM_BENCH_OUT:-} ]]; then
	out=$JAM_BENCH_OUT
	mkdir -p "$out"
else
	out=$(mktemp -d)
	trap 'rm -rf "$out"' EXIT
fi

echo "## Machine"
echo
echo "    $(go version)"
echo "    CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), $(nproc) cores"
echo "    load average before the run: $(cut -d' ' -f1-3 /proc/loadavg)"
echo

echo "## Counts (1,000 Refresh calls; 1,000 goroutines at a cold start)"
echo
echo "run.sh: building the test binary…" >&2
go test -c -o "$out/bench.test" .

echo "run.sh: running the tests…" >&2
if ! "$out/bench.test" -test.count=1 -test.v -test.run 'TestVerifiers|TestRefreshers|TestRefreshOneConnection|TestColdStartOneFetch' >"$out/tests.txt" 2>&1; then
	cat "$out/tests.txt"
	echo "run.sh: the tests failed; no benchmarks run" >&2
	exit 1
fi
grep -E 'connection\(s\)|JWKS fetch' "$out/tests.txt" | sed 's/^ *[a-z_]*\.go:[0-9]*: /    /'
echo

# Rounds rather than -count, which runs each benchmark its count times in
# a row: in a round every implementation runs once, so that a change in
# the machine's load during the run falls on all of them alike.
: >"$out/bench.txt"
for ((round = 1; round <= count; round++)); do
	echo "run.sh: benchmarks, round $round of $count (-benchtime=$benchtime)…" >&2
	"$out/bench.test" -test.run '^$' -test.bench . -test.benchtime "$benchtime" | tee -a "$out/bench.txt" >&2
done

echo "## Benchmarks"
echo
echo "    $count rounds of every benchmark, -benchtime=$benchtime each"
echo "    load average after them: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "## benchstat: every benchmark (median ± 95% CI over $count runs)"
echo
"${benchstat[@]}" -filter '.name:(Verify OR Refresh)' "$out/bench.txt"
echo
echo "## benchstat: each verifier against the floor (~ = no significant difference)"
echo
"${benchstat[@]}" -filter .name:Verify -col /impl "$out/bench.txt"
echo
echo "## benchstat: Refresh against bare net/http"
echo
"${benchstat[@]}" -filter .name:Refresh -col '/client@(bare go-jam)' "$out/bench.txt"
echo
echo "## benchstat: BenchmarkPaired, go-jam cold over each other verifier, taking turns"
echo
"${benchstat[@]}" -filter .name:Paired "$out/bench.txt"
echo

echo "## Ratios and targets"
echo
"${benchstat[@]}" -format csv -filter .name:Verify -col '/impl@(go-jam-cold floor go-oidc jwx golang-jwt go-jam-warm)' "$out/bench.txt" >"$out/verify.csv" 2>/dev/null
"${benchstat[@]}" -format csv -filter .name:Refresh -col '/client@(bare go-jam)' "$out/bench.txt" >"$out/refresh.csv" 2>/dev/null
go run ./cmd/ratios -paired "$out/bench.txt" "$out/verify.csv" "$out/refresh.csv"
if [[ -n ${JAM_BENCH_OUT:-} ]]; then
	echo
	echo "raw results and CSVs in $out"
fi
