package jam_test

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"testing"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/go-jam/go-jam/jam"
)

// b64url is the base64url alphabet, in the order of the values it encodes.
const b64url = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

// nonCanonical returns the other spellings of the unpadded base64url
// segment s that decode, leniently, to the same bytes: its last character
// with other values of the bits that encode nothing.
func nonCanonical(t testing.TB, s string) []string {
	t.Helper()
	want, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		t.Fatalf("segment %q: %v", s, err)
	}
	var out []string
	for _, c := range b64url {
		other := s[:len(s)-1] + string(c)
		if other == s {
			continue
		}
		if got, err := base64.RawURLEncoding.DecodeString(other); err == nil && string(got) == string(want) {
			out = append(out, other)
		}
	}
	return out
}

// TestNonCanonicalBase64 (RFC 4648 §3.5): a token whose header or payload
// ends in a character whose unused low bits are set decodes, leniently, to
// the same bytes and signature input as the token JAM signed. Each such
// spelling would be a cache entry and a cold verification of its own, so
// they are refused, locally and before VerifyRemote asks JAM.
func TestNonCanonicalBase64(t *testing.T) {
	key := newSigningKey(t, "key-1")
	ks := newKeyServer(t, key)
	ctx := context.Background()

	// A jti of a length that leaves 4 unused bits in the payload's last
	// character; JAM's header ({"alg","kid","typ"}) leaves 2 in its.
	c := claims(ks.URL, testNow)
	var valid string
	for pad := ""; ; pad += "x" {
		c["jti"] = "jti-" + pad
		valid = sign(t, jose.ES512, key.priv, key.kid, c, nil)
		if len(strings.Split(valid, ".")[1])%4 == 2 {
			break
		}
	}
	parts := strings.Split(valid, ".")

	type variant struct{ name, token string }
	var variants []variant
	for i, segment := range []string{"header", "payload", "signature"} {
		for _, other := range nonCanonical(t, parts[i]) {
			p := append([]string(nil), parts...)
			p[i] = other
			variants = append(variants, variant{segment + " ending in " + other[len(other)-1:], strings.Join(p, ".")})
		}
	}
	if len(variants) != 3+15 {
		t.Fatalf("%d non-canonical spellings, want 3 of the header and 15 of the payload (a P-521 signature has none)", len(variants))
	}

	for _, size := range []int{0, jam.DefaultCacheSize} {
		client := ks.client(t, newClock(), jam.WithCacheSize(size))
		if _, err := client.VerifyToken(ctx, valid); err != nil {
			t.Fatalf("VerifyToken(canonical) = %v, want nil", err)
		}
		for _, v := range variants {
			t.Run(fmt.Sprintf("cache size %d/%s", size, v.name), func(t *testing.T) {
				_, err := client.VerifyToken(ctx, v.token)
				assertRefused(t, err, jam.ErrMalformedToken)
			})
		}
	}

	// VerifyRemote refuses them before asking JAM, which the key server
	// does not answer for.
	client := ks.client(t, newClock())
	for _, v := range variants {
		t.Run("VerifyRemote/"+v.name, func(t *testing.T) {
			if _, err := client.VerifyRemote(ctx, v.token); !errors.Is(err, jam.ErrMalformedToken) {
				t.Errorf("VerifyRemote(%s) = %v, want ErrMalformedToken", v.name, err)
			}
		})
	}
}
