package jam_test

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/go-jam/go-jam/jam"
	"github.com/go-jam/go-jam/jam/jamtest"
)

// TestStats counts what a series of verifications and fetches did.
func TestStats(t *testing.T) {
	key := newSigningKey(t, "key-1")
	ks := newKeyServer(t, key)
	clk := newClock()
	client := ks.client(t, clk)
	ctx := context.Background()
	c := claims(ks.URL, testNow)
	token := sign(t, jose.ES512, key.priv, key.kid, c, nil)

	if s := client.Stats(); s != (jam.Stats{}) {
		t.Errorf("Stats() of a new client = %+v, want zeros", s)
	}
	client.VerifyToken(ctx, token)                                          // a fetch, a signature check
	client.VerifyToken(ctx, token)                                          // a hit
	client.VerifyToken(ctx, "garbage")                                      // refused
	client.VerifyToken(ctx, sign(t, jose.ES512, key.priv, "other", c, nil)) // a refetch, refused
	client.JWKS(ctx)                                                        // a fetch
	ks.respond(http.StatusInternalServerError, nil)
	client.JWKS(ctx) // a failed fetch
	ks.respond(http.StatusOK, []byte(`{"keys":[]}`))
	client.JWKS(ctx) // a failed fetch: no usable key

	want := jam.Stats{
		Verifications: 4, CacheHits: 1, Refused: 2,
		KeySetFetches: 5, KeySetFetchErrors: 2,
		Keys: 1, KeySetFetchedAt: testNow,
	}
	if got := client.Stats(); got != want {
		t.Errorf("Stats() = %+v, want %+v", got, want)
	}
}

// TestStatsOutage: verifications that an outage of the key set answers
// count as Unavailable, those that the refetch rate limit answers as
// RefetchesLimited, and neither as Refused; what is left of Verifications
// succeeded.
func TestStatsOutage(t *testing.T) {
	k1, k2 := newSigningKey(t, "key-1"), newSigningKey(t, "key-2")
	tests := []struct {
		name string
		run  func(t *testing.T, ks *keyServer, client *jam.Client, clk *jamtest.Clock)
		want jam.Stats // the counters of verifications only
	}{
		{"cold outage", func(t *testing.T, ks *keyServer, client *jam.Client, clk *jamtest.Clock) {
			ks.respond(http.StatusInternalServerError, nil)
			for range 50 {
				client.VerifyToken(context.Background(), sign(t, jose.ES512, k1.priv, k1.kid, claims(ks.URL, testNow), nil))
				clk.Advance(100 * time.Millisecond)
			}
		}, jam.Stats{Verifications: 50, Unavailable: 50}},
		{"outage of a warm client, a new kid", func(t *testing.T, ks *keyServer, client *jam.Client, clk *jamtest.Clock) {
			warmUp(t, client, sign(t, jose.ES512, k1.priv, k1.kid, claims(ks.URL, testNow), nil))
			ks.respond(http.StatusInternalServerError, nil)
			for range 10 {
				client.VerifyToken(context.Background(), sign(t, jose.ES512, k2.priv, k2.kid, claims(ks.URL, testNow), nil))
			}
		}, jam.Stats{Verifications: 11, Unavailable: 10}},
		{"forged kids", func(t *testing.T, ks *keyServer, client *jam.Client, clk *jamtest.Clock) {
			warmUp(t, client, sign(t, jose.ES512, k1.priv, k1.kid, claims(ks.URL, testNow), nil))
			for i := range 50 {
				client.VerifyToken(context.Background(), sign(t, jose.ES512, k1.priv, fmt.Sprint("forged-", i), claims(ks.URL, testNow), nil))
			}
		}, jam.Stats{Verifications: 51, Refused: 1, RefetchesLimited: 49}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ks := newKeyServer(t, k1)
			clk := newClock()
			client := ks.client(t, clk, jam.WithRetries(0))
			tt.run(t, ks, client, clk)
			s := client.Stats()
			got := jam.Stats{Verifications: s.Verifications, CacheHits: s.CacheHits, Refused: s.Refused, Unavailable: s.Unavailable, RefetchesLimited: s.RefetchesLimited}
			if got != tt.want {
				t.Errorf("Stats() after %s = %+v, want %+v", tt.name, got, tt.want)
			}
		})
	}
}
