package session_test

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/go-jam/go-jam/jam/jamtest"
	"github.com/go-jam/go-jam/jam/session"
)

// jtiOf reads the jti of the ID token in an ID cookie, unverified.
func jtiOf(t *testing.T, cookie string) string {
	t.Helper()
	id, _, _ := strings.Cut(cookie, "~")
	parts := strings.Split(id, ".")
	var claims struct{ Jti string }
	if len(parts) != 3 {
		t.Fatal("the ID cookie holds no JWT")
	}
	payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
	if err := json.Unmarshal(payload, &claims); err != nil || claims.Jti == "" {
		t.Fatalf("the ID cookie's token has no jti (%v)", err)
	}
	return claims.Jti
}

func TestCallback(t *testing.T) {
	t.Run("another browser confirms", func(t *testing.T) {
		e := newEnv(t)
		u := e.browser().follow(e.browser().startLogin(ann, "/me?x"))
		other := e.browser()
		r := other.callback(u)
		if r.status != http.StatusOK || !strings.Contains(r.body, ann) || r.cookies["jam_id"] != nil {
			t.Fatalf("GET /callback in another browser = %d, cookies %v; want 200, the confirmation page showing the address, no session", r.status, r.names())
		}
		for h, want := range map[string]string{"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"} {
			if got := r.header.Get(h); got != want {
				t.Errorf("confirmation page: %s = %q, want %q", h, got, want)
			}
		}
		if csp := strings.Join(r.header.Values("Content-Security-Policy"), ","); !strings.Contains(csp, "frame-ancestors 'none'") {
			t.Errorf("confirmation page: Content-Security-Policy %q, want frame-ancestors 'none'", csp)
		}
		// A post from another site confirms nothing.
		req, _ := http.NewRequest(http.MethodPost, e.url+"/callback", strings.NewReader("confirm=yes"))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Sec-Fetch-Site", "cross-site")
		if r := other.do(req); r.status != http.StatusForbidden || r.cookies["jam_id"] != nil {
			t.Errorf("cross-site POST /callback = %d, cookies %v; want 403 and no session", r.status, r.names())
		}
		r = other.post("/callback", url.Values{"confirm": {"yes"}})
		if r.status != http.StatusSeeOther || r.location() != "/me" || r.cookies["jam_id"] == nil {
			t.Fatalf("POST /callback confirm=yes = %d to %q, cookies %v; want 303 to the landing page and a session", r.status, r.location(), r.names())
		}
		if r := other.get("/me", false); r.status != http.StatusOK {
			t.Errorf("GET /me after confirming = %d, want 200", r.status)
		}
	})

	t.Run("cancel", func(t *testing.T) {
		e := newEnv(t)
		u := e.browser().follow(e.browser().startLogin(ann, ""))
		other := e.browser()
		other.callback(u)
		r := other.post("/callback", url.Values{"confirm": {"no"}})
		if r.status != http.StatusSeeOther || r.cookies["jam_id"] != nil || other.cookie("jam_callback") != "" {
			t.Errorf("POST /callback confirm=no = %d, cookies %v; want 303, no session, the tokens forgotten", r.status, r.names())
		}
	})

	t.Run("login CSRF: the attacker's link in the victim's browser mid-login", func(t *testing.T) {
		e := newEnv(t)
		victim := e.browser()
		victim.startLogin(ann, "")
		attacker := e.browser()
		u := attacker.follow(attacker.startLogin("mallory@example.com", ""))
		r := victim.callback(u)
		if r.status != http.StatusOK || !strings.Contains(r.body, "mallory@example.com") || r.cookies["jam_id"] != nil {
			t.Errorf("GET /callback with the attacker's tokens = %d, cookies %v; want the confirmation page naming the attacker's address", r.status, r.names())
		}
	})

	t.Run("same browser only", func(t *testing.T) {
		e := newEnv(t, session.WithSameBrowserOnly())
		u := e.browser().follow(e.browser().startLogin(ann, ""))
		r := e.browser().callback(u)
		if r.status != http.StatusBadRequest || r.cookies["jam_id"] != nil {
			t.Errorf("GET /callback in another browser = %d, cookies %v; want 400 and no session", r.status, r.names())
		}
	})

	t.Run("replay: too old", func(t *testing.T) {
		e := newEnv(t)
		b := e.browser()
		u := b.follow(b.startLogin(ann, ""))
		e.clock.Advance(session.DefaultCallbackMaxAge + time.Second)
		r := b.callback(u)
		if r.status != http.StatusBadRequest || r.cookies["jam_id"] != nil || !strings.Contains(r.body, "used already") {
			t.Errorf("GET /callback %v after the token was issued = %d, cookies %v; want 400, a replay page, no session", session.DefaultCallbackMaxAge+time.Second, r.status, r.names())
		}
	})

	t.Run("replay: used tokens", func(t *testing.T) {
		clock := jamtest.NewClock(start) // frozen at the env's start
		e := newEnv(t, session.WithUsedTokens(session.NewMemoryUsedTokens(10, clock.Now)))
		b := e.browser()
		u := b.follow(b.startLogin(ann, ""))
		b.callback(u)
		other := e.browser()
		other.callback(u)
		if r := other.post("/callback", url.Values{"confirm": {"yes"}}); r.status != http.StatusBadRequest || r.cookies["jam_id"] != nil {
			t.Errorf("confirming a replayed callback = %d, cookies %v; want 400 and no session", r.status, r.names())
		}
	})

	t.Run("pending login for another address", func(t *testing.T) {
		e := newEnv(t)
		b := e.browser()
		b.startLogin("bob@example.com", "")
		idToken, refreshToken := e.jam.IssueTokens(ann)
		r := b.callback("/callback?" + url.Values{"idToken": {idToken}, "refreshToken": {refreshToken}}.Encode())
		if r.status != http.StatusOK || r.cookies["jam_id"] != nil {
			t.Errorf("GET /callback for ann with bob's pending login = %d, cookies %v; want the confirmation page", r.status, r.names())
		}
	})

	t.Run("pending cookie forged", func(t *testing.T) {
		e := newEnv(t)
		b := e.browser()
		b.startLogin("bob@example.com", "")
		p := b.cookie("jam_pending")
		b.setCookie("jam_pending", "x"+p)
		idToken, refreshToken := e.jam.IssueTokens("bob@example.com")
		r := b.callback("/callback?" + url.Values{"idToken": {idToken}, "refreshToken": {refreshToken}}.Encode())
		if r.status != http.StatusOK || r.cookies["jam_id"] != nil {
			t.Errorf("GET /callback with a tampered pending cookie = %d, cookies %v; want the confirmation page", r.status, r.names())
		}
	})

	other := jamtest.NewServer(jamtest.WithLogger(nil))
	defer other.Close()
	foreign, _ := other.IssueTokens(ann)
	for _, tt := range []struct {
		name, query string
		wantStatus  int
	}{
		{"no ID token", "refreshToken=abc", http.StatusBadRequest},
		{"two ID tokens", "idToken=a&idToken=b", http.StatusBadRequest},
		{"not a JWT", "idToken=abc&refreshToken=abc", http.StatusBadRequest},
		{"another JAM's token", "idToken=" + foreign, http.StatusBadRequest},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			b := e.browser()
			r := b.get("/callback?"+tt.query, true)
			if r.status == http.StatusSeeOther {
				r = b.get("/callback", true)
			}
			if r.status != tt.wantStatus || r.cookies["jam_id"] != nil {
				t.Errorf("GET /callback?%.20s = %d, cookies %v; want %d and no session", tt.query, r.status, r.names(), tt.wantStatus)
			}
		})
	}

	t.Run("key set unavailable, then back", func(t *testing.T) {
		e := newEnv(t)
		b := e.browser()
		u := b.follow(b.startLogin(ann, ""))
		e.jam.FailKeySet()
		if r := b.callback(u); r.status != http.StatusServiceUnavailable || r.cookies["jam_id"] != nil {
			t.Fatalf("GET /callback with the key set unavailable = %d, want 503", r.status)
		}
		e.jam.ClearFaults()
		e.clock.Advance(11 * time.Second) // the client's refetch interval
		if r := b.get("/callback", true); r.status != http.StatusSeeOther || r.cookies["jam_id"] == nil {
			t.Errorf("reloading /callback once JAM is back = %d, cookies %v; want 303 and a session", r.status, r.names())
		}
	})
}

func TestLogout(t *testing.T) {
	refusal := jamtest.Fault{Status: http.StatusUnauthorized, ContentType: "application/json", Body: []byte(`{"message":"ID token is invalid"}`), Times: 1}
	tests := []struct {
		name       string
		path       string
		before     func(e *env, b *browser)
		opts       []session.Option
		wantStatus int
		wantOut    bool // cookies cleared
		wantDead   bool // refresh token refused by JAM afterwards
	}{
		{"this device", "/logout", nil, nil, http.StatusSeeOther, true, true},
		{"everywhere", "/logout-all", nil, nil, http.StatusSeeOther, true, true},
		{"ID token expired", "/logout", advance(40 * time.Minute), nil, http.StatusSeeOther, true, true},
		{"ID token in JAM's leeway", "/logout", advance(30*time.Minute + 30*time.Second), nil, http.StatusSeeOther, true, true},
		{"ID token expired, everywhere", "/logout-all", advance(40 * time.Minute), nil, http.StatusSeeOther, true, true},
		{"JAM refuses the ID token", "/logout", fault(jamtest.OpDeleteRefreshToken, refusal), nil, http.StatusSeeOther, true, true},
		{"JAM refuses the ID token, everywhere", "/logout-all", fault(jamtest.OpDeleteAllRefreshTokens, refusal), nil, http.StatusSeeOther, true, true},
		{"refresh token dead already", "/logout", both(deleteRefresh, advance(40*time.Minute)), nil, http.StatusSeeOther, true, true},
		{"JAM down", "/logout", fault(jamtest.OpDeleteRefreshToken, jamtest.GatewayError(http.StatusBadGateway)), nil, http.StatusServiceUnavailable, false, false},
		{"JAM down, everywhere", "/logout-all", fault(jamtest.OpDeleteAllRefreshTokens, jamtest.HTMLError(http.StatusServiceUnavailable)), nil, http.StatusServiceUnavailable, false, false},
		{"ID token expired, refresh down", "/logout", both(fault(jamtest.OpRefreshToken, jamtest.GatewayError(http.StatusBadGateway)), advance(40*time.Minute)), nil, http.StatusServiceUnavailable, false, false},
		{"JAM down, clear on outage", "/logout", fault(jamtest.OpDeleteRefreshToken, jamtest.GatewayError(http.StatusBadGateway)), []session.Option{session.WithClearOnLogoutOutage()}, http.StatusServiceUnavailable, true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, tt.opts...)
			b := e.browser()
			b.login(ann, "")
			refreshToken := b.cookie("jam_refresh")
			if tt.before != nil {
				tt.before(e, b)
			}
			r := b.post(tt.path, nil)
			if r.status != tt.wantStatus {
				t.Errorf("POST %s = %d, want %d; body:\n%s", tt.path, r.status, tt.wantStatus, r.body)
			}
			if out := b.cookie("jam_refresh") == "" && b.cookie("jam_id") == ""; out != tt.wantOut {
				t.Errorf("POST %s: cookies cleared %v, want %v", tt.path, out, tt.wantOut)
			}
			e.jam.ClearFaults()
			if dead := !e.refreshWorks(refreshToken); dead != tt.wantDead {
				t.Errorf("POST %s: refresh token dead at JAM %v, want %v", tt.path, dead, tt.wantDead)
			}
		})
	}
}

func TestLogoutScript(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	b.login(ann, "")
	req, _ := http.NewRequest(http.MethodPost, e.url+"/logout", nil)
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	req.Header.Set("Sec-Fetch-Mode", "cors")
	if r := b.do(req); r.status != http.StatusNoContent || b.cookie("jam_id") != "" {
		t.Errorf("fetch POST /logout = %d, want 204 and the cookies cleared", r.status)
	}
	req, _ = http.NewRequest(http.MethodPost, e.url+"/logout", nil)
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	if r := b.do(req); r.status != http.StatusForbidden {
		t.Errorf("cross-site POST /logout = %d, want 403", r.status)
	}
}

func TestThrottle(t *testing.T) {
	t.Run("address, however spelled", func(t *testing.T) {
		e := newEnv(t)
		b := e.browser()
		var first *response
		for i, spelling := range []string{ann, "Ann@example.com", " ANN@EXAMPLE.COM", "ann@Example.com\t", ann, ann, ann, "aNn@example.com"} {
			r := b.post("/login", url.Values{"email": {spelling}})
			if i == 0 {
				first = r
			}
			if r.status != first.status || r.body != first.body || (r.cookies["jam_pending"] == nil) {
				t.Errorf("POST /login #%d = %d, pending cookie %v; want the answer of the first, %d", i+1, r.status, r.cookies["jam_pending"] != nil, first.status)
			}
		}
		if got := e.jam.Handled(jamtest.OpAuthenticate); got != 5 {
			t.Errorf("8 logins for one address sent %d emails, want 5", got)
		}
		e.clock.Advance(10 * time.Minute)
		b.post("/login", url.Values{"email": {ann}})
		if got := e.jam.Handled(jamtest.OpAuthenticate); got != 6 {
			t.Errorf("10 minutes later, emails sent = %d, want 6", got)
		}
	})

	t.Run("client, IPv6 /64", func(t *testing.T) {
		e := newEnv(t, session.WithClientAddress(session.ForwardedBy("X-Forwarded-For")), session.WithLimits(session.Limits{
			Address: session.Limit{Burst: 100, Every: time.Second}, Client: session.Limit{Burst: 3, Every: time.Minute}, Global: session.DefaultLimits.Global,
		}))
		b := e.browser()
		for i := range 4 {
			req, _ := http.NewRequest(http.MethodPost, e.url+"/login", strings.NewReader(url.Values{"email": {fmt.Sprintf("u%d@example.com", i)}}.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.Header.Set("X-Forwarded-For", fmt.Sprintf("198.51.100.7, 2001:db8:1:2::%x", i+1))
			r := b.do(req)
			if want := map[bool]int{true: 200, false: 429}[i < 3]; r.status != want {
				t.Errorf("POST /login #%d from one /64 = %d, want %d", i+1, r.status, want)
			}
			if i == 3 && r.header.Get("Retry-After") != "60" {
				t.Errorf("POST /login throttled: Retry-After %q, want 60", r.header.Get("Retry-After"))
			}
		}
		req, _ := http.NewRequest(http.MethodPost, e.url+"/login", strings.NewReader("email=x%40example.com"))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if r := b.do(req); r.status != http.StatusBadRequest {
			t.Errorf("POST /login without the proxy's header = %d, want 400", r.status)
		}
	})

	t.Run("JSON, and JAM's 429", func(t *testing.T) {
		e := newEnv(t)
		e.jam.SetFault(jamtest.OpAuthenticate, jamtest.Throttled(http.StatusTooManyRequests, 7*time.Minute))
		req, _ := http.NewRequest(http.MethodPost, e.url+"/login", strings.NewReader(`{"email":"ann@example.com"}`))
		req.Header.Set("Content-Type", "application/json")
		r := e.browser().do(req)
		if r.status != http.StatusTooManyRequests || r.header.Get("Retry-After") != "420" || !strings.Contains(r.body, `"message"`) {
			t.Errorf("POST /login (JSON) with JAM throttling = %d %q, Retry-After %q; want 429 JSON with JAM's Retry-After, 420", r.status, r.body, r.header.Get("Retry-After"))
		}
		e.jam.ClearFaults()
		req, _ = http.NewRequest(http.MethodPost, e.url+"/login", strings.NewReader(`{"email":"ann@example.com"}`))
		req.Header.Set("Content-Type", "application/json")
		if r := e.browser().do(req); r.status != http.StatusAccepted {
			t.Errorf("POST /login (JSON) = %d %q, want 202", r.status, r.body)
		}
	})

	t.Run("challenge", func(t *testing.T) {
		e := newEnv(t, session.WithChallenge(2, func(r *http.Request) error {
			if r.PostFormValue("captcha") != "ok" {
				return fmt.Errorf("no captcha")
			}
			return nil
		}))
		b := e.browser()
		for i, want := range []int{200, 200, 403} {
			if r := b.post("/login", url.Values{"email": {fmt.Sprintf("u%d@example.com", i)}}); r.status != want {
				t.Errorf("POST /login #%d without a captcha = %d, want %d", i+1, r.status, want)
			}
		}
		if r := b.post("/login", url.Values{"email": {"u9@example.com"}, "captcha": {"ok"}}); r.status != http.StatusOK {
			t.Errorf("POST /login with the captcha = %d, want 200", r.status)
		}
	})
}

// TestLimiterFlood interleaves 100,000 distinct addresses with a victim's:
// memory stays bounded, and the victim's limit is never reset, whether
// the flood fills the limiter or not.
func TestLimiterFlood(t *testing.T) {
	for _, tt := range []struct {
		size    int
		maxHeap int64
	}{
		{10_000, 1 << 20},
		{session.DefaultMemoryLimiterSize, 8 << 20},
	} {
		t.Run(fmt.Sprint(tt.size), func(t *testing.T) {
			clock := jamtest.NewClock(start)
			l := session.NewMemoryLimiter(tt.size, clock.Now)
			lim := session.DefaultLimits.Address
			ctx := t.Context()
			for i := range lim.Burst {
				if res, _ := l.Allow(ctx, "address:victim", lim); !res.Allowed {
					t.Fatalf("victim's login #%d refused, want allowed", i+1)
				}
			}
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			for i := range 100_000 {
				l.Allow(ctx, fmt.Sprintf("address:flood%d@example.com", i), lim)
				if res, _ := l.Allow(ctx, "address:victim", lim); res.Allowed {
					t.Fatalf("after %d flood addresses, the victim's address is allowed again: its limit was reset", i+1)
				}
				if i%10 == 0 {
					clock.Advance(time.Millisecond)
				}
			}
			runtime.GC()
			runtime.ReadMemStats(&after)
			if n := l.Len(); n > tt.size {
				t.Errorf("Len() = %d after the flood, want at most %d", n, tt.size)
			}
			grown := int64(after.HeapAlloc) - int64(before.HeapAlloc)
			t.Logf("heap grew %d KiB holding %d keys", grown>>10, l.Len())
			if grown > tt.maxHeap {
				t.Errorf("heap grew %d bytes holding %d keys, want under %d", grown, l.Len(), tt.maxHeap)
			}
			runtime.KeepAlive(l)
			// Once the victim's bucket refills, it is allowed again.
			clock.Advance(lim.Every)
			if res, _ := l.Allow(ctx, "address:victim", lim); !res.Allowed {
				t.Errorf("victim's login after %v refused, want allowed", lim.Every)
			}
			// And, the flood's entries expired, new addresses are let in.
			clock.Advance(time.Duration(lim.Burst) * lim.Every)
			if res, _ := l.Allow(ctx, "address:newcomer", lim); !res.Allowed {
				t.Errorf("a new address after the flood expired is refused, want allowed")
			}
		})
	}
}

func TestForwardedBy(t *testing.T) {
	tests := []struct {
		values []string
		want   string
	}{
		{[]string{"203.0.113.9"}, "203.0.113.9"},
		{[]string{"10.0.0.1, 203.0.113.9"}, "203.0.113.9"},
		{[]string{"10.0.0.1", "198.51.100.1 , 2001:db8::1"}, "2001:db8::1"},
		{[]string{"garbage"}, ""},
		{nil, ""},
	}
	for _, tt := range tests {
		r, _ := http.NewRequest(http.MethodGet, "/", nil)
		r.Header["X-Forwarded-For"] = tt.values
		a, err := session.ForwardedBy("X-Forwarded-For")(r)
		if got := map[bool]string{true: a.String(), false: ""}[err == nil]; got != tt.want {
			t.Errorf("ForwardedBy(%q) = %v, %v; want %q", tt.values, a, err, tt.want)
		}
	}
	r, _ := http.NewRequest(http.MethodGet, "/", nil)
	r.RemoteAddr = "[2001:db8::1]:443"
	if a, err := session.RemoteAddr(r); err != nil || a != netip.MustParseAddr("2001:db8::1") {
		t.Errorf("RemoteAddr(%q) = %v, %v; want 2001:db8::1", r.RemoteAddr, a, err)
	}
}

func TestLoginRefused(t *testing.T) {
	jamSays := func(status int, msg string) *jamtest.Fault {
		return &jamtest.Fault{Status: status, ContentType: "application/json", Body: []byte(`{"message":"` + msg + `"}`)}
	}
	tests := []struct {
		name, contentType, body string
		fault                   *jamtest.Fault
		wantStatus              int
		wantText                string
		wantAsked               int // requests to JAM's authenticate
	}{
		{"no address", "application/x-www-form-urlencoded", "email=+", nil, 400, "valid email", 0},
		{"invalid address", "application/x-www-form-urlencoded", "email=ann%40", nil, 400, "valid email", 0},
		{"display name", "application/x-www-form-urlencoded", "email=Ann+%3Cann%40example.com%3E", nil, 400, "valid email", 0},
		{"form too large", "application/x-www-form-urlencoded", "email=" + strings.Repeat("a", 10<<10), nil, 400, "could not be read", 0},
		{"JSON not an object", "application/json", `["ann@example.com"]`, nil, 400, "JSON object", 0},
		{"JAM refuses the address", "application/x-www-form-urlencoded", "email=ann%40example.com", jamSays(400, "Invalid email address"), 400, "Invalid email address", 1},
		{"JAM down", "application/x-www-form-urlencoded", "email=ann%40example.com", new(jamtest.GatewayError(http.StatusBadGateway)), 503, "unavailable", 1},
		{"JAM does not know the app", "application/json", `{"email":"ann@example.com"}`, jamSays(404, "App not found"), 500, "went wrong", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			if tt.fault != nil {
				e.jam.SetFault(jamtest.OpAuthenticate, *tt.fault)
			}
			req, _ := http.NewRequest(http.MethodPost, e.url+"/login", strings.NewReader(tt.body))
			req.Header.Set("Content-Type", tt.contentType)
			r := e.browser().do(req)
			if r.status != tt.wantStatus || !strings.Contains(r.body, tt.wantText) || r.cookies["jam_pending"] != nil {
				t.Errorf("POST /login (%s) = %d %q, pending cookie %v; want %d with %q and none", tt.name, r.status, r.body, r.cookies["jam_pending"] != nil, tt.wantStatus, tt.wantText)
			}
			if got := e.jam.Requests(jamtest.OpAuthenticate); got != tt.wantAsked {
				t.Errorf("POST /login (%s): JAM asked %d times, want %d", tt.name, got, tt.wantAsked)
			}
		})
	}
}

func TestMemoryUsedTokens(t *testing.T) {
	clock := jamtest.NewClock(start)
	u := session.NewMemoryUsedTokens(2, clock.Now)
	ctx := t.Context()
	until := start.Add(time.Minute)
	for _, step := range []struct {
		id        string
		wantFirst bool
		wantErr   error
	}{
		{"a", true, nil},
		{"a", false, nil},
		{"b", true, nil},
		{"c", false, session.ErrFull},
	} {
		first, err := u.Use(ctx, step.id, until)
		if first != step.wantFirst || !errors.Is(err, step.wantErr) {
			t.Errorf("Use(%q) = %v, %v; want %v, %v", step.id, first, err, step.wantFirst, step.wantErr)
		}
	}
	clock.Advance(time.Minute + time.Second)
	if first, err := u.Use(ctx, "c", until.Add(time.Hour)); !first || err != nil {
		t.Errorf("Use(%q) once the others expired = %v, %v; want true, nil", "c", first, err)
	}
}

// TestRefresh404BeforeKeySet renews a session whose browser holds only
// its refresh token, on a fresh process whose client has not fetched the
// key set: JAM's 404 for the deleted refresh token ends the session (401),
// rather than reading as a wrong configuration (500).
func TestRefresh404BeforeKeySet(t *testing.T) {
	srv := jamtest.NewServer(jamtest.WithLogger(nil))
	defer srv.Close()
	sm, err := session.New(srv.Client(), session.WithInsecureCookies())
	if err != nil {
		t.Fatal(err)
	}
	srv.SetFault(jamtest.OpRefreshToken, jamtest.Fault{Status: http.StatusNotFound, ContentType: "application/json", Body: []byte(`{"message":"Refresh token not found"}`)})
	app := httptest.NewServer(sm.Require(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})))
	defer app.Close()
	req, _ := http.NewRequest(http.MethodGet, app.URL, nil)
	req.AddCookie(&http.Cookie{Name: "jam_refresh", Value: "deleted-refresh-token"})
	res, err := app.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusUnauthorized || len(res.Cookies()) != 1 || res.Cookies()[0].MaxAge >= 0 {
		t.Errorf("GET with a deleted refresh token = %d, %d cookies; want 401 and the refresh cookie deleted", res.StatusCode, len(res.Cookies()))
	}
}

// TestFloodThroughHTTP interleaves logins for distinct addresses with a
// victim's, through the handler, on a limiter too small for the flood:
// the victim never gets more than the burst of emails, and the limiter
// holds no more keys than its size.
func TestFloodThroughHTTP(t *testing.T) {
	clock := jamtest.NewClock(start) // frozen at the env's start
	limiter := session.NewMemoryLimiter(50, clock.Now)
	roomy := session.Limit{Burst: 10_000, Every: time.Millisecond}
	e := newEnv(t, session.WithLimiter(limiter), session.WithLimits(session.Limits{Address: session.DefaultLimits.Address, Client: roomy, Global: roomy}))
	b := e.browser()
	for i := range 200 {
		b.post("/login", url.Values{"email": {fmt.Sprintf("flood%d@example.com", i)}})
		if r := b.post("/login", url.Values{"email": {"Victim@Example.com"}}); r.status != http.StatusOK {
			t.Fatalf("POST /login for the victim #%d = %d, want 200 (sent, or throttled and answered as sent)", i+1, r.status)
		}
	}
	sent := 0
	for _, m := range e.jam.Outbox() {
		if m.Email == "victim@example.com" {
			sent++
		}
	}
	if sent != session.DefaultLimits.Address.Burst {
		t.Errorf("200 logins for the victim among a flood sent %d emails, want %d", sent, session.DefaultLimits.Address.Burst)
	}
	if n := limiter.Len(); n > 50 {
		t.Errorf("the limiter holds %d keys, want at most 50", n)
	}
}
