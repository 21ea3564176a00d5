package jam_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/go-jam/go-jam/jam"
)

// redirectOps are the client's operations, each of which sends a request
// to the base URL.
var redirectOps = []struct {
	name string
	run  func(ctx context.Context, c *jam.Client, token string) error
}{
	{"Authenticate", func(ctx context.Context, c *jam.Client, _ string) error {
		return c.Authenticate(ctx, testEmail)
	}},
	{"JWKS", func(ctx context.Context, c *jam.Client, _ string) error {
		_, err := c.JWKS(ctx)
		return err
	}},
	{"VerifyToken", func(ctx context.Context, c *jam.Client, token string) error {
		_, err := c.VerifyToken(ctx, token)
		return err
	}},
	{"VerifyRemote", func(ctx context.Context, c *jam.Client, token string) error {
		_, err := c.VerifyRemote(ctx, token)
		return err
	}},
	{"Refresh", func(ctx context.Context, c *jam.Client, _ string) error {
		_, err := c.Refresh(ctx, "refresh-token-secret")
		return err
	}},
	{"DeleteRefreshToken", func(ctx context.Context, c *jam.Client, token string) error {
		return c.DeleteRefreshToken(ctx, token, "refresh-token-secret")
	}},
	{"DeleteAllRefreshTokens", func(ctx context.Context, c *jam.Client, token string) error {
		return c.DeleteAllRefreshTokens(ctx, token)
	}},
}

// countingTransport counts the requests a user's own HTTP client sends.
type countingTransport struct{ n atomic.Int32 }

func (t *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	t.n.Add(1)
	return http.DefaultTransport.RoundTrip(r)
}

// TestRedirectsNotFollowed: JAM's API never redirects, so a redirect from
// the base URL is an unexpected answer, whichever status it has and
// whatever HTTP client the Client was given: following it would send the
// request, body and bearer token included, to the host it names, and take
// that host's answer, or its keys, for JAM's.
func TestRedirectsNotFollowed(t *testing.T) {
	attacker := newSigningKey(t, "key-1")
	var reached atomic.Int32
	elsewhere := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reached.Add(1)
		// An answer that would pass for JAM's for every operation.
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"keys":[` + mustJSON(t, attacker.jwk()) + `],"idToken":"a.b.c"}`))
	}))
	defer elsewhere.Close()
	location := elsewhere.URL + "/stolen?secret=query-secret"

	statuses := []int{
		http.StatusMovedPermanently, http.StatusFound, http.StatusSeeOther,
		http.StatusTemporaryRedirect, http.StatusPermanentRedirect,
	}
	clients := []struct {
		name string
		hc   func() (*http.Client, *countingTransport)
	}{
		{"default client", func() (*http.Client, *countingTransport) { return nil, nil }},
		{"WithHTTPClient", func() (*http.Client, *countingTransport) {
			tr := &countingTransport{}
			return &http.Client{Transport: tr}, tr
		}},
	}
	for _, hc := range clients {
		for _, status := range statuses {
			for _, op := range redirectOps {
				t.Run(hc.name+"/"+http.StatusText(status)+"/"+op.name, func(t *testing.T) {
					base := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
						http.Redirect(w, r, location, status)
					}))
					defer base.Close()
					reached.Store(0)
					user, tr := hc.hc()
					client, err := jam.New(testAppID, jam.WithBaseURL(base.URL), jam.WithHTTPClient(user))
					if err != nil {
						t.Fatal(err)
					}
					token := sign(t, jose.ES512, attacker.priv, attacker.kid, claims(base.URL, testNow), nil)

					err = op.run(context.Background(), client, token)
					if !errors.Is(err, jam.ErrUnexpectedStatus) {
						t.Fatalf("%s(redirected with %d) = %v, want ErrUnexpectedStatus", op.name, status, err)
					}
					if e, ok := errors.AsType[*jam.Error](err); !ok || e.StatusCode != status {
						t.Errorf("%s(redirected with %d) = %#v, want an *Error with StatusCode %d", op.name, status, err, status)
					}
					if n := reached.Load(); n != 0 {
						t.Errorf("%s(redirected with %d) reached the host redirected to %d times, want 0", op.name, status, n)
					}
					for _, s := range []string{"query-secret", elsewhere.URL, "stolen"} {
						if strings.Contains(err.Error(), s) {
							t.Errorf("%s(redirected with %d) = %q, holds the Location's %q", op.name, status, err, s)
						}
					}
					if user == nil {
						return
					}
					if tr.n.Load() == 0 {
						t.Errorf("%s(redirected with %d) sent no request through the HTTP client given", op.name, status)
					}
					if user.CheckRedirect != nil {
						t.Errorf("New changed the CheckRedirect of the HTTP client given")
					}
				})
			}
		}
	}
}
