package jamtest_test

import (
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-jam/go-jam/jam/jamtest"
)

const page = "http://localhost:5173" // a dev server's page, of the default origins

// corsRequest sends method to rawURL with an Origin header, and more
// header fields as name, value pairs, and returns the answer, body read.
func corsRequest(t *testing.T, method, rawURL, origin string, header ...string) answer {
	t.Helper()
	var body io.Reader
	if method == http.MethodPost {
		body = strings.NewReader(`{}`)
	}
	r, err := http.NewRequestWithContext(t.Context(), method, rawURL, body)
	if err != nil {
		t.Fatal(err)
	}
	if origin != "" {
		r.Header.Set("Origin", origin)
	}
	for i := 0; i+1 < len(header); i += 2 {
		r.Header.Set(header[i], header[i+1])
	}
	return send(t, noRedirects, r)
}

// preflight sends the OPTIONS request a browser sends before method.
func preflight(t *testing.T, rawURL, origin, method, headers string) answer {
	t.Helper()
	return corsRequest(t, http.MethodOptions, rawURL, origin,
		"Access-Control-Request-Method", method, "Access-Control-Request-Headers", headers)
}

// assertNoCORS checks that an answer grants no origin anything.
func assertNoCORS(t *testing.T, what string, h http.Header) {
	t.Helper()
	for name := range h {
		if strings.HasPrefix(name, "Access-Control-") {
			t.Errorf("%s: %s = %q, want no CORS header", what, name, h.Get(name))
		}
	}
}

// assertCORS checks the headers of an answer of the API to a page of origin.
func assertCORS(t *testing.T, what string, h http.Header, origin string) {
	t.Helper()
	if got := h.Get("Access-Control-Allow-Origin"); got != origin {
		t.Errorf("%s: Access-Control-Allow-Origin = %q, want %q", what, got, origin)
	}
	if got := h.Values("Vary"); !slices.Contains(got, "Origin") {
		t.Errorf("%s: Vary = %q, want Origin among them", what, got)
	}
	if got := h.Get("Access-Control-Expose-Headers"); got != "Retry-After" {
		t.Errorf("%s: Access-Control-Expose-Headers = %q, want Retry-After", what, got)
	}
	if got, ok := h["Access-Control-Allow-Credentials"]; ok {
		t.Errorf("%s: Access-Control-Allow-Credentials = %q, want none", what, got)
	}
}

// TestCORSPreflight sends the preflight a browser sends before each
// operation, as JAM's browser SDK calls them: each is answered, and none
// counts as a request for the operation.
func TestCORSPreflight(t *testing.T) {
	srv := newServer(t)
	app := srv.URL + "/" + srv.AppID
	tests := []struct {
		op          jamtest.Operation
		path        string
		method      string
		headers     string
		wantMethods string
	}{
		{jamtest.OpAuthenticate, "/authenticate", "POST", "content-type", "POST"},
		{jamtest.OpRefreshToken, "/refresh", "POST", "content-type", "POST"},
		{jamtest.OpVerifyToken, "/verify", "POST", "content-type", "POST"},
		{jamtest.OpGetJWKS, "/.well-known/jwks.json", "GET", "", "GET"},
		{jamtest.OpDeleteRefreshToken, "/user/refresh/a-refresh-token", "DELETE", "authorization", "DELETE"},
		{jamtest.OpDeleteAllRefreshTokens, "/user/refresh", "DELETE", "authorization", "DELETE"},
	}
	for _, tt := range tests {
		t.Run(string(tt.op), func(t *testing.T) {
			a := preflight(t, app+tt.path, page, tt.method, tt.headers)
			if a.status != http.StatusNoContent {
				t.Fatalf("OPTIONS %s = %d %s, want 204", tt.path, a.status, a.body)
			}
			assertCORS(t, "preflight", a.header, page)
			checks := []struct{ name, want string }{
				{"Access-Control-Allow-Methods", tt.wantMethods},
				{"Access-Control-Allow-Headers", "Authorization, Content-Type"},
				{"Access-Control-Max-Age", "600"},
			}
			for _, c := range checks {
				if got := a.header.Get(c.name); got != c.want {
					t.Errorf("%s = %q, want %q", c.name, got, c.want)
				}
			}
			if got := srv.Requests(tt.op); got != 0 {
				t.Errorf("Requests(%q) = %d after a preflight, want 0", tt.op, got)
			}
		})
	}
	// A preflight for a path of no operation is not one: the usual 404.
	if a := preflight(t, app+"/nothing", page, "POST", ""); a.status != http.StatusNotFound {
		t.Errorf("OPTIONS /nothing = %d, want 404", a.status)
	}
}

// TestCORSAnswers checks that every answer of the API to a page of an
// allowed origin lets the page read it: successes, errors, and faults.
func TestCORSAnswers(t *testing.T) {
	srv := newServer(t)
	app := srv.URL + "/" + srv.AppID
	srv.SetFault(jamtest.OpRefreshToken, jamtest.Throttled(http.StatusTooManyRequests, 30*time.Second))
	tests := []struct {
		name, method, url string
		header            []string
		status            int
	}{
		{"authenticate", "POST", app + "/authenticate", []string{"Content-Type", "application/json"}, http.StatusBadRequest},
		{"key set", "GET", app + "/.well-known/jwks.json", nil, http.StatusOK},
		{"unknown app", "GET", srv.URL + "/another-app/.well-known/jwks.json", nil, http.StatusNotFound},
		{"logout, bad token", "DELETE", app + "/user/refresh", []string{"Authorization", "Bearer not-a-token"}, http.StatusUnauthorized},
		{"wrong method", "PUT", app + "/refresh", nil, http.StatusMethodNotAllowed},
		{"no operation", "GET", app + "/nothing", nil, http.StatusNotFound},
		{"not canonical", "GET", app + "/./verify", nil, http.StatusNotFound},
		{"fault", "POST", app + "/refresh", []string{"Content-Type", "application/json"}, http.StatusTooManyRequests},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := corsRequest(t, tt.method, tt.url, page, tt.header...)
			if a.status != tt.status {
				t.Fatalf("%s %s = %d %s, want %d", tt.method, tt.url, a.status, a.body, tt.status)
			}
			assertCORS(t, tt.name, a.header, page)
		})
	}
	if got := srv.Requests(jamtest.OpRefreshToken); got != 1 {
		t.Errorf("Requests(%q) = %d, want 1: the fault was not met", jamtest.OpRefreshToken, got)
	}
}

// TestCORSDisallowedOrigin checks that a page of an origin not allowed is
// granted nothing, though the server answers as it would without CORS.
func TestCORSDisallowedOrigin(t *testing.T) {
	tests := []struct {
		name    string
		opts    []jamtest.Option
		origin  string
		allowed bool
	}{
		{"default, localhost", nil, "http://localhost:3000", true},
		{"default, localhost without port", nil, "http://localhost", true},
		{"default, https localhost", nil, "https://localhost:8443", true},
		{"default, subdomain of localhost", nil, "http://app.localhost:8080", true},
		{"default, 127.0.0.1", nil, "http://127.0.0.1:5173", true},
		{"default, ::1", nil, "http://[::1]:3000", true},
		{"default, a site", nil, "https://app.example", false},
		{"default, localhost as a subdomain", nil, "http://localhost.example", false},
		{"default, 127.0.0.2", nil, "http://127.0.0.2:3000", false},
		{"default, a file", nil, "null", false},
		{"default, other scheme", nil, "ftp://localhost", false},
		{"listed", []jamtest.Option{jamtest.WithCORSOrigins("https://app.example", "http://localhost:3000")}, "https://app.example", true},
		{"listed, default port", []jamtest.Option{jamtest.WithCORSOrigins("https://app.example:443")}, "https://app.example", true},
		{"listed, upper case", []jamtest.Option{jamtest.WithCORSOrigins("https://App.Example")}, "https://app.example", true},
		{"listed, other port", []jamtest.Option{jamtest.WithCORSOrigins("http://localhost:3000")}, "http://localhost:3001", false},
		{"listed, loopback no longer", []jamtest.Option{jamtest.WithCORSOrigins("https://app.example")}, "http://localhost:3000", false},
		{"listed, other scheme", []jamtest.Option{jamtest.WithCORSOrigins("https://app.example")}, "http://app.example", false},
		{"none", []jamtest.Option{jamtest.WithCORSOrigins()}, "http://localhost:3000", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newServer(t, tt.opts...)
			app := srv.URL + "/" + srv.AppID
			pre := preflight(t, app+"/refresh", tt.origin, "POST", "content-type")
			get := corsRequest(t, "GET", app+"/.well-known/jwks.json", tt.origin)
			if get.status != http.StatusOK {
				t.Errorf("GET jwks.json from %q = %d, want 200", tt.origin, get.status)
			}
			if tt.allowed {
				if pre.status != http.StatusNoContent {
					t.Errorf("preflight from %q = %d, want 204", tt.origin, pre.status)
				}
				assertCORS(t, "preflight", pre.header, tt.origin)
				assertCORS(t, "GET jwks.json", get.header, tt.origin)
				return
			}
			if pre.status != http.StatusForbidden {
				t.Errorf("preflight from %q = %d, want 403", tt.origin, pre.status)
			}
			assertNoCORS(t, "preflight", pre.header)
			assertNoCORS(t, "GET jwks.json", get.header)
			if got := srv.Requests(jamtest.OpRefreshToken); got != 0 {
				t.Errorf("Requests(%q) = %d after a refused preflight, want 0", jamtest.OpRefreshToken, got)
			}
		})
	}
}

// TestCORSNeverOnDevPaths checks that the server's own pages and APIs,
// which hold magic links, answer no page of another origin, allowed or not.
func TestCORSNeverOnDevPaths(t *testing.T) {
	srv := newServer(t)
	if err := srv.Client().Authenticate(t.Context(), ann); err != nil {
		t.Fatalf("Authenticate = %v", err)
	}
	link, _ := srv.MagicLink(ann)
	tests := []struct {
		name string
		send func(t *testing.T) answer
	}{
		{"outbox", func(t *testing.T) answer { return corsRequest(t, "GET", srv.URL+"/_jamtest/outbox", page) }},
		{"outbox page", func(t *testing.T) answer { return corsRequest(t, "GET", srv.URL+"/_jamtest/", page) }},
		{"outbox page, no slash", func(t *testing.T) answer { return corsRequest(t, "GET", srv.URL+"/_jamtest", page) }},
		{"outbox preflight", func(t *testing.T) answer { return preflight(t, srv.URL+"/_jamtest/outbox", page, "DELETE", "") }},
		{"outbox, escaped", func(t *testing.T) answer { return corsRequest(t, "GET", srv.URL+"/%5Fjamtest/outbox", page) }},
		{"magic link preflight", func(t *testing.T) answer { return preflight(t, link, page, "GET", "") }},
		{"magic link", func(t *testing.T) answer { return corsRequest(t, "GET", link, page) }},
		{"unknown", func(t *testing.T) answer { return corsRequest(t, "GET", srv.URL+"/_jamtest/nothing", page) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := tt.send(t)
			if a.status == 0 {
				t.Fatal("connection reset, want an answer")
			}
			assertNoCORS(t, tt.name, a.header)
		})
	}
}

// TestWithCORSOriginsInvalid checks that an origin that is not one makes
// Start fail.
func TestWithCORSOriginsInvalid(t *testing.T) {
	for _, origin := range []string{
		"*",
		"",
		"null",
		"localhost:3000",
		"http://localhost:3000/",
		"http://localhost:3000/app",
		"http://user@localhost:3000",
		"http://localhost:3000?x=1",
		"http://localhost:3000#top",
		"http://localhost:99999",
		"ftp://localhost",
		"http://",
	} {
		srv, err := jamtest.Start(jamtest.WithCORSOrigins("http://localhost:3000", origin))
		if err == nil {
			srv.Close()
			t.Errorf("Start(WithCORSOrigins(%q)) = nil error, want one", origin)
		}
	}
	for _, origin := range []string{"http://[::1]:8080", "https://app.example", "HTTP://LOCALHOST:3000"} {
		srv, err := jamtest.Start(jamtest.WithCORSOrigins(origin))
		if err != nil {
			t.Errorf("Start(WithCORSOrigins(%q)) = %v, want nil", origin, err)
			continue
		}
		srv.Close()
	}
}
