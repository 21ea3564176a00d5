package session_test

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jam/go-jam/jam"
	"github.com/go-jam/go-jam/jam/jamtest"
	"github.com/go-jam/go-jam/jam/session"
)

const ann = "ann@example.com"

var secretish = regexp.MustCompile(`[A-Za-z0-9_-]{40,}`)

// start is the time of every test's clock.
var start = time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)

// env is an app using a Manager, on a loopback port, with a jamtest
// server redirecting its magic links to the app's /callback, all on one
// clock.
type env struct {
	t      *testing.T
	jam    *jamtest.Server
	clock  *jamtest.Clock
	client *jam.Client
	sm     *session.Manager
	url    string
	logs   *lockedBuffer
}

// lockedBuffer collects the Manager's logs, written from handlers.
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

func newEnv(t *testing.T, opts ...session.Option) *env {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, clock: jamtest.NewClock(start), url: "http://" + ln.Addr().String(), logs: &lockedBuffer{}}
	e.jam = jamtest.NewServer(jamtest.WithClock(e.clock.Now), jamtest.WithRedirectURL(e.url+"/callback"),
		jamtest.WithLogger(slog.New(slog.DiscardHandler)))
	t.Cleanup(e.jam.Close)
	e.client = e.jam.Client(jam.WithRetries(0))
	base := []session.Option{session.WithClock(e.clock.Now), session.WithInsecureCookies(), session.WithLandingPage("/me"),
		session.WithLogger(slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug})))}
	e.sm, err = session.New(e.client, append(base, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	srv := &httptest.Server{Listener: ln, Config: &http.Server{Handler: e.mux()}}
	srv.Start()
	t.Cleanup(srv.Close)
	t.Cleanup(func() {
		// No address, no JWT, no refresh token (43 base64url characters).
		if logs := e.logs.String(); strings.Contains(logs, "@") || strings.Contains(logs, "eyJ") || secretish.MatchString(logs) {
			t.Errorf("the Manager's logs hold a secret:\n%s", logs)
		}
	})
	return e
}

func (e *env) mux() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /login", e.sm.Login)
	mux.HandleFunc("/callback", e.sm.Callback)
	mux.HandleFunc("POST /logout", e.sm.Logout)
	mux.HandleFunc("POST /logout-all", e.sm.LogoutAll)
	who := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, ok := session.FromContext(r.Context())
		if !ok {
			io.WriteString(w, "anonymous")
			return
		}
		io.WriteString(w, "hello "+s.Token.Claims.Email+" "+s.Token.Claims.ID)
	})
	mux.Handle("GET /me", e.sm.Require(who))
	mux.Handle("GET /maybe", e.sm.Optional(who))
	return mux
}

// browser is a user agent with its own cookies that shows every redirect
// instead of following it.
type browser struct {
	e   *env
	hc  *http.Client
	jar *cookiejar.Jar
}

func (e *env) browser() *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{e: e, jar: jar, hc: &http.Client{
		Jar: jar, Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

type response struct {
	status  int
	header  http.Header
	body    string
	cookies map[string]*http.Cookie
}

// names lists the cookies a response set, without their values, which
// are secrets.
func (r *response) names() []string {
	var n []string
	for name := range r.cookies {
		n = append(n, name)
	}
	return n
}

func (r *response) location() string { return r.header.Get("Location") }

func (b *browser) do(req *http.Request) *response {
	b.e.t.Helper()
	res, err := b.hc.Do(req)
	if err != nil {
		b.e.t.Fatalf("%s %s: %v", req.Method, req.URL.Path, err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	r := &response{status: res.StatusCode, header: res.Header, body: string(body), cookies: map[string]*http.Cookie{}}
	for _, c := range res.Cookies() {
		if r.cookies[c.Name] != nil {
			b.e.t.Errorf("%s %s set cookie %s twice", req.Method, req.URL.Path, c.Name)
		}
		r.cookies[c.Name] = c
	}
	return r
}

// get requests a URL or a path of the app; nav marks it as a browser
// navigation.
func (b *browser) get(target string, nav bool) *response {
	b.e.t.Helper()
	if strings.HasPrefix(target, "/") {
		target = b.e.url + target
	}
	req, _ := http.NewRequest(http.MethodGet, target, nil)
	if nav {
		req.Header.Set("Sec-Fetch-Mode", "navigate")
	}
	return b.do(req)
}

// post submits a form from one of the app's pages.
func (b *browser) post(path string, form url.Values) *response {
	b.e.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, b.e.url+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	req.Header.Set("Sec-Fetch-Mode", "navigate")
	return b.do(req)
}

func (b *browser) cookie(name string) string {
	u, _ := url.Parse(b.e.url)
	for _, c := range b.jar.Cookies(u) {
		if c.Name == name {
			return c.Value
		}
	}
	return ""
}

func (b *browser) setCookie(name, value string) {
	u, _ := url.Parse(b.e.url)
	c := &http.Cookie{Name: name, Value: value, Path: "/"}
	if value == "" {
		c.MaxAge = -1
	}
	b.jar.SetCookies(u, []*http.Cookie{c})
}

// startLogin posts the login form and returns the magic link.
func (b *browser) startLogin(email, next string) string {
	b.e.t.Helper()
	before := len(b.e.jam.Outbox())
	if r := b.post("/login", url.Values{"email": {email}, "next": {next}}); r.status != http.StatusOK {
		b.e.t.Fatalf("POST /login = %d, want 200; body:\n%s", r.status, r.body)
	}
	out := b.e.jam.Outbox()
	if len(out) != before+1 {
		b.e.t.Fatalf("POST /login sent %d links, want 1", len(out)-before)
	}
	return out[0].Link
}

// follow follows a magic link to JAM's redirect, and returns the callback
// URL with the tokens.
func (b *browser) follow(link string) string {
	b.e.t.Helper()
	r := b.get(link, true)
	if r.status != http.StatusFound || !strings.HasPrefix(r.location(), b.e.url+"/callback?") {
		b.e.t.Fatalf("GET magic link = %d to %q, want 302 to /callback", r.status, r.location())
	}
	return r.location()
}

// callback opens a callback URL as the browser does: its redirect, then
// the page it leads to.
func (b *browser) callback(u string) *response {
	b.e.t.Helper()
	r := b.get(u, true)
	if r.status != http.StatusSeeOther || r.location() != "/callback" || len(r.cookies) != 1 {
		b.e.t.Fatalf("GET /callback?tokens = %d to %q with cookies %v, want 303 to /callback with one cookie", r.status, r.location(), r.names())
	}
	return b.get("/callback", true)
}

// login logs in as a user does and returns the callback's final answer.
func (b *browser) login(email, next string) *response {
	b.e.t.Helper()
	r := b.callback(b.follow(b.startLogin(email, next)))
	if r.status != http.StatusSeeOther || r.cookies["jam_id"] == nil {
		b.e.t.Fatalf("GET /callback = %d to %q, cookies %v; want 303 and a session; body:\n%s", r.status, r.location(), r.names(), r.body)
	}
	return r
}

// refreshWorks reports whether JAM still takes the refresh token.
func (e *env) refreshWorks(refreshToken string) bool {
	e.t.Helper()
	_, err := e.client.Refresh(context.Background(), refreshToken)
	if err != nil && jam.HTTPStatus(err) != http.StatusUnauthorized {
		e.t.Fatalf("Refresh = %v, want nil or a refusal", err)
	}
	return err == nil
}
