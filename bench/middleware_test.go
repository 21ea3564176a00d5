package bench

import (
	"context"
	"crypto"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/coreos/go-oidc/v3/oidc"

	"github.com/go-jam/go-jam/jam"
)

// oidcHandler protects next as go-jam's Middleware does, with go-oidc's
// verifier and go-jam's other checks: a Bearer token, ES512, iss, aud, exp,
// then token_use and email.
func oidcHandler(f *fixture, next http.Handler) http.Handler {
	want := f.expect()
	pubs := make([]crypto.PublicKey, 0, len(f.keys))
	for _, k := range f.keys {
		pubs = append(pubs, k)
	}
	v := oidc.NewVerifier(want.issuer, &oidc.StaticKeySet{PublicKeys: pubs}, &oidc.Config{
		ClientID:             want.audience,
		SupportedSigningAlgs: []string{oidc.ES512},
		Now:                  want.now,
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok {
			http.Error(w, "missing bearer token", http.StatusUnauthorized)
			return
		}
		idToken, err := v.Verify(r.Context(), token)
		var claims struct {
			Email    string `json:"email"`
			TokenUse string `json:"token_use"`
		}
		if err == nil {
			err = idToken.Claims(&claims)
		}
		if err == nil && (claims.TokenUse != "id" || claims.Email == "") {
			err = errors.New("not a JAM ID token")
		}
		if err != nil {
			http.Error(w, "invalid token", http.StatusUnauthorized)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// BenchmarkMiddlewareLoad sends requests, 8 at a time, to a loopback
// server whose one route is behind go-jam's Middleware or behind the same
// checks made with go-oidc, and reports requests per second (req/s). With
// traffic=cold every request's token is one the verifier has not seen
// (go-jam's cache is off); with traffic=cached the requests carry 100
// tokens over and over, which go-jam remembers and go-oidc, which has no
// cache, verifies every time. The load ends with the benchmark's time.
func BenchmarkMiddlewareLoad(b *testing.B) {
	f := newFixture(b)
	tokens := make([]string, 200)
	for i := range tokens {
		tokens[i], _ = f.srv.IssueTokens(fmt.Sprintf("user-%d@example.com", i))
	}
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) })

	for _, traffic := range []struct {
		name   string
		tokens []string
		cache  int
	}{{"cold", tokens, 0}, {"cached", tokens[:100], jam.DefaultCacheSize}} {
		client := f.srv.Client(jam.WithClock(fixedNow), jam.WithCacheSize(traffic.cache))
		// A busy server's key has earned its tables.
		if err := client.Precompute(context.Background()); err != nil {
			b.Fatal(err)
		}
		for _, impl := range []struct {
			name string
			h    http.Handler
		}{{"go-jam", client.Middleware()(ok)}, {"go-oidc", oidcHandler(f, ok)}} {
			b.Run("traffic="+traffic.name+"/impl="+impl.name, func(b *testing.B) {
				srv := httptest.NewServer(impl.h)
				defer srv.Close()
				hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16}}
				defer hc.CloseIdleConnections()
				for _, tok := range traffic.tokens { // warm the cache and the connections
					if err := get(hc, srv.URL, tok); err != nil {
						b.Fatal(err)
					}
				}
				var next atomic.Int64
				b.SetParallelism(4) // 8 clients on 2 cores
				b.ResetTimer()
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						tok := traffic.tokens[int(next.Add(1))%len(traffic.tokens)]
						if err := get(hc, srv.URL, tok); err != nil {
							b.Error(err)
							return
						}
					}
				})
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
			})
		}
	}
}

// get sends one authenticated request and wants 204.
func get(hc *http.Client, url, token string) error {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		return fmt.Errorf("GET = %d, want 204", resp.StatusCode)
	}
	return nil
}
