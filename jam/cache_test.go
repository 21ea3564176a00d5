package jam_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/go-jam/go-jam/jam"
)

// verifyAllocs verifies token (which must be valid) many times and returns
// the allocations of one call: at most 1 for a cache hit, many more for a
// signature check.
func verifyAllocs(t *testing.T, c *jam.Client, token string) float64 {
	t.Helper()
	ctx := context.Background()
	var err error
	n := testing.AllocsPerRun(20, func() {
		_, err = c.VerifyToken(ctx, token)
	})
	if err != nil {
		t.Fatalf("VerifyToken() = %v", err)
	}
	return n
}

// maxHitAllocs is what a cache hit may allocate: the caller's own copy of
// the Token, with its one audience.
const maxHitAllocs = 1

func TestTokenCache(t *testing.T) {
	k1, k2 := newSigningKey(t, "key-1"), newSigningKey(t, "key-2")
	ctx := context.Background()

	t.Run("hit returns the same claims in 1 allocation", func(t *testing.T) {
		ks := newKeyServer(t, k1)
		client := ks.client(t, newClock())
		token := sign(t, jose.ES512, k1.priv, k1.kid, claims(ks.URL, testNow), nil)
		first, err := client.VerifyToken(ctx, token)
		if err != nil {
			t.Fatal(err)
		}
		if n := verifyAllocs(t, client, token); n > maxHitAllocs {
			t.Errorf("a cache hit allocates %v times, want at most %d", n, maxHitAllocs)
		}
		again, err := client.VerifyToken(ctx, token)
		if err != nil || again == first || again.Header != first.Header || !equalClaims(again.Claims, first.Claims) {
			t.Errorf("VerifyToken(hit) = %p %+v, %v; want a copy of %p %+v", again, again, err, first, first)
		}
	})

	t.Run("every caller gets a copy of its own", func(t *testing.T) {
		ks := newKeyServer(t, k1)
		client := ks.client(t, newClock())
		token := sign(t, jose.ES512, k1.priv, k1.kid, claims(ks.URL, testNow), nil)
		first, err := client.VerifyToken(ctx, token)
		if err != nil {
			t.Fatal(err)
		}

		// Handlers that edit what they got, concurrently, for the race
		// detector; then nothing of it may reach the next caller.
		var wg sync.WaitGroup
		for i := range 4 {
			wg.Go(func() {
				tok, err := client.VerifyToken(ctx, token)
				if err != nil {
					t.Errorf("VerifyToken(hit) = %v", err)
					return
				}
				tok.Claims.Email = "eve@example.com"
				tok.Claims.Audience[0] = fmt.Sprint("other-app-", i)
			})
		}
		wg.Wait()
		first.Claims.Audience[0] = "other-app"

		got, err := client.VerifyToken(ctx, token)
		if err != nil {
			t.Fatal(err)
		}
		if got.Claims.Email != testEmail || len(got.Claims.Audience) != 1 || got.Claims.Audience[0] != testAppID {
			t.Errorf("VerifyToken(hit) = email %q, aud %q; want the token's: callers' edits reached the cache", got.Claims.Email, got.Claims.Audience)
		}

		// A token with several audiences too.
		two := sign(t, jose.ES512, k1.priv, k1.kid, claimsWith(ks.URL, map[string]any{"aud": []string{"other-app", testAppID}}), nil)
		for range 2 {
			tok, err := client.VerifyToken(ctx, two)
			if err != nil {
				t.Fatal(err)
			}
			if tok.Claims.Audience[1] != testAppID {
				t.Fatalf("VerifyToken(two audiences) aud = %q: a caller's edit reached the cache", tok.Claims.Audience)
			}
			tok.Claims.Audience[1] = "edited"
		}
	})

	t.Run("expired while cached", func(t *testing.T) {
		ks := newKeyServer(t, k1)
		clk := newClock()
		client := ks.client(t, clk)
		token := sign(t, jose.ES512, k1.priv, k1.kid, claims(ks.URL, testNow), nil)
		if _, err := client.VerifyToken(ctx, token); err != nil {
			t.Fatal(err)
		}
		clk.Advance(31*time.Minute + time.Second) // exp, plus the one-minute leeway, plus one second
		_, err := client.VerifyToken(ctx, token)
		assertRefused(t, err, jam.ErrExpired)
		if n := jam.CacheLen(client); n != 0 {
			t.Errorf("CacheLen() = %d after the token expired, want 0", n)
		}
	})

	t.Run("rotation evicts", func(t *testing.T) {
		ks := newKeyServer(t, k1)
		client := ks.client(t, newClock())
		token := sign(t, jose.ES512, k1.priv, k1.kid, claims(ks.URL, testNow), nil)
		if _, err := client.VerifyToken(ctx, token); err != nil {
			t.Fatal(err)
		}

		// A refetch that brings the same key keeps the token cached…
		if _, err := client.JWKS(ctx); err != nil {
			t.Fatal(err)
		}
		if n := verifyAllocs(t, client, token); n > maxHitAllocs {
			t.Errorf("after refetching the same keys a hit allocates %v times, want at most %d", n, maxHitAllocs)
		}

		// …one without it drops the token.
		ks.setKeys(t, k2)
		if _, err := client.JWKS(ctx); err != nil {
			t.Fatal(err)
		}
		_, err := client.VerifyToken(ctx, token)
		assertRefused(t, err, jam.ErrUnknownKey)
	})

	t.Run("failures are not cached", func(t *testing.T) {
		ks := newKeyServer(t, k1)
		clk := newClock()
		client := ks.client(t, clk)
		token := sign(t, jose.ES512, k2.priv, k2.kid, claims(ks.URL, testNow), nil)
		if _, err := client.VerifyToken(ctx, token); err == nil {
			t.Fatal("VerifyToken(unknown key) = nil, want an error")
		}
		if n := jam.CacheLen(client); n != 0 {
			t.Errorf("CacheLen() = %d after a failure, want 0", n)
		}
		ks.setKeys(t, k1, k2)
		clk.Advance(10 * time.Second) // past the refetch interval
		if _, err := client.VerifyToken(ctx, token); err != nil {
			t.Errorf("VerifyToken(once its key is published) = %v, want nil", err)
		}
	})

	t.Run("size bound", func(t *testing.T) {
		ks := newKeyServer(t, k1)
		client := ks.client(t, newClock(), jam.WithCacheSize(3))
		var tokens []string
		for i := range 5 {
			c := claims(ks.URL, testNow)
			c["jti"] = fmt.Sprint(i)
			tokens = append(tokens, sign(t, jose.ES512, k1.priv, k1.kid, c, nil))
			if _, err := client.VerifyToken(ctx, tokens[i]); err != nil {
				t.Fatal(err)
			}
		}
		if n := jam.CacheLen(client); n != 3 {
			t.Errorf("CacheLen() = %d, want the bound, 3", n)
		}
		if n := verifyAllocs(t, client, tokens[4]); n > maxHitAllocs {
			t.Errorf("the newest token allocates %v times, want a hit", n)
		}
	})

	t.Run("disabled", func(t *testing.T) {
		ks := newKeyServer(t, k1)
		client := ks.client(t, newClock(), jam.WithCacheSize(0))
		token := sign(t, jose.ES512, k1.priv, k1.kid, claims(ks.URL, testNow), nil)
		if n := verifyAllocs(t, client, token); n <= maxHitAllocs {
			t.Errorf("with the cache off VerifyToken allocates %v times, want a full verification", n)
		}
		if n := jam.CacheLen(client); n != 0 {
			t.Errorf("CacheLen() = %d with the cache off, want 0", n)
		}
	})
}
