package jam_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/go-jam/go-jam/jam"
	"github.com/go-jam/go-jam/jam/jamtest"
)

func TestKeyRotation(t *testing.T) {
	k1, k2 := newSigningKey(t, "key-1"), newSigningKey(t, "key-2")
	ks := newKeyServer(t, k1)
	clk := newClock()
	client := ks.client(t, clk)
	ctx := context.Background()
	c := claims(ks.URL, testNow)

	if _, err := client.VerifyToken(ctx, sign(t, jose.ES512, k1.priv, k1.kid, c, nil)); err != nil {
		t.Fatalf("VerifyToken(key-1) = %v", err)
	}

	// JAM rotates right after the cache warmed up: the first fetch is not
	// counted against the refetch rate, so the new kid is fetched at once.
	ks.setKeys(t, k2)
	if _, err := client.VerifyToken(ctx, sign(t, jose.ES512, k2.priv, k2.kid, c, nil)); err != nil {
		t.Fatalf("VerifyToken(key-2 after rotation) = %v", err)
	}
	if n := ks.fetches.Load(); n != 2 {
		t.Errorf("fetches = %d, want 2 (warm-up, one refetch)", n)
	}

	// The refetch replaced the set: key-1 is gone.
	_, err := client.VerifyToken(ctx, sign(t, jose.ES512, k1.priv, k1.kid, c, nil))
	assertRefused(t, err, jam.ErrUnknownKey)
	if n := ks.fetches.Load(); n != 2 {
		t.Errorf("fetches = %d, want 2: an unknown kid right after a refetch fetches nothing", n)
	}

	// A flood of unknown kids within the refetch interval costs no request,
	// and gets "unavailable, retry after", not a refusal: any of them may
	// be a key JAM has just published.
	for i := range 100 {
		_, err := client.VerifyToken(ctx, sign(t, jose.ES512, k2.priv, fmt.Sprintf("forged-%d", i), c, nil))
		assertLimited(t, err, 10*time.Second)
	}
	if n := ks.fetches.Load(); n != 2 {
		t.Errorf("fetches after a flood of unknown kids = %d, want 2", n)
	}

	// After the interval, an unknown kid may refetch once more.
	clk.Advance(10 * time.Second)
	k3 := newSigningKey(t, "key-3")
	ks.setKeys(t, k2, k3)
	if _, err := client.VerifyToken(ctx, sign(t, jose.ES512, k3.priv, k3.kid, c, nil)); err != nil {
		t.Fatalf("VerifyToken(key-3 after the refetch interval) = %v", err)
	}
	if n := ks.fetches.Load(); n != 3 {
		t.Errorf("fetches = %d, want 3", n)
	}
}

func TestRefetchIntervalOption(t *testing.T) {
	k1 := newSigningKey(t, "key-1")
	tests := []struct {
		interval time.Duration
		want     int32 // fetches: the warm-up, then for unknown kids 30 s apart
	}{
		{time.Hour, 2},        // the first unknown kid
		{time.Minute, 3},      // the first and the third
		{10 * time.Second, 4}, // the default: every one
		{0, 4},                // no bound
	}
	for _, tt := range tests {
		t.Run(tt.interval.String(), func(t *testing.T) {
			ks := newKeyServer(t, k1)
			clk := newClock()
			client := ks.client(t, clk, jam.WithRefetchInterval(tt.interval))
			c := claims(ks.URL, testNow)
			if _, err := client.VerifyToken(context.Background(), sign(t, jose.ES512, k1.priv, k1.kid, c, nil)); err != nil {
				t.Fatalf("VerifyToken(warm-up) = %v", err)
			}
			var refetchedAt time.Time
			for i := range 3 {
				before := ks.fetches.Load()
				_, err := client.VerifyToken(context.Background(), sign(t, jose.ES512, k1.priv, fmt.Sprintf("unknown-%d", i), c, nil))
				if ks.fetches.Load() > before {
					assertRefused(t, err, jam.ErrUnknownKey)
					refetchedAt = clk.Now()
				} else {
					assertLimited(t, err, refetchedAt.Add(tt.interval).Sub(clk.Now()))
				}
				clk.Advance(30 * time.Second)
			}
			if n := ks.fetches.Load(); n != tt.want {
				t.Errorf("WithRefetchInterval(%v): fetches = %d, want %d", tt.interval, n, tt.want)
			}
		})
	}

	// Without a bound, unknown kids in the same instant each refetch.
	ks := newKeyServer(t, k1)
	client := ks.client(t, newClock(), jam.WithRefetchInterval(0))
	c := claims(ks.URL, testNow)
	for i := range 3 {
		client.VerifyToken(context.Background(), sign(t, jose.ES512, k1.priv, fmt.Sprintf("unknown-%d", i), c, nil))
	}
	if n := ks.fetches.Load(); n != 3 {
		t.Errorf("WithRefetchInterval(0): fetches for 3 unknown kids at once = %d, want 3", n)
	}
}

func TestConcurrentFirstVerifications(t *testing.T) {
	key := newSigningKey(t, "key-1")
	ks := newKeyServer(t, key)
	client := ks.client(t, newClock())
	token := sign(t, jose.ES512, key.priv, key.kid, claims(ks.URL, testNow), nil)

	// Enough callers to pile up on the fetch; each then checks a P-521
	// signature, which the race detector makes slow.
	const callers = 200
	gate := ks.hold()
	var wg sync.WaitGroup
	errs := make(chan error, callers)
	for range callers {
		wg.Go(func() {
			_, err := client.VerifyToken(context.Background(), token)
			errs <- err
		})
	}
	close(gate)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("VerifyToken() = %v", err)
		}
	}
	if n := ks.fetches.Load(); n != 1 {
		t.Errorf("%d concurrent first verifications fetched the key set %d times, want 1", callers, n)
	}
}

// TestWaitersHonourOwnContext: a caller that gives up does not cancel the
// fetch the others wait on.
func TestWaitersHonourOwnContext(t *testing.T) {
	key := newSigningKey(t, "key-1")
	ks := newKeyServer(t, key)
	client := ks.client(t, newClock())
	token := sign(t, jose.ES512, key.priv, key.kid, claims(ks.URL, testNow), nil)
	gate := ks.hold()

	impatient, cancel := context.WithCancel(context.Background())
	first := make(chan error)
	go func() {
		_, err := client.VerifyToken(impatient, token)
		first <- err
	}()
	second := make(chan error)
	go func() {
		_, err := client.VerifyToken(context.Background(), token)
		second <- err
	}()
	ks.awaitFetches(t, 1)

	cancel()
	if err := <-first; !errors.Is(err, context.Canceled) || !errors.Is(err, jam.ErrKeySetUnavailable) {
		t.Errorf("VerifyToken(cancelled) = %v, want context.Canceled and ErrKeySetUnavailable", err)
	}
	close(gate)
	if err := <-second; err != nil {
		t.Errorf("VerifyToken(patient) = %v, want nil", err)
	}
	if n := ks.fetches.Load(); n != 1 {
		t.Errorf("fetches = %d, want 1", n)
	}
}

// TestKeySetFaults is the fault matrix of the key-set endpoint: each fault
// on a cold cache gives ErrKeySetUnavailable in bounded time, and on a warm
// one leaves the cached keys verifying.
func TestKeySetFaults(t *testing.T) {
	key := newSigningKey(t, "key-1")
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	html := []byte("<html><body>502 Bad Gateway</body></html>")
	respond := func(status int, body []byte) func(*testing.T, *keyServer) {
		return func(_ *testing.T, ks *keyServer) { ks.respond(status, body) }
	}
	faults := []struct {
		name     string
		apply    func(t *testing.T, ks *keyServer) // returns with the fault in place
		notFound bool
		deadline bool
	}{
		{"connection refused", func(_ *testing.T, ks *keyServer) { ks.Close() }, false, false},
		{"500", respond(http.StatusInternalServerError, []byte(`{"message":"boom"}`)), false, false},
		{"404", respond(http.StatusNotFound, []byte(`{"message":"App not found"}`)), true, false},
		{"HTML 502", respond(http.StatusBadGateway, html), false, false},
		{"HTML 200", respond(http.StatusOK, html), false, false},
		{"truncated JSON", respond(http.StatusOK, []byte(`{"keys":[{"kty":"EC",`)), false, false},
		{"no keys member", respond(http.StatusOK, []byte(`{}`)), false, false},
		{"keys not an array", respond(http.StatusOK, []byte(`{"keys":{}}`)), false, false},
		{"empty set", respond(http.StatusOK, []byte(`{"keys":[]}`)), false, false},
		{"10 MiB body", respond(http.StatusOK, []byte(`{"keys":[],"pad":"`+strings.Repeat("x", 10<<20)+`"}`)), false, false},
		{"key off the curve", respond(http.StatusOK, []byte(`{"keys":[{"kty":"EC","crv":"P-521","kid":"key-1","x":"AQ","y":"AQ"}]}`)), false, false},
		{"RSA, EC P-256 and oct keys only", respond(http.StatusOK, []byte(`{"keys":[`+
			mustJSON(t, jose.JSONWebKey{Key: &rsaKey.PublicKey, KeyID: "key-1"})+","+
			mustJSON(t, jose.JSONWebKey{Key: &p256.PublicKey, KeyID: "key-1"})+","+
			mustJSON(t, jose.JSONWebKey{Key: []byte("0123456789abcdef0123456789abcdef"), KeyID: "key-1"})+`]}`)), false, false},
		{"slower than the deadline", func(t *testing.T, ks *keyServer) {
			gate := ks.hold()
			t.Cleanup(func() { close(gate) })
		}, false, true},
	}

	ctx := context.Background()
	for _, f := range faults {
		t.Run(f.name+"/cold", func(t *testing.T) {
			ks := newKeyServer(t, key)
			client := ks.client(t, newClock(), jam.WithRetries(0)) // each fault once; retries have tests of their own
			token := sign(t, jose.ES512, key.priv, key.kid, claims(ks.URL, testNow), nil)
			f.apply(t, ks)

			// Only the slow fault should meet the deadline: on a loaded
			// machine, a fast one could too if it were short.
			timeout := 10 * time.Second
			if f.deadline {
				timeout = 200 * time.Millisecond
			}
			ctx, cancel := context.WithTimeout(ctx, timeout)
			defer cancel()
			start := time.Now()
			_, err := client.VerifyToken(ctx, token)
			if d := time.Since(start); d > timeout+5*time.Second {
				t.Errorf("VerifyToken() took %v, want it bounded", d)
			}
			assertUnavailable(t, err)
			if got := errors.Is(err, jam.ErrNotFound); got != f.notFound {
				t.Errorf("errors.Is(%v, ErrNotFound) = %v, want %v", err, got, f.notFound)
			}
			if got := errors.Is(err, context.DeadlineExceeded); got != f.deadline {
				t.Errorf("errors.Is(%v, DeadlineExceeded) = %v, want %v", err, got, f.deadline)
			}
			if strings.Contains(err.Error(), "html") || strings.Contains(err.Error(), "xxxx") {
				t.Errorf("error text %q holds the body", err)
			}
		})

		t.Run(f.name+"/warm", func(t *testing.T) {
			ks := newKeyServer(t, key)
			client := ks.client(t, newClock(), jam.WithRetries(0))
			c := claims(ks.URL, testNow)
			token := sign(t, jose.ES512, key.priv, key.kid, c, nil)
			if _, err := client.VerifyToken(ctx, token); err != nil {
				t.Fatalf("VerifyToken(warm-up) = %v", err)
			}
			f.apply(t, ks)

			// A new kid makes the client refetch, which fails…
			ctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
			defer cancel()
			_, err := client.VerifyToken(ctx, sign(t, jose.ES512, key.priv, "key-2", c, nil))
			assertUnavailable(t, err)
			// …and the cached key still verifies.
			if _, err := client.VerifyToken(ctx, token); err != nil {
				t.Errorf("VerifyToken(cached key) = %v, want nil", err)
			}
		})
	}
}

func assertUnavailable(t *testing.T, err error) {
	t.Helper()
	if !errors.Is(err, jam.ErrKeySetUnavailable) {
		t.Fatalf("VerifyToken() = %v, want ErrKeySetUnavailable", err)
	}
	if errors.Is(err, jam.ErrNotVerified) {
		t.Errorf("VerifyToken() = %v matches ErrNotVerified: an outage must not look like a bad token", err)
	}
}

// TestColdOutageBackoff: with no keys yet, one failed fetch answers for
// the requests of the next second instead of each asking JAM again.
func TestColdOutageBackoff(t *testing.T) {
	key := newSigningKey(t, "key-1")
	ks := newKeyServer(t, key)
	ks.respond(http.StatusInternalServerError, nil)
	clk := newClock()
	client := ks.client(t, clk)
	token := sign(t, jose.ES512, key.priv, key.kid, claims(ks.URL, testNow), nil)
	ctx := context.Background()

	for range 5 {
		_, err := client.VerifyToken(ctx, token)
		assertUnavailable(t, err)
	}
	if n := ks.fetches.Load(); n != 1 {
		t.Errorf("fetches during a cold outage = %d, want 1", n)
	}

	ks.setKeys(t, key)
	clk.Advance(time.Second)
	if _, err := client.VerifyToken(ctx, token); err != nil {
		t.Errorf("VerifyToken(after the backoff, JAM back) = %v, want nil", err)
	}
	if n := ks.fetches.Load(); n != 2 {
		t.Errorf("fetches = %d, want 2", n)
	}
}

// TestOutageAfterWarmUp: a failed refetch keeps the keys already held.
func TestOutageAfterWarmUp(t *testing.T) {
	key := newSigningKey(t, "key-1")
	ks := newKeyServer(t, key)
	clk := newClock()
	client := ks.client(t, clk)
	ctx := context.Background()
	c := claims(ks.URL, testNow)
	token := sign(t, jose.ES512, key.priv, key.kid, c, nil)
	if _, err := client.VerifyToken(ctx, token); err != nil {
		t.Fatalf("VerifyToken(warm-up) = %v", err)
	}

	ks.respond(http.StatusInternalServerError, nil)
	_, err := client.VerifyToken(ctx, sign(t, jose.ES512, key.priv, "key-new", c, nil))
	assertUnavailable(t, err)
	if _, err := client.VerifyToken(ctx, token); err != nil {
		t.Errorf("VerifyToken(cached key during an outage) = %v, want nil", err)
	}
	if _, err := client.JWKS(ctx); !errors.Is(err, jam.ErrKeySetUnavailable) {
		t.Errorf("JWKS(during an outage) = %v, want ErrKeySetUnavailable", err)
	}
	if _, err := client.VerifyToken(ctx, token); err != nil {
		t.Errorf("VerifyToken(cached key after a failed JWKS) = %v, want nil", err)
	}
}

func mustJSON(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestOutageIsNotALogout: while the last refetch failed, a token with a
// kid the cache lacks gets ErrKeySetUnavailable, not ErrUnknownKey, however
// often it is retried: an outage must not read as a bad token.
func TestOutageIsNotALogout(t *testing.T) {
	k1, k2 := newSigningKey(t, "key-1"), newSigningKey(t, "key-2")
	ks := newKeyServer(t, k1)
	clk := newClock()
	client := ks.client(t, clk)
	ctx := context.Background()
	c := claims(ks.URL, testNow)
	warmUp(t, client, sign(t, jose.ES512, k1.priv, k1.kid, c, nil))

	ks.respond(http.StatusInternalServerError, []byte(`{"message":"down"}`))
	fresh := sign(t, jose.ES512, k2.priv, k2.kid, c, nil)
	for i := range 3 {
		_, err := client.VerifyToken(ctx, fresh)
		assertUnavailable(t, err)
		if i == 0 && ks.fetches.Load() != 2 {
			t.Fatalf("fetches = %d, want 2: the unknown kid refetches once", ks.fetches.Load())
		}
	}

	// JAM is back with the new key: the next refetch the rate limit allows
	// brings it.
	ks.setKeys(t, k1, k2)
	clk.Advance(time.Minute)
	if _, err := client.VerifyToken(ctx, fresh); err != nil {
		t.Errorf("VerifyToken(new key, JAM back) = %v, want nil", err)
	}
}

// TestRotationDuringUnknownKidFlood: forged kids arriving every second
// cannot hold back a real rotation for more than the refetch interval,
// and cost at most 6 fetches a minute.
func TestRotationDuringUnknownKidFlood(t *testing.T) {
	k1, k2 := newSigningKey(t, "key-1"), newSigningKey(t, "key-2")
	ks := newKeyServer(t, k1)
	clk := newClock()
	client := ks.client(t, clk)
	ctx := context.Background()
	c := claims(ks.URL, testNow)
	warmUp(t, client, sign(t, jose.ES512, k1.priv, k1.kid, c, nil))
	forged := sign(t, jose.ES512, k1.priv, "forged", c, nil)
	fresh := sign(t, jose.ES512, k2.priv, k2.kid, c, nil)

	const published = 31 // seconds into the flood
	verifiedAt := -1
	var firstMinute int32
	for sec := range 120 {
		if sec == published {
			ks.setKeys(t, k1, k2)
		}
		before := ks.fetches.Load()
		_, err := client.VerifyToken(ctx, forged)
		if ks.fetches.Load() > before {
			assertRefused(t, err, jam.ErrUnknownKey)
		} else {
			assertLimited(t, err, time.Duration(10-sec%10)*time.Second)
		}
		if sec >= published && verifiedAt < 0 {
			if _, err := client.VerifyToken(ctx, fresh); err == nil {
				verifiedAt = sec
			}
		}
		if sec == 59 {
			firstMinute = ks.fetches.Load() - 1
		}
		clk.Advance(time.Second)
	}
	if verifiedAt < 0 || verifiedAt > published+10 {
		t.Errorf("a token of the key published at %ds verified at %ds, want within 10s", published, verifiedAt)
	}
	if firstMinute > 6 {
		t.Errorf("a minute of unknown kids caused %d fetches, want at most 6", firstMinute)
	}
}

// TestColdBackoffFromEnd: the back-off after a failed cold fetch runs from
// when the fetch ended, so a slow failure is not asked again at once.
func TestColdBackoffFromEnd(t *testing.T) {
	key := newSigningKey(t, "key-1")
	ks := newKeyServer(t, key)
	ks.respond(http.StatusInternalServerError, nil)
	clk := newClock()
	client := ks.client(t, clk)
	token := sign(t, jose.ES512, key.priv, key.kid, claims(ks.URL, testNow), nil)
	ctx := context.Background()

	gate := ks.hold()
	done := make(chan error)
	go func() {
		_, err := client.VerifyToken(ctx, token)
		done <- err
	}()
	ks.awaitFetches(t, 1)
	clk.Advance(2 * time.Second) // the fetch takes two seconds
	close(gate)
	assertUnavailable(t, <-done)

	_, err := client.VerifyToken(ctx, token)
	assertUnavailable(t, err)
	if n := ks.fetches.Load(); n != 1 {
		t.Errorf("fetches right after a slow failed fetch = %d, want 1", n)
	}
}

// TestRotationJoinsTheFetch: verifications of a new key that arrive while
// the refetch it caused is in flight wait for it, rather than being refused
// by the rate limit the refetch used up.
func TestRotationJoinsTheFetch(t *testing.T) {
	k1, k2 := newSigningKey(t, "key-1"), newSigningKey(t, "key-2")
	ks := newKeyServer(t, k1)
	client := ks.client(t, newClock())
	c := claims(ks.URL, testNow)
	warmUp(t, client, sign(t, jose.ES512, k1.priv, k1.kid, c, nil))

	ks.setKeys(t, k1, k2)
	gate := ks.hold()
	first := make(chan error, 1)
	go func() {
		_, err := client.VerifyToken(context.Background(), sign(t, jose.ES512, k2.priv, k2.kid, c, nil))
		first <- err
	}()
	ks.awaitFetches(t, 2) // the refetch the first caused is in flight

	// Another token of the new key joins it: its own deadline ends its wait,
	// where a refusal by the rate limit would come at once.
	c["jti"] = "another"
	other := sign(t, jose.ES512, k2.priv, k2.kid, c, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err := client.VerifyToken(ctx, other)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("VerifyToken(new key, refetch in flight) = %v, want it to wait for the refetch until its deadline", err)
	}

	close(gate)
	if err := <-first; err != nil {
		t.Errorf("VerifyToken(new key) = %v, want nil", err)
	}
	if _, err := client.VerifyToken(context.Background(), other); err != nil {
		t.Errorf("VerifyToken(new key, after the refetch) = %v, want nil", err)
	}
	if n := ks.fetches.Load(); n != 2 {
		t.Errorf("fetches = %d, want 2", n)
	}
}

// TestJoinedFetchFromBeforeTheKey: a verification that joins a fetch which
// began before its key was published fetches again, rather than refusing a
// token JAM has just started to sign with.
func TestJoinedFetchFromBeforeTheKey(t *testing.T) {
	k1, k2 := newSigningKey(t, "key-1"), newSigningKey(t, "key-2")
	ks := newKeyServer(t, k1)
	client := ks.client(t, newClock())
	c := claims(ks.URL, testNow)
	warmUp(t, client, sign(t, jose.ES512, k1.priv, k1.kid, c, nil))

	// A JWKS call fetches the set as it was before key-2; the fetch after
	// it brings key-2.
	ks.setKeysNext(t, []signingKey{k1}, []signingKey{k1, k2})
	gate := ks.hold()
	done := make(chan error, 1)
	go func() {
		_, err := client.JWKS(context.Background())
		done <- err
	}()
	ks.awaitFetches(t, 2)
	verified := make(chan error, 1)
	go func() {
		_, err := client.VerifyToken(context.Background(), sign(t, jose.ES512, k2.priv, k2.kid, c, nil))
		verified <- err
	}()
	time.Sleep(50 * time.Millisecond) // for the verification to join the held fetch
	close(gate)
	if err := <-done; err != nil {
		t.Fatalf("JWKS() = %v", err)
	}
	if err := <-verified; err != nil {
		t.Errorf("VerifyToken(key-2, having joined a fetch from before it) = %v, want nil", err)
	}
	if n := ks.fetches.Load(); n != 3 {
		t.Errorf("fetches = %d, want 3: the warm-up, the JWKS call, one more for key-2", n)
	}
}

// TestKeySetMaxAge: a key JAM removes stops verifying once the set is
// older than its max age and refetched; the verification that notices the
// age does not wait for the refetch; cached tokens of the removed key are
// refused.
func TestKeySetMaxAge(t *testing.T) {
	k1, k2 := newSigningKey(t, "key-1"), newSigningKey(t, "key-2")
	ks := newKeyServer(t, k1, k2)
	clk := newClock()
	client := ks.client(t, clk)
	ctx := context.Background()
	c := claims(ks.URL, testNow)
	c["exp"] = testNow.Add(3 * time.Hour).Unix()
	old, kept := sign(t, jose.ES512, k1.priv, k1.kid, c, nil), sign(t, jose.ES512, k2.priv, k2.kid, c, nil)
	for _, tok := range []string{old, kept} {
		if _, err := client.VerifyToken(ctx, tok); err != nil {
			t.Fatalf("VerifyToken(warm-up) = %v", err)
		}
	}

	// JAM removes key-1. Within the max age nothing is fetched.
	ks.setKeys(t, k2)
	clk.Advance(time.Hour - time.Second)
	if _, err := client.VerifyToken(ctx, old); err != nil {
		t.Errorf("VerifyToken(removed key, within the max age) = %v, want nil", err)
	}
	if n := ks.fetches.Load(); n != 1 {
		t.Errorf("fetches within the max age = %d, want 1", n)
	}

	// Past it, the verification that notices starts a refetch and returns
	// at once with the keys held, though the key server takes its time.
	gate := ks.hold()
	clk.Advance(2 * time.Second)
	done := make(chan error, 1)
	go func() {
		_, err := client.VerifyToken(ctx, old)
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("VerifyToken(the set just past its max age) = %v, want the held keys to verify", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("VerifyToken waited for the refetch of a set past its max age")
	}
	ks.awaitFetches(t, 2)
	close(gate)
	jam.AwaitKeySet(client)

	// The refetch dropped key-1: its cached token is refused at once.
	_, err := client.VerifyToken(ctx, old)
	assertRefused(t, err, jam.ErrUnknownKey)
	if _, err := client.VerifyToken(ctx, kept); err != nil {
		t.Errorf("VerifyToken(a key still in the set) = %v, want nil", err)
	}
	if s := client.Stats(); s.Keys != 1 || !s.KeySetFetchedAt.Equal(clk.Now()) {
		t.Errorf("Stats() = %+v, want 1 key, fetched at %v", s, clk.Now())
	}
	if n := ks.fetches.Load(); n != 2 {
		t.Errorf("fetches = %d, want 2", n)
	}
}

// TestKeySetOutageAfterMaxAge: a refresh that fails keeps the old keys,
// and is tried again no sooner than the refetch interval allows.
func TestKeySetOutageAfterMaxAge(t *testing.T) {
	key := newSigningKey(t, "key-1")
	ks := newKeyServer(t, key)
	clk := newClock()
	client := ks.client(t, clk)
	ctx := context.Background()
	c := claims(ks.URL, testNow)
	c["exp"] = testNow.Add(3 * time.Hour).Unix()
	warmUp(t, client, sign(t, jose.ES512, key.priv, key.kid, c, nil))

	ks.respond(http.StatusInternalServerError, []byte(`{"message":"down"}`))
	clk.Advance(time.Hour + time.Second)
	for i, step := range []struct {
		advance time.Duration
		fetches int64 // attempts so far, the warm-up included
	}{
		{0, 2},                // the first verification past the max age
		{5 * time.Second, 2},  // within the refetch interval: no attempt
		{5 * time.Second, 3},  // one interval on
		{time.Second, 3},      // within the next
		{30 * time.Second, 4}, // one attempt, however long the wait
	} {
		clk.Advance(step.advance)
		// A new token each time, so that the signature is checked with
		// the old key every time, not answered from the cache.
		c["jti"] = fmt.Sprint(i)
		if _, err := client.VerifyToken(ctx, sign(t, jose.ES512, key.priv, key.kid, c, nil)); err != nil {
			t.Errorf("step %d: VerifyToken(old key, JAM down) = %v, want nil", i, err)
		}
		jam.AwaitKeySet(client)
		if s := client.Stats(); s.KeySetFetches != step.fetches || s.KeySetFetchErrors != step.fetches-1 || s.Keys != 1 {
			t.Errorf("step %d: Stats() = %+v, want %d fetches, %d of them failed, 1 key", i, s, step.fetches, step.fetches-1)
		}
	}
}

// TestCacheControl: a short max-age is honoured, max-age=0 and no-store
// cannot cause more fetches than the rate limit, and a long one is clamped
// to the max age.
func TestCacheControl(t *testing.T) {
	key := newSigningKey(t, "key-1")
	tests := []struct {
		cacheControl string
		// fetches after verifying every second for the given time, the
		// first fetch included
		after   time.Duration
		fetches int32
	}{
		{"", 59 * time.Minute, 1},
		{"public, max-age=60", 59 * time.Second, 1},
		{"public, max-age=60", 61 * time.Second, 2},
		{"max-age=0", time.Minute, 7}, // every 10 s, the refetch interval
		{"no-store", time.Minute, 7},  // likewise
		{"no-cache", time.Minute, 7},  // likewise
		{"max-age=3", time.Minute, 7}, // likewise: below the interval
		{"max-age=junk", 59 * time.Minute, 1},
		// Given twice, the first counts (RFC 9111 §4.2.1).
		{"max-age=60, max-age=86400", 61 * time.Second, 2},
		{"max-age=86400, max-age=60", 61 * time.Second, 1},
		{"max-age=86400", 3599 * time.Second, 1}, // clamped to the hour…
		{"max-age=86400", 3601 * time.Second, 2}, // …and no longer
	}
	for _, tt := range tests {
		t.Run(tt.cacheControl+"/"+tt.after.String(), func(t *testing.T) {
			ks := newKeyServer(t, key)
			ks.cacheControl = tt.cacheControl
			clk := newClock()
			client := ks.client(t, clk)
			c := claims(ks.URL, testNow)
			c["exp"] = testNow.Add(3 * time.Hour).Unix()
			token := sign(t, jose.ES512, key.priv, key.kid, c, nil)
			ctx := context.Background()

			step := time.Second
			if tt.after > 10*time.Minute {
				step = time.Minute // the same bound, with fewer steps
			}
			for elapsed := time.Duration(0); elapsed <= tt.after; elapsed += step {
				if _, err := client.VerifyToken(ctx, token); err != nil {
					t.Fatalf("VerifyToken() at %v = %v", elapsed, err)
				}
				// Wait for a refetch this verification started, so that
				// the next one sees its result.
				jam.AwaitKeySet(client)
				clk.Advance(step)
			}
			if n := ks.fetches.Load(); n != tt.fetches {
				t.Errorf("Cache-Control %q: fetches over %v = %d, want %d", tt.cacheControl, tt.after, n, tt.fetches)
			}
		})
	}
}

// TestLogs runs the key set through every path it logs, failures included,
// with JAM echoing secrets back, and checks the records: what each says,
// under the group jam, and that none holds a token, an address or a body.
func TestLogs(t *testing.T) {
	k1, k2 := newSigningKey(t, "key-1"), newSigningKey(t, "key-2")
	ks := newKeyServer(t, k1)
	clk := newClock()
	var buf bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	client := ks.client(t, clk, jam.WithLogger(logger))
	jam.RecordWaits(client)
	ctx := context.Background()
	c := claims(ks.URL, testNow)
	c["exp"] = testNow.Add(3 * time.Hour).Unix()
	token := sign(t, jose.ES512, k1.priv, k1.kid, c, nil)
	secrets := []string{token, testEmail, "secret-body-text"}

	if _, err := client.VerifyToken(ctx, token); err != nil { // fetched, key-1 added
		t.Fatal(err)
	}
	ks.setKeys(t, k2)
	clk.Advance(time.Hour + time.Second)
	client.VerifyToken(ctx, token) // a refresh: key-1 removed, key-2 added
	jam.AwaitKeySet(client)
	client.VerifyToken(ctx, sign(t, jose.ES512, k1.priv, "forged", c, nil)) // refused by the rate limit

	for _, body := range []string{
		`{"message":"no key for ` + token + ` of ` + testEmail + `"}`,
		`<html><body>secret-body-text</body></html>`,
	} {
		ks.respond(http.StatusBadGateway, []byte(body))
		clk.Advance(time.Minute)
		client.VerifyToken(ctx, sign(t, jose.ES512, k2.priv, "unknown", c, nil))
	}
	ks.Close()
	clk.Advance(time.Minute)
	client.VerifyToken(ctx, sign(t, jose.ES512, k2.priv, "unknown", c, nil)) // connection refused

	type record struct {
		Level string
		Msg   string
		Jam   map[string]any
	}
	var records []record
	for line := range strings.Lines(buf.String()) {
		for _, s := range secrets {
			if strings.Contains(line, s) {
				t.Errorf("log record %s holds the secret %q", line, s)
			}
		}
		var r record
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("log record %q: %v", line, err)
		}
		if r.Jam == nil {
			t.Errorf("log record %s has no group jam", line)
		}
		records = append(records, r)
	}
	count := func(level, msg string, attr string, want any) int {
		n := 0
		for _, r := range records {
			if r.Level == level && r.Msg == msg && (attr == "" || jsonEqual(r.Jam[attr], want)) {
				n++
			}
		}
		return n
	}
	for _, want := range []struct {
		level, msg, attr string
		value            any
		n                int
	}{
		{"DEBUG", "key set fetched", "keys", 1, 2},
		{"INFO", "key set changed", "added", []string{"key-1"}, 1},
		{"INFO", "key set changed", "removed", []string{"key-1"}, 1},
		{"DEBUG", "unknown kid; refetch refused by the rate limit", "kid", "forged", 1},
		{"WARN", "key set fetch failed", "keys_kept", 1, 3},
		{"DEBUG", "retrying", "op", "fetch key set", 6},
		{"DEBUG", "retrying", "after", "HTTP 502", 4},
	} {
		if n := count(want.level, want.msg, want.attr, want.value); n != want.n {
			t.Errorf("%d records %s %q with %s=%v, want %d; all: %+v", n, want.level, want.msg, want.attr, want.value, want.n, records)
		}
	}
}

// TestRotationAndRevocationWithJamtest: JAM publishes a new key beside the
// old one, then removes the old one; tokens of both verify through the
// overlap, and the old key's stop once the set is refetched after its max
// age.
func TestRotationAndRevocationWithJamtest(t *testing.T) {
	clk := newClock()
	srv := jamtest.NewServer(jamtest.WithClock(clk.Now), jamtest.WithTokenTTL(3*time.Hour), jamtest.WithLogger(slog.New(slog.DiscardHandler)))
	defer srv.Close()
	client := srv.Client()
	ctx := context.Background()

	oldKid := srv.KeyIDs()[0]
	oldToken, _ := srv.IssueTokens(testEmail)
	if _, err := client.VerifyToken(ctx, oldToken); err != nil {
		t.Fatalf("VerifyToken(before the rotation) = %v", err)
	}
	newKid := srv.PublishKey()
	newToken, _ := srv.IssueTokens(testEmail)
	for name, tok := range map[string]string{"old": oldToken, "new": newToken} {
		if _, err := client.VerifyToken(ctx, tok); err != nil {
			t.Errorf("VerifyToken(%s key, during the overlap) = %v, want nil", name, err)
		}
	}

	if err := srv.RemoveKey(oldKid); err != nil {
		t.Fatalf("RemoveKey(%s) = %v", oldKid, err)
	}
	clk.Advance(time.Hour + time.Second)
	if _, err := client.VerifyToken(ctx, newToken); err != nil { // notices the age
		t.Fatalf("VerifyToken(new key, past the max age) = %v", err)
	}
	jam.AwaitKeySet(client)
	_, err := client.VerifyToken(ctx, oldToken)
	assertRefused(t, err, jam.ErrUnknownKey)
	if _, err := client.VerifyRemote(ctx, oldToken); !errors.Is(err, jam.ErrNotVerified) {
		t.Errorf("VerifyRemote(revoked key) = %v, want ErrNotVerified: JAM agrees", err)
	}
	if s := client.Stats(); s.Keys != 1 || srv.KeyIDs()[0] != newKid {
		t.Errorf("Stats().Keys = %d, KeyIDs() = %v; want the new key alone", s.Keys, srv.KeyIDs())
	}
}

func jsonEqual(a, b any) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return bytes.Equal(ja, jb)
}

// assertLimited checks that err is the answer to a token whose kid the key
// set lacks while the rate limit refuses a refetch: not a refusal of the
// token, which may be of a key JAM just published, but unavailable until
// the next refetch is allowed, retryAfter from now.
func assertLimited(t *testing.T, err error, retryAfter time.Duration) {
	t.Helper()
	assertUnavailable(t, err)
	if e, ok := errors.AsType[*jam.Error](err); !ok || e.RetryAfter != retryAfter {
		t.Errorf("VerifyToken() = %#v, want an *Error with RetryAfter %v", err, retryAfter)
	}
}

// TestForgedKidBeforeRotation: a forged kid that spends the refetch just
// before JAM publishes a new key must not log out the users of that key
// for the refetch interval. Their tokens are answered "unavailable, try
// again after" the time the next refetch is allowed, at once, and verify
// once it is; the forged kid a refetch has just proved unknown is still
// refused.
func TestForgedKidBeforeRotation(t *testing.T) {
	k1, k2 := newSigningKey(t, "key-1"), newSigningKey(t, "key-2")
	ks := newKeyServer(t, k1)
	clk := newClock()
	client := ks.client(t, clk)
	c := claims(ks.URL, testNow)
	warmUp(t, client, sign(t, jose.ES512, k1.priv, k1.kid, c, nil))
	// No wait for the next refetch: the middleware's contexts have no
	// deadline, so one would hold requests open. This one ends a call
	// that waits rather than the test.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	_, err := client.VerifyToken(ctx, sign(t, jose.ES512, k1.priv, "forged", c, nil))
	assertRefused(t, err, jam.ErrUnknownKey)

	ks.setKeys(t, k1, k2)
	fresh := sign(t, jose.ES512, k2.priv, k2.kid, c, nil)
	for _, step := range []struct {
		advance, retryAfter time.Duration
	}{{0, 10 * time.Second}, {4 * time.Second, 6 * time.Second}, {5500 * time.Millisecond, 500 * time.Millisecond}} {
		clk.Advance(step.advance)
		_, err := client.VerifyToken(ctx, fresh)
		assertLimited(t, err, step.retryAfter)

		r := httptest.NewRequest("GET", "/me", nil)
		r.Header.Set("Authorization", "Bearer "+fresh)
		w := httptest.NewRecorder()
		client.Middleware()(http.NotFoundHandler()).ServeHTTP(w, r)
		want := strconv.Itoa(int((step.retryAfter + time.Second - 1) / time.Second))
		if w.Code != http.StatusServiceUnavailable || w.Header().Get("Retry-After") != want {
			t.Errorf("Middleware(new key, refetch limited for %v) = %d, Retry-After %q; want 503, %q", step.retryAfter, w.Code, w.Header().Get("Retry-After"), want)
		}
	}
	if s := client.Stats(); s.RefetchesLimited != 6 || s.Unavailable != 0 || s.Refused != 1 {
		t.Errorf("Stats() = %+v, want 6 RefetchesLimited, 0 Unavailable, 1 Refused", s)
	}

	clk.Advance(500 * time.Millisecond)
	if _, err := client.VerifyToken(ctx, fresh); err != nil {
		t.Errorf("VerifyToken(new key, refetch allowed again) = %v, want nil", err)
	}
	if n := ks.fetches.Load(); n != 3 {
		t.Errorf("fetches = %d, want 3: the warm-up, the forged kid's, the new key's", n)
	}
}

// TestClockStepsBack: a clock without a monotonic reading (a custom one,
// time.Now().UTC()) that steps back must not stop the fetches until it
// has caught up again: time that runs backwards counts as time elapsed.
func TestClockStepsBack(t *testing.T) {
	k1, k2 := newSigningKey(t, "key-1"), newSigningKey(t, "key-2")
	ctx := context.Background()

	t.Run("cold, after a failed fetch", func(t *testing.T) {
		ks := newKeyServer(t, k1)
		ks.respond(http.StatusInternalServerError, nil)
		clk := newClock()
		client := ks.client(t, clk, jam.WithRetries(0))
		c := claims(ks.URL, testNow.Add(-time.Hour))
		c["exp"] = testNow.Add(time.Hour).Unix()
		token := sign(t, jose.ES512, k1.priv, k1.kid, c, nil)
		_, err := client.VerifyToken(ctx, token)
		assertUnavailable(t, err)

		ks.setKeys(t, k1)
		clk.Advance(-time.Hour)
		clk.Advance(time.Second)
		if _, err := client.VerifyToken(ctx, token); err != nil {
			t.Errorf("VerifyToken(a second after the clock stepped back an hour, JAM back) = %v, want nil", err)
		}
	})

	t.Run("max age", func(t *testing.T) {
		ks := newKeyServer(t, k1, k2)
		clk := newClock()
		client := ks.client(t, clk)
		c := claims(ks.URL, testNow.Add(-time.Hour))
		c["exp"] = testNow.Add(time.Hour).Unix()
		old := sign(t, jose.ES512, k1.priv, k1.kid, c, nil)
		warmUp(t, client, old)

		// JAM removes key-1; the clock steps back an hour, to before the
		// set was fetched: the set's age is unknown, so it is refreshed.
		ks.setKeys(t, k2)
		clk.Advance(-time.Hour)
		client.VerifyToken(ctx, old)
		jam.AwaitKeySet(client)
		_, err := client.VerifyToken(ctx, old)
		assertRefused(t, err, jam.ErrUnknownKey)
		if n := ks.fetches.Load(); n != 2 {
			t.Errorf("fetches = %d, want 2: a set fetched after the clock's time is refreshed", n)
		}
	})

	t.Run("refetch rate limit", func(t *testing.T) {
		ks := newKeyServer(t, k1)
		clk := newClock()
		client := ks.client(t, clk)
		c := claims(ks.URL, testNow.Add(-time.Hour))
		c["exp"] = testNow.Add(time.Hour).Unix()
		warmUp(t, client, sign(t, jose.ES512, k1.priv, k1.kid, c, nil))
		client.VerifyToken(ctx, sign(t, jose.ES512, k1.priv, "forged", c, nil)) // spends the refetch

		ks.setKeys(t, k1, k2)
		clk.Advance(-time.Hour)
		clk.Advance(10 * time.Second)
		if _, err := client.VerifyToken(ctx, sign(t, jose.ES512, k2.priv, k2.kid, c, nil)); err != nil {
			t.Errorf("VerifyToken(new key, a refetch interval after the clock stepped back an hour) = %v, want nil", err)
		}
	})

	t.Run("refresh after a failed one", func(t *testing.T) {
		ks := newKeyServer(t, k1, k2)
		clk := newClock()
		client := ks.client(t, clk, jam.WithRetries(0))
		c := claims(ks.URL, testNow.Add(-time.Hour))
		c["exp"] = testNow.Add(3 * time.Hour).Unix()
		old := sign(t, jose.ES512, k1.priv, k1.kid, c, nil)
		warmUp(t, client, old)

		ks.respond(http.StatusInternalServerError, nil)
		clk.Advance(time.Hour + time.Second)
		client.VerifyToken(ctx, old) // a refresh, which fails
		jam.AwaitKeySet(client)

		ks.setKeys(t, k2)
		clk.Advance(-2 * time.Hour)
		clk.Advance(10 * time.Second)
		client.VerifyToken(ctx, old) // a refresh, which drops key-1
		jam.AwaitKeySet(client)
		_, err := client.VerifyToken(ctx, old)
		assertRefused(t, err, jam.ErrUnknownKey)
	})
}

// TestStaleHitsLockFree: once the refresh of a set past its max age has
// failed, cache hits until the next one may be tried take no lock: not the
// key set's, which a fetch storing its result holds.
func TestStaleHitsLockFree(t *testing.T) {
	key := newSigningKey(t, "key-1")
	ks := newKeyServer(t, key)
	clk := newClock()
	client := ks.client(t, clk, jam.WithRetries(0))
	ctx := context.Background()
	c := claims(ks.URL, testNow)
	c["exp"] = testNow.Add(3 * time.Hour).Unix()
	token := sign(t, jose.ES512, key.priv, key.kid, c, nil)
	warmUp(t, client, token)

	ks.respond(http.StatusInternalServerError, nil)
	clk.Advance(time.Hour + time.Second)
	warmUp(t, client, token) // starts a refresh, which fails
	jam.AwaitKeySet(client)

	clk.Advance(time.Second)
	unlock := jam.LockKeySet(client)
	done := make(chan error, 1)
	go func() {
		_, err := client.VerifyToken(ctx, token)
		done <- err
	}()
	select {
	case err := <-done:
		unlock()
		if err != nil {
			t.Errorf("VerifyToken(cache hit, stale set, refresh failed) = %v, want nil", err)
		}
	case <-time.After(5 * time.Second):
		unlock()
		<-done
		t.Fatal("a cache hit on a stale set whose refresh failed waited for the key set's lock")
	}
	if n := ks.fetches.Load(); n != 2 {
		t.Errorf("fetches = %d, want 2", n)
	}
}

// TestJoinedFetchBoundedWait: a verification that joins a fetch, and then
// starts one of its own because the first began before its key was
// published, waits for both no longer than one fetch may take.
func TestJoinedFetchBoundedWait(t *testing.T) {
	const limit = 2 * time.Second
	k1, k2 := newSigningKey(t, "key-1"), newSigningKey(t, "key-2")
	set1 := []byte(`{"keys":[` + mustJSON(t, k1.jwk()) + `]}`)
	release, done := make(chan struct{}), make(chan struct{})
	var fetches atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch fetches.Add(1) {
		case 2: // JWKS's: answers late, without key-2
			select {
			case <-release:
			case <-r.Context().Done():
				return
			}
		case 3: // the verification's own: never answers
			select {
			case <-done:
			case <-r.Context().Done():
			}
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write(set1)
	}))
	defer srv.Close()
	stop := sync.OnceFunc(func() { close(done) })
	defer stop()
	client, err := jam.New(testAppID, jam.WithBaseURL(srv.URL), jam.WithClock(newClock().Now), jam.WithRetries(0))
	if err != nil {
		t.Fatal(err)
	}
	jam.SetKeySetFetchLimit(client, limit)
	c := claims(srv.URL, testNow)
	warmUp(t, client, sign(t, jose.ES512, k1.priv, k1.kid, c, nil))

	go client.JWKS(context.Background())
	eventually(t, "the JWKS fetch", func() bool { return fetches.Load() == 2 })
	verified := make(chan error, 1)
	start := time.Now()
	go func() {
		_, err := client.VerifyToken(context.Background(), sign(t, jose.ES512, k2.priv, k2.kid, c, nil))
		verified <- err
	}()
	time.Sleep(limit * 3 / 4) // the joined fetch answers late
	close(release)
	err = <-verified
	// One limit, and half of one for a loaded machine; two limits, the
	// fault, would be 2*limit.
	if d := time.Since(start); d > limit*3/2 {
		t.Errorf("VerifyToken(joined a late fetch, then its own hung) took %v, want at most about %v", d, limit)
	}
	if !errors.Is(err, jam.ErrKeySetUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("VerifyToken(joined a late fetch, then its own hung) = %v, want ErrKeySetUnavailable and DeadlineExceeded", err)
	}
	stop()
	jam.AwaitKeySet(client)
}
