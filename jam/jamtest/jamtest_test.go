package jamtest_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/go-jam/go-jam/jam"
	"github.com/go-jam/go-jam/jam/internal/contracttest"
	"github.com/go-jam/go-jam/jam/jamtest"
)

// TestMain fails the tests if a goroutine outlives them: Close must leave
// nothing running.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

const ann, bob = "ann@example.com", "bob@example.com"

// newServer starts a server that logs to the test and whose responses must
// all keep to openapi.yaml.
func newServer(t *testing.T, opts ...jamtest.Option) *jamtest.Server {
	t.Helper()
	srv := jamtest.NewServer(append([]jamtest.Option{jamtest.WithLogger(testLogger(t))}, opts...)...)
	t.Cleanup(func() {
		srv.Close()
		if v := srv.Violations(); len(v) > 0 {
			t.Errorf("Violations() = %v, want none", v)
		}
	})
	return srv
}

// checked sends a client's traffic through a transport that checks it
// against openapi.yaml on the client's side too; the server checks its own.
func checked(t *testing.T) jam.Option {
	return jam.WithHTTPClient(contracttest.CheckedClient(t))
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, nil))
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// newClock returns a settable clock for WithClock.
func newClock() *jamtest.Clock {
	return jamtest.NewClock(time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC))
}

// noRedirects is a browser that stops at the first redirect.
var noRedirects = &http.Client{
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

// follow GETs a magic link and returns the status and the Location.
func follow(t *testing.T, link string) (int, string) {
	t.Helper()
	resp, err := noRedirects.Get(link)
	if err != nil {
		t.Fatalf("Get(magic link) = %v", err)
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, resp.Header.Get("Location")
}

// login authenticates email and follows the magic link.
func login(t *testing.T, srv *jamtest.Server, email string) jam.Tokens {
	t.Helper()
	if err := srv.Client(checked(t)).Authenticate(t.Context(), email); err != nil {
		t.Fatalf("Authenticate(%q) = %v", email, err)
	}
	link, ok := srv.MagicLink(email)
	if !ok {
		t.Fatalf("MagicLink(%q) = _, false, want a link", email)
	}
	status, location := follow(t, link)
	if status != http.StatusFound {
		t.Fatalf("GET magic link = %d, want %d", status, http.StatusFound)
	}
	u, err := url.Parse(location)
	if err != nil {
		t.Fatalf("Location %q: %v", location, err)
	}
	tokens, err := jam.TokensFromURL(u)
	if err != nil {
		t.Fatalf("TokensFromURL(Location) = %v", err)
	}
	return tokens
}

// TestLoginFlow runs what an app does with JAM, from login to logout,
// through the real client.
func TestLoginFlow(t *testing.T) {
	ctx := t.Context()
	clk := newClock()
	srv := newServer(t, jamtest.WithClock(clk.Now))
	client := srv.Client(checked(t))

	tokens := login(t, srv, ann)
	if tokens.RefreshToken == "" {
		t.Fatal("login: no refresh token, want one")
	}

	tok, err := client.VerifyToken(ctx, tokens.IDToken)
	if err != nil {
		t.Fatalf("VerifyToken(ID token) = %v", err)
	}
	c := tok.Claims
	if c.Email != ann || c.Subject != ann || !slices.Equal(c.Audience, []string{srv.AppID}) ||
		c.Issuer != srv.URL+"/"+srv.AppID || c.TokenUse != "id" || c.ID == "" {
		t.Errorf("VerifyToken(ID token).Claims = %+v, want JAM's claims for %s", c, ann)
	}
	if !c.IssuedAt.Equal(clk.Now()) || !c.NotBefore.Equal(clk.Now()) || c.Expiry.Sub(c.IssuedAt) != jamtest.DefaultTokenTTL {
		t.Errorf("iat, nbf, exp = %v, %v, %v; want now, now, now+%v", c.IssuedAt, c.NotBefore, c.Expiry, jamtest.DefaultTokenTTL)
	}
	if h := tok.Header; h.Algorithm != "ES512" || h.Type != "JWT" || h.KeyID == "" {
		t.Errorf("VerifyToken(ID token).Header = %+v, want ES512, JWT and a kid", h)
	}

	if _, err := client.VerifyRemote(ctx, tokens.IDToken); err != nil {
		t.Errorf("VerifyRemote(ID token) = %v, want nil", err)
	}

	clk.Advance(time.Minute) // so the new token differs in iat too
	newID, err := client.Refresh(ctx, tokens.RefreshToken)
	if err != nil {
		t.Fatalf("Refresh(refresh token) = %v", err)
	}
	if newID == tokens.IDToken {
		t.Error("Refresh returned the same ID token")
	}
	if tok, err := client.VerifyToken(ctx, newID); err != nil || tok.Claims.Email != ann {
		t.Errorf("VerifyToken(refreshed token) = %v, %v; want %s's claims", tok, err, ann)
	}

	if err := client.DeleteRefreshToken(ctx, newID, tokens.RefreshToken); err != nil {
		t.Errorf("DeleteRefreshToken = %v, want nil", err)
	}
	if _, err := client.Refresh(ctx, tokens.RefreshToken); !errors.Is(err, jam.ErrUnauthorized) {
		t.Errorf("Refresh(deleted token) = %v, want ErrUnauthorized", err)
	}

	second := login(t, srv, ann)
	if err := client.DeleteAllRefreshTokens(ctx, second.IDToken); err != nil {
		t.Errorf("DeleteAllRefreshTokens = %v, want nil", err)
	}
	if _, err := client.Refresh(ctx, second.RefreshToken); !errors.Is(err, jam.ErrUnauthorized) {
		t.Errorf("Refresh(token after DeleteAllRefreshTokens) = %v, want ErrUnauthorized", err)
	}
}

// TestTokenFormat checks the wire form of tokens and keys against a real
// JAM token's: the same header and claim members, aud a single string,
// numeric times, a 132-byte signature, and an EC P-521 JWK with the
// token's kid.
func TestTokenFormat(t *testing.T) {
	srv := newServer(t)
	idToken, _ := srv.IssueTokens(ann)

	parts := strings.Split(idToken, ".")
	if len(parts) != 3 {
		t.Fatalf("ID token has %d parts, want 3", len(parts))
	}
	var header map[string]any
	decodeSegment(t, parts[0], &header)
	var claims map[string]any
	decodeSegment(t, parts[1], &claims)
	if sig, _ := base64.RawURLEncoding.DecodeString(parts[2]); len(sig) != 132 {
		t.Errorf("signature is %d bytes, want 132 (R||S on P-521)", len(sig))
	}

	if got := slices.Sorted(maps.Keys(header)); !slices.Equal(got, []string{"alg", "kid", "typ"}) {
		t.Errorf("header members = %v, want alg, kid, typ", got)
	}
	if header["alg"] != "ES512" || header["typ"] != "JWT" {
		t.Errorf("header = %v, want alg ES512 and typ JWT", header)
	}
	wantClaims := []string{"aud", "email", "exp", "iat", "iss", "jti", "nbf", "sub", "token_use"}
	if got := slices.Sorted(maps.Keys(claims)); !slices.Equal(got, wantClaims) {
		t.Errorf("claims = %v, want %v", got, wantClaims)
	}
	if claims["aud"] != srv.AppID {
		t.Errorf("aud = %v, want the string %q", claims["aud"], srv.AppID)
	}
	for _, name := range []string{"iat", "nbf", "exp"} {
		if _, ok := claims[name].(float64); !ok {
			t.Errorf("%s = %v, want a number", name, claims[name])
		}
	}

	resp, err := http.Get(srv.URL + "/" + srv.AppID + "/.well-known/jwks.json")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var set struct{ Keys []map[string]string }
	if err := json.NewDecoder(resp.Body).Decode(&set); err != nil || len(set.Keys) != 1 {
		t.Fatalf("JWK Set = %v, %v; want one key", set, err)
	}
	k := set.Keys[0]
	if got := slices.Sorted(maps.Keys(k)); !slices.Equal(got, []string{"alg", "crv", "kid", "kty", "use", "x", "y"}) {
		t.Errorf("JWK members = %v, want alg crv kid kty use x y", got)
	}
	if k["kty"] != "EC" || k["crv"] != "P-521" || k["use"] != "sig" || k["alg"] != "ES512" || k["kid"] != header["kid"] {
		t.Errorf("JWK = %v, want an EC P-521 ES512 signing key with the token's kid", k)
	}
	for _, coord := range []string{"x", "y"} {
		if b, err := base64.RawURLEncoding.DecodeString(k[coord]); err != nil || len(b) != 66 {
			t.Errorf("JWK %s = %d bytes, %v; want 66", coord, len(b), err)
		}
	}
}

func decodeSegment(t *testing.T, seg string, v any) {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		t.Fatalf("segment is not base64url: %v", err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("segment is not JSON: %v", err)
	}
}

// TestErrors reaches every failure status the jam client maps, and checks
// the kind of error it becomes.
func TestErrors(t *testing.T) {
	srv := newServer(t)
	noRefresh := newServer(t, jamtest.WithRefreshDisabled())
	stranger := newServer(t) // another app, with its own key

	client := srv.Client(checked(t))
	otherApp, err := jam.New("no-such-app", jam.WithBaseURL(srv.URL), checked(t))
	if err != nil {
		t.Fatal(err)
	}
	annID, annRefresh := srv.IssueTokens(ann)
	_, bobRefresh := srv.IssueTokens(bob)
	foreignID, _ := stranger.IssueTokens(ann)
	noReannID, _ := noRefresh.IssueTokens(ann)

	tests := []struct {
		name   string
		call   func(context.Context) error
		status int
		want   []error
	}{
		{"authenticate/not an address", func(ctx context.Context) error { return client.Authenticate(ctx, "ann.example.com") }, 400, []error{jam.ErrBadRequest}},
		{"authenticate/display name", func(ctx context.Context) error { return client.Authenticate(ctx, "Ann <ann@example.com>") }, 400, []error{jam.ErrBadRequest}},
		{"authenticate/angle brackets", func(ctx context.Context) error { return client.Authenticate(ctx, "<ann@example.com>") }, 400, []error{jam.ErrBadRequest}},
		{"authenticate/unknown app", func(ctx context.Context) error { return otherApp.Authenticate(ctx, ann) }, 404, []error{jam.ErrNotFound}},
		{"verify remote/other key", func(ctx context.Context) error { _, err := client.VerifyRemote(ctx, foreignID); return err }, 401, []error{jam.ErrNotVerified}},
		{"verify remote/unknown app", func(ctx context.Context) error { _, err := otherApp.VerifyRemote(ctx, annID); return err }, 404, []error{jam.ErrNotFound}},
		{"refresh/disabled", func(ctx context.Context) error {
			_, err := noRefresh.Client().Refresh(ctx, "anything")
			return err
		}, 400, []error{jam.ErrBadRequest}},
		{"refresh/unknown token", func(ctx context.Context) error { _, err := client.Refresh(ctx, "no-such-token"); return err }, 401, []error{jam.ErrUnauthorized}},
		{"refresh/unknown app", func(ctx context.Context) error { _, err := otherApp.Refresh(ctx, annRefresh); return err }, 404, []error{jam.ErrNotFound}},
		{"delete/bad bearer", func(ctx context.Context) error { return client.DeleteRefreshToken(ctx, foreignID, annRefresh) }, 401, []error{jam.ErrUnauthorized}},
		{"delete/other app's token as bearer", func(ctx context.Context) error { return client.DeleteRefreshToken(ctx, noReannID, annRefresh) }, 401, []error{jam.ErrUnauthorized}},
		{"delete/unknown refresh token", func(ctx context.Context) error { return client.DeleteRefreshToken(ctx, annID, "no-such-token") }, 404, []error{jam.ErrNotFound}},
		{"delete/someone else's", func(ctx context.Context) error { return client.DeleteRefreshToken(ctx, annID, bobRefresh) }, 404, []error{jam.ErrNotFound}},
		{"delete/unknown app", func(ctx context.Context) error { return otherApp.DeleteRefreshToken(ctx, annID, annRefresh) }, 404, []error{jam.ErrNotFound}},
		{"delete all/bad bearer", func(ctx context.Context) error { return client.DeleteAllRefreshTokens(ctx, "not-a-token") }, 401, []error{jam.ErrUnauthorized}},
		{"delete all/unknown app", func(ctx context.Context) error { return otherApp.DeleteAllRefreshTokens(ctx, annID) }, 404, []error{jam.ErrNotFound}},
		{"jwks/unknown app", func(ctx context.Context) error { _, err := otherApp.JWKS(ctx); return err }, 404, []error{jam.ErrKeySetUnavailable, jam.ErrNotFound}},
		{"verify/unknown app", func(ctx context.Context) error { _, err := otherApp.VerifyToken(ctx, annID); return err }, 404, []error{jam.ErrKeySetUnavailable, jam.ErrNotFound}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call(t.Context())
			for _, want := range tt.want {
				if !errors.Is(err, want) {
					t.Errorf("%s = %v, want errors.Is %v", tt.name, err, want)
				}
			}
			if e, ok := errors.AsType[*jam.Error](err); !ok || e.StatusCode != tt.status {
				t.Errorf("%s = %v, want a *jam.Error with status %d", tt.name, err, tt.status)
			}
		})
	}

	// Nothing above deleted a refresh token that was not the user's.
	if _, err := client.Refresh(t.Context(), bobRefresh); err != nil {
		t.Errorf("Refresh(bob's token) = %v, want nil", err)
	}
}

// TestExpiredToken checks that the server refuses a token once its exp has
// passed by its clock, and the client once past its leeway.
func TestExpiredToken(t *testing.T) {
	ctx := t.Context()
	clk := newClock()
	srv := newServer(t, jamtest.WithClock(clk.Now), jamtest.WithTokenTTL(5*time.Minute))
	client := srv.Client(checked(t))
	idToken, refresh := srv.IssueTokens(ann)

	clk.Advance(5*time.Minute + 2*time.Minute) // past exp and the client's leeway
	if _, err := client.VerifyToken(ctx, idToken); !errors.Is(err, jam.ErrExpired) {
		t.Errorf("VerifyToken(expired) = %v, want ErrExpired", err)
	}
	if _, err := client.VerifyRemote(ctx, idToken); !errors.Is(err, jam.ErrNotVerified) {
		t.Errorf("VerifyRemote(expired) = %v, want ErrNotVerified", err)
	}
	if err := client.DeleteAllRefreshTokens(ctx, idToken); !errors.Is(err, jam.ErrUnauthorized) {
		t.Errorf("DeleteAllRefreshTokens(expired bearer) = %v, want ErrUnauthorized", err)
	}
	// A refresh token outlives its ID tokens.
	fresh, err := client.Refresh(ctx, refresh)
	if err != nil {
		t.Fatalf("Refresh = %v", err)
	}
	if _, err := client.VerifyToken(ctx, fresh); err != nil {
		t.Errorf("VerifyToken(refreshed) = %v, want nil", err)
	}
}

func TestMagicLink(t *testing.T) {
	ctx := t.Context()

	t.Run("one time", func(t *testing.T) {
		srv := newServer(t)
		login(t, srv, ann)
		link, _ := srv.MagicLink(ann)
		if status, location := follow(t, link); status != http.StatusNotFound || location != "" {
			t.Errorf("GET used link = %d, Location %q; want 404 and none", status, location)
		}
	})

	t.Run("expires", func(t *testing.T) {
		clk := newClock()
		srv := newServer(t, jamtest.WithClock(clk.Now))
		if err := srv.Client(checked(t)).Authenticate(ctx, ann); err != nil {
			t.Fatal(err)
		}
		link, _ := srv.MagicLink(ann)
		clk.Advance(jamtest.MagicLinkTTL)
		if status, location := follow(t, link); status != http.StatusNotFound || location != "" {
			t.Errorf("GET expired link = %d, Location %q; want 404 and none", status, location)
		}
	})

	t.Run("valid until it expires", func(t *testing.T) {
		clk := newClock()
		srv := newServer(t, jamtest.WithClock(clk.Now))
		if err := srv.Client(checked(t)).Authenticate(ctx, ann); err != nil {
			t.Fatal(err)
		}
		link, _ := srv.MagicLink(ann)
		clk.Advance(jamtest.MagicLinkTTL - time.Second)
		if status, _ := follow(t, link); status != http.StatusFound {
			t.Errorf("GET link before expiry = %d, want 302", status)
		}
	})

	t.Run("unknown", func(t *testing.T) {
		srv := newServer(t)
		resp, err := http.Get(srv.URL + "/_jamtest/magic/no-such-code")
		if err != nil {
			t.Fatal(err)
		}
		assertErrorBody(t, resp, http.StatusNotFound)
	})

	t.Run("HEAD does not spend it", func(t *testing.T) {
		srv := newServer(t)
		if err := srv.Client(checked(t)).Authenticate(ctx, ann); err != nil {
			t.Fatal(err)
		}
		link, _ := srv.MagicLink(ann)
		resp, err := noRedirects.Head(link)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusMethodNotAllowed {
			t.Errorf("HEAD link = %d, want 405", resp.StatusCode)
		}
		if status, _ := follow(t, link); status != http.StatusFound {
			t.Errorf("GET link after HEAD = %d, want 302", status)
		}
	})

	t.Run("redirect URL keeps its query", func(t *testing.T) {
		srv := newServer(t, jamtest.WithRedirectURL("http://localhost:3000/cb?state=xyz#frag"))
		if err := srv.Client(checked(t)).Authenticate(ctx, ann); err != nil {
			t.Fatal(err)
		}
		link, _ := srv.MagicLink(ann)
		_, location := follow(t, link)
		u, err := url.Parse(location)
		if err != nil {
			t.Fatal(err)
		}
		q := u.Query()
		if u.Host != "localhost:3000" || u.Path != "/cb" || u.Fragment != "frag" || q.Get("state") != "xyz" || q.Get("idToken") == "" || q.Get("refreshToken") == "" {
			t.Errorf("Location = %s, want http://localhost:3000/cb?state=xyz with tokens, #frag", redact(u))
		}
	})

	t.Run("default redirect URL", func(t *testing.T) {
		srv := newServer(t)
		if err := srv.Client(checked(t)).Authenticate(ctx, ann); err != nil {
			t.Fatal(err)
		}
		link, _ := srv.MagicLink(ann)
		if _, location := follow(t, link); !strings.HasPrefix(location, jamtest.DefaultRedirectURL+"?") {
			t.Errorf("Location does not start with %s?", jamtest.DefaultRedirectURL)
		}
	})

	t.Run("refresh disabled", func(t *testing.T) {
		srv := newServer(t, jamtest.WithRefreshDisabled())
		tokens := login(t, srv, ann)
		if tokens.IDToken == "" || tokens.RefreshToken != "" {
			t.Errorf("login with refresh disabled = %v, want an ID token only", tokens)
		}
		if _, refresh := srv.IssueTokens(ann); refresh != "" {
			t.Error("IssueTokens with refresh disabled returned a refresh token")
		}
	})

	t.Run("outbox", func(t *testing.T) {
		var mu sync.Mutex
		mailed := map[string]string{}
		srv := newServer(t, jamtest.WithMailer(func(email, link string) {
			mu.Lock()
			mailed[email] = link
			mu.Unlock()
		}))
		if _, ok := srv.MagicLink(ann); ok {
			t.Error("MagicLink before Authenticate = _, true, want false")
		}
		if err := srv.Client(checked(t)).Authenticate(ctx, ann); err != nil {
			t.Fatal(err)
		}
		link, ok := srv.MagicLink(ann)
		if !ok || !strings.HasPrefix(link, srv.URL+"/_jamtest/magic/") {
			t.Errorf("MagicLink(%q) = %v; want a link below %s/_jamtest/magic/", ann, ok, srv.URL)
		}
		mu.Lock()
		defer mu.Unlock()
		if mailed[ann] != link {
			t.Error("the mailer did not get the link MagicLink returns")
		}
	})
}

// redact keeps tokens out of failure messages.
func redact(u *url.URL) string {
	c := *u
	q := c.Query()
	for _, k := range []string{"idToken", "refreshToken"} {
		if q.Has(k) {
			q.Set(k, "REDACTED")
		}
	}
	c.RawQuery = q.Encode()
	return c.String()
}

func TestRotateKey(t *testing.T) {
	ctx := t.Context()
	srv := newServer(t)
	client := srv.Client(checked(t))
	oldID, refresh := srv.IssueTokens(ann)
	old, err := client.VerifyToken(ctx, oldID)
	if err != nil {
		t.Fatalf("VerifyToken(before rotation) = %v", err)
	}

	srv.PublishKey()
	srv.RotateKey()
	if got := srv.KeyIDs(); len(got) != 1 {
		t.Errorf("KeyIDs() after RotateKey = %q, want one kid", got)
	}
	newID, _ := srv.IssueTokens(ann)
	tok, err := client.VerifyToken(ctx, newID)
	if err != nil {
		t.Fatalf("VerifyToken(new key) = %v, want nil", err)
	}
	if tok.Header.KeyID == old.Header.KeyID || tok.Header.KeyID != srv.KeyIDs()[0] {
		t.Errorf("kid after RotateKey = %q, want the new key %q", tok.Header.KeyID, srv.KeyIDs()[0])
	}
	if got := srv.Requests(jamtest.OpGetJWKS); got != 2 {
		t.Errorf("Requests(OpGetJWKS) = %d, want 2 (first use, then the new kid)", got)
	}
	if _, err := client.VerifyToken(ctx, oldID); !errors.Is(err, jam.ErrUnknownKey) {
		t.Errorf("VerifyToken(retired key) = %v, want ErrUnknownKey", err)
	}
	if _, err := client.VerifyRemote(ctx, oldID); !errors.Is(err, jam.ErrNotVerified) {
		t.Errorf("VerifyRemote(retired key) = %v, want ErrNotVerified", err)
	}
	set, err := client.JWKS(ctx)
	if err != nil || len(set.Keys) != 1 || set.Keys[0].KeyID != tok.Header.KeyID {
		t.Errorf("JWKS() = %v, %v; want the new key alone", set, err)
	}
	// Refresh tokens do not depend on the key.
	if id, err := client.Refresh(ctx, refresh); err != nil {
		t.Errorf("Refresh after RotateKey = %v, want nil", err)
	} else if _, err := client.VerifyToken(ctx, id); err != nil {
		t.Errorf("VerifyToken(refreshed after RotateKey) = %v, want nil", err)
	}
}

// assertErrorBody checks that resp is JAM's error: the status, JSON, and a
// message.
func assertErrorBody(t *testing.T, resp *http.Response, status int) string {
	t.Helper()
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != status {
		t.Errorf("status = %d, want %d (body %s)", resp.StatusCode, status, body)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q, want application/json", ct)
	}
	var e struct {
		Message *string `json:"message"`
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&e); err != nil || e.Message == nil || *e.Message == "" {
		t.Errorf("body = %s, %v; want {\"message\": \"...\"}", body, err)
		return ""
	}
	return *e.Message
}
