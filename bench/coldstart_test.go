package bench

import (
	"context"
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
