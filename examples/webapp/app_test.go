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
	"github.com/go-jam/go-jam/jam/session"
)

const ann = "ann@example.com"

// TestLogin goes through the whole login, with a page to return to.
func TestLogin(t *testing.T) {
	h := newHarness(t)
	b := h.browser()

	r := b.get("/me?tab=api")
	if r.status != http.StatusSeeOther || r.location() != "/?next="+url.QueryEscape("/me?tab=api") {
		t.Fatalf("GET /me = %d to %q, want 303 to the login page with next", r.status, r.location())
	}
	r = b.get(r.location())
	if r.status != http.StatusOK || !strings.Contains(r.body, `<form method="post" action="/login">`) ||
		!strings.Contains(r.body, `name="next" value="/me?tab=api"`) {
		t.Fatalf("GET %s = %d, want 200 and a form posting email and next to /login; body:\n%s", b.h.url, r.status, r.body)
	}
	r = b.post("/login", url.Values{"email": {ann}, "next": {"/me?tab=api"}}, nil)
	if r.status != http.StatusOK || !strings.Contains(r.body, "Check your email") || !strings.Contains(r.body, h.jam.URL+"/_jamtest/outbox") {
		t.Fatalf("POST /login = %d, want 200, \"Check your email\" and the outbox link; body:\n%s", r.status, r.body)
	}
	link, _ := h.jam.MagicLink(ann)
	r = b.callback(b.follow(link))
	if r.status != http.StatusSeeOther || r.location() != "/me?tab=api" {
		t.Fatalf("GET /callback = %d to %q, want 303 to the page asked for, /me?tab=api", r.status, r.location())
	}
	for _, name := range []string{"jam_id", "jam_refresh"} {
		c := r.cookies[name]
		if c == nil || !c.HttpOnly || c.SameSite != http.SameSiteLaxMode || c.Path != "/" || c.Secure {
			t.Errorf("cookie %s = %v, want HttpOnly, SameSite=Lax, Path=/, not Secure (development)", name, c != nil)
		}
	}
	r = b.get("/me?tab=api")
	if r.status != http.StatusOK || !strings.Contains(r.body, "Hello, "+ann) || len(r.cookies) != 0 {
		t.Fatalf("GET /me = %d, cookies %d; want 200 greeting %s and no cookie; body:\n%s", r.status, len(r.cookies), ann, r.body)
	}
	r = b.fetch("/api/me")
	var got struct{ Email string }
	if err := json.Unmarshal([]byte(r.body), &got); r.status != http.StatusOK || err != nil || got.Email != ann {
		t.Fatalf("GET /api/me = %d %s, want 200 {\"email\":%q}", r.status, r.body, ann)
	}
	if r := b.get("/static/me.js"); r.status != http.StatusOK || !strings.Contains(r.header.Get("Content-Security-Policy"), "script-src 'self'") {
		t.Errorf("GET /static/me.js = %d, CSP %q; want 200 and script-src 'self'", r.status, r.header.Get("Content-Security-Policy"))
	}
}

// TestOpenRedirect logs in with next values that try to leave the site:
// every login lands on a page of the app.
func TestOpenRedirect(t *testing.T) {
	h := newHarness(t)
	for _, next := range []string{
		"//evil.example", "///evil.example", "/\t/evil.example", "/\n/evil.example", "/\\evil.example", "\\\\evil.example",
		"https://evil.example/", "http:evil.example", "javascript:alert(1)", " //evil.example", "/%09/evil.example",
		"//evil.example/%2F..", "/.//evil.example",
	} {
		h.clock.Advance(10 * time.Minute) // the address's throttle refills
		r := h.browser().login(ann, next)
		u, err := url.Parse(r.location())
		if err != nil || u.Scheme != "" || u.Host != "" || !strings.HasPrefix(r.location(), "/") ||
			strings.HasPrefix(r.location(), "//") || strings.ContainsAny(r.location(), "\\\t\n") {
			t.Errorf("login with next %q led to %q, want a path of the app", next, r.location())
		}
	}
}

// TestCallbackElsewhere opens the link in a browser that did not ask for
// it: no session until the user confirms, on a page that shows the
// address.
func TestCallbackElsewhere(t *testing.T) {
	h := newHarness(t)
	link := h.browser().startLogin(ann, "/me")
	other := h.browser()
	r := other.callback(other.follow(link))
	if r.status != http.StatusOK || !strings.Contains(r.body, `id="confirm"`) || !strings.Contains(r.body, ann) {
		t.Fatalf("GET /callback in another browser = %d, want the confirmation page naming %s; body:\n%s", r.status, ann, r.body)
	}
	if other.cookie("jam_id") != "" || other.cookie("jam_refresh") != "" {
		t.Fatal("GET /callback in another browser set a session cookie")
	}
	if r := other.get("/me"); r.status != http.StatusSeeOther {
		t.Errorf("GET /me before confirming = %d, want 303 to the login page", r.status)
	}
	r = other.post("/callback", url.Values{"confirm": {"yes"}}, nil)
	if r.status != http.StatusSeeOther || r.location() != "/me" || other.cookie("jam_id") == "" {
		t.Fatalf("POST /callback confirm=yes = %d to %q, want 303 to /me and a session", r.status, r.location())
	}
}

// TestLoginCSRF sends the victim to the callback with the attacker's
// tokens: no session.
func TestLoginCSRF(t *testing.T) {
	h := newHarness(t)
	attacker := h.browser()
	u := attacker.follow(attacker.startLogin("mallory@example.com", ""))
	victim := h.browser()
	r := victim.callback(u)
	if victim.cookie("jam_id") != "" || !strings.Contains(r.body, "mallory@example.com") {
		t.Errorf("the attacker's callback in the victim's browser = %d, session %v; want the confirmation page and no session", r.status, victim.cookie("jam_id") != "")
	}
	// Replayed later, the URL logs no one in.
	h.clock.Advance(session.DefaultCallbackMaxAge + time.Second)
	late := h.browser()
	if r := late.callback(u); r.status != http.StatusBadRequest || late.cookie("jam_id") != "" {
		t.Errorf("the callback URL replayed = %d, want 400 and no session", r.status)
	}
}

// TestThrottle asks for a burst of links to one address, spelled many
// ways: at most 5 are sent, and every answer reads the same.
func TestThrottle(t *testing.T) {
	h := newHarness(t)
	b := h.browser()
	spellings := []string{ann, "Ann@example.com", " ANN@EXAMPLE.COM ", "ann@Example.Com", "aNN@example.com", ann, "ANN@example.com", ann, "Ann@Example.COM", ann}
	for i, s := range spellings {
		r := b.post("/login", url.Values{"email": {s}}, nil)
		if r.status != http.StatusOK || !strings.Contains(r.body, "Check your email") || !strings.Contains(r.body, ann) {
			t.Errorf("POST /login #%d (%q) = %d, want 200 and the page of a sent link", i+1, s, r.status)
		}
	}
	if got := len(h.jam.Outbox()); got != 5 {
		t.Errorf("%d logins for one address sent %d emails, want 5", len(spellings), got)
	}
}

func TestLogout(t *testing.T) {
	for _, tt := range []struct {
		name, path string
		expired    bool
	}{
		{"this device", "/logout", false},
		{"everywhere", "/logout-all", false},
		{"just after the ID token expired", "/logout", true},
		{"everywhere, just after the ID token expired", "/logout-all", true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			b := h.browser()
			b.login(ann, "")
			refreshToken := b.cookie("jam_refresh")
			if tt.expired {
				// Past exp, within the one-minute leeway the app's
				// checks allow and JAM's do not.
				h.clock.Advance(jamtest.DefaultTokenTTL + 30*time.Second)
			}
			r := b.post(tt.path, nil, nil)
			if r.status != http.StatusSeeOther || r.location() != "/" || b.cookie("jam_id") != "" || b.cookie("jam_refresh") != "" {
				t.Fatalf("POST %s = %d to %q, want 303 to / and the cookies cleared", tt.path, r.status, r.location())
			}
			if h.refreshWorks(refreshToken) {
				t.Errorf("JAM still takes the refresh token after POST %s", tt.path)
			}
		})
	}

	t.Run("JAM down", func(t *testing.T) {
		h := newHarness(t)
		b := h.browser()
		b.login(ann, "")
		refreshToken := b.cookie("jam_refresh")
		h.jam.SetFault(jamtest.OpDeleteRefreshToken, jamtest.GatewayError(http.StatusBadGateway))
		if r := b.post("/logout", nil, nil); r.status != http.StatusServiceUnavailable || !strings.Contains(r.body, "still logged in") || len(r.cookies) != 0 {
			t.Errorf("POST /logout with JAM down = %d, cookies %d; want 503, \"still logged in\" and the cookies kept", r.status, len(r.cookies))
		}
		h.jam.ClearFaults()
		if !h.refreshWorks(refreshToken) {
			t.Error("the failed logout killed the refresh token")
		}
	})
}

// TestRenewal lets the ID token expire: the next request renews it, and
// a dead refresh token ends the login.
func TestRenewal(t *testing.T) {
	h := newHarness(t)
	b := h.browser()
	b.login(ann, "")
	old := b.idToken()
	h.clock.Advance(40 * time.Minute)
	if r := b.fetch("/api/me"); r.status != http.StatusOK || r.cookies["jam_id"] == nil || b.idToken() == old {
		t.Fatalf("GET /api/me after expiry = %d, want 200 and a renewed ID token", r.status)
	}
	if err := h.client.DeleteRefreshToken(context.Background(), b.idToken(), b.cookie("jam_refresh")); err != nil {
		t.Fatal(err)
	}
	h.clock.Advance(40 * time.Minute)
	r := b.fetch("/api/me")
	if r.status != http.StatusUnauthorized || r.header.Get("WWW-Authenticate") == "" || b.cookie("jam_refresh") != "" {
		t.Errorf("GET /api/me with a dead refresh token = %d, WWW-Authenticate %q; want 401 with a challenge and the cookies cleared", r.status, r.header.Get("WWW-Authenticate"))
	}
}

func TestSecureCookies(t *testing.T) {
	h := newHarness(t, secureCookies)
	r := h.browser().post("/login", url.Values{"email": {ann}}, nil)
	c := r.cookies["__Host-jam_pending"]
	if c == nil || !c.Secure || !c.HttpOnly || c.Path != "/" || c.Domain != "" || c.SameSite != http.SameSiteLaxMode {
		t.Errorf("POST /login set __Host-jam_pending %v, want Secure, HttpOnly, Path=/, no Domain, SameSite=Lax", c != nil)
	}
}

// TestRefreshDisabled runs an app whose JAM allows no refresh: the login
// lasts as long as its ID token, and logging out asks JAM nothing.
func TestRefreshDisabled(t *testing.T) {
	h := newHarness(t, jamOption(jamtest.WithRefreshDisabled()))
	b := h.browser()
	b.login(ann, "")
	if b.cookie("jam_refresh") != "" {
		t.Error("a login without a refresh token left a refresh cookie")
	}
	h.clock.Advance(26 * time.Minute)
	if r := b.fetch("/api/me"); r.status != http.StatusOK || len(r.cookies) != 0 {
		t.Errorf("GET /api/me 4 minutes before expiry = %d, cookies %d; want 200 and none", r.status, len(r.cookies))
	}
	h.clock.Advance(10 * time.Minute)
	if r := b.fetch("/api/me"); r.status != http.StatusUnauthorized || b.cookie("jam_id") != "" {
		t.Errorf("GET /api/me after expiry = %d, ID cookie kept %v; want 401 and the cookie cleared", r.status, b.cookie("jam_id") != "")
	}
	if got := h.jam.Requests(jamtest.OpRefreshToken); got != 0 {
		t.Errorf("refresh requests = %d, want 0", got)
	}
}
