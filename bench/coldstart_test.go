package bench

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jam/go-jam/jam/jamtest"
)

// TestColdStartOneFetch starts 1,000 goroutines verifying the same token
// at once against a fresh client, whose key set and token cache are empty,
// and counts the key-set fetches JAM sees: exactly 1, shared by everyone.
// The key set answers after 50 ms, as over a real network, so that the
// callers pile up on the fetch in flight rather than finding it done.
func TestColdStartOneFetch(t *testing.T) {
	const callers = 1000
	srv := jamtest.NewServer(jamtest.WithClock(fixedNow))
	defer srv.Close()
	srv.SetFault(jamtest.OpGetJWKS, jamtest.Fault{Delay: 50 * time.Millisecond})
	token, _ := srv.IssueTokens("ann@example.com")
	client := srv.Client()
	ctx := context.Background()

	start := make(chan struct{})
	errs := make(chan error, callers)
	var wg sync.WaitGroup
	for range callers {
		wg.Go(func() {
			<-start
			if _, err := client.VerifyToken(ctx, token); err != nil {
				errs <- err
			}
		})
	}
	began := time.Now()
	close(start)
	wg.Wait()
	elapsed := time.Since(began)
	close(errs)
	for err := range errs {
		t.Errorf("VerifyToken() = %v, want nil", err)
		break
	}

	got := srv.Requests(jamtest.OpGetJWKS)
	t.Logf("cold start: %d goroutines verified in %v with %d JWKS fetch(es)", callers, elapsed.Round(time.Millisecond), got)
	if got != 1 {
		t.Errorf("JWKS fetches for %d concurrent cold verifications = %d, want 1", callers, got)
	}
}

var (
	freshPairs = flag.Int("fresh.pairs", 0, "TestFreshProcesses: rounds of fresh processes to the first verified token, one per implementation each round; 0 skips it (bench/coldstart.sh sets 21)")
	freshBusy  = flag.Int("fresh.busy", 7, "TestFreshProcesses: rounds of busy fresh processes, verifying 300 tokens")
	// A baseline is cmd/fresh built from another checkout, such as the
	// commit before a change, where -impl go-jam may mean other code.
	freshBaseline = flag.String("fresh.baseline", "", "TestFreshProcesses: a cmd/fresh binary of another checkout, whose -impl go-jam runs in turns with the others as \"baseline\"")
)

// firstTokenImpls are the implementations TestFreshProcesses starts, in
// turns; go-oidc is the reference.
var firstTokenImpls = []string{"go-oidc", "go-jam", "go-jam-precompute"}

// Targets of a fresh process (BENCHMARKS.md).
const (
	maxFirstTokenOverOIDC = 1.25 // go-jam's first verified token over go-oidc's
	maxBusyOverFloor      = 0.20 // tokens 250–300 of a busy process over crypto/ecdsa
)

// freshResult is what bench/cmd/fresh prints, and the process's wall time
// from its start to its exit, as seen from here.
type freshResult struct {
	Impl             string    `json:"impl"`
	FirstWallMS      float64   `json:"first_wall_ms"`
	FirstCPUMS       float64   `json:"first_cpu_ms"`
	TotalWallMS      float64   `json:"total_wall_ms"`
	TotalCPUMS       float64   `json:"total_cpu_ms"`
	Blocks           []float64 `json:"blocks_ms"`
	WindowMS         float64   `json:"window_ms"`
	WindowFloorMS    float64   `json:"window_floor_ms"`
	WindowCPUMS      float64   `json:"window_cpu_ms"`
	WindowFloorCPUMS float64   `json:"window_floor_cpu_ms"`
	HeapMiB          float64   `json:"heap_mib"`
	ProcessMS        float64
}

// TestFreshProcesses measures fresh processes against a jamtest server:
// from the first line of main to the first verified token (key-set fetch
// included), go-jam, go-jam with Precompute, and go-oidc, in turns, the
// order rotating each round; then busy processes, go-jam with and without
// the fast verifier in turns, verifying 300 tokens none has seen, and
// tokens 250–300 against crypto/ecdsa in the same process. It reports
// medians and ranges, and fails if a median misses its target. It takes a
// minute or two; bench/coldstart.sh runs it.
func TestFreshProcesses(t *testing.T) {
	if *freshPairs <= 0 {
		t.Skip("-fresh.pairs=0; bench/coldstart.sh runs it")
	}
	dir := t.TempDir()
	exe := filepath.Join(dir, "fresh")
	if out, err := exec.Command("go", "build", "-o", exe, "./cmd/fresh").CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/fresh: %v\n%s", err, out)
	}
	srv := jamtest.NewServer()
	defer srv.Close()
	const busyTokens, from, to = 300, 250, 300
	var tokens []string
	for i := range busyTokens {
		token, _ := srv.IssueTokens(fmt.Sprintf("user%d@example.com", i))
		tokens = append(tokens, token)
	}
	first, busy := filepath.Join(dir, "first.txt"), filepath.Join(dir, "busy.txt")
	if err := os.WriteFile(first, []byte(tokens[0]+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(busy, []byte(strings.Join(tokens, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	firstImpls, busyImpls := firstTokenImpls, []string{"go-jam", "go-jam-ecdsa"}
	if *freshBaseline != "" {
		firstImpls = append(slices.Clone(firstImpls), "baseline")
		busyImpls = append(busyImpls, "baseline")
	}
	fresh := func(impl, file string, args ...string) freshResult {
		t.Helper()
		bin := exe
		if impl == "baseline" {
			bin, impl = *freshBaseline, "go-jam"
		}
		args = append([]string{"-impl", impl, "-base", srv.URL, "-app", srv.AppID, "-tokens", file}, args...)
		began := time.Now()
		out, err := exec.Command(bin, args...).Output()
		took := time.Since(began)
		if err != nil {
			t.Fatalf("fresh %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		var r freshResult
		if err := json.Unmarshal(out, &r); err != nil {
			t.Fatalf("fresh %s printed %q: %v", strings.Join(args, " "), out, err)
		}
		r.ProcessMS = float64(took) / float64(time.Millisecond)
		return r
	}
	t.Logf("%s, %d cores, load average before: %s", runtime.Version(), runtime.NumCPU(), loadAverage())

	// Rounds of one fresh process per implementation, the order rotating,
	// so that the machine's drift falls on all alike.
	results := make(map[string][]freshResult)
	for round := range *freshPairs {
		for i := range firstImpls {
			impl := firstImpls[(round+i)%len(firstImpls)]
			results[impl] = append(results[impl], fresh(impl, first))
		}
	}
	t.Logf("first verified token, %d rounds: median (min–max), ms", *freshPairs)
	t.Logf("%-18s %-22s %-22s %-22s", "impl", "main → token (wall)", "main → token (CPU)", "exec → exit (wall)")
	for _, impl := range firstImpls {
		rs := results[impl]
		t.Logf("%-18s %-22s %-22s %-22s", impl,
			spread(rs, func(r freshResult) float64 { return r.FirstWallMS }),
			spread(rs, func(r freshResult) float64 { return r.FirstCPUMS }),
			spread(rs, func(r freshResult) float64 { return r.ProcessMS }))
	}
	for _, impl := range firstImpls[1:] {
		ratios := make([]float64, *freshPairs)
		for i := range ratios {
			ratios[i] = results[impl][i].FirstWallMS / results["go-oidc"][i].FirstWallMS
		}
		med := median(ratios)
		t.Logf("%s / go-oidc, round by round: median %.2f (%.2f–%.2f); medians' ratio %.2f; CPU medians' ratio %.2f",
			impl, med, slices.Min(ratios), slices.Max(ratios),
			median(field(results[impl], func(r freshResult) float64 { return r.FirstWallMS }))/median(field(results["go-oidc"], func(r freshResult) float64 { return r.FirstWallMS })),
			median(field(results[impl], func(r freshResult) float64 { return r.FirstCPUMS }))/median(field(results["go-oidc"], func(r freshResult) float64 { return r.FirstCPUMS })))
		if impl == "go-jam" && med > maxFirstTokenOverOIDC {
			t.Errorf("go-jam's first verified token over go-oidc's = %.2f (median of %d rounds), want ≤ %.2f", med, *freshPairs, maxFirstTokenOverOIDC)
		}
	}

	// Busy processes: 300 tokens back to back.
	busyResults := make(map[string][]freshResult)
	for round := range *freshBusy {
		for i := range busyImpls {
			impl := busyImpls[(round+i)%len(busyImpls)]
			busyResults[impl] = append(busyResults[impl], fresh(impl, busy, "-n", fmt.Sprint(busyTokens), "-from", fmt.Sprint(from), "-to", fmt.Sprint(to)))
		}
	}
	t.Logf("busy process, %d rounds of %d tokens none had seen: median (min–max)", *freshBusy, busyTokens)
	for _, impl := range busyImpls {
		rs := busyResults[impl]
		ratios := field(rs, func(r freshResult) float64 { return r.WindowCPUMS / r.WindowFloorCPUMS })
		t.Logf("%s: tokens %d–%d over crypto/ecdsa in turns: by thread CPU %s, by wall clock %s; all %d tokens: wall %s ms, CPU %s ms; live heap after %s MiB",
			impl, from, to, spread(rs, func(r freshResult) float64 { return r.WindowCPUMS / r.WindowFloorCPUMS }),
			spread(rs, func(r freshResult) float64 { return r.WindowMS / r.WindowFloorMS }), busyTokens,
			spread(rs, func(r freshResult) float64 { return r.TotalWallMS }),
			spread(rs, func(r freshResult) float64 { return r.TotalCPUMS }),
			spread(rs, func(r freshResult) float64 { return r.HeapMiB }))
		var blocks []string
		for b := range rs[0].Blocks {
			blocks = append(blocks, fmt.Sprintf("%.2f", median(field(rs, func(r freshResult) float64 { return r.Blocks[b] }))))
		}
		t.Logf("%s: median ms a verification, tokens 1–50, 51–100, …: %s", impl, strings.Join(blocks, ", "))
		if impl == "go-jam" && median(ratios) > maxBusyOverFloor {
			t.Errorf("go-jam's tokens %d–%d of a busy process over crypto/ecdsa, by thread CPU = %.3f (median of %d), want ≤ %.2f", from, to, median(ratios), *freshBusy, maxBusyOverFloor)
		}
	}
	t.Logf("load average after: %s", loadAverage())
}

func field(rs []freshResult, f func(freshResult) float64) []float64 {
	out := make([]float64, len(rs))
	for i, r := range rs {
		out[i] = f(r)
	}
	return out
}

// spread formats the median, min and max of f over rs.
func spread(rs []freshResult, f func(freshResult) float64) string {
	xs := field(rs, f)
	return fmt.Sprintf("%.3g (%.3g–%.3g)", median(xs), slices.Min(xs), slices.Max(xs))
}

func median(xs []float64) float64 {
	s := slices.Sorted(slices.Values(xs))
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	return strings.Join(strings.Fields(string(b))[:3], " ")
}
