package jam_test

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jam/go-jam/jam"
	"github.com/go-jam/go-jam/jam/jamtest"
)

// The soak's size and seed. A fixed seed makes CI's run repeatable, up to
// the goroutines' interleaving; another seed draws other faults. Seed 1
// makes Authenticate meet faults in CI's 300 operations (2 of its 15
// calls), so that its checks have something to check.
var (
	soakOps  = flag.Int("soak.ops", 300, "operations in each run of TestFaultSoak (BENCHMARKS.md: 2000)")
	soakSeed = flag.Uint64("soak.seed", 1, "seed of TestFaultSoak's faults")
)

// soakMix is what the soak runs, in the proportions of a service's
// traffic: mostly verifications, local (with a key-set fetch after each
// rotation) and remote; refreshes; logouts; and a few logins.
var soakMix = []struct {
	op     jamtest.Operation // the one it sends to JAM
	weight int               // in 20
}{
	{jamtest.OpGetJWKS, 9}, // VerifyToken
	{jamtest.OpVerifyRemote, 2},
	{jamtest.OpRefreshToken, 4},
	{jamtest.OpDeleteRefreshToken, 2},
	{jamtest.OpDeleteAllRefreshTokens, 2},
	{jamtest.OpAuthenticate, 1},
}

// soakResult is what one run of the soak saw.
type soakResult struct {
	calls, failed map[jamtest.Operation]int
	requests      map[jamtest.Operation]int // what JAM received
	latencies     []time.Duration
	retries       int64
}

func (r *soakResult) successRate() float64 { return r.successRateWithout("") }

// successRateWithout is the success rate of the calls of every operation
// but skip.
func (r *soakResult) successRateWithout(skip jamtest.Operation) float64 {
	calls, failed := 0, 0
	for op := range r.calls {
		if op != skip {
			calls += r.calls[op]
			failed += r.failed[op]
		}
	}
	return 1 - float64(failed)/float64(calls)
}

func (r *soakResult) p99() time.Duration {
	l := slices.Clone(r.latencies)
	slices.Sort(l)
	return l[len(l)*99/100]
}

// TestFaultSoak runs a mix of operations from 8 goroutines against jamtest
// with 5% of the requests of every operation failing at random (resets,
// and gateway 502, 503 and 504 answers, some after JAM ran the request):
// with the default retries at least 99.5% succeed, no email is sent twice
// and every magic link sent is accounted for, and nothing is left running.
// The same run without faults, and without retries, are the comparison.
// BENCHMARKS.md records the figures of -soak.ops=2000.
func TestFaultSoak(t *testing.T) {
	t.Logf("-soak.seed=%d", *soakSeed)
	base := runSoak(t, 0, 2)
	with := runSoak(t, 0.05, 2)
	without := runSoak(t, 0.05, 0)

	for _, r := range []struct {
		name string
		res  *soakResult
	}{{"no faults", base}, {"5% faults, retries", with}, {"5% faults, no retries", without}} {
		var perOp []string
		for _, m := range soakMix {
			perOp = append(perOp, fmt.Sprintf("%s %d/%d ok, %.2f requests each",
				m.op, r.res.calls[m.op]-r.res.failed[m.op], r.res.calls[m.op], float64(r.res.requests[m.op])/float64(r.res.calls[m.op])))
		}
		t.Logf("%s: %.2f%% of %d operations succeeded, %d retries, p99 %v\n\t%s",
			r.name, 100*r.res.successRate(), len(r.res.latencies), r.res.retries, r.res.p99(), strings.Join(perOp, "\n\t"))
	}
	t.Logf("p99 latency added by faults and retries: %v", with.p99()-base.p99())

	if got := base.successRate(); got != 1 {
		t.Errorf("without faults %.2f%% succeeded, want all", 100*got)
	}
	// The faults Authenticate meets are not retried (below): its 5% of
	// faults fail whatever the client does, 0.25% of all the calls on
	// average, but as much as 0.55% for some seeds, so the overall rate is
	// reported (BENCHMARKS.md, over many seeds) rather than tested.
	if got := with.successRateWithout(jamtest.OpAuthenticate); got < 0.995 {
		t.Errorf("with 5%% faults and retries %.2f%% of the calls but Authenticate succeeded, want at least 99.5%% (-soak.seed=%d replays it)", 100*got, *soakSeed)
	}
	if with.retries == 0 || without.retries != 0 {
		t.Errorf("retries: %d with the default, %d with WithRetries(0); want some and none", with.retries, without.retries)
	}
	// Every fault of the mix may come after JAM ran an Authenticate, so
	// none may be retried: one request a call, and a fault is a failure.
	for _, r := range []*soakResult{with, without} {
		if calls, requests := r.calls[jamtest.OpAuthenticate], r.requests[jamtest.OpAuthenticate]; requests != calls {
			t.Errorf("%d Authenticate calls sent %d requests, want one each", calls, requests)
		}
	}
}

// runSoak runs the soak once, with faults at the given rate, and checks
// what must hold whatever the faults: no email sent twice, every link
// accounted for.
func runSoak(t *testing.T, rate float64, retries int) *soakResult {
	t.Helper()
	clk := newClock()
	srv := jamtest.NewServer(jamtest.WithClock(clk.Now), jamtest.WithTokenTTL(24*time.Hour),
		jamtest.WithLogger(slog.New(slog.DiscardHandler)))
	defer srv.Close()
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	client := srv.Client(jam.WithRetries(retries), jam.WithHTTPClient(&http.Client{Transport: tr, Timeout: 5 * time.Second}))

	if rate > 0 {
		after502 := jamtest.GatewayError(http.StatusBadGateway)
		after502.AfterHandling = true
		after504 := jamtest.GatewayError(http.StatusGatewayTimeout)
		after504.AfterHandling = true
		for _, m := range soakMix {
			srv.SetFault(m.op, jamtest.Fault{Rate: rate, Seed: *soakSeed, OneOf: []jamtest.Fault{
				{Reset: true}, {Reset: true, AfterHandling: true},
				jamtest.GatewayError(http.StatusBadGateway), after502, jamtest.HTMLError(http.StatusBadGateway),
				jamtest.GatewayError(http.StatusServiceUnavailable),
				jamtest.GatewayError(http.StatusGatewayTimeout), after504,
			}})
		}
	}

	res := &soakResult{calls: map[jamtest.Operation]int{}, failed: map[jamtest.Operation]int{}, requests: map[jamtest.Operation]int{}}
	var (
		mu         sync.Mutex
		next       atomic.Int64
		loginOK    = map[string]bool{} // address of each Authenticate call: did it succeed?
		rotateEach = int64(*soakOps / 8)
	)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for {
				i := next.Add(1) - 1
				if i >= int64(*soakOps) {
					return
				}
				if i > 0 && i%rotateEach == 0 {
					// A new key, past the refetch interval: the next
					// verifications fetch the key set.
					clk.Advance(11 * time.Second)
					srv.PublishKey()
				}
				op, email := pick(i), fmt.Sprintf("user-%d@example.com", i)
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				start := time.Now()
				err := soakCall(ctx, client, srv, op, email)
				took := time.Since(start)
				cancel()

				mu.Lock()
				res.calls[op]++
				if err != nil {
					res.failed[op]++
				}
				if op == jamtest.OpAuthenticate {
					loginOK[email] = err == nil
				}
				res.latencies = append(res.latencies, took)
				mu.Unlock()
			}
		})
	}
	wg.Wait()

	for _, m := range soakMix {
		res.requests[m.op] = srv.Requests(m.op)
	}
	res.retries = client.Stats().Retries

	// Every successful Authenticate sent its address one link, a failed one
	// one link if its request reached JAM, and none more: nothing was sent
	// twice. jamtest counts the requests it ran.
	sent := map[string]int{}
	for _, m := range srv.Outbox() {
		sent[m.Email]++
	}
	reached := 0
	for email, ok := range loginOK {
		switch n := sent[email]; {
		case n > 1:
			t.Errorf("%s got %d magic links for one Authenticate call", email, n)
		case ok && n != 1:
			t.Errorf("Authenticate(%s) succeeded, and %d links were sent", email, n)
		case !ok && n == 1:
			reached++
		}
	}
	if ok, handled := len(loginOK)-res.failed[jamtest.OpAuthenticate], srv.Handled(jamtest.OpAuthenticate); handled != ok+reached {
		t.Errorf("JAM ran %d Authenticate requests; %d calls succeeded and %d failed after reaching it", handled, ok, reached)
	}
	return res
}

// pick chooses the operation of the i-th call, by soakMix's weights.
func pick(i int64) jamtest.Operation {
	n := int(i*7) % 20 // spread each operation's calls over the run
	for _, m := range soakMix {
		if n < m.weight {
			return m.op
		}
		n -= m.weight
	}
	panic("weights do not add up to 20")
}

// soakCall makes the call for op, with tokens of a user of its own, so that
// no call depends on another's outcome.
func soakCall(ctx context.Context, c *jam.Client, srv *jamtest.Server, op jamtest.Operation, email string) error {
	if op == jamtest.OpAuthenticate {
		return c.Authenticate(ctx, email)
	}
	id, refresh := srv.IssueTokens(email)
	switch op {
	case jamtest.OpGetJWKS:
		_, err := c.VerifyToken(ctx, id)
		return err
	case jamtest.OpVerifyRemote:
		_, err := c.VerifyRemote(ctx, id)
		return err
	case jamtest.OpRefreshToken:
		_, err := c.Refresh(ctx, refresh)
		return err
	case jamtest.OpDeleteRefreshToken:
		return c.DeleteRefreshToken(ctx, id, refresh)
	}
	return c.DeleteAllRefreshTokens(ctx, id)
}
