package jam_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/go-jam/go-jam/jam"
	"github.com/go-jam/go-jam/jam/internal/contract"
	"github.com/go-jam/go-jam/jam/internal/contracttest"
	"github.com/go-jam/go-jam/jam/jamtest"
)

// recorded is what a stub JAM saw of one request.
type recorded struct {
	method, path, rawPath, auth, contentType, body string
}

// stubJAM answers every request with one status and body, and records the
// requests.
type stubJAM struct {
	*httptest.Server
	mu       sync.Mutex
	status   int
	body     string
	fault    bool // the answer is off-contract on purpose
	requests []recorded
}

func newStubJAM(t *testing.T) *stubJAM {
	t.Helper()
	s := &stubJAM{status: http.StatusOK}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		s.mu.Lock()
		s.requests = append(s.requests, recorded{r.Method, r.URL.Path, r.URL.EscapedPath(), r.Header.Get("Authorization"), r.Header.Get("Content-Type"), string(body)})
		status, resp, fault := s.status, s.body, s.fault
		s.mu.Unlock()
		if fault {
			w.Header().Set(contract.FaultHeader, "stub")
		}
		if strings.HasPrefix(resp, "<") {
			w.Header().Set("Content-Type", "text/html")
		} else if resp != "" {
			w.Header().Set("Content-Type", "application/json")
		}
		w.WriteHeader(status)
		io.WriteString(w, resp)
	}))
	t.Cleanup(s.Close)
	return s
}

// respond makes the stub answer every request with status and body, which
// may be off-contract.
func (s *stubJAM) respond(status int, body string) {
	s.respondAs(status, body, true)
}

// respondAs is respond, saying whether the answer is off-contract (fault)
// or must keep to openapi.yaml.
func (s *stubJAM) respondAs(status int, body string, fault bool) {
	s.mu.Lock()
	s.status, s.body, s.fault, s.requests = status, body, fault, nil
	s.mu.Unlock()
}

func (s *stubJAM) last(t *testing.T) recorded {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.requests) != 1 {
		t.Fatalf("stub got %d requests, want 1", len(s.requests))
	}
	return s.requests[0]
}

func (s *stubJAM) client(t *testing.T, opts ...jam.Option) *jam.Client {
	t.Helper()
	c, err := jam.New(testAppID, append([]jam.Option{jam.WithBaseURL(s.URL + "/"), jam.WithHTTPClient(contracttest.CheckedClient(t))}, opts...)...)
	if err != nil {
		t.Fatalf("New() = %v", err)
	}
	return c
}

// operation is one Client method reduced to what the table tests need.
type operation struct {
	name   string
	call   func(ctx context.Context, c *jam.Client) error
	want   recorded // what JAM must receive
	on401  error    // the sentinel for a 401
	always error    // a sentinel every failure matches, if any
}

// A refresh token with the characters that need escaping in a path.
const awkwardRefresh = "a/b+c d%e?f#g"

func operations(idToken string) []operation {
	return []operation{
		{
			name:  "authenticate",
			call:  func(ctx context.Context, c *jam.Client) error { return c.Authenticate(ctx, testEmail) },
			want:  recorded{method: "POST", path: "/" + testAppID + "/authenticate", contentType: "application/json", body: `{"email":"` + testEmail + `"}`},
			on401: jam.ErrUnauthorized,
		},
		{
			name: "verify remote",
			call: func(ctx context.Context, c *jam.Client) error {
				_, err := c.VerifyRemote(ctx, idToken)
				return err
			},
			want:  recorded{method: "POST", path: "/" + testAppID + "/verify", contentType: "application/json", body: `{"idToken":"` + idToken + `"}`},
			on401: jam.ErrNotVerified,
		},
		{
			name: "refresh",
			call: func(ctx context.Context, c *jam.Client) error {
				_, err := c.Refresh(ctx, awkwardRefresh)
				return err
			},
			want:  recorded{method: "POST", path: "/" + testAppID + "/refresh", contentType: "application/json", body: `{"refreshToken":"` + awkwardRefresh + `"}`},
			on401: jam.ErrUnauthorized,
		},
		{
			name: "delete refresh token",
			call: func(ctx context.Context, c *jam.Client) error {
				return c.DeleteRefreshToken(ctx, idToken, awkwardRefresh)
			},
			want: recorded{
				method: "DELETE", path: "/" + testAppID + "/user/refresh/" + awkwardRefresh,
				rawPath: "/" + testAppID + "/user/refresh/a%2Fb+c%20d%25e%3Ff%23g", auth: "Bearer " + idToken,
			},
			on401: jam.ErrUnauthorized,
		},
		{
			name:  "delete all refresh tokens",
			call:  func(ctx context.Context, c *jam.Client) error { return c.DeleteAllRefreshTokens(ctx, idToken) },
			want:  recorded{method: "DELETE", path: "/" + testAppID + "/user/refresh", auth: "Bearer " + idToken},
			on401: jam.ErrUnauthorized,
		},
		{
			name: "fetch key set",
			call: func(ctx context.Context, c *jam.Client) error {
				_, err := c.JWKS(ctx)
				return err
			},
			want:   recorded{method: "GET", path: "/" + testAppID + "/.well-known/jwks.json"},
			on401:  jam.ErrUnauthorized,
			always: jam.ErrKeySetUnavailable,
		},
	}
}

// idTokenFor returns a well-formed ID token; a stub JAM does not check it.
func idTokenFor(t *testing.T) string {
	t.Helper()
	key := newSigningKey(t, "key-1")
	return sign(t, jose.ES512, key.priv, key.kid, claims(jam.DefaultBaseURL, testNow), nil)
}

func TestRequests(t *testing.T) {
	stub := newStubJAM(t)
	client := stub.client(t)
	for _, op := range operations(idTokenFor(t)) {
		t.Run(op.name, func(t *testing.T) {
			stub.respond(http.StatusOK, `{"idToken":"x","keys":[`+mustJSON(t, newSigningKey(t, "k").jwk())+`]}`)
			if err := op.call(context.Background(), client); err != nil {
				t.Fatalf("%s() = %v, want nil", op.name, err)
			}
			got := stub.last(t)
			if op.want.rawPath == "" {
				op.want.rawPath = op.want.path
			}
			if got != op.want {
				t.Errorf("%s sent %+v, want %+v", op.name, got, op.want)
			}
		})
	}
}

func assertNoSecrets(t *testing.T, err error, secrets ...string) {
	t.Helper()
	text := err.Error()
	if !strings.HasPrefix(text, "jam: ") {
		t.Errorf("error text %q does not start with %q", text, "jam: ")
	}
	for _, s := range secrets {
		if strings.Contains(text, s) {
			t.Errorf("error text %q holds the secret %q", text, s)
		}
	}
}

func TestVerifyRemote(t *testing.T) {
	stub := newStubJAM(t)
	client := stub.client(t)
	idToken := idTokenFor(t)

	stub.respond(http.StatusOK, "")
	tok, err := client.VerifyRemote(context.Background(), idToken)
	if err != nil {
		t.Fatalf("VerifyRemote() = %v", err)
	}
	if tok.Claims.Email != testEmail || tok.Header.KeyID != "key-1" {
		t.Errorf("VerifyRemote() = %+v, want the token's claims", tok)
	}

	// A malformed token is refused without asking JAM.
	stub.respond(http.StatusOK, "")
	_, err = client.VerifyRemote(context.Background(), "not.a.token")
	if !errors.Is(err, jam.ErrMalformedToken) || !errors.Is(err, jam.ErrNotVerified) {
		t.Errorf("VerifyRemote(malformed) = %v, want ErrNotVerified, ErrMalformedToken", err)
	}
	if len(stub.requests) != 0 {
		t.Errorf("VerifyRemote(malformed) sent %d requests, want 0", len(stub.requests))
	}
}

func TestEmptyArguments(t *testing.T) {
	stub := newStubJAM(t)
	client := stub.client(t)
	ctx := context.Background()
	stub.respond(http.StatusOK, "")

	calls := map[string]func() error{
		"Authenticate":                  func() error { return client.Authenticate(ctx, "") },
		"Refresh":                       func() error { _, err := client.Refresh(ctx, ""); return err },
		"DeleteRefreshToken":            func() error { return client.DeleteRefreshToken(ctx, "id", "") },
		"DeleteRefreshToken(.)":         func() error { return client.DeleteRefreshToken(ctx, "id", ".") },
		"DeleteRefreshToken(..)":        func() error { return client.DeleteRefreshToken(ctx, "id", "..") },
		"DeleteRefreshToken(no ID)":     func() error { return client.DeleteRefreshToken(ctx, "", "rt") },
		"DeleteAllRefreshTokens(no ID)": func() error { return client.DeleteAllRefreshTokens(ctx, "") },
	}
	for name, call := range calls {
		if err := call(); !errors.Is(err, jam.ErrBadRequest) {
			t.Errorf("%s(empty) = %v, want ErrBadRequest", name, err)
		}
	}
	if len(stub.requests) != 0 {
		t.Errorf("empty arguments sent %d requests, want 0", len(stub.requests))
	}
}

func TestNew(t *testing.T) {
	tests := []struct {
		name       string
		appID      string
		opts       []jam.Option
		wantErr    bool
		wantIssuer string
	}{
		{"defaults", testAppID, nil, false, "https://api.justauthenticate.me/" + testAppID},
		{"base URL with trailing slash", testAppID, []jam.Option{jam.WithBaseURL("http://127.0.0.1:8787/")}, false, "http://127.0.0.1:8787/" + testAppID},
		{"base URL with a path", testAppID, []jam.Option{jam.WithBaseURL("https://proxy.example/jam/")}, false, "https://proxy.example/jam/" + testAppID},
		{"app ID not a UUID", "my-app", nil, false, "https://api.justauthenticate.me/my-app"},
		{"nil options", testAppID, []jam.Option{nil, jam.WithHTTPClient(nil), jam.WithClock(nil)}, false, "https://api.justauthenticate.me/" + testAppID},
		{"empty app ID", "", nil, true, ""},
		{"app ID a dot segment", "..", nil, true, ""},
		{"relative base URL", testAppID, []jam.Option{jam.WithBaseURL("/jam")}, true, ""},
		{"base URL not http", testAppID, []jam.Option{jam.WithBaseURL("ftp://jam.example")}, true, ""},
		{"base URL with query", testAppID, []jam.Option{jam.WithBaseURL("https://jam.example/?x=1")}, true, ""},
		{"base URL without a scheme", testAppID, []jam.Option{jam.WithBaseURL("127.0.0.1:8787")}, true, ""},
		{"base URL host:port", testAppID, []jam.Option{jam.WithBaseURL("localhost:8787")}, true, ""},
		{"base URL unparsable", testAppID, []jam.Option{jam.WithBaseURL("http://[::1")}, true, ""},
		{"negative leeway", testAppID, []jam.Option{jam.WithLeeway(-time.Second)}, true, ""},
		{"negative refetch interval", testAppID, []jam.Option{jam.WithRefetchInterval(-time.Second)}, true, ""},
		{"issuer set", testAppID, []jam.Option{jam.WithIssuer("https://jam.example/" + testAppID), jam.WithBaseURL("https://proxy.example/jam")}, false, "https://jam.example/" + testAppID},
		{"empty issuer", testAppID, []jam.Option{jam.WithIssuer("")}, true, ""},
		{"zero key-set max age", testAppID, []jam.Option{jam.WithKeySetMaxAge(0)}, true, ""},
		{"negative key-set max age", testAppID, []jam.Option{jam.WithKeySetMaxAge(-time.Hour)}, true, ""},
		{"nil logger", testAppID, []jam.Option{jam.WithLogger(nil)}, false, "https://api.justauthenticate.me/" + testAppID},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := jam.New(tt.appID, tt.opts...)
			if tt.wantErr {
				if err == nil || !strings.HasPrefix(err.Error(), "jam: ") {
					t.Errorf("New(%q) = %v, want a jam: error", tt.appID, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("New(%q) = %v", tt.appID, err)
			}
			if c.Issuer() != tt.wantIssuer || c.AppID() != tt.appID {
				t.Errorf("New(%q): Issuer() = %q, AppID() = %q; want %q, %q", tt.appID, c.Issuer(), c.AppID(), tt.wantIssuer, tt.appID)
			}
		})
	}
}

func TestBaseURLPathReachesServer(t *testing.T) {
	stub := newStubJAM(t)
	client, err := jam.New(testAppID, jam.WithBaseURL(stub.URL+"/prefix/"))
	if err != nil {
		t.Fatal(err)
	}
	stub.respond(http.StatusOK, "")
	if err := client.Authenticate(context.Background(), testEmail); err != nil {
		t.Fatal(err)
	}
	if got, want := stub.last(t).path, "/prefix/"+testAppID+"/authenticate"; got != want {
		t.Errorf("Authenticate() path = %q, want %q", got, want)
	}
}

// TestRefreshNotFound: JAM answers 404 for a deleted refresh token, and
// for an unknown app. Only once the key set has loaded, proving the app
// exists, does the 404 read as a dead refresh token.
func TestRefreshNotFound(t *testing.T) {
	srv := jamtest.NewServer()
	defer srv.Close()
	ctx := context.Background()
	idToken, refreshToken := srv.IssueTokens(testEmail)
	srv.SetFault(jamtest.OpRefreshToken, jamtest.Fault{Status: 404, ContentType: "application/json", Body: []byte(`{"message":"Refresh token not found"}`)})

	client := srv.Client()
	_, err := client.Refresh(ctx, refreshToken)
	if !errors.Is(err, jam.ErrNotFound) || errors.Is(err, jam.ErrUnauthorized) {
		t.Fatalf("Refresh() before the key set loaded = %v, want ErrNotFound alone", err)
	}
	if _, err := client.VerifyToken(ctx, idToken); err != nil {
		t.Fatalf("VerifyToken() = %v", err)
	}
	_, err = client.Refresh(ctx, refreshToken)
	if !errors.Is(err, jam.ErrNotFound) || !errors.Is(err, jam.ErrUnauthorized) {
		t.Fatalf("Refresh() once the key set loaded = %v, want ErrUnauthorized and ErrNotFound", err)
	}
	if got := jam.HTTPStatus(err); got != http.StatusUnauthorized {
		t.Errorf("HTTPStatus(%v) = %d, want 401", err, got)
	}

	// A wrong app ID: its key set never loads, so the 404 stays a
	// configuration error however often it is met.
	wrong, err := jam.New("another-app", jam.WithBaseURL(srv.URL), jam.WithRetries(0))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := wrong.VerifyToken(ctx, idToken); !errors.Is(err, jam.ErrKeySetUnavailable) {
		t.Fatalf("VerifyToken() for an unknown app = %v, want ErrKeySetUnavailable", err)
	}
	srv.ClearFaults()
	_, err = wrong.Refresh(ctx, refreshToken)
	if !errors.Is(err, jam.ErrNotFound) || errors.Is(err, jam.ErrUnauthorized) {
		t.Fatalf("Refresh() for an unknown app = %v, want ErrNotFound alone", err)
	}
}

func TestNewFromEnv(t *testing.T) {
	srv := jamtest.NewServer()
	defer srv.Close()
	idToken, _ := srv.IssueTokens(testEmail)

	t.Setenv(jam.EnvAppID, "")
	t.Setenv(jam.EnvBaseURL, srv.URL)
	if _, err := jam.NewFromEnv(); err == nil {
		t.Fatal("NewFromEnv() with JAM_APP_ID unset = nil error, want one")
	}

	t.Setenv(jam.EnvAppID, srv.AppID)
	client, err := jam.NewFromEnv()
	if err != nil {
		t.Fatalf("NewFromEnv() = %v", err)
	}
	if _, err := client.VerifyToken(context.Background(), idToken); err != nil {
		t.Errorf("VerifyToken() through NewFromEnv's client = %v, want nil", err)
	}

	t.Setenv(jam.EnvBaseURL, "127.0.0.1:8787")
	if _, err := jam.NewFromEnv(); err == nil {
		t.Error("NewFromEnv() with a base URL without a scheme = nil error, want one")
	}
	// Options given after the environment win.
	t.Setenv(jam.EnvBaseURL, "http://127.0.0.1:1")
	client, err = jam.NewFromEnv(jam.WithBaseURL(srv.URL))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client.VerifyToken(context.Background(), idToken); err != nil {
		t.Errorf("VerifyToken() with WithBaseURL over JAM_BASE_URL = %v, want nil", err)
	}
}
