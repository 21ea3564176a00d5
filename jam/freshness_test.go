package jam_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/go-jam/go-jam/jam"
	"github.com/go-jam/go-jam/jam/jamtest"
)

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

// TestIssuerBehindProxy: through a proxy with a path prefix, the base URL
// is not JAM's issuer; WithIssuer makes VerifyToken agree with
// VerifyRemote.
func TestIssuerBehindProxy(t *testing.T) {
	srv := jamtest.NewServer()
	defer srv.Close()
	target, err := url.Parse(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	proxy := httptest.NewServer(http.StripPrefix("/jam", httputil.NewSingleHostReverseProxy(target)))
	defer proxy.Close()
	idToken, _ := srv.IssueTokens(testEmail)
	ctx := context.Background()

	newClient := func(opts ...jam.Option) *jam.Client {
		t.Helper()
		c, err := jam.New(srv.AppID, append([]jam.Option{jam.WithBaseURL(proxy.URL + "/jam")}, opts...)...)
		if err != nil {
			t.Fatalf("New() = %v", err)
		}
		return c
	}

	plain := newClient()
	if _, err := plain.VerifyRemote(ctx, idToken); err != nil {
		t.Fatalf("VerifyRemote(through the proxy) = %v, want nil", err)
	}
	_, err = plain.VerifyToken(ctx, idToken)
	assertRefused(t, err, jam.ErrIssuer)

	iss := srv.URL + "/" + srv.AppID
	client := newClient(jam.WithIssuer(iss))
	if got := client.Issuer(); got != iss {
		t.Errorf("Issuer() = %q, want %q", got, iss)
	}
	local, err := client.VerifyToken(ctx, idToken)
	if err != nil {
		t.Fatalf("VerifyToken(WithIssuer) = %v, want nil", err)
	}
	remote, err := client.VerifyRemote(ctx, idToken)
	if err != nil || remote.Claims.Email != local.Claims.Email || remote.Claims.Issuer != iss {
		t.Errorf("VerifyRemote() = %+v, %v; want the claims VerifyToken gave", remote, err)
	}

	// Both refuse a token of another issuer's signing.
	other := jamtest.NewServer(jamtest.WithAppID(srv.AppID))
	defer other.Close()
	forged, _ := other.IssueTokens(testEmail)
	if _, err := client.VerifyRemote(ctx, forged); !errors.Is(err, jam.ErrNotVerified) {
		t.Errorf("VerifyRemote(another server's token) = %v, want ErrNotVerified", err)
	}
	if _, err := client.VerifyToken(ctx, forged); !errors.Is(err, jam.ErrNotVerified) {
		t.Errorf("VerifyToken(another server's token) = %v, want ErrNotVerified", err)
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

func jsonEqual(a, b any) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return bytes.Equal(ja, jb)
}

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
