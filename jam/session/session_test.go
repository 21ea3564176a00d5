package session_test

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jam/go-jam/jam/jamtest"
	"github.com/go-jam/go-jam/jam/session"
)

func TestLoginFlow(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	r := b.login(" Ann@Example.COM ", "/me?tab=2")
	if r.location() != "/me?tab=2" {
		t.Errorf("GET /callback led to %q, want the next page /me?tab=2", r.location())
	}
	if got := e.jam.Outbox()[0].Email; got != ann {
		t.Errorf("JAM was asked to email %q, want the normalised %q", got, ann)
	}
	for _, name := range []string{"jam_pending", "jam_callback"} {
		if c := r.cookies[name]; c == nil || c.MaxAge >= 0 {
			t.Errorf("GET /callback: cookie %s = %v, want it deleted", name, c)
		}
	}
	r = b.get("/me", true)
	if r.status != http.StatusOK || !strings.HasPrefix(r.body, "hello "+ann) || len(r.cookies) != 0 {
		t.Fatalf("GET /me = %d %q, cookies %v; want 200 for %s and none", r.status, r.body, r.names(), ann)
	}
	if r := b.get("/maybe", false); r.body == "anonymous" {
		t.Errorf("GET /maybe (Optional) = %q, want the session", r.body)
	}
}

// TestProductionCookies pins the Set-Cookie of the session in production:
// __Host-, Secure, HttpOnly, SameSite=Lax, Path=/, and the refresh
// token's Max-Age.
func TestProductionCookies(t *testing.T) {
	srv := jamtest.NewServer()
	defer srv.Close()
	sm, err := session.New(srv.Client())
	if err != nil {
		t.Fatal(err)
	}
	idToken, refreshToken := srv.IssueTokens(ann)
	// The pending login, as Login leaves it.
	w := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodPost, "https://app.example/login", strings.NewReader("email="+ann))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	sm.Login(w, req)
	pendingSet := w.Result().Cookies()
	if len(pendingSet) != 1 || pendingSet[0].Name != "__Host-jam_pending" ||
		!strings.HasSuffix(w.Header().Get("Set-Cookie"), "; Path=/; Max-Age=900; HttpOnly; Secure; SameSite=Lax") {
		t.Fatalf("Login Set-Cookie = %q, want __Host-jam_pending=…; Path=/; Max-Age=900; HttpOnly; Secure; SameSite=Lax", w.Header().Values("Set-Cookie"))
	}
	if strings.Contains(pendingSet[0].Value, "ann") {
		t.Errorf("the pending cookie holds the address readable")
	}

	w = httptest.NewRecorder()
	sm.Callback(w, httptest.NewRequest(http.MethodGet, "https://app.example/callback?idToken="+idToken+"&refreshToken="+refreshToken, nil))
	set := w.Header().Values("Set-Cookie")
	if w.Code != http.StatusSeeOther || len(set) != 1 || !strings.HasPrefix(set[0], "__Host-jam_callback=") ||
		!strings.HasSuffix(set[0], "; Path=/; Max-Age=600; HttpOnly; Secure; SameSite=Lax") {
		t.Fatalf("Callback(tokens) = %d, Set-Cookie %q; want 303 and __Host-jam_callback=…; Path=/; Max-Age=600; HttpOnly; Secure; SameSite=Lax", w.Code, set)
	}

	req = httptest.NewRequest(http.MethodGet, "https://app.example/callback", nil)
	req.AddCookie(w.Result().Cookies()[0])
	req.AddCookie(pendingSet[0])
	w = httptest.NewRecorder()
	sm.Callback(w, req)
	got := map[string]string{}
	for _, v := range w.Header().Values("Set-Cookie") {
		name, _, _ := strings.Cut(v, "=")
		_, attrs, _ := strings.Cut(v, ";")
		got[name] = attrs
	}
	want := map[string]string{
		"__Host-jam_id":       " Path=/; HttpOnly; Secure; SameSite=Lax",
		"__Host-jam_refresh":  " Path=/; Max-Age=2592000; HttpOnly; Secure; SameSite=Lax",
		"__Host-jam_pending":  " Path=/; Max-Age=0; HttpOnly; Secure; SameSite=Lax",
		"__Host-jam_callback": " Path=/; Max-Age=0; HttpOnly; Secure; SameSite=Lax",
	}
	if w.Code != http.StatusSeeOther || len(got) != len(want) {
		t.Fatalf("Callback = %d, Set-Cookie %q; want 303 and %d cookies", w.Code, w.Header().Values("Set-Cookie"), len(want))
	}
	for name, attrs := range want {
		if got[name] != attrs {
			t.Errorf("Set-Cookie %s attributes = %q, want %q", name, got[name], attrs)
		}
	}
}

func TestNewRefused(t *testing.T) {
	srv := jamtest.NewServer()
	defer srv.Close()
	client := srv.Client()
	tests := map[string]session.Option{
		"short key":                session.WithKey(make([]byte, 31)),
		"negative refresh margin":  session.WithRefreshBefore(-time.Second),
		"negative cookie max age":  session.WithRefreshCookieMaxAge(-time.Second),
		"zero callback max age":    session.WithCallbackMaxAge(0),
		"zero pending TTL":         session.WithPendingTTL(0),
		"login page off-site":      session.WithLoginPage("//evil.example/"),
		"landing page absolute":    session.WithLandingPage("https://evil.example/"),
		"nil pages":                session.WithPages(nil),
		"nil protection":           session.WithCrossOriginProtection(nil),
		"zero burst":               session.WithLimits(session.Limits{Address: session.Limit{Every: time.Second}, Client: session.DefaultLimits.Client, Global: session.DefaultLimits.Global}),
		"nil limiter":              session.WithLimiter(nil),
		"nil client address":       session.WithClientAddress(nil),
		"negative challenge after": session.WithChallenge(-1, func(*http.Request) error { return nil }),
	}
	for name, opt := range tests {
		t.Run(name, func(t *testing.T) {
			if sm, err := session.New(client, opt); err == nil {
				t.Errorf("New(%s) = %v, nil; want an error", name, sm)
			}
		})
	}
	if _, err := session.New(nil); err == nil {
		t.Error("New(nil) = nil error, want one")
	}
}

func TestReturnPath(t *testing.T) {
	tests := []struct {
		raw, want string
	}{
		{"/me", "/me"},
		{"/me?tab=2#x", "/me?tab=2#x"},
		{"/a b", "/a%20b"},
		{"", ""},
		{"me", ""},
		{"//evil.example", ""},
		{"///evil.example", ""},
		{"/\t/evil.example", ""},
		{"/\n/evil.example", ""},
		{"/\r/evil.example", ""},
		{"/\x00/evil.example", ""},
		{"/\\evil.example", ""},
		{"\\\\evil.example", ""},
		{"/\\/evil.example", ""},
		{"https://evil.example/", ""},
		{"javascript:alert(1)", ""},
		{" /me", ""},
		{"/%0a/evil", "/%0a/evil"},
		{"http:/evil.example", ""},
		{"/" + strings.Repeat("a", 3000), ""},
	}
	for _, tt := range tests {
		got, ok := session.ReturnPath(tt.raw)
		if got != tt.want || ok != (tt.want != "") {
			t.Errorf("ReturnPath(%q) = %q, %v; want %q, %v", tt.raw, got, ok, tt.want, tt.want != "")
		}
	}
}

// TestOpenRedirect logs in with next values that try to leave the site:
// each lands on the landing page.
func TestOpenRedirect(t *testing.T) {
	e := newEnv(t, session.WithLimits(session.Limits{
		Address: session.Limit{Burst: 100, Every: time.Second}, Client: session.Limit{Burst: 100, Every: time.Second}, Global: session.DefaultLimits.Global,
	}))
	for _, next := range []string{"//evil.example", "/\t/evil.example", "/\\evil.example", "https://evil.example/", "javascript:alert(1)", "/%5C%5Cevil.example"} {
		r := e.browser().login(ann, next)
		loc, err := url.Parse(r.location())
		if err != nil || loc.Host != "" || loc.Scheme != "" || strings.HasPrefix(r.location(), "//") || strings.ContainsAny(r.location(), "\\\t") {
			t.Errorf("login with next %q led to %q, want a path of this site", next, r.location())
		}
	}
}

func TestRequireRefusal(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	r := b.get("/me?x=1", true)
	if r.status != http.StatusSeeOther || r.location() != "/?next="+url.QueryEscape("/me?x=1") {
		t.Errorf("GET /me (navigation) = %d to %q, want 303 to the login page with next", r.status, r.location())
	}
	r = b.get("/me", false)
	if r.status != http.StatusUnauthorized || r.header.Get("WWW-Authenticate") != `Bearer realm="jam"` || !strings.Contains(r.body, `"message"`) {
		t.Errorf("GET /me (fetch) = %d, WWW-Authenticate %q, body %q; want jam.DefaultErrorHandler's 401", r.status, r.header.Get("WWW-Authenticate"), r.body)
	}
	req, _ := http.NewRequest(http.MethodPost, e.url+"/me", nil)
	req.Header.Set("Sec-Fetch-Mode", "navigate")
	if r := b.do(req); r.status == http.StatusSeeOther {
		t.Errorf("POST /me (navigation) = 303, want no redirect for a POST")
	}
	if r := b.get("/maybe", true); r.status != http.StatusOK || r.body != "anonymous" {
		t.Errorf("GET /maybe without a session = %d %q, want 200 anonymous", r.status, r.body)
	}
}

// TestConcurrentRenewals renews one browser's expired token in many
// requests at once: all succeed, none ends the session.
func TestConcurrentRenewals(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	b.login(ann, "")
	e.clock.Advance(40 * time.Minute)
	// JAM answers slowly, so that the requests overlap.
	e.jam.SetFault(jamtest.OpRefreshToken, jamtest.Fault{Delay: 300 * time.Millisecond})
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			r := b.get("/me", false)
			if r.status != http.StatusOK || r.cookies["jam_id"] == nil || r.cookies["jam_id"].MaxAge < 0 || r.cookies["jam_refresh"] != nil {
				t.Errorf("concurrent GET /me = %d, cookies %v; want 200 and a new ID token only", r.status, r.names())
			}
		})
	}
	wg.Wait()
	// One refresh at JAM for them all, or a few if the machine is slow
	// to start them; never one each.
	if n := e.jam.Requests(jamtest.OpRefreshToken); n >= 8 {
		t.Errorf("8 concurrent renewals made %d refreshes at JAM, want them shared", n)
	}
	if r := b.get("/me", false); r.status != http.StatusOK || len(r.cookies) != 0 {
		t.Errorf("GET /me after the renewals = %d, cookies %v; want 200 and none", r.status, r.names())
	}
}

// TestRefreshRacingLogout delivers a renewal's answer after the logout
// that followed it: the session must not come back.
func TestRefreshRacingLogout(t *testing.T) {
	for _, relogin := range []bool{false, true} {
		e := newEnv(t)
		b := e.browser()
		b.login(ann, "")
		e.clock.Advance(40 * time.Minute)
		// The renewal, its answer held back from the browser.
		other := e.browser()
		u, _ := url.Parse(e.url)
		other.jar.SetCookies(u, b.jar.Cookies(u))
		r := other.get("/me", false)
		late := r.cookies["jam_id"]
		if r.status != http.StatusOK || late == nil {
			t.Fatalf("renewing GET /me = %d, want 200 and a new ID token", r.status)
		}
		if r := b.post("/logout", nil); r.status != http.StatusSeeOther {
			t.Fatalf("POST /logout = %d, want 303", r.status)
		}
		if relogin {
			b.login("bob@example.com", "")
		}
		b.jar.SetCookies(u, []*http.Cookie{late})
		r = b.get("/me", false)
		switch {
		case !relogin && r.status != http.StatusUnauthorized:
			t.Errorf("GET /me with a renewal answered after the logout = %d %q, want 401", r.status, r.body)
		case relogin && (r.status != http.StatusOK || !strings.HasPrefix(r.body, "hello bob@")):
			t.Errorf("GET /me with ann's late renewal after bob's login = %d %q, want 200 for bob", r.status, r.body)
		}
	}
}

func TestRenewal(t *testing.T) {
	const (
		kept    = "kept"
		renewed = "renewed"
		ended   = "ended"
		outage  = "outage"
	)
	refresh404 := jamtest.Fault{Status: http.StatusNotFound, ContentType: "application/json", Body: []byte(`{"message":"Refresh token not found"}`)}
	tests := []struct {
		name   string
		before func(e *env, b *browser)
		want   string
	}{
		{"fresh", nil, kept},
		{"6 minutes left", advance(24 * time.Minute), kept},
		{"4 minutes left", advance(26 * time.Minute), renewed},
		{"expired", advance(40 * time.Minute), renewed},
		{"ID cookie gone", func(_ *env, b *browser) { b.setCookie("jam_id", "") }, renewed},
		{"ID cookie garbage", func(_ *env, b *browser) { b.setCookie("jam_id", "garbage~"+strings.Split(b.cookie("jam_id"), "~")[1]) }, renewed},
		{"expired, refresh token deleted", both(deleteRefresh, advance(40*time.Minute)), ended},
		{"4 minutes left, refresh token deleted", both(deleteRefresh, advance(26*time.Minute)), ended},
		{"expired, refresh answers 404", both(fault(jamtest.OpRefreshToken, refresh404), advance(40*time.Minute)), ended},
		{"expired, no refresh cookie", both(func(_ *env, b *browser) { b.setCookie("jam_refresh", "") }, advance(40*time.Minute)), ended},
		{"expired, JAM down", both(fault(jamtest.OpRefreshToken, jamtest.GatewayError(http.StatusBadGateway)), advance(40*time.Minute)), outage},
		{"expired, JAM throttles", both(fault(jamtest.OpRefreshToken, jamtest.Throttled(http.StatusTooManyRequests, time.Second)), advance(40*time.Minute)), outage},
		{"4 minutes left, JAM down", both(fault(jamtest.OpRefreshToken, jamtest.GatewayError(http.StatusBadGateway)), advance(26*time.Minute)), kept},
		{"key set unavailable", func(e *env, b *browser) {
			e.jam.PublishKey()
			id, _ := e.jam.IssueTokens(ann)
			b.setCookie("jam_id", id+"~"+strings.Split(b.cookie("jam_id"), "~")[1])
			e.jam.FailKeySet()
		}, outage},
	}
	for _, tt := range tests {
		for _, nav := range []bool{false, true} {
			t.Run(tt.name+map[bool]string{false: ", fetch", true: ", navigation"}[nav], func(t *testing.T) {
				e := newEnv(t)
				b := e.browser()
				b.login(ann, "")
				refreshToken := b.cookie("jam_refresh")
				if tt.before != nil {
					tt.before(e, b)
				}
				idCookie := b.cookie("jam_id")
				r := b.get("/me", nav)
				switch tt.want {
				case kept, renewed:
					if r.status != http.StatusOK || !strings.HasPrefix(r.body, "hello "+ann) {
						t.Fatalf("GET /me = %d %q, want 200 for %s", r.status, r.body, ann)
					}
					c := r.cookies["jam_id"]
					if (tt.want == renewed) != (c != nil && c.Value != idCookie && c.MaxAge == 0) {
						t.Errorf("GET /me set an ID cookie %v, want renewed %v", c != nil, tt.want == renewed)
					}
					if tt.want == renewed && !strings.Contains(r.body, jtiOf(t, b.cookie("jam_id"))) {
						t.Errorf("the handler did not see the renewed token")
					}
				case ended:
					wantStatus := http.StatusUnauthorized
					if nav {
						wantStatus = http.StatusSeeOther
					}
					if r.status != wantStatus || b.cookie("jam_id") != "" || b.cookie("jam_refresh") != "" {
						t.Errorf("GET /me = %d, cookies left %v; want %d and the cookies cleared", r.status, b.cookie("jam_refresh") != "", wantStatus)
					}
				case outage:
					if r.status != http.StatusServiceUnavailable && r.status != http.StatusTooManyRequests || len(r.cookies) != 0 {
						t.Errorf("GET /me = %d, cookies %v; want 503 (or 429) and the cookies left alone", r.status, r.names())
					}
					if b.cookie("jam_refresh") != refreshToken {
						t.Errorf("the browser lost its refresh token in an outage")
					}
				}
				// JAM back: the session is as the answer left it.
				e.jam.ClearFaults()
				e.clock.Advance(11 * time.Second)
				if r := b.get("/me", false); (r.status == http.StatusOK) != (tt.want != ended) {
					t.Errorf("GET /me afterwards = %d, want logged in %v", r.status, tt.want != ended)
				}
			})
		}
	}
}

func advance(d time.Duration) func(*env, *browser) {
	return func(e *env, _ *browser) { e.clock.Advance(d) }
}

func both(f, g func(*env, *browser)) func(*env, *browser) {
	return func(e *env, b *browser) { f(e, b); g(e, b) }
}

func fault(op jamtest.Operation, f jamtest.Fault) func(*env, *browser) {
	return func(e *env, _ *browser) { e.jam.SetFault(op, f) }
}

// deleteRefresh logs the browser's refresh token out behind the app's
// back, as a logout on another device would.
func deleteRefresh(e *env, b *browser) {
	id, _, _ := strings.Cut(b.cookie("jam_id"), "~")
	if err := e.client.DeleteRefreshToken(e.t.Context(), id, b.cookie("jam_refresh")); err != nil {
		e.t.Fatal(err)
	}
}

func TestDefaultPages(t *testing.T) {
	tests := []struct {
		page session.Page
		want []string
	}{
		{session.Page{Kind: session.PageSent, Status: 200, Email: ann}, []string{`id="sent"`, ann}},
		{session.Page{Kind: session.PageLogin, Status: 429, Problem: "Too many", Email: ann, Next: "/x"}, []string{`id="problem"`, "Too many", `name="next" value="/x"`}},
		{session.Page{Kind: session.PageConfirm, Status: 200, Email: "<b>@example.com", Action: "/callback"}, []string{`action="/callback"`, `value="yes"`, `value="no"`, "&lt;b&gt;@example.com"}},
		{session.Page{Kind: session.PageError, Status: 503, Problem: "Try later"}, []string{"Try later"}},
	}
	for _, tt := range tests {
		w := httptest.NewRecorder()
		session.DefaultPages(w, httptest.NewRequest(http.MethodGet, "/", nil), &tt.page)
		body := w.Body.String()
		if w.Code != tt.page.Status || strings.Contains(body, "<script") || strings.Contains(body, "<b>") {
			t.Errorf("DefaultPages(kind %d) = %d, want %d, no script, the address escaped; body:\n%s", tt.page.Kind, w.Code, tt.page.Status, body)
		}
		for _, s := range tt.want {
			if !strings.Contains(body, s) {
				t.Errorf("DefaultPages(kind %d) lacks %q; body:\n%s", tt.page.Kind, s, body)
			}
		}
	}
}

func TestSessionLogValue(t *testing.T) {
	srv := jamtest.NewServer()
	defer srv.Close()
	idToken, _ := srv.IssueTokens(ann)
	tok, err := srv.Client().VerifyToken(t.Context(), idToken)
	if err != nil {
		t.Fatal(err)
	}
	var buf strings.Builder
	slog.New(slog.NewTextHandler(&buf, nil)).Info("request", "session", &session.Session{Token: tok, IDToken: idToken}, "none", (*session.Session)(nil))
	if got := buf.String(); strings.Contains(got, idToken[:20]) || strings.Contains(got, ann) || !strings.Contains(got, "REDACTED") {
		t.Errorf("a Session logs as %q, want the token and address REDACTED", got)
	}
}
