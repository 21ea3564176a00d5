package main

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/go-jam/go-jam/jam"
	"github.com/go-jam/go-jam/jam/jamtest"
	"github.com/go-jam/go-jam/jam/session"
)

// TestMain fails the tests if a goroutine outlives them: a server, a
// request or a connection left running.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// lockedBuffer collects the app's logs, written from handlers.
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

// harness is the example app on a loopback port, with a jamtest server
// redirecting its magic links to the app's /callback, all on one clock.
type harness struct {
	t      *testing.T
	jam    *jamtest.Server
	client *jam.Client // the app's
	clock  *jamtest.Clock
	url    string // the app's, without a trailing slash
	logs   *lockedBuffer

	mu      sync.Mutex
	secrets []string // every token and address the test met
}

// harnessOption changes the app's configuration or adds options of its
// JAM server.
type harnessOption func(*app, *[]jamtest.Option)

func secureCookies(a *app, _ *[]jamtest.Option) { a.insecure = false }

func jamOption(opt jamtest.Option) harnessOption {
	return func(_ *app, opts *[]jamtest.Option) { *opts = append(*opts, opt) }
}

func newHarness(t *testing.T, opts ...harnessOption) *harness {
	t.Helper()
	// The app's listener first: the JAM server redirects to it.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{
		t:     t,
		clock: jamtest.NewClock(time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)),
		url:   "http://" + ln.Addr().String(),
		logs:  &lockedBuffer{},
	}
	cfg := &app{
		insecure:      true,
		refreshBefore: session.DefaultRefreshBefore,
		now:           h.clock.Now,
		log:           slog.New(slog.NewTextHandler(h.logs, nil)),
	}
	jamOpts := []jamtest.Option{
		jamtest.WithClock(h.clock.Now),
		jamtest.WithRedirectURL(h.url + "/callback"),
		jamtest.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))),
	}
	for _, opt := range opts {
		opt(cfg, &jamOpts)
	}
	h.jam = jamtest.NewServer(jamOpts...)
	t.Cleanup(h.jam.Close)
	cfg.outboxURL = h.jam.URL + "/_jamtest/outbox"
	// No retries: an outage answers at once, and a test counts requests.
	h.client = h.jam.Client(jam.WithRetries(0))
	srv := httptest.NewUnstartedServer(newApp(h.client, cfg))
	srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	t.Cleanup(srv.Close)
	t.Cleanup(func() {
		logs := h.logs.String()
		for _, s := range h.allSecrets() {
			if strings.Contains(logs, s) {
				t.Errorf("the app's logs hold a secret %.12q…:\n%s", s, logs)
			}
		}
		if v := h.jam.Violations(); len(v) > 0 {
			t.Errorf("jamtest saw responses violating openapi.yaml: %v", v)
		}
	})
	return h
}

// secret records a token or address that must appear in no log and, for
// tokens, in no page.
func (h *harness) secret(s string) {
	if s == "" {
		return
	}
	h.mu.Lock()
	h.secrets = append(h.secrets, s)
	h.mu.Unlock()
}

func (h *harness) allSecrets() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.secrets...)
}

// browser is a user agent with its own cookies that, like a test should,
// shows every redirect instead of following it.
type browser struct {
	h   *harness
	hc  *http.Client
	jar *cookiejar.Jar
}

func (h *harness) browser() *browser {
	jar, err := cookiejar.New(nil)
	if err != nil {
		h.t.Fatal(err)
	}
	return &browser{h: h, jar: jar, hc: &http.Client{
		Jar:           jar,
		Timeout:       10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

type response struct {
	status int
	header http.Header
	body   string
	// cookies the response set, by name.
	cookies map[string]*http.Cookie
}

// location is where a redirect points.
func (r *response) location() string { return r.header.Get("Location") }

func (b *browser) do(req *http.Request) *response {
	b.h.t.Helper()
	res, err := b.hc.Do(req)
	if err != nil {
		b.h.t.Fatalf("%s %s: %v", req.Method, req.URL.Path, err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		b.h.t.Fatalf("%s %s: reading the body: %v", req.Method, req.URL.Path, err)
	}
	r := &response{status: res.StatusCode, header: res.Header, body: string(body), cookies: map[string]*http.Cookie{}}
	for _, c := range res.Cookies() {
		r.cookies[c.Name] = c
		b.h.secret(c.Value)
	}
	for _, s := range b.h.allSecrets() {
		if !strings.Contains(s, "@") && strings.Contains(r.body, s) {
			b.h.t.Errorf("%s %s: the page shows a token %.12q…", req.Method, req.URL.Path, s)
		}
	}
	return r
}

// get navigates to a URL, or a path of the app, as a browser does.
func (b *browser) get(target string) *response {
	b.h.t.Helper()
	if strings.HasPrefix(target, "/") {
		target = b.h.url + target
	}
	req, err := http.NewRequest(http.MethodGet, target, nil)
	if err != nil {
		b.h.t.Fatal(err)
	}
	req.Header.Set("Sec-Fetch-Mode", "navigate")
	return b.do(req)
}

// fetch requests a path of the app as a page's script does.
func (b *browser) fetch(path string) *response {
	b.h.t.Helper()
	req, err := http.NewRequest(http.MethodGet, b.h.url+path, nil)
	if err != nil {
		b.h.t.Fatal(err)
	}
	req.Header.Set("Sec-Fetch-Mode", "cors")
	req.Header.Set("Accept", "*/*")
	return b.do(req)
}

// post submits a form to a path of the app, from one of its pages unless
// header says otherwise.
func (b *browser) post(path string, form url.Values, header http.Header) *response {
	b.h.t.Helper()
	req, err := http.NewRequest(http.MethodPost, b.h.url+path, strings.NewReader(form.Encode()))
	if err != nil {
		b.h.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	req.Header.Set("Sec-Fetch-Mode", "navigate")
	req.Header.Set("Origin", b.h.url)
	for k, v := range header {
		req.Header[k] = v
	}
	return b.do(req)
}

// cookie returns the value of the browser's cookie for the app, or "".
func (b *browser) cookie(name string) string {
	u, _ := url.Parse(b.h.url)
	for _, c := range b.jar.Cookies(u) {
		if c.Name == name {
			return c.Value
		}
	}
	return ""
}

// startLogin posts the login form and returns the magic link it sent.
func (b *browser) startLogin(email, next string) string {
	b.h.t.Helper()
	b.h.secret(email)
	before := len(b.h.jam.Outbox())
	if r := b.post("/login", url.Values{"email": {email}, "next": {next}}, nil); r.status != http.StatusOK {
		b.h.t.Fatalf("POST /login = %d, want 200; body:\n%s", r.status, r.body)
	}
	out := b.h.jam.Outbox()
	if len(out) != before+1 {
		b.h.t.Fatalf("POST /login sent %d magic links, want 1", len(out)-before)
	}
	return out[0].Link
}

// follow follows a magic link to JAM's redirect, and returns the callback
// URL with the tokens.
func (b *browser) follow(link string) string {
	b.h.t.Helper()
	r := b.get(link)
	if r.status != http.StatusFound || !strings.HasPrefix(r.location(), b.h.url+"/callback?") {
		b.h.t.Fatalf("GET magic link = %d to %q, want 302 to the app's /callback", r.status, r.location())
	}
	u, _ := url.Parse(r.location())
	b.h.secret(u.Query().Get("idToken"))
	b.h.secret(u.Query().Get("refreshToken"))
	return r.location()
}

// callback opens JAM's redirect as a browser does: it is redirected at
// once to /callback without the tokens, which it then opens.
func (b *browser) callback(u string) *response {
	b.h.t.Helper()
	if r := b.get(u); r.status != http.StatusSeeOther || r.location() != "/callback" {
		b.h.t.Fatalf("GET /callback?tokens = %d to %q, want 303 to /callback", r.status, r.location())
	}
	return b.get("/callback")
}

// login logs the browser in as a user does: the form, the magic link from
// the outbox, JAM's redirect, the callback. It returns the callback's
// answer, which sets the cookies and leads to next or /me.
func (b *browser) login(email, next string) *response {
	b.h.t.Helper()
	r := b.callback(b.follow(b.startLogin(email, next)))
	if r.status != http.StatusSeeOther || r.cookies["jam_id"] == nil {
		b.h.t.Fatalf("GET /callback = %d to %q, want 303 and a session; body:\n%s", r.status, r.location(), r.body)
	}
	return r
}

// idToken returns the ID token the browser holds.
func (b *browser) idToken() string {
	id, _, _ := strings.Cut(b.cookie("jam_id"), "~")
	return id
}

// refreshWorks reports whether JAM still takes the refresh token.
func (h *harness) refreshWorks(refreshToken string) bool {
	h.t.Helper()
	_, err := h.client.Refresh(context.Background(), refreshToken)
	if err != nil && !errors.Is(err, jam.ErrUnauthorized) {
		h.t.Fatalf("Refresh = %v, want nil or ErrUnauthorized", err)
	}
	return err == nil
}
