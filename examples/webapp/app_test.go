package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/go-jam/go-jam/jam/jamtest"
)

const ann = "ann@example.com"

func TestLogin(t *testing.T) {
	h := newHarness(t)
	b := h.browser()

	r := b.get("/")
	if r.status != http.StatusOK || !strings.Contains(r.body, `<form method="post" action="/login">`) || !strings.Contains(r.body, `name="email"`) {
		t.Fatalf("GET / = %d, want 200 and a form posting email to /login; body:\n%s", r.status, r.body)
	}
	r = b.post("/login", url.Values{"email": {ann}}, nil)
	if r.status != http.StatusOK || !strings.Contains(r.body, "Check your email") || !strings.Contains(r.body, h.jam.URL+"/_jamtest/") {
		t.Fatalf("POST /login = %d, want 200, \"Check your email\" and the outbox link; body:\n%s", r.status, r.body)
	}

	r = b.login(ann)
	for _, name := range []string{"jam_id", "jam_refresh"} {
		c := r.cookies[name]
		switch {
		case c == nil:
			t.Fatalf("GET /callback set no cookie %s", name)
		case !c.HttpOnly || c.SameSite != http.SameSiteLaxMode || c.Path != "/" || c.Secure:
			t.Errorf("cookie %s: HttpOnly %v, SameSite %v, Path %q, Secure %v; want true, Lax, /, false (plain http on loopback)",
				name, c.HttpOnly, c.SameSite, c.Path, c.Secure)
		}
	}
	if got := r.cookies["jam_refresh"].MaxAge; got != refreshCookieMaxAge {
		t.Errorf("cookie jam_refresh: Max-Age %d, want %d", got, refreshCookieMaxAge)
	}

	r = b.get("/me")
	if r.status != http.StatusOK || !strings.Contains(r.body, "Hello, "+ann) {
		t.Fatalf("GET /me = %d, want 200 greeting %s; body:\n%s", r.status, ann, r.body)
	}
	if len(r.cookies) != 0 {
		t.Errorf("GET /me with a fresh token set cookies %v, want none", r.cookies)
	}

	r = b.get("/api/me")
	var got struct{ Email string }
	if err := json.Unmarshal([]byte(r.body), &got); r.status != http.StatusOK || err != nil || got.Email != ann {
		t.Fatalf("GET /api/me = %d %s, want 200 {\"email\":%q}", r.status, r.body, ann)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("GET /api/me: Content-Type %q, want application/json", ct)
	}

	r = b.get("/static/me.js")
	if r.status != http.StatusOK || !strings.Contains(r.body, "/api/me") {
		t.Errorf("GET /static/me.js = %d, want 200 and the script calling /api/me", r.status)
	}
	if csp := r.header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") {
		t.Errorf("Content-Security-Policy = %q, want script-src 'self'", csp)
	}
}

func TestLoginRefused(t *testing.T) {
	tests := []struct {
		name       string
		body       string
		fault      *jamtest.Fault
		wantStatus int
		wantText   string
		wantAsked  int // requests to JAM's authenticate
	}{
		{name: "no address", body: "email=+", wantStatus: http.StatusBadRequest, wantText: "Enter your email address"},
		{name: "invalid address", body: "email=ann%40", wantStatus: http.StatusBadRequest, wantText: "Invalid email address", wantAsked: 1},
		{name: "form too large", body: "email=" + strings.Repeat("a", maxFormSize), wantStatus: http.StatusBadRequest, wantText: "could not be read"},
		{name: "JAM down", body: "email=" + url.QueryEscape(ann), fault: new(jamtest.GatewayError(http.StatusBadGateway)),
			wantStatus: http.StatusServiceUnavailable, wantText: "could not be sent", wantAsked: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			if tt.fault != nil {
				h.jam.SetFault(jamtest.OpAuthenticate, *tt.fault)
			}
			req, _ := http.NewRequest(http.MethodPost, h.url+"/login", strings.NewReader(tt.body))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			r := h.browser().do(req)
			if r.status != tt.wantStatus || !strings.Contains(r.body, tt.wantText) {
				t.Errorf("POST /login %q = %d, want %d with %q; body:\n%s", tt.name, r.status, tt.wantStatus, tt.wantText, r.body)
			}
			if got := h.jam.Requests(jamtest.OpAuthenticate); got != tt.wantAsked {
				t.Errorf("POST /login %q: JAM asked %d times, want %d", tt.name, got, tt.wantAsked)
			}
			if tt.wantStatus == http.StatusBadRequest && !strings.Contains(r.body, `action="/login"`) {
				t.Errorf("POST /login %q: no form to try again", tt.name)
			}
		})
	}
}

func TestCallbackRefused(t *testing.T) {
	other := jamtest.NewServer(jamtest.WithAppID("another-app"))
	defer other.Close()
	foreign, _ := other.IssueTokens(ann)

	tests := []struct {
		name       string
		query      func(h *harness) string
		before     func(h *harness)
		wantStatus int
	}{
		{name: "no tokens", query: func(*harness) string { return "" }, wantStatus: http.StatusBadRequest},
		{name: "refresh token only", query: func(*harness) string { return "refreshToken=abc" }, wantStatus: http.StatusBadRequest},
		{name: "not a JWT", query: func(*harness) string { return "idToken=abc&refreshToken=abc" }, wantStatus: http.StatusBadRequest},
		{name: "two ID tokens", query: func(h *harness) string {
			id, _ := h.jam.IssueTokens(ann)
			return "idToken=" + id + "&idToken=" + id
		}, wantStatus: http.StatusBadRequest},
		{name: "another JAM's token", query: func(*harness) string { return "idToken=" + foreign }, wantStatus: http.StatusBadRequest},
		{name: "expired", query: func(h *harness) string {
			id, rt := h.jam.IssueTokens(ann)
			h.clock.Add(jamtest.DefaultTokenTTL + 2*time.Minute) // past the leeway
			return "idToken=" + id + "&refreshToken=" + rt
		}, wantStatus: http.StatusBadRequest},
		{name: "key set unavailable", query: func(h *harness) string {
			id, rt := h.jam.IssueTokens(ann)
			h.jam.FailKeySet()
			return "idToken=" + id + "&refreshToken=" + rt
		}, wantStatus: http.StatusServiceUnavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			q := tt.query(h)
			for _, v := range strings.Split(q, "&") {
				_, token, _ := strings.Cut(v, "=")
				h.secret(token)
			}
			b := h.browser()
			r := b.get("/callback?" + q)
			if r.status != tt.wantStatus || len(r.cookies) != 0 {
				t.Errorf("GET /callback (%s) = %d with cookies %v, want %d and none", tt.name, r.status, r.cookies, tt.wantStatus)
			}
			if r := b.get("/me"); r.status != http.StatusSeeOther {
				t.Errorf("GET /me after a refused callback = %d, want 303", r.status)
			}
		})
	}
}

func TestNotLoggedIn(t *testing.T) {
	h := newHarness(t)
	b := h.browser()
	if r := b.get("/me"); r.status != http.StatusSeeOther || r.location() != "/" {
		t.Errorf("GET /me = %d to %q, want 303 to /", r.status, r.location())
	}
	r := b.get("/api/me")
	if r.status != http.StatusUnauthorized || r.header.Get("WWW-Authenticate") != `Bearer realm="jam"` {
		t.Errorf("GET /api/me = %d, WWW-Authenticate %q; want the middleware's 401", r.status, r.header.Get("WWW-Authenticate"))
	}
	for _, path := range []string{"/logout", "/logout-all"} {
		if r := b.post(path, nil, nil); r.status != http.StatusSeeOther || r.location() != "/" {
			t.Errorf("POST %s = %d to %q, want 303 to /", path, r.status, r.location())
		}
	}
	if got := h.jam.Requests(jamtest.OpRefreshToken) + h.jam.Requests(jamtest.OpDeleteRefreshToken) + h.jam.Requests(jamtest.OpDeleteAllRefreshTokens); got != 0 {
		t.Errorf("requests to JAM without a login = %d, want 0", got)
	}
}

// TestRefresh logs in, changes the time or JAM, and requests a protected
// route: the login must be renewed, kept or ended as the README's error
// table says.
func TestRefresh(t *testing.T) {
	const (
		loggedIn  = "logged in"
		renewed   = "logged in, new ID token"
		loggedOut = "logged out"
		outage    = "503, still logged in"
	)
	tests := []struct {
		name   string
		path   string
		before func(h *harness, b *browser)
		want   string
	}{
		{name: "fresh token", path: "/me", want: loggedIn},
		{name: "fresh token, API", path: "/api/me", want: loggedIn},
		{name: "6 minutes left", path: "/me", before: advance(24 * time.Minute), want: loggedIn},
		{name: "4 minutes left", path: "/me", before: advance(26 * time.Minute), want: renewed},
		{name: "4 minutes left, API", path: "/api/me", before: advance(26 * time.Minute), want: renewed},
		{name: "expired", path: "/me", before: advance(40 * time.Minute), want: renewed},
		{name: "expired, API", path: "/api/me", before: advance(40 * time.Minute), want: renewed},
		{name: "ID cookie gone", path: "/me", before: func(_ *harness, b *browser) { b.setCookie("jam_id", "") }, want: renewed},
		{name: "expired, refresh token deleted", path: "/me", before: both(deleteRefreshToken, advance(40*time.Minute)), want: loggedOut},
		{name: "expired, refresh token deleted, API", path: "/api/me", before: both(deleteRefreshToken, advance(40*time.Minute)), want: loggedOut},
		{name: "4 minutes left, refresh token deleted", path: "/me", before: both(deleteRefreshToken, advance(26*time.Minute)), want: loggedOut},
		{name: "expired, no refresh token", path: "/me", before: both(func(_ *harness, b *browser) { b.setCookie("jam_refresh", "") }, advance(40*time.Minute)), want: loggedOut},
		{name: "ID token of another JAM", path: "/me", before: foreignIDToken, want: loggedOut},
		{name: "ID token of another JAM, API", path: "/api/me", before: foreignIDToken, want: loggedOut},
		{name: "expired, JAM down", path: "/me", before: both(refreshDown, advance(40*time.Minute)), want: outage},
		{name: "expired, JAM down, API", path: "/api/me", before: both(refreshDown, advance(40*time.Minute)), want: outage},
		// The ID token still serves while JAM is down.
		{name: "4 minutes left, JAM down", path: "/me", before: both(refreshDown, advance(26*time.Minute)), want: loggedIn},
		{name: "key set unavailable", path: "/me", before: unknownKeyAndKeySetDown, want: outage},
		{name: "key set unavailable, API", path: "/api/me", before: unknownKeyAndKeySetDown, want: outage},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			b := h.browser()
			b.login(ann)
			refreshToken := b.refreshTokenOf()
			if tt.before != nil {
				tt.before(h, b)
			}
			idToken := b.cookie("jam_id")
			refreshes := h.jam.Requests(jamtest.OpRefreshToken)

			r := b.get(tt.path)
			newID, refreshed := r.cookies["jam_id"], h.jam.Requests(jamtest.OpRefreshToken)-refreshes
			switch tt.want {
			case loggedIn, renewed:
				if r.status != http.StatusOK || !strings.Contains(r.body, ann) {
					t.Fatalf("GET %s = %d, want 200 for %s; body:\n%s", tt.path, r.status, ann, r.body)
				}
				if tt.want == loggedIn && newID != nil {
					t.Errorf("GET %s set a new ID token, want the old one kept", tt.path)
				}
				if tt.want == renewed && (newID == nil || newID.Value == "" || newID.Value == idToken || refreshed != 1) {
					t.Fatalf("GET %s: new ID cookie %v after %d refreshes, want a new token after 1", tt.path, newID, refreshed)
				}
			case loggedOut:
				wantStatus, wantLocation := http.StatusSeeOther, "/"
				if tt.path == "/api/me" {
					wantStatus, wantLocation = http.StatusUnauthorized, ""
				}
				if r.status != wantStatus || r.location() != wantLocation {
					t.Errorf("GET %s = %d to %q, want %d to %q", tt.path, r.status, r.location(), wantStatus, wantLocation)
				}
				if b.cookie("jam_id") != "" || b.cookie("jam_refresh") != "" {
					t.Errorf("GET %s left the cookies, want them cleared", tt.path)
				}
			case outage:
				if r.status != http.StatusServiceUnavailable || len(r.cookies) != 0 {
					t.Errorf("GET %s = %d, cookies %v; want 503 and the cookies left alone", tt.path, r.status, r.cookies)
				}
				if b.cookie("jam_refresh") != refreshToken {
					t.Errorf("GET %s: the browser lost its refresh token in an outage", tt.path)
				}
			}

			// Once JAM is back, and the client may fetch the key set
			// again, the login is as the answer left it.
			h.jam.ClearFaults()
			h.clock.Add(11 * time.Second)
			r = b.get("/me")
			if wantIn := tt.want != loggedOut; (r.status == http.StatusOK) != wantIn {
				t.Errorf("GET /me afterwards = %d, want logged in %v", r.status, wantIn)
			}
			if tt.want == renewed && len(r.cookies) != 0 {
				t.Errorf("GET /me after a renewal renewed again: %v", r.cookies)
			}
		})
	}
}

func advance(d time.Duration) func(*harness, *browser) {
	return func(h *harness, _ *browser) { h.clock.Add(d) }
}

func both(f, g func(*harness, *browser)) func(*harness, *browser) {
	return func(h *harness, b *browser) { f(h, b); g(h, b) }
}

// deleteRefreshToken logs the browser's refresh token out behind the
// app's back, as a logout on another device would.
func deleteRefreshToken(h *harness, b *browser) {
	h.t.Helper()
	if err := h.client.DeleteRefreshToken(context.Background(), b.cookie("jam_id"), b.refreshTokenOf()); err != nil {
		h.t.Fatal(err)
	}
}

func refreshDown(h *harness, _ *browser) {
	h.jam.SetFault(jamtest.OpRefreshToken, jamtest.GatewayError(http.StatusBadGateway))
}

// foreignIDToken swaps the ID cookie for a valid token of another JAM:
// forged, as far as the app can tell, and no refresh makes it the user's.
func foreignIDToken(h *harness, b *browser) {
	other := jamtest.NewServer(jamtest.WithAppID(h.jam.AppID), jamtest.WithClock(h.clock.Now))
	defer other.Close()
	id, _ := other.IssueTokens("mallory@example.com")
	h.secret(id)
	b.setCookie("jam_id", id)
}

// unknownKeyAndKeySetDown gives the browser a token of a key the app has
// not fetched, while the key set cannot be fetched: the app cannot tell a
// valid token from a forged one.
func unknownKeyAndKeySetDown(h *harness, b *browser) {
	h.jam.PublishKey()
	id, _ := h.jam.IssueTokens(ann)
	h.secret(id)
	b.setCookie("jam_id", id)
	h.jam.FailKeySet()
}

func TestLogout(t *testing.T) {
	t.Run("this device", func(t *testing.T) {
		h := newHarness(t)
		b, other := h.browser(), h.browser()
		b.login(ann)
		other.login(ann)
		refreshToken := b.refreshTokenOf()

		r := b.post("/logout", nil, nil)
		if r.status != http.StatusSeeOther || r.location() != "/" {
			t.Fatalf("POST /logout = %d to %q, want 303 to /", r.status, r.location())
		}
		if b.cookie("jam_id") != "" || b.cookie("jam_refresh") != "" {
			t.Error("POST /logout left the cookies")
		}
		if r := b.get("/me"); r.status != http.StatusSeeOther {
			t.Errorf("GET /me after logout = %d, want 303", r.status)
		}
		if h.refreshWorks(refreshToken) {
			t.Error("JAM still takes the refresh token after POST /logout")
		}
		if !h.refreshWorks(other.refreshTokenOf()) {
			t.Error("POST /logout logged out the other device too")
		}
	})

	t.Run("everywhere", func(t *testing.T) {
		h := newHarness(t)
		b, other := h.browser(), h.browser()
		b.login(ann)
		other.login(ann)
		refreshToken := b.refreshTokenOf()

		if r := b.post("/logout-all", nil, nil); r.status != http.StatusSeeOther || r.location() != "/" {
			t.Fatalf("POST /logout-all = %d to %q, want 303 to /", r.status, r.location())
		}
		if b.cookie("jam_id") != "" || b.cookie("jam_refresh") != "" {
			t.Error("POST /logout-all left the cookies")
		}
		if h.refreshWorks(refreshToken) {
			t.Error("JAM still takes this device's refresh token after POST /logout-all")
		}
		// The other device's ID token serves until it is renewed.
		h.clock.Add(40 * time.Minute)
		if r := other.get("/me"); r.status != http.StatusSeeOther {
			t.Errorf("GET /me on the other device after logout-all and expiry = %d, want 303", r.status)
		}
	})

	t.Run("expired ID token", func(t *testing.T) {
		h := newHarness(t)
		b := h.browser()
		b.login(ann)
		refreshToken := b.refreshTokenOf()
		h.clock.Add(40 * time.Minute)
		// JAM takes only a valid ID token for a logout: the app renews it.
		if r := b.post("/logout", nil, nil); r.status != http.StatusSeeOther || r.location() != "/" {
			t.Fatalf("POST /logout = %d to %q, want 303 to /", r.status, r.location())
		}
		if h.refreshWorks(refreshToken) {
			t.Error("JAM still takes the refresh token after POST /logout")
		}
	})

	refusal := jamtest.Fault{Status: http.StatusUnauthorized, ContentType: "application/json", Body: []byte(`{"message":"ID token is invalid"}`)}
	for _, tt := range []struct {
		name    string
		path    string
		op      jamtest.Operation
		fault   jamtest.Fault
		wantOut bool
	}{
		{"JAM down", "/logout", jamtest.OpDeleteRefreshToken, jamtest.GatewayError(http.StatusBadGateway), false},
		{"JAM down, everywhere", "/logout-all", jamtest.OpDeleteAllRefreshTokens, jamtest.HTMLError(http.StatusServiceUnavailable), false},
		{"JAM refuses the ID token", "/logout", jamtest.OpDeleteRefreshToken, refusal, true},
		{"JAM refuses the ID token, everywhere", "/logout-all", jamtest.OpDeleteAllRefreshTokens, refusal, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			b := h.browser()
			b.login(ann)
			refreshToken := b.refreshTokenOf()
			h.jam.SetFault(tt.op, tt.fault)

			r := b.post(tt.path, nil, nil)
			if tt.wantOut {
				if r.status != http.StatusSeeOther || b.cookie("jam_refresh") != "" {
					t.Errorf("POST %s = %d, refresh cookie kept %v; want 303 and logged out locally", tt.path, r.status, b.cookie("jam_refresh") != "")
				}
				return
			}
			if r.status != http.StatusServiceUnavailable || len(r.cookies) != 0 {
				t.Errorf("POST %s = %d, cookies %v; want 503 and the cookies left alone", tt.path, r.status, r.cookies)
			}
			h.jam.ClearFaults()
			if r := b.get("/me"); r.status != http.StatusOK {
				t.Errorf("GET /me after a failed logout = %d, want 200 (still logged in)", r.status)
			}
			if !h.refreshWorks(refreshToken) {
				t.Error("JAM no longer takes the refresh token, yet the logout failed")
			}
		})
	}
}

// TestCrossSite posts the forms from another site, as a CSRF attack does:
// nothing must happen.
func TestCrossSite(t *testing.T) {
	tests := []struct {
		name   string
		path   string
		header http.Header
	}{
		{"login, Sec-Fetch-Site", "/login", http.Header{"Sec-Fetch-Site": {"cross-site"}}},
		{"logout, Sec-Fetch-Site", "/logout", http.Header{"Sec-Fetch-Site": {"cross-site"}}},
		{"logout everywhere, Sec-Fetch-Site", "/logout-all", http.Header{"Sec-Fetch-Site": {"same-site"}}},
		// An older browser sends only Origin.
		{"logout, Origin", "/logout", http.Header{"Sec-Fetch-Site": nil, "Origin": {"https://evil.example"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			b := h.browser()
			b.login(ann)
			refreshToken := b.refreshTokenOf()
			before := h.jam.Requests(jamtest.OpAuthenticate)

			r := b.post(tt.path, url.Values{"email": {"mallory@example.com"}}, tt.header)
			if r.status != http.StatusForbidden || len(r.cookies) != 0 {
				t.Errorf("cross-site POST %s = %d, cookies %v; want 403 and none", tt.path, r.status, r.cookies)
			}
			if got := h.jam.Requests(jamtest.OpAuthenticate) - before; got != 0 {
				t.Errorf("cross-site POST %s asked JAM for %d magic links, want 0", tt.path, got)
			}
			if !h.refreshWorks(refreshToken) {
				t.Errorf("cross-site POST %s logged the user out at JAM", tt.path)
			}
			if r := b.get("/me"); r.status != http.StatusOK {
				t.Errorf("GET /me after cross-site POST %s = %d, want 200", tt.path, r.status)
			}
		})
	}
}

func TestSecureCookies(t *testing.T) {
	h := newHarness(t, secureCookies)
	r := h.browser().login(ann)
	for _, name := range []string{"__Host-jam_id", "__Host-jam_refresh"} {
		c := r.cookies[name]
		if c == nil || !c.Secure || !c.HttpOnly || c.Path != "/" || c.Domain != "" || c.SameSite != http.SameSiteLaxMode {
			t.Errorf("cookie %s = %v, want Secure, HttpOnly, Path=/, no Domain, SameSite=Lax", name, c)
		}
	}
	if len(r.cookies) != 2 {
		t.Errorf("GET /callback set %d cookies, want 2: %v", len(r.cookies), r.cookies)
	}
}

// TestRefreshDisabled runs an app whose JAM allows no refresh: the login
// lasts as long as its ID token, and an earlier login's refresh cookie is
// dropped.
func TestRefreshDisabled(t *testing.T) {
	h := newHarness(t, jamOption(jamtest.WithRefreshDisabled()))
	b := h.browser()
	b.setCookie("jam_refresh", "an-earlier-login")
	r := b.login(ann)
	if c := r.cookies["jam_refresh"]; c == nil || c.MaxAge >= 0 {
		t.Errorf("GET /callback without a refresh token: jam_refresh cookie %v, want it deleted", c)
	}
	if r := b.get("/me"); r.status != http.StatusOK {
		t.Fatalf("GET /me = %d, want 200", r.status)
	}
	// The ID token serves until it expires, with nothing to renew it.
	h.clock.Add(26 * time.Minute)
	if r := b.get("/me"); r.status != http.StatusOK || len(r.cookies) != 0 {
		t.Errorf("GET /me 4 minutes before expiry = %d, cookies %v; want 200 and none", r.status, r.cookies)
	}
	if r := b.post("/logout", nil, nil); r.status != http.StatusSeeOther || h.jam.Requests(jamtest.OpDeleteRefreshToken) != 0 {
		t.Errorf("POST /logout = %d after %d requests to JAM, want 303 after none", r.status, h.jam.Requests(jamtest.OpDeleteRefreshToken))
	}

	b.login(ann)
	h.clock.Add(40 * time.Minute)
	if r := b.get("/me"); r.status != http.StatusSeeOther || b.cookie("jam_id") != "" {
		t.Errorf("GET /me after expiry = %d, ID cookie kept %v; want 303 and logged out", r.status, b.cookie("jam_id") != "")
	}
	if got := h.jam.Requests(jamtest.OpRefreshToken); got != 0 {
		t.Errorf("refresh requests = %d, want 0", got)
	}
}
