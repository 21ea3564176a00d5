package jam_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/go-jam/go-jam/jam"
	"github.com/go-jam/go-jam/jam/jamtest"
	jose "github.com/go-jose/go-jose/v4"
)

func TestUnusableKeysSkipped(t *testing.T) {
	good := newSigningKey(t, "good")
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	private := newSigningKey(t, "private")
	encKey := newSigningKey(t, "enc")

	goodJWK, _ := json.Marshal(good.jwk())
	keys := []string{
		mustJSON(t, jose.JSONWebKey{Key: &p256.PublicKey, KeyID: "p256", Use: "sig"}),
		mustJSON(t, jose.JSONWebKey{Key: &rsaKey.PublicKey, KeyID: "rsa", Use: "sig"}),
		mustJSON(t, jose.JSONWebKey{Key: []byte("0123456789abcdef0123456789abcdef"), KeyID: "oct"}),
		mustJSON(t, jose.JSONWebKey{Key: private.priv, KeyID: private.kid}),
		mustJSON(t, jose.JSONWebKey{Key: &encKey.priv.PublicKey, KeyID: encKey.kid, Use: "enc"}),
		mustJSON(t, jose.JSONWebKey{Key: &good.priv.PublicKey, KeyID: "wrong-alg", Algorithm: "ES256"}),
		`{"kty":"EC","crv":"P-521","kid":"off-curve","x":"AQ","y":"AQ"}`,
		`{"kty":"OKP","crv":"Ed448","kid":"future","x":"AQ"}`,
		`"not an object"`,
		string(goodJWK),
	}
	ks := newKeyServer(t)
	ks.respond(http.StatusOK, []byte(`{"keys":[`+strings.Join(keys, ",")+`]}`))
	client := ks.client(t, newClock())
	ctx := context.Background()

	set, err := client.JWKS(ctx)
	if err != nil {
		t.Fatalf("JWKS() = %v", err)
	}
	if len(set.Keys) != 1 || set.Keys[0].KeyID != "good" {
		t.Errorf("JWKS() keys = %v, want only the good one", set.Keys)
	}

	c := claims(ks.URL, testNow)
	if _, err := client.VerifyToken(ctx, sign(t, jose.ES512, good.priv, good.kid, c, nil)); err != nil {
		t.Errorf("VerifyToken(good key) = %v", err)
	}
	for i, k := range []signingKey{private, encKey} {
		_, err := client.VerifyToken(ctx, sign(t, jose.ES512, k.priv, k.kid, c, nil))
		if i == 0 {
			assertRefused(t, err, jam.ErrUnknownKey)
		} else {
			assertLimited(t, err, 10*time.Second) // the refetch is spent
		}
	}
	if n := ks.fetches.Load(); n != 2 {
		t.Errorf("fetches = %d, want 2 (JWKS, one refetch for an unknown kid)", n)
	}
}

// TestDuplicateKeyIDs: a set with two keys under one kid verifies tokens
// of either, as go-oidc does.
func TestDuplicateKeyIDs(t *testing.T) {
	a, b := newSigningKey(t, "dup"), newSigningKey(t, "dup")
	ks := newKeyServer(t, a, b)
	client := ks.client(t, newClock())
	c := claims(ks.URL, testNow)
	for name, k := range map[string]signingKey{"first": a, "second": b} {
		if _, err := client.VerifyToken(context.Background(), sign(t, jose.ES512, k.priv, k.kid, c, nil)); err != nil {
			t.Errorf("VerifyToken(signed by the %s key of kid dup) = %v, want nil", name, err)
		}
	}
	forged := newSigningKey(t, "dup")
	_, err := client.VerifyToken(context.Background(), sign(t, jose.ES512, forged.priv, forged.kid, c, nil))
	assertRefused(t, err, jam.ErrSignature)
}

// TestJWKSSharesTheFetch: JWKS and verifications share one fetch in
// flight, so a slow JWKS cannot overwrite a newer set with an older one.
func TestJWKSSharesTheFetch(t *testing.T) {
	k1, k2 := newSigningKey(t, "key-1"), newSigningKey(t, "key-2")
	ks := newKeyServer(t, k1)
	client := ks.client(t, newClock())
	c := claims(ks.URL, testNow)
	warmUp(t, client, sign(t, jose.ES512, k1.priv, k1.kid, c, nil))

	gate := ks.hold()
	slow := make(chan error)
	go func() {
		_, err := client.JWKS(context.Background())
		slow <- err
	}()
	ks.awaitFetches(t, 2) // JWKS reached the server
	ks.setKeys(t, k1, k2)

	// A verification that needs a refetch joins the one in flight; its
	// deadline ends its wait, not the fetch.
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_, err := client.VerifyToken(ctx, sign(t, jose.ES512, k2.priv, k2.kid, c, nil))
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("VerifyToken(while JWKS is in flight, deadline) = %v, want DeadlineExceeded", err)
	}
	if n := ks.fetches.Load(); n != 2 {
		t.Errorf("fetches = %d, want 2: the verification joins the JWKS in flight", n)
	}
	close(gate)
	if err := <-slow; err != nil {
		t.Errorf("JWKS() = %v, want nil", err)
	}
}

// TestReady: a Client made during start-up fetches its keys within the
// wait it is given, and an outage makes Ready fail without making the
// Client unusable once JAM is back.
func TestReady(t *testing.T) {
	srv := jamtest.NewServer()
	defer srv.Close()
	idToken, _ := srv.IssueTokens(testEmail)
	ctx := context.Background()

	srv.FailKeySet()
	client := srv.Client(jam.WithRetries(0))
	if err := client.Ready(ctx); !errors.Is(err, jam.ErrKeySetUnavailable) {
		t.Fatalf("Ready() during an outage = %v, want ErrKeySetUnavailable", err)
	}
	srv.ClearFaults()
	if err := client.Ready(ctx); err != nil {
		t.Fatalf("Ready() once JAM is back = %v, want nil", err)
	}
	fetches := srv.Requests(jamtest.OpGetJWKS)
	if err := client.Ready(ctx); err != nil {
		t.Fatalf("Ready() again = %v, want nil", err)
	}
	if _, err := client.VerifyToken(ctx, idToken); err != nil {
		t.Fatalf("VerifyToken() after Ready() = %v", err)
	}
	if got := srv.Requests(jamtest.OpGetJWKS); got != fetches {
		t.Errorf("key-set requests after Ready() = %d, want %d: a ready Client fetches no more", got, fetches)
	}
}
