package main

import (
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jam/go-jam/jam"
	"github.com/go-jam/go-jam/jam/jamtest"
)

const ann = "ann@example.com"

// lockedBuffer collects logs written from handlers and goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// harness is the app's handler on a loopback port with a jamtest server,
// both on one clock, as the in-process JAM runs.
type harness struct {
	t     *testing.T
	jam   *jamtest.Server
	clock *jamtest.Clock
	url   string // the app's, without a trailing slash
	cfg   config
	logs  *lockedBuffer
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	h := &harness{t: t, clock: jamtest.NewClock(time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)), logs: &lockedBuffer{}}
	h.jam = jamtest.NewServer(jamtest.WithClock(h.clock.Now), jamtest.WithLogger(slog.New(slog.DiscardHandler)))
	t.Cleanup(h.jam.Close)
	h.cfg = config{
		jamURL:    h.jam.URL + "/",
		appID:     h.jam.AppID,
		outboxURL: h.jam.URL + "/_jamtest/",
		log:       slog.New(slog.NewTextHandler(h.logs, nil)),
	}
	// No retries: an outage answers at once.
	handler, err := newApp(h.jam.Client(jam.WithRetries(0)), h.cfg)
	if err != nil {
		t.Fatalf("newApp: %v", err)
	}
	srv := httptest.NewServer(handler)
	t.Cleanup(srv.Close)
	h.url = srv.URL
	t.Cleanup(func() {
		if v := h.jam.Violations(); len(v) > 0 {
			t.Errorf("jamtest saw responses violating openapi.yaml: %v", v)
		}
	})
	return h
}

// wantNoSecrets fails the test if the app's logs hold an address or a
// token.
func (h *harness) wantNoSecrets(secrets ...string) {
	h.t.Helper()
	logs := h.logs.String()
	for _, s := range append(secrets, ann) {
		if s != "" && strings.Contains(logs, s) {
			h.t.Errorf("the app's logs hold a secret %.12q…:\n%s", s, logs)
		}
	}
}

type response struct {
	status int
	header http.Header
	body   string
}

// get requests a path of the app with the headers, each given once.
func (h *harness) get(path string, header map[string][]string) *response {
	h.t.Helper()
	req, err := http.NewRequest(http.MethodGet, h.url+path, nil)
	if err != nil {
		h.t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatalf("GET %s: %v", path, err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		h.t.Fatalf("GET %s: reading the body: %v", path, err)
	}
	return &response{status: res.StatusCode, header: res.Header, body: string(body)}
}

func bearer(token string) map[string][]string {
	return map[string][]string{"Authorization": {"Bearer " + token}}
}

// tampered returns the token with its claims replaced by claims, and its
// signature kept.
func tampered(t *testing.T, token string, claims map[string]any) string {
	t.Helper()
	parts := strings.Split(token, ".")
	payload, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	parts[1] = base64.RawURLEncoding.EncodeToString(payload)
	return strings.Join(parts, ".")
}

// unsigned returns the token with the header {"alg":"none"} and no
// signature.
func unsigned(token string) string {
	parts := strings.Split(token, ".")
	return base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"JWT"}`)) + "." + parts[1] + "."
}

func TestAPI(t *testing.T) {
	h := newHarness(t)
	valid, refresh := h.jam.IssueTokens(ann)
	second, _ := h.jam.IssueTokens(ann)

	// Another JAM with the same app ID and URL, so the same issuer and
	// audience, but its own key: a token it signs is a forgery here.
	other := jamtest.NewServer(jamtest.WithAppID(h.jam.AppID), jamtest.WithPublicURL(h.jam.URL),
		jamtest.WithClock(h.clock.Now), jamtest.WithLogger(slog.New(slog.DiscardHandler)))
	foreign, _ := other.IssueTokens(ann)
	other.Close()

	// Expired: issued 31 minutes ago, past the 30 minutes of its lifetime
	// and the minute of the client's leeway.
	h.clock.Advance(-31*time.Minute - time.Second)
	expired, _ := h.jam.IssueTokens(ann)
	h.clock.Advance(31*time.Minute + time.Second)

	tests := []struct {
		name       string
		header     map[string][]string
		wantStatus int
		wantBody   string // exactly, or "" for any {"message"}
		wantAuth   string // in WWW-Authenticate
	}{
		{"valid", bearer(valid), http.StatusOK, `{"email":"` + ann + `"}`, ""},
		{"valid, scheme in lower case", map[string][]string{"Authorization": {"bearer " + second}}, http.StatusOK, `{"email":"` + ann + `"}`, ""},
		{"missing", nil, http.StatusUnauthorized, "", `Bearer realm="jam"`},
		{"another scheme", map[string][]string{"Authorization": {"Basic YW5uOnB3"}}, http.StatusUnauthorized, "", `Bearer realm="jam"`},
		{"expired", bearer(expired), http.StatusUnauthorized, "", `error="invalid_token"`},
		{"forged: signed by another key", bearer(foreign), http.StatusUnauthorized, "", `error="invalid_token"`},
		{"forged: claims changed", bearer(tampered(t, valid, map[string]any{"email": "mallory@example.com"})), http.StatusUnauthorized, "", `error="invalid_token"`},
		{"forged: alg none", bearer(unsigned(valid)), http.StatusUnauthorized, "", `error="invalid_token"`},
		{"the refresh token", bearer(refresh), http.StatusUnauthorized, "", `error="invalid_token"`},
		{"two headers", map[string][]string{"Authorization": {"Bearer " + valid, "Bearer " + valid}}, http.StatusBadRequest, "", `error="invalid_request"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := h.get("/api/me", tt.header)
			if res.status != tt.wantStatus {
				t.Fatalf("GET /api/me = %d %s, want %d", res.status, res.body, tt.wantStatus)
			}
			if ct := res.header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("GET /api/me: Content-Type = %q, want application/json", ct)
			}
			if auth := res.header.Get("WWW-Authenticate"); !strings.Contains(auth, tt.wantAuth) || (tt.wantAuth == "") != (auth == "") {
				t.Errorf("GET /api/me: WWW-Authenticate = %q, want %q", auth, tt.wantAuth)
			}
			if tt.wantBody != "" {
				if res.body != tt.wantBody {
					t.Errorf("GET /api/me = %s, want %s", res.body, tt.wantBody)
				}
				return
			}
			var msg struct{ Message string }
			if err := json.Unmarshal([]byte(res.body), &msg); err != nil || msg.Message == "" {
				t.Errorf("GET /api/me = %s, want a {\"message\"} body", res.body)
			}
			if strings.Contains(res.body, ann) || strings.Contains(res.body, valid) {
				t.Errorf("GET /api/me refused with %s, which holds the request's secrets", res.body)
			}
		})
	}
	h.wantNoSecrets(valid, second, refresh, foreign, expired)
}

// TestAPIKeySetUnavailable: when JAM cannot give its key set, the API
// answers 503, not 401, so that the page keeps its login, and the app
// logs the outage without the token.
func TestAPIKeySetUnavailable(t *testing.T) {
	h := newHarness(t)
	token, _ := h.jam.IssueTokens(ann)
	h.jam.FailKeySet()
	res := h.get("/api/me", bearer(token))
	if res.status != http.StatusServiceUnavailable {
		t.Errorf("GET /api/me while the key set is unavailable = %d %s, want 503", res.status, res.body)
	}
	if logs := h.logs.String(); !strings.Contains(logs, "status=503") {
		t.Errorf("the app's logs after a 503 = %q, want the outage", logs)
	}
	h.wantNoSecrets(token)
}

func TestConfig(t *testing.T) {
	h := newHarness(t)
	res := h.get("/config.json", nil)
	if res.status != http.StatusOK || res.header.Get("Content-Type") != "application/json" {
		t.Fatalf("GET /config.json = %d, Content-Type %q; want 200, application/json", res.status, res.header.Get("Content-Type"))
	}
	var got pageConfig
	if err := json.Unmarshal([]byte(res.body), &got); err != nil {
		t.Fatalf("GET /config.json = %s: %v", res.body, err)
	}
	want := pageConfig{JAMURL: h.jam.URL + "/", AppID: h.jam.AppID, OutboxURL: h.jam.URL + "/_jamtest/"}
	if got != want {
		t.Errorf("GET /config.json = %+v, want %+v", got, want)
	}
	if cc := res.header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("GET /config.json: Cache-Control = %q, want no-store", cc)
	}
}

// TestStatic checks the page, its files, and the headers every answer
// carries, the API's and the 404's too.
func TestStatic(t *testing.T) {
	h := newHarness(t)
	token, _ := h.jam.IssueTokens(ann)
	wantCSP := "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; " +
		"connect-src 'self' " + h.jam.URL + "; form-action 'none'; frame-ancestors 'none'; base-uri 'none'; " +
		"require-trusted-types-for 'script'; trusted-types 'none'"

	tests := []struct {
		name        string
		path        string
		header      map[string][]string
		wantStatus  int
		wantType    string
		wantContent string
	}{
		{"page", "/", nil, http.StatusOK, "text/html; charset=utf-8", `<script type="module" src="/app.js"></script>`},
		// JAM's redirect: the tokens are in the query string.
		{"page with tokens", "/?idToken=" + token + "&refreshToken=r", nil, http.StatusOK, "text/html; charset=utf-8", `<script type="module" src="/app.js"></script>`},
		{"script", "/app.js", nil, http.StatusOK, "text/javascript; charset=utf-8", `history.replaceState(`},
		{"style", "/app.css", nil, http.StatusOK, "text/css; charset=utf-8", "body {"},
		{"icon", "/favicon.svg", nil, http.StatusOK, "image/svg+xml", "<svg"},
		{"config", "/config.json", nil, http.StatusOK, "application/json", `"appID"`},
		{"API", "/api/me", bearer(token), http.StatusOK, "application/json", ann},
		{"API refusal", "/api/me", nil, http.StatusUnauthorized, "application/json", "message"},
		{"not found", "/favicon.ico", nil, http.StatusNotFound, "text/plain; charset=utf-8", "404"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := h.get(tt.path, tt.header)
			if res.status != tt.wantStatus || res.header.Get("Content-Type") != tt.wantType || !strings.Contains(res.body, tt.wantContent) {
				t.Errorf("GET %.40s = %d, %q, body with %q: %v; want %d, %q, true",
					tt.path, res.status, res.header.Get("Content-Type"), tt.wantContent, strings.Contains(res.body, tt.wantContent), tt.wantStatus, tt.wantType)
			}
			for name, want := range map[string]string{
				"Content-Security-Policy": wantCSP,
				"Referrer-Policy":         "no-referrer",
				"X-Content-Type-Options":  "nosniff",
				"Cache-Control":           "no-store",
			} {
				if name == "Cache-Control" && res.status == http.StatusNotFound {
					continue // http.FileServer drops it from its errors, which hold nothing to keep
				}
				if got := res.header.Get(name); got != want {
					t.Errorf("GET %.40s: %s = %q, want %q", tt.path, name, got, want)
				}
			}
		})
	}
	h.wantNoSecrets(token)
}

// TestPageObeysCSP checks that the page needs nothing its policy forbids:
// no inline script, style or event handler, no resource of another origin.
func TestPageObeysCSP(t *testing.T) {
	page, err := files.ReadFile("static/index.html")
	if err != nil {
		t.Fatal(err)
	}
	html := strings.ToLower(string(page))
	for _, forbidden := range []string{"<script>", "<script type=\"module\">", "<style", " style=", " onclick=", " onsubmit=", " onload=", "javascript:", "http://", "https://", "//"} {
		if strings.Contains(html, forbidden) {
			t.Errorf("static/index.html holds %q, which its Content-Security-Policy refuses", forbidden)
		}
	}
}

func TestContentSecurityPolicy(t *testing.T) {
	tests := []struct {
		jamURL      string
		wantConnect string // "" for an error
	}{
		{"https://api.justauthenticate.me/", "connect-src 'self' https://api.justauthenticate.me;"},
		{"https://api.justauthenticate.me", "connect-src 'self' https://api.justauthenticate.me;"},
		{"http://127.0.0.1:8787/", "connect-src 'self' http://127.0.0.1:8787;"},
		{"https://proxy.example/jam/", "connect-src 'self' https://proxy.example;"},
		{"ftp://jam.example/", ""},
		{"/jam/", ""},
		{"", ""},
	}
	for _, tt := range tests {
		t.Run(tt.jamURL, func(t *testing.T) {
			csp, err := contentSecurityPolicy(tt.jamURL)
			if tt.wantConnect == "" {
				if err == nil {
					t.Errorf("contentSecurityPolicy(%q) = %q, want an error", tt.jamURL, csp)
				}
				return
			}
			if err != nil || !strings.Contains(csp, tt.wantConnect) {
				t.Errorf("contentSecurityPolicy(%q) = %q, %v; want one with %q", tt.jamURL, csp, err, tt.wantConnect)
			}
		})
	}
}
