package e2e

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

var spaPNG = flag.String("spa-png", "", "write the screenshot of the single-page app, logged in, to this file, as examples/spa's README's")

// TestSpa logs in to the single-page app, examples/spa, in Chromium, as a
// user does: the page calls the app's JAM across origins, as JAM's browser
// SDK does, so every step also checks that JAM answers CORS as the browser
// needs. It goes through the login, the API, a refresh, a logout, the
// refresh JAM then refuses, and a logout everywhere, and fails on any
// error in the browser's console but the one refusal it expects.
func TestSpa(t *testing.T) {
	chromium := findChromium(t)
	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	defer cancel()

	app := startApp(ctx, t, buildSPA(ctx, t), "-addr", "127.0.0.1:0", "-jam-addr", "127.0.0.1:0")
	if origin(t, app.url) == origin(t, app.jam) {
		t.Fatalf("the app (%s) and its JAM (%s) share an origin, want two: the page must call JAM across origins", app.url, app.jam)
	}
	b := startBrowser(ctx, t, chromium)
	console := watchConsole(b)

	b.stepUntil("the page", "#login-form", chromedp.Navigate(app.url+"/"))
	login := b.logIn(ctx, app)
	// The page took the tokens out of the address bar and the history.
	if got := b.location(); got != app.url+"/" {
		b.fatalf("the address bar shows %.60s…, want %s/", got, app.url)
	}
	history, err := chromedp.Run(b.ctx, chromedp.NavigationEntries())
	if err != nil {
		b.fatalf("NavigationEntries: %v", err)
	}
	for _, e := range history.Entries {
		if strings.Contains(e.URL, "idToken") || strings.Contains(e.URL, "refreshToken") {
			b.fatalf("the history holds a URL with tokens: %.60s…", e.URL)
		}
	}

	b.callAPI()

	b.stepUntil("reload", "#greeting", chromedp.Reload())
	if got := b.tokens(); got != login {
		b.fatalf("the reload changed the tokens, want them kept in sessionStorage")
	}

	b.step("refresh the ID token",
		chromedp.Click(chromedp.CSS("#refresh")),
		chromedp.Poll[chromedp.Void](`JSON.parse(sessionStorage.getItem("jam.tokens")).idToken !== `+jsString(login.IDToken),
			chromedp.WithPollingTimeout(stepTimeout)))
	refreshed := b.tokens()
	if refreshed.IDToken == login.IDToken || refreshed.RefreshToken != login.RefreshToken {
		b.fatalf("after the refresh, the ID token changed: %v, the refresh token changed: %v; want true, false",
			refreshed.IDToken != login.IDToken, refreshed.RefreshToken != login.RefreshToken)
	}
	if expiryOf(t, refreshed.IDToken).Before(expiryOf(t, login.IDToken)) {
		b.fatalf("the refreshed ID token expires before the first one")
	}
	b.callAPI() // with the new ID token
	if *spaPNG != "" {
		if err := os.WriteFile(*spaPNG, b.shots[len(b.shots)-1].png, 0o644); err != nil {
			t.Fatal(err)
		}
	}

	b.stepUntil("log out", "#login-form", chromedp.Click(chromedp.CSS("#logout")))
	if got := b.tokens(); got != (spaTokens{}) {
		b.fatalf("after logging out, sessionStorage holds tokens, want none")
	}
	if status := app.refresh(ctx, t, login.RefreshToken); status != http.StatusUnauthorized {
		t.Fatalf("JAM's refresh with the logged-out refresh token = %d, want 401", status)
	}
	console.wantNone(b, "the steps up to the logout")

	// A copy of the tokens from before the logout, as another tab of the
	// browser or a thief would hold: the page's refresh with them fails,
	// and the page shows JAM's 401 and logs out.
	b.stepUntil("put back the logged-out tokens", "#greeting",
		chromedp.Evaluate[chromedp.Void](`sessionStorage.setItem("jam.tokens", `+jsString(mustJSON(t, refreshed))+`)`),
		chromedp.Reload())
	b.stepUntil("refresh with the logged-out refresh token", "#error", chromedp.Click(chromedp.CSS("#refresh")))
	if got := b.text("#error"); !strings.HasPrefix(got, "refresh: 401") {
		b.fatalf("the page after the refused refresh says %q, want %q", got, "refresh: 401 …")
	}
	if got := b.tokens(); got != (spaTokens{}) {
		b.fatalf("after the refused refresh, sessionStorage holds tokens, want none")
	}
	b.step("the login form after the refused refresh", chromedp.WaitVisible(chromedp.CSS("#login-form")))
	// Chromium logs each answer of an error status; this one, alone, is
	// expected.
	refreshURL := app.jam + url.PathEscape(app.appID) + "/refresh"
	console.wantOnly(b, "the refused refresh", func(m consoleMessage) bool {
		return m.level == "error" && m.source == "network" && m.url == refreshURL && strings.Contains(m.text, "401")
	})

	// Logging out everywhere ends the login of another device too.
	other := app.loginElsewhere(ctx, t, email)
	again := b.logIn(ctx, app)
	b.stepUntil("log out everywhere", "#login-form", chromedp.Click(chromedp.CSS("#logout-all")))
	if got := b.tokens(); got != (spaTokens{}) {
		b.fatalf("after logging out everywhere, sessionStorage holds tokens, want none")
	}
	for name, refreshToken := range map[string]string{"this browser's": again.RefreshToken, "the other device's": other.RefreshToken} {
		if status := app.refresh(ctx, t, refreshToken); status != http.StatusUnauthorized {
			t.Errorf("JAM's refresh with %s refresh token after logging out everywhere = %d, want 401", name, status)
		}
	}
	console.wantNone(b, "the steps after the refused refresh")
}

// TestSpaRefreshBeforeExpiry checks that the page refreshes the ID token
// by itself before it expires: with 4-second tokens it does so a second
// before each expires, and the test waits for the page, not the clock.
func TestSpaRefreshBeforeExpiry(t *testing.T) {
	chromium := findChromium(t)
	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	defer cancel()

	app := startApp(ctx, t, buildSPA(ctx, t), "-addr", "127.0.0.1:0", "-jam-addr", "127.0.0.1:0", "-token-ttl", "4s")
	b := startBrowser(ctx, t, chromium)
	console := watchConsole(b)
	b.stepUntil("the page", "#login-form", chromedp.Navigate(app.url+"/"))
	login := b.logIn(ctx, app)

	b.step("wait for the page to refresh the ID token",
		chromedp.Poll[chromedp.Void](`JSON.parse(sessionStorage.getItem("jam.tokens") ?? "{}").idToken !== `+jsString(login.IDToken),
			chromedp.WithPollingTimeout(stepTimeout)))
	refreshed := b.tokens()
	later := expiryOf(t, refreshed.IDToken).After(expiryOf(t, login.IDToken))
	if refreshed.RefreshToken != login.RefreshToken || !later {
		b.fatalf("the page's refresh kept the refresh token: %v, gave a later expiry: %v; want true, true",
			refreshed.RefreshToken == login.RefreshToken, later)
	}
	if got, want := b.text("#greeting"), "Signed in as "+email; got != want {
		b.fatalf("after the refresh the page says %q, want %q", got, want)
	}
	b.callAPI()
	console.wantNone(b, "the refreshes")
}

// logIn logs in through the page, which must show its login form: asks
// for a magic link and follows the newest in the outbox. It returns the
// tokens the page keeps.
func (b *browser) logIn(ctx context.Context, app *app) spaTokens {
	b.t.Helper()
	b.stepUntil("ask for a magic link", "#sent",
		chromedp.Clear(chromedp.CSS("#email")), // a reload may have kept an address
		chromedp.SendKeys(chromedp.CSS("#email"), email),
		chromedp.Click(chromedp.CSS(`#login-form button[type="submit"]`)))
	if got := b.text("#sent"); !strings.Contains(got, email) {
		b.fatalf("the page after asking for a link says %q, want the address %s", got, email)
	}
	b.stepUntil("follow the magic link", "#greeting", chromedp.Navigate(app.magicLink(ctx, b.t, email)))
	if got, want := b.text("#greeting"), "Signed in as "+email; got != want {
		b.fatalf("the page says %q, want %q", got, want)
	}
	tokens := b.tokens()
	if tokens.IDToken == "" || tokens.RefreshToken == "" {
		b.fatalf("sessionStorage holds %v, want both tokens", tokens)
	}
	return tokens
}

// stepUntil is step, waiting after the actions until the page shows sel
// or its error message: a call that failed ends the step at once, with the
// page's message, rather than at the step's timeout.
func (b *browser) stepUntil(name, sel string, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	shown := fmt.Sprintf(`document.querySelector(%s)?.checkVisibility() || document.getElementById("error").checkVisibility()`, jsString(sel))
	b.step(name, append(actions, chromedp.Poll[chromedp.Void](shown, chromedp.WithPollingTimeout(stepTimeout)))...)
	if sel == "#error" {
		return
	}
	ctx, cancel := context.WithTimeout(b.ctx, stepTimeout)
	defer cancel()
	msg, err := chromedp.Run(ctx, chromedp.Evaluate[string](`(e => e.checkVisibility() ? e.textContent : "")(document.getElementById("error"))`))
	if err != nil {
		b.fatalf("step %q: reading the page's error: %v", name, err)
	}
	if msg != "" {
		b.fatalf("step %q: the page shows %q, want %s", name, msg, sel)
	}
}

// buildSPA builds examples/spa from the main module, next to this one.
func buildSPA(ctx context.Context, t *testing.T) string {
	bin := filepath.Join(t.TempDir(), "spa")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./examples/spa")
	cmd.Dir = ".."
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./examples/spa: %v\n%s", err, out)
	}
	return bin
}

// spaTokens are the tokens the page keeps in sessionStorage.
type spaTokens struct {
	IDToken      string `json:"idToken"`
	RefreshToken string `json:"refreshToken"`
}

// String keeps the tokens out of the test's output.
func (t spaTokens) String() string {
	return fmt.Sprintf("{idToken: %d bytes, refreshToken: %d bytes}", len(t.IDToken), len(t.RefreshToken))
}

// tokens reads the tokens the page keeps; none when it keeps none.
func (b *browser) tokens() spaTokens {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, stepTimeout)
	defer cancel()
	stored, err := chromedp.Run(ctx, chromedp.Evaluate[string](`sessionStorage.getItem("jam.tokens") ?? ""`))
	if err != nil {
		b.fatalf("reading sessionStorage: %v", err)
	}
	var t spaTokens
	if stored != "" {
		if err := json.Unmarshal([]byte(stored), &t); err != nil {
			b.fatalf("sessionStorage holds no JSON tokens: %v", err)
		}
	}
	return t
}

// callAPI calls the app's API from the page, and checks that it answered
// with the address of the login.
func (b *browser) callAPI() {
	b.t.Helper()
	b.step("call /api/me",
		chromedp.Evaluate[chromedp.Void](`document.getElementById("api-result").textContent = ""`),
		chromedp.Click(chromedp.CSS("#call-api")),
		chromedp.Poll[chromedp.Void](`document.getElementById("api-result").textContent !== ""`, chromedp.WithPollingTimeout(stepTimeout)))
	if got, want := b.text("#api-result"), `200 {"email":"`+email+`"}`; got != want {
		b.fatalf("the page's call of /api/me shows %q, want %q", got, want)
	}
}

// loginElsewhere logs in as another device does, without the browser:
// asks JAM for a magic link and follows it, and returns the tokens of its
// redirect.
func (a *app) loginElsewhere(ctx context.Context, t *testing.T, email string) spaTokens {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"email": email})
	if status, _ := a.call(ctx, t, http.MethodPost, a.jam+url.PathEscape(a.appID)+"/authenticate", body); status != http.StatusOK {
		t.Fatalf("JAM's authenticate = %d, want 200", status)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, a.magicLink(ctx, t, email), nil)
	if err != nil {
		t.Fatal(err)
	}
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := noRedirect.Do(req)
	if err != nil {
		t.Fatalf("following the magic link: %v", err)
	}
	res.Body.Close()
	loc, err := res.Location()
	if err != nil {
		t.Fatalf("the magic link answered %d with no redirect: %v", res.StatusCode, err)
	}
	tokens := spaTokens{IDToken: loc.Query().Get("idToken"), RefreshToken: loc.Query().Get("refreshToken")}
	if tokens.IDToken == "" || tokens.RefreshToken == "" {
		t.Fatalf("the magic link's redirect holds %v, want both tokens", tokens)
	}
	return tokens
}

// consoleMessage is a message of the browser's console: a call of the
// console API, an uncaught exception, or an entry of the browser's log,
// such as a network error or a CORS refusal.
type consoleMessage struct {
	level  string // error, warning, info, verbose; the console API's type; "exception"
	source string // the log entry's, such as network or javascript; "console" for the API
	text   string
	url    string
}

func (m consoleMessage) String() string {
	return fmt.Sprintf("%s %s: %s (%s)", m.source, m.level, m.text, m.url)
}

// console collects the tab's console messages from the Runtime and Log
// domains, which chromedp enables on every tab.
type console struct {
	mu       sync.Mutex
	messages []consoleMessage
	checked  int // how many messages a check has seen
}

func watchConsole(b *browser) *console {
	c := &console{}
	err := chromedp.Listen(b.ctx, func(ev any) {
		var m consoleMessage
		switch ev := ev.(type) {
		case *runtime.EventConsoleAPICalled:
			var args []string
			for _, a := range ev.Args {
				if a.Description != "" {
					args = append(args, a.Description)
				} else {
					args = append(args, string(a.Value))
				}
			}
			m = consoleMessage{level: string(ev.Type), source: "console", text: strings.Join(args, " ")}
		case *runtime.EventExceptionThrown:
			d := ev.ExceptionDetails
			m = consoleMessage{level: "exception", source: "javascript", text: d.Text, url: d.URL}
			if d.Exception != nil {
				m.text += " " + d.Exception.Description
			}
		case *log.EventEntryAdded:
			e := ev.Entry
			m = consoleMessage{level: string(e.Level), source: string(e.Source), text: e.Text, url: e.URL}
		default:
			return
		}
		c.mu.Lock()
		c.messages = append(c.messages, m)
		c.mu.Unlock()
	})
	if err != nil {
		b.fatalf("listening to the console: %v", err)
	}
	b.t.Cleanup(func() {
		if b.t.Failed() {
			c.mu.Lock()
			defer c.mu.Unlock()
			b.t.Logf("the console received %d messages:", len(c.messages))
			for _, m := range c.messages {
				b.t.Logf("  %s", m)
			}
		}
	})
	return c
}

// unchecked returns the messages since the last check, and marks them
// checked.
func (c *console) unchecked() []consoleMessage {
	c.mu.Lock()
	defer c.mu.Unlock()
	m := c.messages[c.checked:]
	c.checked = len(c.messages)
	return m
}

// wantNone fails the test if the console received an error, a warning,
// an exception or anything about CORS since the last check. Other
// messages, such as Chromium's verbose hints, are logged.
func (c *console) wantNone(b *browser, during string) {
	b.t.Helper()
	c.wantOnly(b, during, nil)
}

// wantOnly is wantNone, except that exactly one of the messages since
// the last check must be one for which expected returns true, and is
// allowed.
func (c *console) wantOnly(b *browser, during string, expected func(consoleMessage) bool) {
	b.t.Helper()
	var bad []string
	found := false
	for _, m := range c.unchecked() {
		switch {
		case expected != nil && !found && expected(m):
			found = true
		case isCORS(m) || m.level == "error" || m.level == "warning" || m.level == "exception" || m.level == "assert":
			bad = append(bad, m.String())
		default:
			b.t.Logf("console, during %s: %s", during, m)
		}
	}
	if len(bad) > 0 {
		b.fatalf("the console, during %s, received:\n%s", during, strings.Join(bad, "\n"))
	}
	if expected != nil && !found {
		b.fatalf("the console, during %s, received not the message expected", during)
	}
}

func isCORS(m consoleMessage) bool {
	return strings.Contains(m.text, "CORS") || strings.Contains(m.text, "Access-Control-") || strings.Contains(m.text, "cross-origin")
}

// origin returns the scheme and host of a URL.
func origin(t *testing.T, rawURL string) string {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatalf("url.Parse(%q) = %v", rawURL, err)
	}
	return u.Scheme + "://" + u.Host
}

// jsString quotes s as a JavaScript string.
func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
