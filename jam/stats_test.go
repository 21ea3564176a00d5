package jam_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/go-jam/go-jam/jam"
	jose "github.com/go-jose/go-jose/v4"
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
