package jam_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"math/big"
	"os"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/go-jam/go-jam/jam"
)

var b64 = base64.RawURLEncoding.EncodeToString

// signRaw signs header and payload, both JSON as given, with an ES512 key
// by hand, for headers go-jose would not write.
func signRaw(t *testing.T, priv *ecdsa.PrivateKey, header, payload string) string {
	t.Helper()
	input := b64([]byte(header)) + "." + b64([]byte(payload))
	h := sha512.Sum512([]byte(input))
	r, s, err := ecdsa.Sign(rand.Reader, priv, h[:])
	if err != nil {
		t.Fatal(err)
	}
	sig := make([]byte, 132)
	r.FillBytes(sig[:66])
	s.FillBytes(sig[66:])
	return input + "." + b64(sig)
}

// withSignature replaces the signature of token with sig.
func withSignature(token string, sig []byte) string {
	return token[:strings.LastIndexByte(token, '.')+1] + b64(sig)
}

// rs returns the R and S of token's ES512 signature.
func rs(t *testing.T, token string) (r, s *big.Int) {
	t.Helper()
	sig := mustDecode(t, token[strings.LastIndexByte(token, '.')+1:])
	return new(big.Int).SetBytes(sig[:66]), new(big.Int).SetBytes(sig[66:])
}

func sig132(r, s *big.Int) []byte {
	sig := make([]byte, 132)
	r.FillBytes(sig[:66])
	s.FillBytes(sig[66:])
	return sig
}

// TestAttackCorpus: crafted tokens, each refused with ErrNotVerified and
// the right reason, without a panic and without any fetch of the key set
// but the first and the one refetch unknown kids are allowed per cooldown.
func TestAttackCorpus(t *testing.T) {
	key := newSigningKey(t, "key-1")
	other := newSigningKey(t, "key-1") // an attacker's key, under JAM's kid
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)

	// The key set also publishes a P-256 key, which is not JAM's kind.
	ks := newKeyServer(t)
	ks.respond(200, []byte(`{"keys":[`+mustJSON(t, key.jwk())+","+mustJSON(t, jose.JSONWebKey{Key: &p256.PublicKey, KeyID: "p256", Use: "sig"})+`]}`))
	client := ks.client(t, newClock())
	ctx := context.Background()

	c := claims(ks.URL, testNow)
	payload := mustJSON(t, c)
	valid := sign(t, jose.ES512, key.priv, key.kid, c, nil)
	parts := strings.Split(valid, ".")
	es512 := func(changes map[string]any) string {
		t.Helper()
		return sign(t, jose.ES512, key.priv, key.kid, claimsWith(ks.URL, changes), nil)
	}
	forged := func(headers map[jose.HeaderKey]any) string {
		return sign(t, jose.ES512, other.priv, key.kid, c, headers)
	}

	pubDER, _ := x509.MarshalPKIXPublicKey(&key.priv.PublicKey)
	certDER, err := x509.CreateCertificate(rand.Reader, &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "evil"},
		NotBefore: testNow.Add(-time.Hour), NotAfter: testNow.Add(time.Hour),
	}, &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "evil"}}, &other.priv.PublicKey, other.priv)
	if err != nil {
		t.Fatal(err)
	}

	// ES256 over the signing input, presented as ES512 under the P-256 kid.
	p256Input := b64([]byte(`{"alg":"ES512","kid":"p256"}`)) + "." + parts[1]
	p256Hash := sha256.Sum256([]byte(p256Input))
	pr, ps, _ := ecdsa.Sign(rand.Reader, p256, p256Hash[:])
	p256Sig := make([]byte, 64)
	pr.FillBytes(p256Sig[:32])
	ps.FillBytes(p256Sig[32:])

	n := elliptic.P521().Params().N
	r, s := rs(t, valid)
	ff := make([]byte, 132)
	for i := range ff {
		ff[i] = 0xff
	}

	std := strings.NewReplacer("-", "+", "_", "/").Replace(valid)
	if std == valid {
		t.Fatal("the valid token has no - or _ to turn into the standard alphabet")
	}

	tests := []struct {
		name  string
		token string
		want  error
	}{
		// The form of the token.
		{"empty", "", jam.ErrMalformedToken},
		{"garbage", "not a token", jam.ErrMalformedToken},
		{"two parts", parts[0] + "." + parts[1], jam.ErrMalformedToken},
		{"four parts", valid + ".x", jam.ErrMalformedToken},
		{"over 8 KiB", es512(map[string]any{"pad": strings.Repeat("x", 8<<10)}), jam.ErrMalformedToken},
		{"1 MiB", strings.Repeat("A", 1<<20) + "." + parts[1] + "." + parts[2], jam.ErrMalformedToken},
		{"JWS JSON serialization", `{"payload":"` + parts[1] + `","protected":"` + parts[0] + `","signature":"` + parts[2] + `"}`, jam.ErrMalformedToken},
		{"two signatures", `{"payload":"` + parts[1] + `","signatures":[{"protected":"` + parts[0] + `","signature":"` + parts[2] + `"},{"protected":"` + parts[0] + `","signature":"` + parts[2] + `"}]}`, jam.ErrMalformedToken},
		{"padded base64", parts[0] + "==." + parts[1] + "." + parts[2], jam.ErrMalformedToken},
		{"standard base64 alphabet", std, jam.ErrMalformedToken},
		{"leading space", " " + valid, jam.ErrMalformedToken},
		{"trailing newline", valid + "\n", jam.ErrMalformedToken},
		{"newline inside", parts[0] + "." + parts[1][:10] + "\n" + parts[1][10:] + "." + parts[2], jam.ErrMalformedToken},
		{"header not JSON", b64([]byte("ES512")) + "." + parts[1] + "." + parts[2], jam.ErrMalformedToken},
		{"payload not JSON", parts[0] + "." + b64([]byte("hello")) + "." + parts[2], jam.ErrMalformedToken},

		// The header.
		{"alg none", b64([]byte(`{"alg":"none","kid":"key-1"}`)) + "." + parts[1] + ".", jam.ErrAlgorithm},
		{"alg NONE", b64([]byte(`{"alg":"NONE","kid":"key-1"}`)) + "." + parts[1] + ".", jam.ErrAlgorithm},
		{"alg es512 in lower case", signRaw(t, key.priv, `{"alg":"es512","kid":"key-1"}`, payload), jam.ErrAlgorithm},
		{"HS256 keyed with the public key", sign(t, jose.HS256, pubDER, key.kid, c, nil), jam.ErrAlgorithm},
		{"HS512 keyed with the public key", sign(t, jose.HS512, pubDER, key.kid, c, nil), jam.ErrAlgorithm},
		{"ES256", sign(t, jose.ES256, p256, "p256", c, nil), jam.ErrAlgorithm},
		{"RS256", sign(t, jose.RS256, rsaKey, key.kid, c, nil), jam.ErrAlgorithm},
		{"no kid", sign(t, jose.ES512, key.priv, "", c, nil), jam.ErrMalformedToken},
		{"empty kid", signRaw(t, key.priv, `{"alg":"ES512","kid":""}`, payload), jam.ErrMalformedToken},
		{"kid a number", signRaw(t, key.priv, `{"alg":"ES512","kid":1}`, payload), jam.ErrMalformedToken},
		{"embedded jwk", forged(map[jose.HeaderKey]any{"jwk": jose.JSONWebKey{Key: &other.priv.PublicKey}}), jam.ErrMalformedToken},
		{"jku", forged(map[jose.HeaderKey]any{"jku": "https://evil.example/jwks.json"}), jam.ErrMalformedToken},
		{"x5u", forged(map[jose.HeaderKey]any{"x5u": "https://evil.example/cert.pem"}), jam.ErrMalformedToken},
		{"x5c", forged(map[jose.HeaderKey]any{"x5c": []string{base64.StdEncoding.EncodeToString(certDER)}}), jam.ErrMalformedToken},
		{"crit", es512Header(t, key, payload, `"crit":["exp"],"exp":1`), jam.ErrMalformedToken},
		{"crit b64", es512Header(t, key, payload, `"crit":["b64"],"b64":false`), jam.ErrMalformedToken},
		{"P-256 key under its kid, signature presented as ES512", p256Input + "." + b64(p256Sig), jam.ErrUnknownKey},
		{"kid of no key", sign(t, jose.ES512, key.priv, "key-unknown", c, nil), jam.ErrUnknownKey},
		{"kid that looks like JAM's", sign(t, jose.ES512, key.priv, "kеy-1", c, nil), jam.ErrUnknownKey}, // Cyrillic е
		{"duplicate kid", signRaw(t, other.priv, `{"alg":"ES512","kid":"evil","kid":"key-1"}`, payload), jam.ErrMalformedToken},

		// The signature.
		{"another key under JAM's kid", forged(nil), jam.ErrSignature},
		{"tampered payload", parts[0] + "." + b64([]byte(strings.Replace(payload, testEmail, "eve@example.com", 1))) + "." + parts[2], jam.ErrSignature},
		{"tampered header", b64([]byte(`{"alg":"ES512","kid":"key-1","typ":"JOSE"}`)) + "." + parts[1] + "." + parts[2], jam.ErrSignature},
		{"signature too short", withSignature(valid, mustDecode(t, parts[2])[:131]), jam.ErrSignature},
		{"signature too long", withSignature(valid, append(mustDecode(t, parts[2]), 0)), jam.ErrSignature},
		{"signature empty", parts[0] + "." + parts[1] + ".", jam.ErrSignature},
		{"signature all zero", withSignature(valid, make([]byte, 132)), jam.ErrSignature},
		{"signature all 0xFF", withSignature(valid, ff), jam.ErrSignature},
		{"S = n", withSignature(valid, sig132(r, n)), jam.ErrSignature},
		{"S = s + n, over the order", withSignature(valid, sig132(r, new(big.Int).Add(s, n))), jam.ErrSignature},
		{"R = 0", withSignature(valid, sig132(big.NewInt(0), s)), jam.ErrSignature},

		// The claims, under a valid signature.
		{"exp a string", es512(map[string]any{"exp": "tomorrow"}), jam.ErrMalformedToken},
		{"aud an object", es512(map[string]any{"aud": map[string]any{"app": testAppID}}), jam.ErrMalformedToken},
		{"claims an array", signRaw(t, key.priv, `{"alg":"ES512","kid":"key-1"}`, `["`+testEmail+`"]`), jam.ErrMalformedToken},
		{"no exp", es512(map[string]any{"exp": nil}), jam.ErrMalformedToken},
		{"no iat", es512(map[string]any{"iat": nil}), jam.ErrMalformedToken},
		{"no email", es512(map[string]any{"email": nil}), jam.ErrMalformedToken},
		{"expired a second past the leeway", es512(map[string]any{"exp": testNow.Add(-time.Minute - time.Second).Unix()}), jam.ErrExpired},
		{"nbf in the future", es512(map[string]any{"nbf": testNow.Add(time.Minute + time.Second).Unix()}), jam.ErrNotYetValid},
		{"iat in the future", es512(map[string]any{"iat": testNow.Add(time.Minute + time.Second).Unix()}), jam.ErrNotYetValid},
		{"iss with a trailing slash", es512(map[string]any{"iss": ks.URL + "/" + testAppID + "/"}), jam.ErrIssuer},
		{"iss of another app", es512(map[string]any{"iss": ks.URL + "/other-app"}), jam.ErrIssuer},
		{"iss of another host", es512(map[string]any{"iss": "https://api.justauthenticate.me/" + testAppID}), jam.ErrIssuer},
		{"iss missing", es512(map[string]any{"iss": nil}), jam.ErrIssuer},
		{"aud of another app", es512(map[string]any{"aud": "other-app"}), jam.ErrAudience},
		{"aud missing", es512(map[string]any{"aud": nil}), jam.ErrAudience},
		{"token_use refresh", es512(map[string]any{"token_use": "refresh"}), jam.ErrTokenUse},
		{"token_use access", es512(map[string]any{"token_use": "access"}), jam.ErrTokenUse},
		{"token_use missing", es512(map[string]any{"token_use": nil}), jam.ErrTokenUse},
	}
	if len(tests) < 30 {
		t.Fatalf("corpus has %d tokens, want at least 30", len(tests))
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok, err := client.VerifyToken(ctx, tt.token)
			if tok != nil {
				t.Errorf("VerifyToken(%s) = %+v, want nil", tt.name, tok)
			}
			assertRefused(t, err, tt.want)
			if len(tt.token) > 20 && strings.Contains(err.Error(), tt.token) {
				t.Errorf("VerifyToken(%s) error text holds the token", tt.name)
			}
		})
	}

	t.Run("the sample token from JAM's dev environment", func(t *testing.T) {
		raw, err := os.ReadFile("testdata/jam-sample-token.txt")
		if err != nil {
			t.Fatal(err)
		}
		_, err = client.VerifyToken(ctx, strings.TrimSpace(string(raw)))
		assertRefused(t, err, jam.ErrUnknownKey)
	})

	if n := ks.fetches.Load(); n != 2 {
		t.Errorf("the corpus fetched the key set %d times, want 2: the first use and one refetch for an unknown kid", n)
	}
}

// es512Header signs payload under JAM's key with extra header members.
func es512Header(t *testing.T, key signingKey, payload, extra string) string {
	t.Helper()
	return signRaw(t, key.priv, `{"alg":"ES512","kid":"`+key.kid+`",`+extra+`}`, payload)
}

// TestMalleatedSignature documents what ECDSA allows: (R, n-S) verifies as
// well as (R, S). JAM's signer makes either half, so a high S cannot be
// refused; the claims are the same, so nothing is gained by it.
func TestMalleatedSignature(t *testing.T) {
	key := newSigningKey(t, "key-1")
	ks := newKeyServer(t, key)
	client := ks.client(t, newClock())
	valid := sign(t, jose.ES512, key.priv, key.kid, claims(ks.URL, testNow), nil)
	r, s := rs(t, valid)
	flipped := withSignature(valid, sig132(r, new(big.Int).Sub(elliptic.P521().Params().N, s)))

	tok, err := client.VerifyToken(context.Background(), flipped)
	if err != nil || tok.Claims.Email != testEmail {
		t.Errorf("VerifyToken(R, n-S) = %v, %v; want the same claims", tok, err)
	}
}
