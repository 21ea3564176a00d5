package jam_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/go-jam/go-jam/jam"
	"github.com/go-jam/go-jam/jam/internal/contract"
	"github.com/go-jam/go-jam/jam/internal/contracttest"
	"github.com/go-jam/go-jam/jam/jamtest"
)

const (
	testAppID = "b19a21b4-ad9d-4fd7-88c1-1b68b825c671"
	testEmail = "ann@example.com"
)

// testNow is the fixed time the tests' clocks start at.
var testNow = time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)

// newClock returns a settable clock for WithClock, at testNow.
func newClock() *jamtest.Clock { return jamtest.NewClock(testNow) }

// signingKey is a P-521 key and its kid, as JAM holds them.
type signingKey struct {
	kid  string
	priv *ecdsa.PrivateKey
}

func newSigningKey(t testing.TB, kid string) signingKey {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return signingKey{kid: kid, priv: priv}
}

func (k signingKey) jwk() jose.JSONWebKey {
	return jose.JSONWebKey{Key: &k.priv.PublicKey, KeyID: k.kid, Algorithm: string(jose.ES512), Use: "sig"}
}

// claims returns the claims of a valid token of testAppID issued at now,
// for an issuer at baseURL.
func claims(baseURL string, now time.Time) map[string]any {
	return map[string]any{
		"email":     testEmail,
		"sub":       testEmail,
		"aud":       testAppID,
		"iss":       baseURL + "/" + testAppID,
		"jti":       "6a22c912-f036-4e42-bf39-477fa3a18f6d",
		"token_use": "id",
		"iat":       now.Unix(),
		"nbf":       now.Unix(),
		"exp":       now.Add(30 * time.Minute).Unix(),
	}
}

// claimsWith returns claims(baseURL, testNow) with changes applied; a nil
// value deletes the claim.
func claimsWith(baseURL string, changes map[string]any) map[string]any {
	c := claims(baseURL, testNow)
	for k, v := range changes {
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
	}
	return c
}

// sign makes a compact JWS of the claims with the given algorithm and key,
// and extra header members.
func sign(t testing.TB, alg jose.SignatureAlgorithm, key any, kid string, claims map[string]any, headers map[jose.HeaderKey]any) string {
	t.Helper()
	opts := (&jose.SignerOptions{}).WithType("JWT")
	if kid != "" {
		opts = opts.WithHeader("kid", kid)
	}
	for k, v := range headers {
		opts = opts.WithHeader(k, v)
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: key}, opts)
	if err != nil {
		t.Fatal(err)
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	jws, err := signer.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	s, err := jws.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// keyServer is an httptest server publishing a JWK Set for testAppID, whose
// contents and failures a test changes as it goes.
type keyServer struct {
	*httptest.Server
	fetches atomic.Int32

	mu           sync.Mutex
	status       int
	body         []byte
	cacheControl string        // the Cache-Control header, if any
	next         [][]byte      // bodies for the next fetches, before body
	fault        bool          // the answer is off-contract on purpose
	gate         chan struct{} // when non-nil, fetches wait for it to close
}

func newKeyServer(t testing.TB, keys ...signingKey) *keyServer {
	t.Helper()
	ks := &keyServer{}
	ks.setKeys(t, keys...)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /"+testAppID+"/.well-known/jwks.json", func(w http.ResponseWriter, r *http.Request) {
		ks.fetches.Add(1)
		ks.mu.Lock()
		gate := ks.gate
		ks.mu.Unlock()
		if gate != nil {
			select {
			case <-gate:
			case <-r.Context().Done():
				return
			}
		}
		// Read after the gate, so that a held fetch answers with what the
		// test set while it was held.
		ks.mu.Lock()
		status, body, fault, cacheControl := ks.status, ks.body, ks.fault, ks.cacheControl
		if len(ks.next) > 0 {
			body, ks.next = ks.next[0], ks.next[1:]
		}
		ks.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		if cacheControl != "" {
			w.Header().Set("Cache-Control", cacheControl)
		}
		if fault {
			w.Header().Set(contract.FaultHeader, "getJWKS")
		}
		w.WriteHeader(status)
		w.Write(body)
	})
	ks.Server = httptest.NewServer(mux)
	t.Cleanup(ks.Close)
	return ks
}

func (ks *keyServer) setKeys(t testing.TB, keys ...signingKey) {
	t.Helper()
	set := jose.JSONWebKeySet{}
	for _, k := range keys {
		set.Keys = append(set.Keys, k.jwk())
	}
	body, err := json.Marshal(set)
	if err != nil {
		t.Fatal(err)
	}
	ks.mu.Lock()
	ks.status, ks.body, ks.fault = http.StatusOK, body, false
	ks.mu.Unlock()
}

// setKeysNext makes the next fetches answer with the given sets, in turn,
// and those after them as before.
func (ks *keyServer) setKeysNext(t testing.TB, sets ...[]signingKey) {
	t.Helper()
	for _, keys := range sets {
		set := jose.JSONWebKeySet{}
		for _, k := range keys {
			set.Keys = append(set.Keys, k.jwk())
		}
		body, err := json.Marshal(set)
		if err != nil {
			t.Fatal(err)
		}
		ks.mu.Lock()
		ks.next = append(ks.next, body)
		ks.mu.Unlock()
	}
}

// respond makes the key server answer anything, off-contract.
func (ks *keyServer) respond(status int, body []byte) {
	ks.mu.Lock()
	ks.status, ks.body, ks.fault = status, body, true
	ks.mu.Unlock()
}

func (ks *keyServer) hold() chan struct{} {
	ks.mu.Lock()
	defer ks.mu.Unlock()
	ks.gate = make(chan struct{})
	return ks.gate
}

// warmUp verifies token, which must be valid, so that client holds the key
// set.
func warmUp(t testing.TB, client *jam.Client, token string) {
	t.Helper()
	if _, err := client.VerifyToken(context.Background(), token); err != nil {
		t.Fatalf("VerifyToken(warm-up) = %v", err)
	}
}

// awaitFetches waits until the key server has received n fetches.
func (ks *keyServer) awaitFetches(t testing.TB, n int32) {
	t.Helper()
	eventually(t, fmt.Sprintf("%d key-set fetches", n), func() bool { return ks.fetches.Load() >= n })
}

// eventually waits for cond, something another goroutine makes true, for
// at most 10 seconds.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
	}
}

// client returns a jam client for testAppID at the key server, on clk.
func (ks *keyServer) client(t testing.TB, clk *jamtest.Clock, opts ...jam.Option) *jam.Client {
	t.Helper()
	opts = append([]jam.Option{jam.WithBaseURL(ks.URL), jam.WithClock(clk.Now), jam.WithHTTPClient(contracttest.CheckedClient(t))}, opts...)
	c, err := jam.New(testAppID, opts...)
	if err != nil {
		t.Fatalf("New(%q) = %v", testAppID, err)
	}
	// A key that earned its tables builds them in a goroutine of its own;
	// it must not outlive the test.
	t.Cleanup(func() { jam.AwaitTables(c) })
	return c
}
