package session

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// The cookies, by name without the __Host- prefix. Each is HttpOnly,
// SameSite=Lax (a Strict one would not come with the navigation from a
// mail app) and Path=/, as __Host- requires.
const (
	idCookie       = "jam_id"       // ID token, "~", tag of its refresh token; browser session
	refreshCookie  = "jam_refresh"  // refresh token; WithRefreshCookieMaxAge
	pendingCookie  = "jam_pending"  // signed pending login; WithPendingTTL
	callbackCookie = "jam_callback" // signed tokens of a callback; confirmTTL
)

func (m *Manager) cookieName(name string) string {
	if m.insecure {
		return name
	}
	return "__Host-" + name
}

// cookie returns the value of the request's cookie, or "".
func (m *Manager) cookie(r *http.Request, name string) string {
	c, err := r.Cookie(m.cookieName(name))
	if err != nil {
		return ""
	}
	return c.Value
}

// setCookie sets a cookie, replacing any Set-Cookie for it the response
// already had, so that a response never sets one cookie twice. A maxAge
// of zero makes a browser-session cookie; negative deletes it.
func (m *Manager) setCookie(w http.ResponseWriter, name, value string, maxAge time.Duration) {
	c := &http.Cookie{
		Name:     m.cookieName(name),
		Value:    value,
		Path:     "/",
		HttpOnly: true,
		Secure:   !m.insecure,
		SameSite: http.SameSiteLaxMode,
	}
	switch {
	case maxAge < 0:
		c.MaxAge = -1
	case maxAge > 0:
		c.MaxAge = int(maxAge / time.Second)
	}
	h := w.Header()
	prefix := c.Name + "="
	kept := h.Values("Set-Cookie")[:0:0]
	for _, v := range h.Values("Set-Cookie") {
		if !strings.HasPrefix(v, prefix) {
			kept = append(kept, v)
		}
	}
	h["Set-Cookie"] = append(kept, c.String())
}

func (m *Manager) deleteCookie(w http.ResponseWriter, r *http.Request, name string) {
	if _, err := r.Cookie(m.cookieName(name)); err == nil {
		m.setCookie(w, name, "", -1)
	}
}

// setSession sets the cookies of a session.
func (m *Manager) setSession(w http.ResponseWriter, idToken, refreshToken string) {
	m.setCookie(w, idCookie, idToken+"~"+tag(refreshToken), 0)
	if refreshToken != "" {
		m.setCookie(w, refreshCookie, refreshToken, m.refreshCookieMaxAge)
	} else {
		m.setCookie(w, refreshCookie, "", -1) // an earlier login's
	}
}

// clearSession deletes the cookies of the session the request has.
func (m *Manager) clearSession(w http.ResponseWriter, r *http.Request) {
	m.deleteCookie(w, r, idCookie)
	m.deleteCookie(w, r, refreshCookie)
}

// tag names the refresh token an ID token cookie belongs to: a hash, which
// a 256-bit random token leaves nothing to guess from; "" for none.
func tag(refreshToken string) string {
	if refreshToken == "" {
		return ""
	}
	sum := sha256.Sum256([]byte(refreshToken))
	return base64.RawURLEncoding.EncodeToString(sum[:12])
}

// sessionCookies returns the request's tokens. An ID token whose cookie
// names another refresh token than the request's belongs to no session:
// a renewal answered after a logout, or after a login as someone else.
func (m *Manager) sessionCookies(r *http.Request) (idToken, refreshToken string, stale bool) {
	refreshToken = m.cookie(r, refreshCookie)
	idToken, t, ok := strings.Cut(m.cookie(r, idCookie), "~")
	if idToken != "" && (!ok || t != tag(refreshToken)) {
		return "", refreshToken, true
	}
	return idToken, refreshToken, false
}

// seal returns v as JSON, signed with the key for the purpose; open
// checks and reads it.
func (m *Manager) seal(purpose string, v any) string {
	payload, _ := json.Marshal(v) // only this package's structs
	return base64.RawURLEncoding.EncodeToString(payload) + "." + base64.RawURLEncoding.EncodeToString(m.mac(purpose, payload))
}

func (m *Manager) open(purpose, sealed string, v any) bool {
	p, s, ok := strings.Cut(sealed, ".")
	if !ok || len(sealed) > 4096 {
		return false
	}
	payload, err1 := base64.RawURLEncoding.DecodeString(p)
	sig, err2 := base64.RawURLEncoding.DecodeString(s)
	if err1 != nil || err2 != nil || !hmac.Equal(sig, m.mac(purpose, payload)) {
		return false
	}
	return json.Unmarshal(payload, v) == nil
}

func (m *Manager) mac(purpose string, data []byte) []byte {
	h := hmac.New(sha256.New, m.key)
	h.Write([]byte(purpose))
	h.Write([]byte{0})
	h.Write(data)
	return h.Sum(nil)
}

// addressMAC stands for a normalised address where it must not be read:
// in the pending cookie and the limiter's keys.
func (m *Manager) addressMAC(email string) string {
	return base64.RawURLEncoding.EncodeToString(m.mac("address", []byte(normalize(email)))[:16])
}

// normalize is the form of an address that limits and comparisons use:
// Ann@Example.com is ann@example.com.
func normalize(email string) string { return strings.ToLower(strings.TrimSpace(email)) }

// pending is the pending-login cookie: who asked, when, and where to go.
type pending struct {
	Address string `json:"a"` // addressMAC
	Started int64  `json:"t"` // Unix seconds
	Next    string `json:"n,omitempty"`
}

// callback is the callback cookie: the tokens of JAM's redirect, and when
// they came.
type callback struct {
	IDToken      string `json:"i"`
	RefreshToken string `json:"r,omitempty"`
	Received     int64  `json:"t"` // Unix seconds
}

// ReturnPath returns the same-origin path raw names, re-serialised, and
// whether raw is one: a path with no scheme and no host, from "/", that a
// redirect can use. It refuses control characters (browsers strip tabs and
// newlines, so "/\t/evil.example" would become "//evil.example"),
// backslashes (which browsers read as slashes), and anything that parses
// with a scheme or a host. Use it on any return-to value before
// redirecting to it.
func ReturnPath(raw string) (string, bool) {
	if raw == "" || raw[0] != '/' || len(raw) > 2048 || strings.HasPrefix(raw, "//") {
		return "", false
	}
	for i := range len(raw) {
		if c := raw[i]; c < 0x20 || c == 0x7f || c == '\\' {
			return "", false
		}
	}
	u, err := url.Parse(raw)
	if err != nil || !isPath(u) || !strings.HasPrefix(u.Path, "/") {
		return "", false
	}
	s := u.String()
	if !strings.HasPrefix(s, "/") || strings.HasPrefix(s, "//") {
		return "", false
	}
	return s, true
}
