package jam_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/go-jam/go-jam/jam"
	"github.com/go-jam/go-jam/jam/internal/contract"
	"github.com/go-jam/go-jam/jam/internal/contracttest"
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

// TestResponses maps every operation × status to the error a caller sees.
func TestResponses(t *testing.T) {
	stub := newStubJAM(t)
	client := stub.client(t)
	idToken := idTokenFor(t)
	secrets := []string{idToken, testEmail}

	statuses := []struct {
		name    string
		status  int
		body    string
		fault   bool // off-contract on purpose
		want    func(op operation) error
		message string
	}{
		{"400", 400, `{"message":"Invalid email"}`, false, func(operation) error { return jam.ErrBadRequest }, "Invalid email"},
		{"400 empty body", 400, ``, true, func(operation) error { return jam.ErrBadRequest }, ""},
		{"401", 401, `{"message":"ID token is invalid"}`, false, func(op operation) error { return op.on401 }, "ID token is invalid"},
		{"401 no body", 401, ``, true, func(op operation) error { return op.on401 }, ""},
		{"404", 404, `{"message":"App not found"}`, false, func(operation) error { return jam.ErrNotFound }, "App not found"},
		{"404 truncated JSON", 404, `{"message":"App not fo`, true, func(operation) error { return jam.ErrNotFound }, ""},
		{"500", 500, `{"message":"Internal Server Error"}`, false, func(operation) error { return jam.ErrUnexpectedStatus }, "Internal Server Error"},
		{"HTML 502", 502, `<html><body><h1>502 Bad Gateway</h1></body></html>`, true, func(operation) error { return jam.ErrUnexpectedStatus }, ""},
		{"message not a string", 400, `{"message":{"text":"x"}}`, true, func(operation) error { return jam.ErrBadRequest }, ""},
		{"message echoing secrets", 400, `{"message":"bad ` + testEmail + ` or eve@example.org or ` + idToken + `"}`, false, func(operation) error { return jam.ErrBadRequest }, "bad REDACTED or REDACTED or REDACTED"},
		{"message echoing an opaque token", 400, `{"message":"refresh token dGhpcyBpcyBhIHRva2VuMTIzNDU2 unknown; internationalization"}`, false, func(operation) error { return jam.ErrBadRequest }, "refresh token REDACTED unknown; internationalization"},
		{"message with control characters", 400, `{"message":"line\nbreak\u001b[31m"}`, false, func(operation) error { return jam.ErrBadRequest }, "line break [31m"},
		{"body over 1 MiB", 500, `{"message":"` + strings.Repeat("x", 1<<20) + `"}`, true, func(operation) error { return jam.ErrUnexpectedStatus }, ""},
		{"body of 10 MiB", 200, `{"idToken":"` + strings.Repeat("x", 10<<20) + `"}`, true, func(operation) error { return jam.ErrUnexpectedStatus }, ""},
	}
	for _, op := range operations(idToken) {
		for _, st := range statuses {
			t.Run(op.name+"/"+st.name, func(t *testing.T) {
				stub.respondAs(st.status, st.body, st.fault)
				err := op.call(context.Background(), client)
				want := st.want(op)
				if !errors.Is(err, want) {
					t.Fatalf("%s() = %v, want %v", op.name, err, want)
				}
				if op.always != nil && !errors.Is(err, op.always) {
					t.Errorf("%s() = %v, want it to match %v too", op.name, err, op.always)
				}
				var e *jam.Error
				if !errors.As(err, &e) {
					t.Fatalf("%s() = %T, want *jam.Error", op.name, err)
				}
				if e.Op != op.name || e.StatusCode != st.status || e.Message != st.message {
					t.Errorf("%s() = {Op %q, StatusCode %d, Message %q}, want {%q, %d, %q}", op.name, e.Op, e.StatusCode, e.Message, op.name, st.status, st.message)
				}
				assertNoSecrets(t, err, secrets...)
				if strings.Contains(err.Error(), "xxxxxxxx") || strings.Contains(err.Error(), "<html>") {
					t.Errorf("%s() error text %q holds the body", op.name, err)
				}
			})
		}
	}
}

// TestRefreshTokenRedacted: an opaque refresh token has no shape to spot,
// so the calls that send one redact it by value.
func TestRefreshTokenRedacted(t *testing.T) {
	stub := newStubJAM(t)
	client := stub.client(t)
	ctx := context.Background()
	stub.respond(http.StatusUnauthorized, `{"message":"Refresh token `+awkwardRefresh+` was invalid"}`)

	_, err := client.Refresh(ctx, awkwardRefresh)
	assertNoSecrets(t, err, awkwardRefresh)

	// JAM may echo a secret percent-encoded, as a path or a query has it.
	escaped := []string{url.PathEscape(awkwardRefresh), url.QueryEscape(awkwardRefresh)}
	stub.respond(http.StatusNotFound, `{"message":"Refresh token `+escaped[0]+` or `+escaped[1]+` not found"}`)
	err = client.DeleteRefreshToken(ctx, "id-token", awkwardRefresh)
	assertNoSecrets(t, err, append(escaped, awkwardRefresh)...)
	stub.respond(http.StatusBadRequest, `{"message":"Invalid email `+url.QueryEscape("ann+jam@example.com")+`"}`)
	err = client.Authenticate(ctx, "ann+jam@example.com")
	assertNoSecrets(t, err, url.QueryEscape("ann+jam@example.com"), url.PathEscape("ann+jam@example.com"))

	stub.respond(http.StatusUnauthorized, `{"message":"Refresh token `+awkwardRefresh+` was invalid"}`)
	err = client.DeleteRefreshToken(ctx, "id", awkwardRefresh)
	assertNoSecrets(t, err, awkwardRefresh)
	var e *jam.Error
	if errors.As(err, &e); e.Message != "Refresh token REDACTED was invalid" {
		t.Errorf("DeleteRefreshToken() Message = %q, want the refresh token REDACTED", e.Message)
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

func TestSuccessWithoutExpectedBody(t *testing.T) {
	stub := newStubJAM(t)
	client := stub.client(t)
	ctx := context.Background()

	for _, body := range []string{``, `{}`, `{"idToken":""}`, `{"idToken":42}`, `<html>ok</html>`} {
		stub.respond(http.StatusOK, body)
		_, err := client.Refresh(ctx, "rt")
		if !errors.Is(err, jam.ErrUnexpectedStatus) {
			t.Errorf("Refresh() on 200 %q = %v, want ErrUnexpectedStatus", body, err)
		}
	}

	stub.respond(http.StatusOK, `{"idToken":"new-token"}`)
	if got, err := client.Refresh(ctx, "rt"); err != nil || got != "new-token" {
		t.Errorf("Refresh() = %q, %v; want new-token, nil", got, err)
	}

	// 204 and 200 both mean done for the calls that return nothing.
	for _, status := range []int{http.StatusOK, http.StatusNoContent} {
		stub.respond(status, "")
		if err := client.DeleteAllRefreshTokens(ctx, "id"); err != nil {
			t.Errorf("DeleteAllRefreshTokens() on %d = %v, want nil", status, err)
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

func TestTransportFailures(t *testing.T) {
	idToken := idTokenFor(t)

	t.Run("connection refused", func(t *testing.T) {
		stub := newStubJAM(t)
		client := stub.client(t)
		stub.Close()
		for _, op := range operations(idToken) {
			err := op.call(context.Background(), client)
			var e *jam.Error
			if !errors.As(err, &e) || e.StatusCode != 0 || e.Op != op.name {
				t.Errorf("%s() = %#v, want a *jam.Error for %s with no status", op.name, err, op.name)
			}
			// The URL, which may hold a refresh token, stays out of the text.
			assertNoSecrets(t, err, idToken, testEmail, url.PathEscape(awkwardRefresh), stub.URL)
		}
	})

	// A server that never answers, for the timeout and cancel cases.
	hang := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-hang:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(slow.Close)
	t.Cleanup(func() { close(hang) })

	t.Run("context deadline", func(t *testing.T) {
		client, _ := jam.New(testAppID, jam.WithBaseURL(slow.URL))
		for _, op := range operations(idToken) {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
			err := op.call(ctx, client)
			cancel()
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("%s() = %v, want context.DeadlineExceeded", op.name, err)
			}
		}
	})

	t.Run("context cancelled mid-request", func(t *testing.T) {
		client, _ := jam.New(testAppID, jam.WithBaseURL(slow.URL))
		for _, op := range operations(idToken) {
			ctx, cancel := context.WithCancel(context.Background())
			time.AfterFunc(20*time.Millisecond, cancel)
			start := time.Now()
			err := op.call(ctx, client)
			if !errors.Is(err, context.Canceled) {
				t.Errorf("%s() = %v, want context.Canceled", op.name, err)
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("%s() returned %v after cancel, want promptly", op.name, d)
			}
		}
	})

	t.Run("HTTP client timeout", func(t *testing.T) {
		client, _ := jam.New(testAppID, jam.WithBaseURL(slow.URL), jam.WithHTTPClient(&http.Client{Timeout: 20 * time.Millisecond}))
		err := client.Authenticate(context.Background(), testEmail)
		var e *jam.Error
		if !errors.As(err, &e) || e.StatusCode != 0 {
			t.Fatalf("Authenticate() = %v, want a *jam.Error with no status", err)
		}
		var timeout interface{ Timeout() bool }
		if !errors.As(err, &timeout) || !timeout.Timeout() {
			t.Errorf("Authenticate() = %v, want a timeout", err)
		}
	})
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

func TestTokensFromURL(t *testing.T) {
	tests := []struct {
		url     string
		want    jam.Tokens
		wantErr bool
	}{
		{"https://app.example/cb?idToken=a.b.c&refreshToken=r%2Bs%2Ft", jam.Tokens{IDToken: "a.b.c", RefreshToken: "r+s/t"}, false},
		{"https://app.example/cb?idToken=a.b.c", jam.Tokens{IDToken: "a.b.c"}, false},
		{"https://app.example/cb?next=%2F&idToken=a.b.c&refreshToken=", jam.Tokens{IDToken: "a.b.c"}, false},
		{"https://app.example/cb", jam.Tokens{}, true},
		{"https://app.example/cb?idToken=", jam.Tokens{}, true},
		{"https://app.example/cb?idToken=a&idToken=b", jam.Tokens{}, true},
		{"https://app.example/cb?idToken=a&refreshToken=r&refreshToken=s", jam.Tokens{}, true},
		{"https://app.example/cb?idToken=a;b", jam.Tokens{}, true},
		{"https://app.example/cb?idToken=%zz", jam.Tokens{}, true},
	}
	for _, tt := range tests {
		u, err := url.Parse(tt.url)
		if err != nil {
			t.Fatal(err)
		}
		got, err := jam.TokensFromURL(u)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("TokensFromURL(%q) = %+v, %v; want %+v, error %v", tt.url, got, err, tt.want, tt.wantErr)
		}
		if err != nil && !errors.Is(err, jam.ErrBadRequest) {
			t.Errorf("TokensFromURL(%q) = %v, want ErrBadRequest", tt.url, err)
		}
	}
	if _, err := jam.TokensFromURL(nil); !errors.Is(err, jam.ErrBadRequest) {
		t.Errorf("TokensFromURL(nil) = %v, want ErrBadRequest", err)
	}
}

// TestTokensRedacted prints Tokens with every verb and flag of fmt, alone,
// by pointer and inside a struct, and logs them: no form may show a token,
// or its hex.
func TestTokensRedacted(t *testing.T) {
	tok := jam.Tokens{IDToken: "secret-id", RefreshToken: "secret-refresh"}
	secrets := []string{"secret", fmt.Sprintf("%x", "secret"), fmt.Sprintf("%X", "secret")}
	check := func(what, s string) {
		t.Helper()
		for _, secret := range secrets {
			if strings.Contains(s, secret) {
				t.Errorf("%s = %q, want the tokens REDACTED", what, s)
			}
		}
	}
	type session struct {
		User   string
		Tokens jam.Tokens
	}
	// %p is left out: go vet refuses it for anything but a pointer, and fmt
	// prints a value given a verb it does not take without calling any of
	// its methods; for a pointer it prints the address alone.
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "% x", "%X", "%d", "%T", "%t", "%c", "%U", "%b", "%o", "%e", "%g", "%10.4s", "%-40v"} {
		for _, arg := range []any{tok, &tok, session{"ann", tok}, []jam.Tokens{tok}, map[string]jam.Tokens{"t": tok}} {
			check(fmt.Sprintf("Sprintf(%q, %T)", verb, arg), fmt.Sprintf(verb, arg))
		}
	}
	check("Sprintf(%p, *jam.Tokens)", fmt.Sprintf("%p", &tok))
	data, err := json.Marshal(session{"ann", tok})
	if err != nil {
		t.Fatalf("json.Marshal(session) = %v", err)
	}
	check("json.Marshal", string(data))
	check("Sprint", fmt.Sprint(tok))
	check("Sprintln", fmt.Sprintln(tok, &tok))
	if s := fmt.Sprint(tok); !strings.Contains(s, "REDACTED") {
		t.Errorf("Sprint(tokens) = %q, want REDACTED in place of each token", s)
	}

	for _, newHandler := range []func(io.Writer) slog.Handler{
		func(w io.Writer) slog.Handler { return slog.NewJSONHandler(w, nil) },
		func(w io.Writer) slog.Handler { return slog.NewTextHandler(w, nil) },
	} {
		var b strings.Builder
		slog.New(newHandler(&b)).Info("login", "tokens", tok, "session", session{"ann", tok})
		check("a log line", b.String())
		if !strings.Contains(b.String(), "REDACTED") {
			t.Errorf("log line %q, want REDACTED in place of each token", b.String())
		}
	}
}
