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
func signRaw(t testing.TB, priv *ecdsa.PrivateKey, header, payload string) string {
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
func rs(t testing.TB, token string) (r, s *big.Int) {
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

// An attack is a crafted token VerifyToken must refuse, and the reason.
type attack struct {
	name  string
	token string
	want  error
}

// needsSignature reports whether refusing a is worth a signature check:
// its form, header and claim types are sound.
func (a attack) needsSignature() bool {
	switch a.want {
	case jam.ErrMalformedToken, jam.ErrAlgorithm, jam.ErrUnknownKey:
		return false
	}
	return true
}

// corpus is the attacks, with a key server publishing JAM's key-1 and a
// P-256 key, which is not JAM's kind; a client of it that has fetched the
// key set; and a valid token of key-1.
type corpus struct {
	ks      *keyServer
	client  *jam.Client
	valid   string
	attacks []attack
}

func attackCorpus(tb testing.TB) *corpus {
	tb.Helper()
	key := newSigningKey(tb, "key-1")
	other := newSigningKey(tb, "key-1") // an attacker's key, under JAM's kid
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)

	ks := newKeyServer(tb)
	ks.respond(200, []byte(`{"keys":[`+mustJSON(tb, key.jwk())+","+mustJSON(tb, jose.JSONWebKey{Key: &p256.PublicKey, KeyID: "p256", Use: "sig"})+`]}`))
	client := ks.client(tb, newClock())

	c := claims(ks.URL, testNow)
	payload := mustJSON(tb, c)
	valid := sign(tb, jose.ES512, key.priv, key.kid, c, nil)
	parts := strings.Split(valid, ".")
	es512 := func(changes map[string]any) string {
		tb.Helper()
		return sign(tb, jose.ES512, key.priv, key.kid, claimsWith(ks.URL, changes), nil)
	}
	forged := func(headers map[jose.HeaderKey]any) string {
		return sign(tb, jose.ES512, other.priv, key.kid, c, headers)
	}

	pubDER, _ := x509.MarshalPKIXPublicKey(&key.priv.PublicKey)
	certDER, err := x509.CreateCertificate(rand.Reader, &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "evil"},
		NotBefore: testNow.Add(-time.Hour), NotAfter: testNow.Add(time.Hour),
	}, &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "evil"}}, &other.priv.PublicKey, other.priv)
	if err != nil {
		tb.Fatal(err)
	}

	// ES256 over the signing input, presented as ES512 under the P-256 kid.
	p256Input := b64([]byte(`{"alg":"ES512","kid":"p256"}`)) + "." + parts[1]
	p256Hash := sha256.Sum256([]byte(p256Input))
	pr, ps, _ := ecdsa.Sign(rand.Reader, p256, p256Hash[:])
	p256Sig := make([]byte, 64)
	pr.FillBytes(p256Sig[:32])
	ps.FillBytes(p256Sig[32:])

	n := elliptic.P521().Params().N
	r, s := rs(tb, valid)
	ff := make([]byte, 132)
	for i := range ff {
		ff[i] = 0xff
	}

	std := strings.NewReplacer("-", "+", "_", "/").Replace(valid)
	if std == valid {
		tb.Fatal("the valid token has no - or _ to turn into the standard alphabet")
	}

	attacks := []attack{
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
		{"non-canonical base64url header", nonCanonical(tb, parts[0])[0] + "." + parts[1] + "." + parts[2], jam.ErrMalformedToken},
		{"leading space", " " + valid, jam.ErrMalformedToken},
		{"trailing newline", valid + "\n", jam.ErrMalformedToken},
		{"newline inside", parts[0] + "." + parts[1][:10] + "\n" + parts[1][10:] + "." + parts[2], jam.ErrMalformedToken},
		{"header not JSON", b64([]byte("ES512")) + "." + parts[1] + "." + parts[2], jam.ErrMalformedToken},
		{"payload not JSON", parts[0] + "." + b64([]byte("hello")) + "." + parts[2], jam.ErrMalformedToken},

		// The header.
		{"alg none", b64([]byte(`{"alg":"none","kid":"key-1"}`)) + "." + parts[1] + ".", jam.ErrAlgorithm},
		{"alg NONE", b64([]byte(`{"alg":"NONE","kid":"key-1"}`)) + "." + parts[1] + ".", jam.ErrAlgorithm},
		{"alg es512 in lower case", signRaw(tb, key.priv, `{"alg":"es512","kid":"key-1"}`, payload), jam.ErrAlgorithm},
		{"alg ES512 spelled with escapes", signRaw(tb, key.priv, `{"alg":"ES\u0035\u0031\u0032","kid":"key-1"}`, payload), jam.ErrAlgorithm},
		{"KID for kid", signRaw(tb, key.priv, `{"alg":"ES512","KID":"key-1"}`, payload), jam.ErrMalformedToken},
		{"HS256 keyed with the public key", sign(tb, jose.HS256, pubDER, key.kid, c, nil), jam.ErrAlgorithm},
		{"HS512 keyed with the public key", sign(tb, jose.HS512, pubDER, key.kid, c, nil), jam.ErrAlgorithm},
		{"ES256", sign(tb, jose.ES256, p256, "p256", c, nil), jam.ErrAlgorithm},
		{"RS256", sign(tb, jose.RS256, rsaKey, key.kid, c, nil), jam.ErrAlgorithm},
		{"no kid", sign(tb, jose.ES512, key.priv, "", c, nil), jam.ErrMalformedToken},
		{"empty kid", signRaw(tb, key.priv, `{"alg":"ES512","kid":""}`, payload), jam.ErrMalformedToken},
		{"kid a number", signRaw(tb, key.priv, `{"alg":"ES512","kid":1}`, payload), jam.ErrMalformedToken},
		{"embedded jwk", forged(map[jose.HeaderKey]any{"jwk": jose.JSONWebKey{Key: &other.priv.PublicKey}}), jam.ErrMalformedToken},
		{"jku", forged(map[jose.HeaderKey]any{"jku": "https://evil.example/jwks.json"}), jam.ErrMalformedToken},
		{"x5u", forged(map[jose.HeaderKey]any{"x5u": "https://evil.example/cert.pem"}), jam.ErrMalformedToken},
		{"x5c", forged(map[jose.HeaderKey]any{"x5c": []string{base64.StdEncoding.EncodeToString(certDER)}}), jam.ErrMalformedToken},
		{"x5c chain of nine CAs", x5cChainToken(tb, other.priv, payload), jam.ErrMalformedToken},
		{"x5t", forged(map[jose.HeaderKey]any{"x5t": b64(make([]byte, 20))}), jam.ErrMalformedToken},
		{"x5t#S256", forged(map[jose.HeaderKey]any{"x5t#S256": b64(make([]byte, 32))}), jam.ErrMalformedToken},
		{"header over 1 KiB", es512Header(tb, key, payload, `"pad":"`+strings.Repeat("x", 1<<10)+`"`), jam.ErrMalformedToken},
		{"header member twice", es512Header(tb, key, payload, `"typ":"JWT","typ":"JOSE"`), jam.ErrMalformedToken},
		{"crit", es512Header(tb, key, payload, `"crit":["exp"],"exp":1`), jam.ErrMalformedToken},
		{"crit b64", es512Header(tb, key, payload, `"crit":["b64"],"b64":false`), jam.ErrMalformedToken},
		{"P-256 key under its kid, signature presented as ES512", p256Input + "." + b64(p256Sig), jam.ErrUnknownKey},
		{"kid of no key", sign(tb, jose.ES512, key.priv, "key-unknown", c, nil), jam.ErrUnknownKey},
		{"kid that looks like JAM's", sign(tb, jose.ES512, key.priv, "kеy-1", c, nil), jam.ErrUnknownKey}, // Cyrillic е
		{"duplicate kid", signRaw(tb, other.priv, `{"alg":"ES512","kid":"evil","kid":"key-1"}`, payload), jam.ErrMalformedToken},

		// The signature.
		{"another key under JAM's kid", forged(nil), jam.ErrSignature},
		{"tampered payload", parts[0] + "." + b64([]byte(strings.Replace(payload, testEmail, "eve@example.com", 1))) + "." + parts[2], jam.ErrSignature},
		{"tampered header", b64([]byte(`{"alg":"ES512","kid":"key-1","typ":"JOSE"}`)) + "." + parts[1] + "." + parts[2], jam.ErrSignature},
		{"signature too short", withSignature(valid, mustDecode(tb, parts[2])[:131]), jam.ErrSignature},
		{"signature too long", withSignature(valid, append(mustDecode(tb, parts[2]), 0)), jam.ErrSignature},
		{"signature empty", parts[0] + "." + parts[1] + ".", jam.ErrSignature},
		{"signature all zero", withSignature(valid, make([]byte, 132)), jam.ErrSignature},
		{"signature all 0xFF", withSignature(valid, ff), jam.ErrSignature},
		{"S = n", withSignature(valid, sig132(r, n)), jam.ErrSignature},
		{"S = s + n, over the order", withSignature(valid, sig132(r, new(big.Int).Add(s, n))), jam.ErrSignature},
		{"R = 0", withSignature(valid, sig132(big.NewInt(0), s)), jam.ErrSignature},

		// The claims, under a valid signature.
		{"exp a string", es512(map[string]any{"exp": "tomorrow"}), jam.ErrMalformedToken},
		{"aud an object", es512(map[string]any{"aud": map[string]any{"app": testAppID}}), jam.ErrMalformedToken},
		{"claims an array", signRaw(tb, key.priv, `{"alg":"ES512","kid":"key-1"}`, `["`+testEmail+`"]`), jam.ErrMalformedToken},
		{"aud twice", edited(tb, key, payload, `{`, `{"aud":"other-app",`), jam.ErrMalformedToken},
		{"email twice", edited(tb, key, payload, `{`, `{"email":"eve@example.com",`), jam.ErrMalformedToken},
		{"ISS for iss", edited(tb, key, payload, `"iss"`, `"ISS"`), jam.ErrIssuer},
		{"EMAIL for email", edited(tb, key, payload, `"email"`, `"EMAIL"`), jam.ErrMalformedToken},
		{"Token_Use for token_use", edited(tb, key, payload, `"token_use"`, `"Token_Use"`), jam.ErrTokenUse},
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
	if _, err := client.JWKS(context.Background()); err != nil {
		tb.Fatalf("JWKS() = %v", err)
	}
	return &corpus{ks: ks, client: client, valid: valid, attacks: attacks}
}

// TestAttackCorpus: crafted tokens, each refused with ErrNotVerified and
// the right reason, without a panic and without any fetch of the key set
// but the first and the one refetch the refetch interval allows unknown
// kids; the unknown kids after that one are answered ErrKeySetUnavailable
// until the next refetch is allowed.
func TestAttackCorpus(t *testing.T) {
	c := attackCorpus(t)
	ks, client := c.ks, c.client
	ctx := context.Background()

	// A cold verification of a valid token is the yardstick of what a
	// refusal may cost; allocations stand for CPU time here, because they
	// do not vary with the machine's load.
	cold := ks.client(t, newClock(), jam.WithCacheSize(0))
	coldAllocs := testing.AllocsPerRun(3, func() {
		if _, err := cold.VerifyToken(ctx, c.valid); err != nil {
			t.Fatalf("VerifyToken(valid) = %v", err)
		}
	})
	fetched := ks.fetches.Load()
	refetched := false // the one refetch for an unknown kid is spent
	for _, tt := range c.attacks {
		t.Run(tt.name, func(t *testing.T) {
			tok, err := client.VerifyToken(ctx, tt.token)
			if tok != nil {
				t.Errorf("VerifyToken(%s) = a token for %q, want nil", tt.name, tok.Claims.Email)
			}
			switch {
			case tt.want == jam.ErrUnknownKey && refetched:
				// The kid may be of a key JAM has just published.
				assertLimited(t, err, 10*time.Second)
			default:
				assertRefused(t, err, tt.want)
				refetched = refetched || tt.want == jam.ErrUnknownKey
			}
			if len(tt.token) > 20 && strings.Contains(err.Error(), tt.token) {
				t.Errorf("VerifyToken(%s) error text holds the token", tt.name)
			}
			if tt.needsSignature() {
				return
			}
			if n := testing.AllocsPerRun(3, func() { client.VerifyToken(ctx, tt.token) }); n >= coldAllocs {
				t.Errorf("refusing %s allocates %v times, a cold verification %v: a refusal that needs no signature check must cost less", tt.name, n, coldAllocs)
			}
		})
	}

	t.Run("the sample token from JAM's dev environment", func(t *testing.T) {
		raw, err := os.ReadFile("testdata/jam-sample-token.txt")
		if err != nil {
			t.Fatal(err)
		}
		_, err = client.VerifyToken(ctx, strings.TrimSpace(string(raw)))
		assertLimited(t, err, 10*time.Second)
	})

	if n := ks.fetches.Load() - fetched; n != 1 {
		t.Errorf("the corpus fetched the key set %d times, want 1: one refetch for an unknown kid", n)
	}
}

// edited signs payload under JAM's key with the first old in it replaced
// by new, for claim sets a map cannot hold.
func edited(t testing.TB, key signingKey, payload, old, new string) string {
	t.Helper()
	if !strings.Contains(payload, old) {
		t.Fatalf("payload %s has no %s", payload, old)
	}
	return signRaw(t, key.priv, `{"alg":"ES512","kid":"`+key.kid+`"}`, strings.Replace(payload, old, new, 1))
}

// x5cChainToken is a token whose x5c header holds nine self-issued P-521
// CA certificates with one subject name, each signed by the next one's
// key: building a chain from them tries every certificate as the parent of
// every other, a P-521 signature check each.
func x5cChainToken(t testing.TB, priv *ecdsa.PrivateKey, payload string) string {
	t.Helper()
	// Small certificates, so that nine fit in a token of under 8 KiB.
	name := pkix.Name{CommonName: "J"}
	keys := make([]*ecdsa.PrivateKey, 9)
	tmpls := make([]*x509.Certificate, len(keys))
	for i := range keys {
		keys[i] = newSigningKey(t, "").priv
		tmpls[i] = &x509.Certificate{
			SerialNumber: big.NewInt(int64(i + 1)), Subject: name,
			// Valid now, by the real clock X.509 verification would use.
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
			IsCA: true, BasicConstraintsValid: true, SubjectKeyId: []byte{byte(i)},
		}
	}
	var chain []string
	for i := range keys {
		next := (i + 1) % len(keys)
		der, err := x509.CreateCertificate(rand.Reader, tmpls[i], tmpls[next], &keys[i].PublicKey, keys[next])
		if err != nil {
			t.Fatal(err)
		}
		chain = append(chain, `"`+base64.StdEncoding.EncodeToString(der)+`"`)
	}
	return signRaw(t, priv, `{"alg":"ES512","kid":"key-1","x5c":[`+strings.Join(chain, ",")+`]}`, payload)
}

// es512Header signs payload under JAM's key with extra header members.
func es512Header(t testing.TB, key signingKey, payload, extra string) string {
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
