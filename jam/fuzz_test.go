package jam_test

import (
	"context"
	"errors"
	"net/url"
	"os"
	"strings"
	"testing"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/go-jam/go-jam/jam"
)

// FuzzVerifyToken: whatever the token, VerifyToken does not panic, and it
// refuses with ErrNotVerified and exactly one reason, never quoting the
// token, unless the token is one JAM's key signed.
func FuzzVerifyToken(f *testing.F) {
	key := newSigningKey(f, "key-1")
	ks := newKeyServer(f, key)
	client := ks.client(f, newClock())
	valid := sign(f, jose.ES512, key.priv, key.kid, claims(ks.URL, testNow), nil)
	f.Add(valid)
	f.Add(sign(f, jose.ES512, key.priv, "key-2", claims(ks.URL, testNow), nil))
	if sample, err := os.ReadFile("testdata/jam-sample-token.txt"); err == nil {
		f.Add(strings.TrimSpace(string(sample)))
	}

	f.Fuzz(func(t *testing.T, token string) {
		tok, err := client.VerifyToken(context.Background(), token)
		if err == nil {
			if tok.Claims.Email != testEmail || tok.Header.KeyID != key.kid {
				t.Fatalf("VerifyToken(%q) = %+v, accepted a token JAM did not sign", token, tok)
			}
			return
		}
		if !errors.Is(err, jam.ErrNotVerified) || errors.Is(err, jam.ErrKeySetUnavailable) {
			t.Fatalf("VerifyToken(%q) = %v, want ErrNotVerified", token, err)
		}
		n := 0
		for _, r := range reasons {
			if errors.Is(err, r) {
				n++
			}
		}
		if n != 1 {
			t.Fatalf("VerifyToken(%q) = %v matches %d reasons, want 1", token, err, n)
		}
		if len(token) > 16 && strings.Contains(err.Error(), token) {
			t.Fatalf("VerifyToken(%q) error text holds the token", token)
		}
	})
}

// FuzzTokensFromURL: whatever the redirect URL, TokensFromURL does not
// panic, and what it returns is what the query holds.
func FuzzTokensFromURL(f *testing.F) {
	f.Add("https://app.example/callback?idToken=a.b.c&refreshToken=r")
	f.Add("https://app.example/callback?idToken=a.b.c")
	f.Add("/callback?refreshToken=r&idToken=a%2Eb.c&next=%2F")
	f.Add("https://app.example/callback?idToken=a;b")

	f.Fuzz(func(t *testing.T, raw string) {
		u, err := url.Parse(raw)
		if err != nil {
			return
		}
		tokens, err := jam.TokensFromURL(u)
		if err != nil {
			if !errors.Is(err, jam.ErrBadRequest) {
				t.Fatalf("TokensFromURL(%q) = %v, want ErrBadRequest", raw, err)
			}
			return
		}
		q, err := url.ParseQuery(u.RawQuery)
		if err != nil {
			t.Fatalf("TokensFromURL(%q) accepted a query url.ParseQuery refuses: %v", raw, err)
		}
		if tokens.IDToken == "" || tokens.IDToken != q.Get("idToken") || tokens.RefreshToken != q.Get("refreshToken") {
			t.Fatalf("TokensFromURL(%q) = %+v, want the query's idToken and refreshToken", raw, tokens)
		}
	})
}
