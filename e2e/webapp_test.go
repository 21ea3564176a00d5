package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
)

var mePNG = flag.String("me-png", "", "write the screenshot of /me to this file, as the README's")

const (
	email = "ann@example.com"
	other = "bob@example.com"
	// tokenTTL is the lifetime of the ID tokens of the app's JAM server:
	// long enough for the steps before the expiry to run well before it,
	// short enough to wait for. The app renews a token once it has
	// expired (-refresh-before 0), so the test sees the renewal of an
	// expired token, and none before.
	tokenTTL = 20 * time.Second
	// stepTimeout bounds each step in the browser.
	stepTimeout = 20 * time.Second
	// testTimeout bounds the whole test, build included.
	testTimeout = 3 * time.Minute
)

// TestWebApp logs in to the example app in Chromium, as a user does, and
// goes through everything the app does with the login: the page asked for
// before logging in, /me, a reload, the API from the page's script, a
// link opened in another browser (confirmed there), the renewal of an
// expired ID token, logging out just after the ID token expired, the
// logout, and the message of a throttled login.
func TestWebApp(t *testing.T) {
	chromium := findChromium(t)
	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	defer cancel()

	app := startApp(ctx, t, buildApp(ctx, t),
		"-addr", "127.0.0.1:0", "-jam-addr", "127.0.0.1:0",
		"-token-ttl", tokenTTL.String(), "-refresh-before", "0s")
	b := startBrowser(ctx, t, chromium)

	b.step("a protected page, logged out", chromedp.Navigate(app.url+"/me?tab=api"),
		chromedp.WaitVisible(chromedp.CSS(`form[action="/login"] input[name="email"]`)))
	if got, want := b.location(), app.url+"/?next="+url.QueryEscape("/me?tab=api"); got != want {
		b.fatalf("/me logged out led to %s, want the login page with next, %s", got, want)
	}

	b.step("submit the address",
		chromedp.SendKeys(chromedp.CSS("#email"), email),
		chromedp.Click(chromedp.CSS(`button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.CSS("#sent")))
	if got := b.text("#sent"); !strings.Contains(got, email) {
		b.fatalf("the page after the form says %q, want the address %s", got, email)
	}

	link := app.magicLink(ctx, t, email)
	b.step("follow the magic link", chromedp.Navigate(link), chromedp.WaitVisible(chromedp.CSS("#greeting")))
	b.wantMe(app, "/me?tab=api", email)
	history, err := chromedp.Run(b.ctx, chromedp.NavigationEntries())
	if err != nil {
		b.fatalf("NavigationEntries: %v", err)
	}
	for _, e := range history.Entries {
		if strings.Contains(e.URL, "idToken") || strings.Contains(e.URL, "refreshToken") {
			b.fatalf("the history holds a URL with tokens: %.60s…", e.URL)
		}
	}
	if got, err := chromedp.Run(b.ctx, chromedp.Evaluate[string]("document.cookie")); err != nil || got != "" {
		b.fatalf("document.cookie = %q (%v), want \"\": the tokens' cookies are HttpOnly", got, err)
	}
	idCookie, refreshCookie := b.cookie(app, "jam_id"), b.cookie(app, "jam_refresh")
	for _, c := range []*network.Cookie{idCookie, refreshCookie} {
		if !c.HTTPOnly || c.SameSite != network.CookieSameSiteLax || c.Secure || c.Path != "/" {
			b.fatalf("cookie %s: HttpOnly %v, SameSite %q, Secure %v, Path %q; want true, Lax, false (development), /",
				c.Name, c.HTTPOnly, c.SameSite, c.Secure, c.Path)
		}
	}
	if c := names(b.cookies(app)); len(c) != 2 {
		b.fatalf("after the login the browser holds cookies %v, want jam_id and jam_refresh only", c)
	}
	expiry := expiryOf(t, idCookie.Value)

	b.step("reload", chromedp.Reload(), chromedp.WaitVisible(chromedp.CSS("#greeting")))
	b.wantMe(app, "/me?tab=api", email)
	if got := b.cookie(app, "jam_id").Value; got != idCookie.Value {
		b.fatalf("the reload of a fresh login renewed its ID token, want it kept")
	}

	b.step("call /api/me from the page",
		chromedp.Click(chromedp.CSS("#call-api")),
		chromedp.Poll[chromedp.Void](`document.getElementById("api-result").textContent !== ""`, chromedp.WithPollingTimeout(stepTimeout)))
	if got, want := b.text("#api-result"), `200 {"email":"`+email+`"}`; got != want {
		b.fatalf("the page's call of /api/me shows %q, want %q", got, want)
	}
	if *mePNG != "" {
		b.saveScreenshot(*mePNG)
	}

	// Another address's link, asked for here and opened in a browser
	// that holds none of this one's cookies: it logs in there only once
	// the user confirms, on a page that shows the address.
	b.step("ask for a link for "+other, chromedp.Navigate(app.url+"/"),
		chromedp.SendKeys(chromedp.CSS("#email"), other),
		chromedp.Click(chromedp.CSS(`button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.CSS("#sent")))
	b2 := b.newBrowserContext()
	b2.step("open the link in another browser", chromedp.Navigate(app.magicLink(ctx, t, other)), chromedp.WaitVisible(chromedp.CSS("#confirm")))
	if got := b2.text("#confirm"); !strings.Contains(got, other) {
		b2.fatalf("the confirmation page says %q, want the address %s", got, other)
	}
	if got, want := b2.location(), app.url+"/callback"; got != want {
		b2.fatalf("the confirmation page is at %s, want %s: the tokens out of the address bar", got, want)
	}
	if c := names(b2.cookies(app)); len(c) != 1 || c[0] != "jam_callback" {
		b2.fatalf("before confirming, the other browser holds cookies %v, want only jam_callback", c)
	}
	b2.step("confirm", chromedp.Click(chromedp.CSS("#confirm-yes")), chromedp.WaitVisible(chromedp.CSS("#greeting")))
	b2.wantMe(app, "/me", other)
	otherRefresh := b2.cookie(app, "jam_refresh").Value
	otherExpiry := expiryOf(t, b2.cookie(app, "jam_id").Value)

	// Real time passes here: the app and its JAM run in another process,
	// on the machine's clock. The wait is bounded by the token's lifetime.
	b.sleepUntil(ctx, expiry.Add(time.Second))
	b.step("reload after the ID token expired", chromedp.Navigate(app.url+"/me"), chromedp.WaitVisible(chromedp.CSS("#greeting")))
	b.wantMe(app, "/me", email)
	renewed := b.cookie(app, "jam_id")
	if renewed.Value == idCookie.Value || !expiryOf(t, renewed.Value).After(expiry) {
		b.fatalf("after the expiry, the reload kept the old ID token, want a new one")
	}
	if got := b.cookie(app, "jam_refresh").Value; got != refreshCookie.Value {
		b.fatalf("the renewal changed the refresh token cookie, want it kept")
	}

	// JAM takes no expired ID token for a logout; the app's checks allow
	// a minute's leeway. The logout must renew it and delete the
	// refresh token all the same.
	b2.sleepUntil(ctx, otherExpiry.Add(time.Second))
	b2.step("log out just after the ID token expired", chromedp.Click(chromedp.CSS("#logout")),
		chromedp.WaitVisible(chromedp.CSS(`form[action="/login"]`)))
	if c := b2.cookies(app); len(c) != 0 {
		b2.fatalf("after logging out the other browser holds cookies %v, want none", names(c))
	}
	if status := app.refresh(ctx, t, otherRefresh); status != http.StatusUnauthorized {
		t.Fatalf("JAM's refresh with the refresh token of the browser logged out after expiry = %d, want 401", status)
	}

	b.step("log out", chromedp.Click(chromedp.CSS("#logout")), chromedp.WaitVisible(chromedp.CSS(`form[action="/login"]`)))
	if got := b.location(); got != app.url+"/" {
		b.fatalf("logging out led to %s, want %s/", got, app.url)
	}
	if c := b.cookies(app); len(c) != 0 {
		b.fatalf("after logging out the browser holds cookies %v, want none", names(c))
	}
	b.step("/me after logging out", chromedp.Navigate(app.url+"/me"), chromedp.WaitVisible(chromedp.CSS(`form[action="/login"]`)))
	if got, want := b.location(), app.url+"/?next=%2Fme"; got != want {
		b.fatalf("/me after logging out led to %s, want %s", got, want)
	}
	if status := app.refresh(ctx, t, refreshCookie.Value); status != http.StatusUnauthorized {
		t.Fatalf("JAM's refresh with the refresh token of the logged-out browser = %d, want 401", status)
	}

	// A script on the page asks for links for many addresses, as a bot
	// would: the app throttles this client, and the form says so.
	b.step("many logins from one client",
		chromedp.Evaluate[chromedp.Void](`(async () => {
			for (let i = 0; i < 20; i++) {
				await fetch("/login", {method: "POST", headers: {"Content-Type": "application/x-www-form-urlencoded"}, body: "email=bot" + i + "%40example.com"});
			}
		})()`, chromedp.EvalAwaitPromise),
		chromedp.SendKeys(chromedp.CSS("#email"), email),
		chromedp.Click(chromedp.CSS(`button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.CSS("#problem")))
	if got := b.text("#problem"); !strings.Contains(got, "Too many sign-in attempts") {
		b.fatalf("the login page after many logins says %q, want the throttle's message", got)
	}
}

// sleepUntil waits, in real time, until t.
func (b *browser) sleepUntil(ctx context.Context, t time.Time) {
	b.t.Helper()
	wait := time.Until(t)
	if wait > tokenTTL+2*time.Second {
		b.fatalf("waiting %v, want at most the token's lifetime %v", wait, tokenTTL)
	}
	if wait <= 0 {
		return
	}
	b.t.Logf("waiting %v for an ID token to expire", wait.Round(time.Millisecond))
	select {
	case <-time.After(wait):
	case <-ctx.Done():
		b.fatalf("waiting for the ID token to expire: %v", ctx.Err())
	}
}

// findChromium returns the browser to drive: $CHROMIUM, else chromium on
// PATH. Without one the test skips, except in CI.
func findChromium(t *testing.T) string {
	name := os.Getenv("CHROMIUM")
	if name == "" {
		name = "chromium"
	}
	path, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("no Chromium (%v): CI must run the browser test; install Debian's chromium or set CHROMIUM", err)
		}
		t.Skipf("no Chromium (%v): install Debian's chromium or set CHROMIUM", err)
	}
	return path
}

// buildApp builds examples/webapp from the main module, next to this one.
func buildApp(ctx context.Context, t *testing.T) string {
	bin := filepath.Join(t.TempDir(), "webapp")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./examples/webapp")
	cmd.Dir = ".."
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./examples/webapp: %v\n%s", err, out)
	}
	return bin
}

// app is the example app running in its own process.
type app struct {
	url   string // without a trailing slash
	jam   string // the base URL of its JAM server, with one
	appID string
}

// startApp runs the app until the test ends, and reads the URLs it
// printed.
func startApp(ctx context.Context, t *testing.T, bin string, args ...string) *app {
	cmd := exec.Command(bin, args...)
	var stderr lockedBuffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	lines := make(chan string)
	go func() {
		s := bufio.NewScanner(stdout)
		for s.Scan() {
			lines <- s.Text()
		}
		close(lines)
		exited <- cmd.Wait() // after the reads, as StdoutPipe requires
	}()
	t.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		select {
		case err := <-exited:
			if err != nil {
				t.Errorf("the app, interrupted: %v, want exit status 0", err)
			}
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			t.Errorf("the app did not stop within 10s of an interrupt")
		}
		if t.Failed() {
			t.Logf("the app's standard error:\n%s", stderr.String())
		}
	})

	printed := map[string]string{}
	for printed["app"] == "" || printed["jam"] == "" || printed["app ID"] == "" {
		select {
		case line, ok := <-lines:
			if !ok {
				t.Fatalf("the app exited before printing its URLs; stderr:\n%s", stderr.String())
			}
			if k, v, ok := strings.Cut(line, ":"); ok {
				printed[k] = strings.TrimSpace(v)
			}
		case <-ctx.Done():
			t.Fatalf("the app printed no URLs: %v; stderr:\n%s", ctx.Err(), stderr.String())
		}
	}
	go func() {
		for range lines { // the rest of what it prints
		}
	}()
	return &app{url: strings.TrimSuffix(printed["app"], "/"), jam: printed["jam"], appID: printed["app ID"]}
}

// magicLink reads the newest link to the address in the JAM server's
// outbox, as a test reads mail from Mailpit's API.
func (a *app) magicLink(ctx context.Context, t *testing.T, email string) string {
	var outbox struct {
		Messages []struct{ Link string }
	}
	status, body := a.call(ctx, t, http.MethodGet, a.jam+"_jamtest/outbox?email="+url.QueryEscape(email), nil)
	if err := json.Unmarshal(body, &outbox); status != http.StatusOK || err != nil || len(outbox.Messages) == 0 {
		t.Fatalf("GET the outbox = %d %s, want a magic link", status, body)
	}
	return outbox.Messages[0].Link
}

// refresh asks the app's JAM for an ID token for the refresh token, as
// the app does, and returns the status.
func (a *app) refresh(ctx context.Context, t *testing.T, refreshToken string) int {
	body, _ := json.Marshal(map[string]string{"refreshToken": refreshToken})
	status, _ := a.call(ctx, t, http.MethodPost, a.jam+url.PathEscape(a.appID)+"/refresh", body)
	return status
}

func (a *app) call(ctx context.Context, t *testing.T, method, u string, body []byte) (int, []byte) {
	ctx, cancel := context.WithTimeout(ctx, stepTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, u, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, req.URL.Path, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	if err != nil {
		t.Fatalf("%s %s: %v", method, req.URL.Path, err)
	}
	return res.StatusCode, b
}

// browser is a tab of headless Chromium, with a screenshot of each step.
type browser struct {
	t      *testing.T
	ctx    context.Context
	name   string       // "" for the first browser context
	parent *browser     // of another browser context, which keeps its screenshots
	shots  []screenshot // of every browser context, in order
}

type screenshot struct {
	name string
	png  []byte
}

func startBrowser(ctx context.Context, t *testing.T, path string) *browser {
	var log lockedBuffer
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		// As root in a container, and on a machine whose network is
		// closed: no sandbox, GPU or background connections.
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(900, 720),
		chromedp.CombinedOutput(&log),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	tabCtx, cancelTab := chromedp.NewContext(allocCtx)
	b := &browser{t: t, ctx: tabCtx}
	t.Cleanup(func() {
		// The screenshots first, while the failure is at hand.
		if t.Failed() {
			b.saveScreenshots()
			t.Logf("Chromium's output:\n%s", log.String())
		}
		cancelTab()
		cancelAlloc()
	})
	// The first run starts the browser, for as long as ctx lasts.
	if err := chromedp.Do(tabCtx); err != nil {
		t.Fatalf("starting Chromium: %v\n%s", err, log.String())
	}
	return b
}

// newBrowserContext returns a tab in a new browser context of the same
// browser: another profile, with none of b's cookies, as another browser
// would be.
func (b *browser) newBrowserContext() *browser {
	ctx, cancel := chromedp.NewContext(b.ctx, chromedp.WithNewBrowserContext())
	b.t.Cleanup(cancel)
	b2 := &browser{t: b.t, ctx: ctx, name: "other browser", parent: b}
	if err := chromedp.Do(ctx); err != nil {
		b.fatalf("a new browser context: %v", err)
	}
	return b2
}

// step runs the actions within stepTimeout and takes a screenshot of the
// page they leave, failing the test if they fail.
func (b *browser) step(name string, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, stepTimeout)
	defer cancel()
	err := chromedp.Do(ctx, actions...)
	b.screenshot(name)
	if err != nil {
		b.t.Fatalf("step %q: %v", name, err)
	}
}

func (b *browser) screenshot(name string) {
	ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		b.t.Logf("screenshot of step %q: %v", name, err)
		return
	}
	if b.parent != nil {
		b.parent.shots = append(b.parent.shots, screenshot{b.name + ": " + name, png})
		return
	}
	b.shots = append(b.shots, screenshot{name, png})
}

// fatalf fails the test after a screenshot of the page it failed on.
func (b *browser) fatalf(format string, args ...any) {
	b.t.Helper()
	b.screenshot("failure")
	b.t.Fatalf(format, args...)
}

// saveScreenshots writes each step's screenshot to the test's artifact
// directory, which go test -artifacts keeps.
func (b *browser) saveScreenshots() {
	dir := b.t.ArtifactDir()
	for i, s := range b.shots {
		name := fmt.Sprintf("%02d-%s.png", i+1, strings.Map(func(r rune) rune {
			if r == ' ' || r == '/' {
				return '-'
			}
			return r
		}, s.name))
		if err := os.WriteFile(filepath.Join(dir, name), s.png, 0o644); err != nil {
			b.t.Logf("saving a screenshot: %v", err)
		}
	}
	b.t.Logf("screenshots of the %d steps in %s (kept with go test -artifacts)", len(b.shots), dir)
}

func (b *browser) saveScreenshot(path string) {
	b.t.Helper()
	if len(b.shots) == 0 {
		b.t.Fatal("no screenshot to save")
	}
	if err := os.WriteFile(path, b.shots[len(b.shots)-1].png, 0o644); err != nil {
		b.t.Fatal(err)
	}
	b.t.Logf("saved the screenshot of /me as %s", path)
}

func (b *browser) text(sel string) string {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, stepTimeout)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		b.fatalf("text of %s: %v", sel, err)
	}
	return strings.TrimSpace(s)
}

func (b *browser) location() string {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, stepTimeout)
	defer cancel()
	loc, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil {
		b.fatalf("location: %v", err)
	}
	return loc
}

// wantMe checks that the tab shows path, greeting the user.
func (b *browser) wantMe(a *app, path, user string) {
	b.t.Helper()
	if got := b.location(); got != a.url+path {
		b.fatalf("the tab shows %s, want %s%s", got, a.url, path)
	}
	if got, want := b.text("#greeting"), "Hello, "+user; got != want {
		b.fatalf("/me says %q, want %q", got, want)
	}
}

// cookies returns the browser's cookies for the app, HttpOnly ones
// included.
func (b *browser) cookies(a *app) []*network.Cookie {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, stepTimeout)
	defer cancel()
	res, err := chromedp.Call(ctx, network.GetCookies, network.GetCookiesParams{URLs: []string{a.url + "/"}})
	if err != nil {
		b.fatalf("GetCookies: %v", err)
	}
	return res.Cookies
}

func (b *browser) cookie(a *app, name string) *network.Cookie {
	b.t.Helper()
	for _, c := range b.cookies(a) {
		if c.Name == name {
			return c
		}
	}
	b.fatalf("the browser holds no cookie %s", name)
	return nil
}

func names(cookies []*network.Cookie) []string {
	var n []string
	for _, c := range cookies {
		n = append(n, c.Name)
	}
	return n
}

// expiryOf reads exp from an ID token without verifying it: the app has
// verified it, and the test only times its wait with it.
func expiryOf(t *testing.T, idToken string) time.Time {
	t.Helper()
	var claims struct {
		Exp int64 `json:"exp"`
	}
	idToken, _, _ = strings.Cut(idToken, "~") // the cookie's tag of the refresh token
	parts := strings.Split(idToken, ".")
	if len(parts) != 3 {
		t.Fatal("the ID token cookie is not a JWT")
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err == nil {
		err = json.Unmarshal(payload, &claims)
	}
	if err != nil || claims.Exp == 0 {
		t.Fatalf("the ID token cookie has no exp (%v)", err)
	}
	return time.Unix(claims.Exp, 0)
}

// lockedBuffer collects the output of a process, written by os/exec's
// goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
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
