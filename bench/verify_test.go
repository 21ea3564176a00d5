package bench

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"math/big"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	jose "github.com/go-jose/go-jose/v4"
	jwtv5 "github.com/golang-jwt/jwt/v5"
	"github.com/lestrrat-go/jwx/v3/jwk"
	jwxjwt "github.com/lestrrat-go/jwx/v3/jwt"

	"github.com/go-jam/go-jam/jam"
	"github.com/go-jam/go-jam/jam/jamtest"
)

// testNow is the time of every clock here: the server's, which stamps the
// token, and each verifier's. A fixed clock keeps the token valid however
// long a run takes.
var testNow = time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)

func fixedNow() time.Time { return testNow }

// leeway is go-jam's default clock skew; the peers that take one get it too.
const leeway = time.Minute

// fixture is one JAM app: a jamtest server, one of its ID tokens and its
// JWK Set as the server publishes it. Every verifier gets the same ones.
type fixture struct {
	srv   *jamtest.Server
	token string
	jwks  []byte                      // the JWK Set's JSON, as served
	keys  map[string]*ecdsa.PublicKey // the same set, by kid
}

func newFixture(tb testing.TB) *fixture {
	tb.Helper()
	srv := jamtest.NewServer(jamtest.WithClock(fixedNow))
	tb.Cleanup(srv.Close)
	token, _ := srv.IssueTokens("ann@example.com")

	resp, err := http.Get(srv.URL + "/" + srv.AppID + "/.well-known/jwks.json")
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		tb.Fatalf("GET jwks.json = %d, %v", resp.StatusCode, err)
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(raw, &set); err != nil {
		tb.Fatal(err)
	}
	keys := make(map[string]*ecdsa.PublicKey)
	for _, k := range set.Keys {
		keys[k.KeyID] = k.Key.(*ecdsa.PublicKey)
	}
	return &fixture{srv: srv, token: token, jwks: raw, keys: keys}
}

// expect is what the peers are configured to accept. go-jam derives the
// issuer and audience from its base URL and app ID, and takes only the
// clock.
type expect struct {
	issuer, audience string
	now              func() time.Time
}

func (f *fixture) expect() expect {
	return expect{issuer: f.srv.URL + "/" + f.srv.AppID, audience: f.srv.AppID, now: fixedNow}
}

// An impl is one implementation of the operation a benchmark compares:
// a verification of the token, or a refresh with the refresh token, given
// as arg. It returns nil only when the operation succeeded.
type impl struct {
	name string
	run  func(ctx context.Context, arg string) error
}

// goJAM returns go-jam with the cache off (cold) and on (warm), keys
// fetched, and the warm one's cache holding f.token when it is valid.
func goJAM(tb testing.TB, f *fixture, now func() time.Time) []impl {
	tb.Helper()
	var vs []impl
	for _, v := range []struct {
		name string
		size int
	}{{"go-jam-cold", 0}, {"go-jam-warm", jam.DefaultCacheSize}} {
		c := f.srv.Client(jam.WithClock(now), jam.WithCacheSize(v.size))
		// The steady state of a busy process, whose key has earned the
		// tables of the fast verifier; coldstart_test.go measures the
		// start.
		if err := c.Precompute(context.Background()); err != nil {
			tb.Fatal(err)
		}
		verify := func(ctx context.Context, token string) error {
			_, err := c.VerifyToken(ctx, token)
			return err
		}
		// Primes the warm cache; a token that does not verify is the
		// caller's to find out about.
		verify(context.Background(), f.token)
		vs = append(vs, impl{v.name, verify})
	}
	return vs
}

// peers returns go-oidc, jwx and golang-jwt, each with the key set and
// checking the core of go-jam's checks: ES512 only, iss, aud
// (the app ID), and an exp that is present and has not passed. What
// go-jam checks besides (token_use, email, no key-bearing headers) they
// are not asked to, so any difference that makes favours them. Each is
// set up once, as a server would, so that the loop measures verification.
func peers(tb testing.TB, f *fixture, want expect) []impl {
	tb.Helper()

	pubs := make([]crypto.PublicKey, 0, len(f.keys))
	for _, k := range f.keys {
		pubs = append(pubs, k)
	}
	oidcVerifier := oidc.NewVerifier(want.issuer, &oidc.StaticKeySet{PublicKeys: pubs}, &oidc.Config{
		ClientID:             want.audience,
		SupportedSigningAlgs: []string{oidc.ES512},
		Now:                  want.now,
	})

	// jwx picks the key by kid and requires the token's alg to be the
	// key's, which JAM's JWK Set says is ES512.
	set, err := jwk.Parse(f.jwks)
	if err != nil {
		tb.Fatal(err)
	}
	jwxOptions := []jwxjwt.ParseOption{
		jwxjwt.WithKeySet(set),
		jwxjwt.WithValidate(true),
		jwxjwt.WithIssuer(want.issuer),
		jwxjwt.WithAudience(want.audience),
		jwxjwt.WithRequiredClaim(jwxjwt.ExpirationKey),
		jwxjwt.WithClock(jwxjwt.ClockFunc(want.now)),
		jwxjwt.WithAcceptableSkew(leeway),
	}

	parser := jwtv5.NewParser(
		jwtv5.WithValidMethods([]string{jwtv5.SigningMethodES512.Alg()}),
		jwtv5.WithIssuer(want.issuer),
		jwtv5.WithAudience(want.audience),
		jwtv5.WithExpirationRequired(),
		jwtv5.WithLeeway(leeway),
		jwtv5.WithTimeFunc(want.now),
	)
	keyfunc := func(t *jwtv5.Token) (any, error) {
		kid, _ := t.Header["kid"].(string)
		if k, ok := f.keys[kid]; ok {
			return k, nil
		}
		return nil, errors.New("unknown kid")
	}

	return []impl{
		{"go-oidc", func(ctx context.Context, token string) error {
			_, err := oidcVerifier.Verify(ctx, token)
			return err
		}},
		{"jwx", func(_ context.Context, token string) error {
			_, err := jwxjwt.Parse([]byte(token), jwxOptions...)
			return err
		}},
		{"golang-jwt", func(_ context.Context, token string) error {
			_, err := parser.ParseWithClaims(token, &jwtv5.RegisteredClaims{}, keyfunc)
			return err
		}},
	}
}

// signed is a token split into what the floor checks: the signing input
// and the signature's r and s.
type signed struct {
	kid   string
	input []byte
	r, s  *big.Int
}

func split(token string) (signed, error) {
	i := strings.LastIndexByte(token, '.')
	if i < 0 {
		return signed{}, errors.New("not a compact JWS")
	}
	h, _, _ := strings.Cut(token, ".")
	header, err := base64.RawURLEncoding.DecodeString(h)
	if err != nil {
		return signed{}, err
	}
	var hdr struct {
		Kid string `json:"kid"`
	}
	if err := json.Unmarshal(header, &hdr); err != nil {
		return signed{}, err
	}
	sig, err := base64.RawURLEncoding.DecodeString(token[i+1:])
	if err != nil || len(sig) != 132 {
		return signed{}, errors.New("not a P-521 signature")
	}
	return signed{
		kid:   hdr.Kid,
		input: []byte(token[:i]),
		r:     new(big.Int).SetBytes(sig[:66]),
		s:     new(big.Int).SetBytes(sig[66:]),
	}, nil
}

// floor is the bare check every verifier pays: SHA-512 of the signing
// input and the P-521 ECDSA verification.
func floor(pub *ecdsa.PublicKey, t signed) bool {
	h := sha512.Sum512(t.input)
	return ecdsa.Verify(pub, h[:], t.r, t.s)
}

// floorVerifier is the floor as an impl, for the tests; the benchmark
// splits the token once, outside the loop.
func floorVerifier(f *fixture) impl {
	return impl{"floor", func(_ context.Context, token string) error {
		t, err := split(token)
		if err != nil {
			return err
		}
		pub, ok := f.keys[t.kid]
		if !ok || !floor(pub, t) {
			return errors.New("signature does not verify")
		}
		return nil
	}}
}

// BenchmarkVerify verifies one ES512 token with one key set, in one run:
// the floor, go-jam cold (cache off) and warm (cache hit), and the peers.
// run.sh turns the results into ratios to the floor.
func BenchmarkVerify(b *testing.B) {
	f := newFixture(b)
	ctx := context.Background()

	b.Run("impl=floor", func(b *testing.B) {
		t, err := split(f.token)
		if err != nil {
			b.Fatal(err)
		}
		pub := f.keys[t.kid]
		b.ReportAllocs()
		for b.Loop() {
			if !floor(pub, t) {
				b.Fatal("signature does not verify")
			}
		}
	})
	for _, v := range append(goJAM(b, f, fixedNow), peers(b, f, f.expect())...) {
		b.Run("impl="+v.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if err := v.run(ctx, f.token); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkPaired takes turns: every iteration runs the floor, go-jam cold
// and the peers once each, who goes first rotating, and the benchmark
// reports go-jam cold's time over each other's. On a shared machine, whose
// speed changes from one second to the next, separate benchmarks can
// differ by more than these verifiers do; here both sides of each ratio
// met the same machine. Garbage one verifier leaves may be collected in
// another's turn, so this shares allocation costs out where
// BenchmarkVerify charges them.
func BenchmarkPaired(b *testing.B) {
	f := newFixture(b)
	ctx := context.Background()
	t, err := split(f.token)
	if err != nil {
		b.Fatal(err)
	}
	pub := f.keys[t.kid]
	impls := []impl{
		{"floor", func(context.Context, string) error {
			if !floor(pub, t) {
				return errors.New("signature does not verify")
			}
			return nil
		}},
		goJAM(b, f, fixedNow)[0], // cold
	}
	impls = append(impls, peers(b, f, f.expect())...)

	spent := make([]time.Duration, len(impls))
	first := 0
	for b.Loop() {
		for k := range impls {
			i := (first + k) % len(impls)
			start := time.Now()
			if err := impls[i].run(ctx, f.token); err != nil {
				b.Fatal(err)
			}
			spent[i] += time.Since(start)
		}
		first++
	}
	for i, v := range impls {
		if i != 1 {
			b.ReportMetric(float64(spent[1])/float64(spent[i]), impls[1].name+"/"+v.name)
		}
	}
}

// TestVerifiers shows the comparison is honest: every verifier accepts
// the benchmarks' token and rejects it tampered with.
func TestVerifiers(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	all := append([]impl{floorVerifier(f)}, append(goJAM(t, f, fixedNow), peers(t, f, f.expect())...)...)

	head, rest, _ := strings.Cut(f.token, ".")
	payload, sig, _ := strings.Cut(rest, ".")
	claims, err := base64.RawURLEncoding.DecodeString(payload)
	if err != nil {
		t.Fatal(err)
	}
	forged := strings.Replace(string(claims), "ann@example.com", "bob@example.com", 2)
	rawSig, err := base64.RawURLEncoding.DecodeString(sig)
	if err != nil {
		t.Fatal(err)
	}
	rawSig[70] ^= 1 // a bit of s

	tokens := []struct {
		name  string
		token string
		valid bool
	}{
		{"valid", f.token, true},
		{"payload changed", head + "." + base64.RawURLEncoding.EncodeToString([]byte(forged)) + "." + sig, false},
		{"signature changed", head + "." + payload + "." + base64.RawURLEncoding.EncodeToString(rawSig), false},
	}
	for _, tc := range tokens {
		for _, v := range all {
			t.Run(tc.name+"/"+v.name, func(t *testing.T) {
				err := v.run(ctx, tc.token)
				if (err == nil) != tc.valid {
					t.Errorf("%s.verify(%s token) = %v, want valid %v", v.name, tc.name, err, tc.valid)
				}
			})
		}
	}
}

// TestVerifiersCheckClaims shows the verifiers check the claims, not just
// the signature: each refuses the valid token when it expects another
// issuer or audience, or when it is verified after it expired. go-jam
// cannot be told another issuer or audience (it derives them from its
// base URL and app ID); package jam's own tests cover those.
func TestVerifiersCheckClaims(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	later := func() time.Time { return testNow.Add(2 * time.Hour) }

	right := f.expect()
	wrongIssuer, wrongAudience, expired := right, right, right
	wrongIssuer.issuer += "x"
	wrongAudience.audience += "x"
	expired.now = later

	cases := []struct {
		name string
		vs   []impl
	}{
		{"wrong issuer", peers(t, f, wrongIssuer)},
		{"wrong audience", peers(t, f, wrongAudience)},
		{"expired", append(goJAM(t, f, later), peers(t, f, expired)...)},
	}
	for _, tc := range cases {
		for _, v := range tc.vs {
			t.Run(tc.name+"/"+v.name, func(t *testing.T) {
				if err := v.run(ctx, f.token); err == nil {
					t.Errorf("%s.verify(token) with %s = nil, want an error", v.name, tc.name)
				}
			})
		}
	}
}
