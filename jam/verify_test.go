package jam_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/go-jam/go-jam/jam"
	"github.com/go-jam/go-jam/jam/jamtest"
)

var reasons = []error{
	jam.ErrMalformedToken, jam.ErrAlgorithm, jam.ErrUnknownKey, jam.ErrSignature,
	jam.ErrExpired, jam.ErrNotYetValid, jam.ErrIssuer, jam.ErrAudience, jam.ErrTokenUse,
}

// assertRefused checks that err refuses a token for exactly the reason want.
func assertRefused(t *testing.T, err, want error) {
	t.Helper()
	if !errors.Is(err, jam.ErrNotVerified) {
		t.Fatalf("VerifyToken() = %v, want ErrNotVerified", err)
	}
	if errors.Is(err, jam.ErrKeySetUnavailable) {
		t.Errorf("VerifyToken() = %v, matches ErrKeySetUnavailable too", err)
	}
	var matched []error
	for _, r := range reasons {
		if errors.Is(err, r) {
			matched = append(matched, r)
		}
	}
	if len(matched) != 1 || matched[0] != want {
		t.Errorf("VerifyToken() = %v, matches reasons %v, want only %v", err, matched, want)
	}
	var e *jam.Error
	if !errors.As(err, &e) || e.Op != "verify token" || e.StatusCode != 0 {
		t.Errorf("VerifyToken() = %#v, want a *jam.Error for op verify token with no status", err)
	}
	if !strings.HasPrefix(err.Error(), "jam: verify token: ") {
		t.Errorf("VerifyToken() text = %q, want it to start with %q", err, "jam: verify token: ")
	}
}

func TestVerifyToken(t *testing.T) {
	key := newSigningKey(t, "key-1")
	ks := newKeyServer(t, key)
	clk := newClock()
	client := ks.client(t, clk)
	ctx := context.Background()

	valid := sign(t, jose.ES512, key.priv, key.kid, claims(ks.URL, testNow), nil)

	t.Run("valid", func(t *testing.T) {
		tok, err := client.VerifyToken(ctx, valid)
		if err != nil {
			t.Fatalf("VerifyToken(valid) = %v", err)
		}
		want := jam.Claims{
			Email: testEmail, Subject: testEmail, Issuer: ks.URL + "/" + testAppID,
			Audience: []string{testAppID}, ID: "6a22c912-f036-4e42-bf39-477fa3a18f6d", TokenUse: "id",
			IssuedAt: testNow, NotBefore: testNow, Expiry: testNow.Add(30 * time.Minute),
		}
		got := tok.Claims
		got.Raw = ""
		if !equalClaims(got, want) {
			t.Errorf("VerifyToken(valid).Claims = %+v, want %+v", got, want)
		}
		if !strings.Contains(tok.Claims.Raw, `"token_use":"id"`) {
			t.Errorf("Claims.Raw = %s, want the claim set", tok.Claims.Raw)
		}
		if h := tok.Header; h != (jam.Header{Algorithm: "ES512", KeyID: key.kid, Type: "JWT"}) {
			t.Errorf("VerifyToken(valid).Header = %+v", h)
		}
	})

	leeway := time.Minute
	t.Run("within leeway", func(t *testing.T) {
		c := claimsWith(ks.URL, map[string]any{
			"exp": testNow.Add(-leeway).Unix(),
			"nbf": testNow.Add(leeway).Unix(),
			"iat": testNow.Add(leeway).Unix(),
		})
		if _, err := client.VerifyToken(ctx, sign(t, jose.ES512, key.priv, key.kid, c, nil)); err != nil {
			t.Errorf("VerifyToken(at the leeway's edges) = %v, want nil", err)
		}
	})

	t.Run("audience list", func(t *testing.T) {
		c := claimsWith(ks.URL, map[string]any{"aud": []string{"other-app", testAppID}})
		if _, err := client.VerifyToken(ctx, sign(t, jose.ES512, key.priv, key.kid, c, nil)); err != nil {
			t.Errorf("VerifyToken(aud list holding the app) = %v, want nil", err)
		}
	})

	// The forms JSON allows for the same claims: an escape in a string,
	// a fraction in a date.
	payload := mustJSON(t, claims(ks.URL, testNow))
	exp := testNow.Add(30 * time.Minute).Unix()
	for name, tt := range map[string]struct{ old, new string }{
		"aud with an escape":   {`"aud":"b19a`, `"aud":"\u0062\u00319a`},
		"email with an escape": {`"email":"ann@`, `"email":"ann\u0040`},
		"exp with a fraction":  {fmt.Sprintf(`"exp":%d`, exp), fmt.Sprintf(`"exp":%d.5`, exp)},
	} {
		t.Run(name, func(t *testing.T) {
			tok, err := client.VerifyToken(ctx, edited(t, key, payload, tt.old, tt.new))
			if err != nil || tok.Claims.Audience[0] != testAppID || tok.Claims.Email != testEmail {
				t.Errorf("VerifyToken(%s) = %+v, %v; want the claims of the plain form", name, tok, err)
			}
		})
	}

	t.Run("expires as the clock moves", func(t *testing.T) {
		clk := newClock()
		client := ks.client(t, clk, jam.WithLeeway(0))
		if _, err := client.VerifyToken(ctx, valid); err != nil {
			t.Fatalf("VerifyToken(valid) = %v", err)
		}
		clk.Advance(30*time.Minute + time.Second)
		_, err := client.VerifyToken(ctx, valid)
		assertRefused(t, err, jam.ErrExpired)
	})
}

func equalClaims(a, b jam.Claims) bool {
	return a.Email == b.Email && a.Subject == b.Subject && a.Issuer == b.Issuer &&
		strings.Join(a.Audience, ",") == strings.Join(b.Audience, ",") && a.ID == b.ID &&
		a.TokenUse == b.TokenUse && a.IssuedAt.Equal(b.IssuedAt) && a.NotBefore.Equal(b.NotBefore) &&
		a.Expiry.Equal(b.Expiry)
}

func mustDecode(t testing.TB, s string) []byte {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestSampleToken runs the real token JAM's dev environment issued through
// both verifications: it parses, and is refused for what does not match.
func TestSampleToken(t *testing.T) {
	raw, err := os.ReadFile("testdata/jam-sample-token.txt")
	if err != nil {
		t.Fatal(err)
	}
	sample := strings.TrimSpace(string(raw))
	ctx := context.Background()

	// A key under the sample's kid that is not JAM's: the signature fails.
	impostor := newSigningKey(t, "2eb40104-dc45-4f37-b69c-937b6386b9f6")
	ks := newKeyServer(t, impostor)
	_, err = ks.client(t, newClock()).VerifyToken(ctx, sample)
	assertRefused(t, err, jam.ErrSignature)

	// When JAM vouches for it, its claims are read as JAM wrote them.
	stub := newStubJAM(t)
	stub.respond(http.StatusOK, "")
	tok, err := stub.client(t).VerifyRemote(ctx, sample)
	if err != nil {
		t.Fatalf("VerifyRemote(sample) = %v", err)
	}
	wantHeader := jam.Header{Algorithm: "ES512", KeyID: "2eb40104-dc45-4f37-b69c-937b6386b9f6", Type: "JWT"}
	wantClaims := jam.Claims{
		Email: "support@justauthenticate.me", Subject: "support@justauthenticate.me",
		Issuer:   "https://dev-api.justauthenticate.me/b19a21b4-ad9d-4fd7-88c1-1b68b825c671",
		Audience: []string{"b19a21b4-ad9d-4fd7-88c1-1b68b825c671"}, ID: "6a22c912-f036-4e42-bf39-477fa3a18f6d",
		TokenUse: "id", IssuedAt: time.Unix(1583695439, 0), NotBefore: time.Unix(1583695439, 0), Expiry: time.Unix(1583697239, 0),
	}
	if tok.Header != wantHeader || !equalClaims(tok.Claims, wantClaims) {
		t.Errorf("VerifyRemote(sample) = %+v, want %+v %+v", tok, wantHeader, wantClaims)
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

	var logs bytes.Buffer
	plain := newClient(jam.WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	if _, err := plain.VerifyRemote(ctx, idToken); err != nil {
		t.Fatalf("VerifyRemote(through the proxy) = %v, want nil", err)
	}
	// The error and one Warn record name both issuers, so that the mistake
	// is visible where a user looks; more refusals log nothing more.
	iss := srv.URL + "/" + srv.AppID
	for range 3 {
		_, err = plain.VerifyToken(ctx, idToken)
		assertRefused(t, err, jam.ErrIssuer)
	}
	want := fmt.Sprintf("iss is %q, want %q", iss, proxy.URL+"/jam/"+srv.AppID)
	if !strings.Contains(err.Error(), want) {
		t.Errorf("VerifyToken(through the proxy) = %v, want it to say %s", err, want)
	}
	if n := strings.Count(logs.String(), "level=WARN"); n != 1 || !strings.Contains(logs.String(), "jam.iss="+iss) {
		t.Errorf("logs after 3 refusals for the issuer:\n%s\nwant one Warn record naming iss %s", logs.String(), iss)
	}

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

// FuzzVerifyToken: whatever the token, VerifyToken does not panic, and it
// refuses with ErrNotVerified and exactly one reason, never quoting the
// token, unless the token is one JAM's key signed or has a kid the set
// lacks while the refetch rate limit holds.
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
		if e, ok := errors.AsType[*jam.Error](err); ok && e.RetryAfter > 0 && errors.Is(err, jam.ErrKeySetUnavailable) && !errors.Is(err, jam.ErrNotVerified) {
			return // a kid the set lacks, its refetch refused by the rate limit
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
