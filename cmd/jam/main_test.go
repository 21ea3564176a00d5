package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/go-jam/go-jam/jam"
	"github.com/go-jam/go-jam/jam/jamtest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

const ann = "ann@example.com"

// result is what one run of jam did.
type result struct {
	code           int
	stdout, stderr string
}

// jamCmd runs jam with args and stdin, with JAM_* unset so that only the
// flags count.
func jamCmd(t *testing.T, stdin string, args ...string) result {
	t.Helper()
	t.Setenv("JAM_APP_ID", "")
	t.Setenv("JAM_BASE_URL", "")
	var stdout, stderr bytes.Buffer
	code := run(t.Context(), args, strings.NewReader(stdin), &stdout, &stderr)
	return result{code, stdout.String(), stderr.String()}
}

func TestDemo(t *testing.T) {
	r := jamCmd(t, "", "demo")
	if r.code != 0 {
		t.Fatalf("jam demo = %d, want 0\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	for _, step := range []string{
		"authenticate", "read the magic link", "follow the magic link", "verify locally",
		"verify remotely", "refresh", "verify the new token", "log out this device",
		"refresh again fails", "log out everywhere", "keep to openapi.yaml", "all 11 steps passed",
	} {
		if !strings.Contains(r.stdout, step) {
			t.Errorf("jam demo output lacks %q:\n%s", step, r.stdout)
		}
	}
	if strings.Contains(r.stdout, "✗") || strings.Contains(r.stdout, "eyJ") {
		t.Errorf("jam demo output has a failed step or a token:\n%s", r.stdout)
	}
	if r.stderr != "" {
		t.Errorf("jam demo stderr = %q, want nothing", r.stderr)
	}
}

func TestUsageErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		code int
	}{
		{"no command", nil, 2},
		{"unknown command", []string{"login"}, 2},
		{"unknown flag", []string{"verify", "--bogus", "x"}, 2},
		{"missing token", []string{"verify", "--app", "a"}, 2},
		{"two tokens", []string{"refresh", "--app", "a", "t1", "t2"}, 2},
		{"missing email", []string{"authenticate", "--app", "a"}, 2},
		{"no app", []string{"jwks"}, 2},
		{"bad base URL", []string{"jwks", "--app", "a", "--base-url", "ftp://x"}, 2},
		{"logout without id token", []string{"logout", "--app", "a", "--all"}, 2},
		{"logout without what", []string{"logout", "--app", "a", "--id-token", "t"}, 2},
		{"logout with both", []string{"logout", "--app", "a", "--id-token", "t", "--all", "--refresh-token", "r"}, 2},
		{"logout two stdin tokens", []string{"logout", "--app", "a", "--id-token", "-", "--refresh-token", "-"}, 2},
		{"serve argument", []string{"serve", "now"}, 2},
		{"serve bad ttl", []string{"serve", "--token-ttl", "0s"}, 2},
		{"serve negative shutdown timeout", []string{"serve", "--shutdown-timeout", "-1s"}, 2},
		{"negative leeway", []string{"verify", "--app", "a", "--leeway", "-1s", "x"}, 2},
		{"bad leeway", []string{"verify", "--app", "a", "--leeway", "soon", "x"}, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := jamCmd(t, "x", tt.args...)
			if r.code != tt.code {
				t.Errorf("jam %q = %d, want %d\nstderr:\n%s", tt.args, r.code, tt.code, r.stderr)
			}
			if !strings.Contains(r.stderr, "usage: jam") {
				t.Errorf("jam %q stderr = %q, want the usage", tt.args, r.stderr)
			}
			if len(tt.args) > 0 && commands[tt.args[0]] != nil && !strings.HasPrefix(r.stderr, "jam "+tt.args[0]+": ") {
				t.Errorf("jam %q stderr = %q, want it to start with %q", tt.args, r.stderr, "jam "+tt.args[0]+": ")
			}
			if r.stdout != "" {
				t.Errorf("jam %q stdout = %q, want nothing", tt.args, r.stdout)
			}
		})
	}

	t.Run("token as an unknown flag", func(t *testing.T) {
		const token = "-Ab3dEfGhIjKlMnOpQrStUvWxYz0123456789_-AbCdE"
		r := jamCmd(t, "", "refresh", "--app", "a", token)
		if r.code != 2 || !strings.HasPrefix(r.stderr, "jam refresh: ") || strings.Contains(r.stderr, token[1:]) {
			t.Errorf("jam refresh TOKEN-STARTING-WITH-DASH = %d, stderr %q; want 2, a jam refresh: message without the token", r.code, r.stderr)
		}
	})
}

// TestHelp asks for help every way there is: it goes to stdout, exits 0,
// and shows each default once, with the environment set or not.
func TestHelp(t *testing.T) {
	ask := [][]string{{"-h"}, {"--help"}, {"help"}}
	for name := range commands {
		ask = append(ask, []string{name, "-h"}, []string{name, "--help"})
	}
	for _, env := range []string{"", "from-env.example"} {
		for _, args := range ask {
			t.Run(env+" "+strings.Join(args, " "), func(t *testing.T) {
				t.Setenv("JAM_APP_ID", env)
				t.Setenv("JAM_BASE_URL", env)
				var stdout, stderr bytes.Buffer
				code := run(t.Context(), args, nil, &stdout, &stderr)
				if code != 0 || stderr.Len() != 0 || !strings.HasPrefix(stdout.String(), "usage: jam") {
					t.Fatalf("jam %q = %d, stdout %q, stderr %q; want 0, the usage on stdout alone", args, code, stdout.String(), stderr.String())
				}
				for line := range strings.Lines(stdout.String()) {
					if strings.Count(line, "default") > 1 {
						t.Errorf("jam %q: %q shows a default twice", args, line)
					}
				}
				if env != "" && strings.Contains(stdout.String(), env) {
					t.Errorf("jam %q shows the environment's value as a default:\n%s", args, stdout.String())
				}
			})
		}
	}
}

// TestVerifyLeeway checks a token 49 seconds past its exp, which the
// default leeway of a minute accepts and a shorter one refuses.
func TestVerifyLeeway(t *testing.T) {
	const ttl = time.Hour
	srv := jamtest.NewServer(
		jamtest.WithLogger(slog.New(slog.DiscardHandler)),
		jamtest.WithTokenTTL(ttl),
		jamtest.WithClock(func() time.Time { return time.Now().Add(-ttl - 49*time.Second) }),
	)
	defer srv.Close()
	idToken, _ := srv.IssueTokens(ann)

	tests := []struct {
		leeway []string
		code   int
	}{
		{nil, 0},
		{[]string{"--leeway", "2m"}, 0},
		{[]string{"--leeway", "40s"}, 1},
		{[]string{"--leeway", "0"}, 1},
	}
	for _, tt := range tests {
		args := append([]string{"verify", "--base-url", srv.URL, "--app", srv.AppID}, tt.leeway...)
		r := jamCmd(t, idToken, append(args, "-")...)
		if r.code != tt.code {
			t.Errorf("jam verify %q (49s past exp) = %d, want %d\nstderr: %s", tt.leeway, r.code, tt.code, r.stderr)
		}
		if tt.code == 1 && !strings.Contains(r.stderr, "expired") {
			t.Errorf("jam verify %q stderr = %q, want it to say the token expired", tt.leeway, r.stderr)
		}
	}
}

// TestUnreachableHint: a connection or DNS failure against the default
// base URL says how to point jam elsewhere; other failures do not.
func TestUnreachableHint(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + ln.Addr().String()
	ln.Close()
	srv := jamtest.NewServer(jamtest.WithLogger(slog.New(slog.DiscardHandler)))
	defer srv.Close()
	idToken, _ := srv.IssueTokens(ann)
	defer func(saved string) { defaultBaseURL = saved }(defaultBaseURL)

	tests := []struct {
		name, defaultURL string
		args             []string
		hint             bool
	}{
		{"refused", closed, []string{"jwks", "--app", "a"}, true},
		{"no such host", "http://jam.invalid", []string{"authenticate", "--app", "a", ann}, true},
		{"verify fetching keys", closed, []string{"verify", "--app", "a", idToken}, true},
		{"another base URL refused", "http://jam.invalid", []string{"jwks", "--app", "a", "--base-url", closed}, true},
		{"JAM answered", srv.URL, []string{"jwks", "--app", "no-such-app"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			defaultBaseURL = tt.defaultURL
			r := jamCmd(t, "", tt.args...)
			if r.code != 1 {
				t.Errorf("jam %q = %d, want 1\nstderr: %s", tt.args, r.code, r.stderr)
			}
			if got := strings.Contains(r.stderr, "JAM_BASE_URL") && strings.Contains(r.stderr, "--base-url"); got != tt.hint {
				t.Errorf("jam %q stderr = %q; hint of JAM_BASE_URL and --base-url: %v, want %v", tt.args, r.stderr, got, tt.hint)
			}
		})
	}
}

// TestBaseURLWithoutScheme: host:port with an IP or a name gives one
// message, which says what to write, where the two once differed.
func TestBaseURLWithoutScheme(t *testing.T) {
	ip := jamCmd(t, "", "jwks", "--app", "a", "--base-url", "127.0.0.1:8787")
	name := jamCmd(t, "", "jwks", "--app", "a", "--base-url", "localhost:8787")
	first := func(s string) string { line, _, _ := strings.Cut(s, "\n"); return line }
	if ip.code != 2 || name.code != 2 {
		t.Fatalf("jam jwks --base-url host:port = %d, %d; want 2, 2", ip.code, name.code)
	}
	if first(ip.stderr) != first(name.stderr) || !strings.Contains(ip.stderr, "http://") {
		t.Errorf("jam jwks --base-url 127.0.0.1:8787 said %q and localhost:8787 said %q, want one message naming http://", first(ip.stderr), first(name.stderr))
	}
}

// TestIssuerHint: verified at localhost, a token jam serve issued at
// 127.0.0.1 is refused locally and accepted remotely; the hint says why.
func TestIssuerHint(t *testing.T) {
	srv := jamtest.NewServer(jamtest.WithLogger(slog.New(slog.DiscardHandler)))
	defer srv.Close()
	idToken, _ := srv.IssueTokens(ann)
	localhost := strings.Replace(srv.URL, "127.0.0.1", "localhost", 1)

	local := jamCmd(t, "", "verify", "--app", srv.AppID, "--base-url", localhost, idToken)
	if local.code != 1 || !strings.Contains(local.stderr, "jam: hint:") || !strings.Contains(local.stderr, "--remote") {
		t.Errorf("jam verify at localhost = %d, stderr %q; want 1 and a hint about the issuer", local.code, local.stderr)
	}
	remote := jamCmd(t, "", "verify", "--remote", "--app", srv.AppID, "--base-url", localhost, idToken)
	if remote.code != 0 {
		t.Errorf("jam verify --remote at localhost = %d, stderr %q; want 0", remote.code, remote.stderr)
	}
}

// TestClientCommands runs each client command against a JAM server in
// this process.
func TestClientCommands(t *testing.T) {
	srv := jamtest.NewServer(jamtest.WithLogger(slog.New(slog.DiscardHandler)))
	defer srv.Close()
	at := []string{"--base-url", srv.URL, "--app", srv.AppID}
	cmd := func(name string, args ...string) []string { return append(append([]string{name}, at...), args...) }
	idToken, refreshToken := srv.IssueTokens(ann)
	_, other := srv.IssueTokens(ann)

	tests := []struct {
		name    string
		stdin   string
		args    []string
		code    int
		stdout  string // a part of it
		private bool   // stdout holds a token, so do not print it
	}{
		{"authenticate", "", cmd("authenticate", ann), 0, "magic link sent", false},
		{"authenticate bad address", "", cmd("authenticate", "ann"), 1, "", false},
		{"verify", "", cmd("verify", idToken), 0, `"email": "ann@example.com"`, false},
		{"verify stdin", idToken + "\n", cmd("verify", "-"), 0, `"token_use": "id"`, false},
		{"verify remote stdin", idToken, cmd("verify", "--remote", "-"), 0, `"aud": "` + srv.AppID + `"`, false},
		{"verify bad token", "", cmd("verify", "not.a.token"), 1, "", false},
		{"verify empty stdin", " \n", cmd("verify", "-"), 2, "", false},
		{"verify huge stdin", strings.Repeat("a", 100<<10), cmd("verify", "-"), 1, "", false},
		// "--", because a refresh token may start with "-".
		{"refresh", "", cmd("refresh", "--", refreshToken), 0, "eyJ", true},
		{"refresh json", refreshToken, cmd("refresh", "--json", "-"), 0, `{"idToken":"eyJ`, true},
		{"refresh unknown token", "", cmd("refresh", "no-such-refresh-token"), 1, "", false},
		{"jwks", "", cmd("jwks"), 0, `"crv": "P-521"`, false},
		{"logout one", idToken, cmd("logout", "--id-token", "-", "--refresh-token", other), 0, "logged out", false},
		{"logout one again", "", cmd("logout", "--id-token", idToken, "--refresh-token", other), 1, "", false},
		{"logout bad id token", "", cmd("logout", "--id-token", "x", "--all"), 1, "", false},
		{"logout all", "", cmd("logout", "--id-token", idToken, "--all"), 0, "logged out everywhere", false},
		{"refresh after logout", "", cmd("refresh", "--", refreshToken), 1, "", false},
		{"unknown app", "", []string{"jwks", "--base-url", srv.URL, "--app", "nope"}, 1, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := jamCmd(t, tt.stdin, tt.args...)
			shown := r.stdout
			if tt.private {
				shown = "(a token)"
			}
			if r.code != tt.code || !strings.Contains(r.stdout, tt.stdout) {
				t.Errorf("jam %s = %d, stdout %q; want %d and %q\nstderr: %s", tt.name, r.code, shown, tt.code, tt.stdout, r.stderr)
			}
			if r.code == 1 && !strings.HasPrefix(r.stderr, "jam") {
				t.Errorf("jam %s stderr = %q, want a jam: message", tt.name, r.stderr)
			}
			for _, secret := range []string{idToken, refreshToken, other, "no-such-refresh-token"} {
				if strings.Contains(r.stderr, secret) {
					t.Errorf("jam %s stderr holds a token: %q", tt.name, r.stderr)
				}
			}
		})
	}

	t.Run("environment", func(t *testing.T) {
		t.Setenv("JAM_BASE_URL", srv.URL)
		t.Setenv("JAM_APP_ID", srv.AppID)
		var stdout, stderr bytes.Buffer
		if code := run(t.Context(), []string{"jwks"}, nil, &stdout, &stderr); code != 0 {
			t.Errorf("JAM_*=… jam jwks = %d, want 0\nstderr: %s", code, stderr.String())
		}
	})

	t.Run("refreshed token verifies", func(t *testing.T) {
		_, refresh := srv.IssueTokens(ann)
		r := jamCmd(t, refresh, cmd("refresh", "-")...)
		if _, err := srv.Client().VerifyToken(t.Context(), strings.TrimSpace(r.stdout)); err != nil {
			t.Errorf("VerifyToken(jam refresh output) = %v, want nil", err)
		}
	})
}

// server is a jam serve running in the background.
type server struct {
	lines  chan string // its standard output
	done   chan int    // its exit status
	cancel context.CancelFunc
	stderr *lockedBuffer
	once   sync.Once
}

func startServe(t *testing.T, args ...string) *server {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	pr, pw := io.Pipe()
	s := &server{lines: make(chan string, 100), done: make(chan int, 1), cancel: cancel, stderr: newLockedBuffer()}
	go func() {
		code := run(ctx, append([]string{"serve"}, args...), nil, pw, s.stderr)
		pw.Close()
		s.done <- code
	}()
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			s.lines <- sc.Text()
		}
		close(s.lines)
	}()
	t.Cleanup(func() { s.stop(t) })
	return s
}

// field reads lines until one starts with prefix, and returns the rest.
func (s *server) field(t *testing.T, prefix string) string {
	t.Helper()
	for line := range s.lines {
		if rest, ok := strings.CutPrefix(line, prefix); ok {
			return strings.TrimSpace(rest)
		}
	}
	t.Fatalf("jam serve stopped before printing %q; stderr:\n%s", prefix, s.stderr)
	return ""
}

// stop cancels the context of jam serve, which must then exit 0.
func (s *server) stop(t *testing.T) {
	t.Helper()
	s.once.Do(func() {
		s.cancel()
		if code := <-s.done; code != 0 {
			t.Errorf("jam serve = %d after cancel, want 0\nstderr:\n%s", code, s.stderr)
		}
	})
}

// lockedBuffer collects what a command writes from several goroutines:
// serve's lockedWriter over a bytes.Buffer, read under the same lock.
type lockedBuffer struct {
	lockedWriter
	buf bytes.Buffer
}

func newLockedBuffer() *lockedBuffer {
	b := &lockedBuffer{}
	b.w = &b.buf
	return b
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestServeState logs in on jam serve, restarts it on the same state file
// and address, and uses the tokens from before the restart.
func TestServeState(t *testing.T) {
	state := filepath.Join(t.TempDir(), "state.json")

	first := startServe(t, "--addr", "127.0.0.1:0", "--state", state, "--token-ttl", "1h")
	baseURL := first.field(t, "base URL:")
	app := first.field(t, "app ID:")
	at := []string{"--base-url", baseURL, "--app", app}

	if r := jamCmd(t, "", append([]string{"authenticate"}, append(at, ann)...)...); r.code != 0 {
		t.Fatalf("jam authenticate = %d\nstderr: %s", r.code, r.stderr)
	}
	link := first.field(t, "magic link for "+ann+":")
	tokens := browse(t, link)
	first.stop(t)

	u, _ := url.Parse(baseURL)
	second := startServe(t, "--addr", u.Host, "--state", state)
	if got := second.field(t, "base URL:"); got != baseURL {
		t.Fatalf("base URL after restart = %q, want %q", got, baseURL)
	}
	if got := second.field(t, "app ID:"); got != app {
		t.Errorf("app ID after restart = %q, want %q", got, app)
	}
	for _, args := range [][]string{
		{"verify", "-"},
		{"verify", "--remote", "-"},
	} {
		if r := jamCmd(t, tokens.IDToken, append(append(args[:1:1], at...), args[1:]...)...); r.code != 0 || !strings.Contains(r.stdout, ann) {
			t.Errorf("jam %q (ID token from before restart) = %d\nstderr: %s", args, r.code, r.stderr)
		}
	}
	r := jamCmd(t, tokens.RefreshToken, append(append([]string{"refresh"}, at...), "-")...)
	if r.code != 0 {
		t.Errorf("jam refresh (refresh token from before restart) = %d\nstderr: %s", r.code, r.stderr)
	}
	second.stop(t)
}

func TestServeCorruptState(t *testing.T) {
	state := filepath.Join(t.TempDir(), "state.json")
	if err := os.WriteFile(state, []byte(`{"version": 1, "appId": `), 0o600); err != nil {
		t.Fatal(err)
	}
	r := jamCmd(t, "", "serve", "--addr", "127.0.0.1:0", "--state", state)
	if r.code != 1 || !strings.Contains(r.stderr, "corrupt") {
		t.Errorf("jam serve --state corrupt = %d, stderr %q; want 1 and a message", r.code, r.stderr)
	}
	if b, _ := os.ReadFile(state); string(b) != `{"version": 1, "appId": ` {
		t.Error("jam serve changed the corrupt state file")
	}
}

// browse follows a magic link as far as the redirect, and returns the
// tokens it carries.
func browse(t *testing.T, link string) jam.Tokens {
	t.Helper()
	browser := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := browser.Get(link)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc, err := resp.Location()
	if err != nil {
		t.Fatalf("GET magic link = %s, no Location: %v", resp.Status, err)
	}
	tokens, err := jam.TokensFromURL(loc)
	if err != nil {
		t.Fatalf("TokensFromURL = %v", err)
	}
	return tokens
}

// TestJWKSOutput checks that jam jwks prints a JWK Set of public keys.
func TestJWKSOutput(t *testing.T) {
	srv := jamtest.NewServer(jamtest.WithLogger(slog.New(slog.DiscardHandler)))
	defer srv.Close()
	r := jamCmd(t, "", "jwks", "--base-url", srv.URL, "--app", srv.AppID)
	var set struct {
		Keys []struct {
			Kty, Crv, Kid, X, Y string
			D                   *string
		}
	}
	if err := json.Unmarshal([]byte(r.stdout), &set); err != nil || len(set.Keys) != 1 {
		t.Fatalf("jam jwks = %q, %v; want a JWK Set of one key", r.stdout, err)
	}
	if k := set.Keys[0]; k.Kty != "EC" || k.Crv != "P-521" || k.Kid == "" || k.X == "" || k.Y == "" || k.D != nil {
		t.Errorf("jam jwks key = %+v, want a public EC P-521 key with a kid", k)
	}
}

// TestNoTestingLinked keeps package testing out of the jam binary: a
// non-test package that imports it drags it, and its flags, into every
// program built on it.
func TestNoTestingLinked(t *testing.T) {
	// go test puts the go command that runs it first on PATH.
	goCmd, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("LookPath(go) = %v", err)
	}
	out, err := exec.CommandContext(t.Context(), goCmd, "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	deps := strings.Fields(string(out))
	if len(deps) < 20 || !slices.Contains(deps, "github.com/go-jam/go-jam/jam") {
		t.Fatalf("go list -deps listed %d packages, not those of jam: %q", len(deps), deps)
	}
	if slices.Contains(deps, "testing") {
		t.Error("cmd/jam links package testing; keep test helpers in packages only tests import")
	}
}

// TestServePublicURL runs jam serve for an app in another container: it
// listens on one address and is reached by a name it is told. The client
// here dials the listener for that name, as a container network would.
func TestServePublicURL(t *testing.T) {
	ctx := t.Context()
	const public = "http://jam.test:8787"
	srv := startServe(t, "--addr", "127.0.0.1:0", "--public-url", public)
	listen := srv.field(t, "listening on:")
	if got := srv.field(t, "base URL:"); got != public+"/" {
		t.Errorf("base URL = %q, want %q, with the slash JAM's Node SDK needs", got, public+"/")
	}
	app := srv.field(t, "app ID:")
	if got := srv.field(t, "outbox:"); !strings.HasPrefix(got, public+"/_jamtest/ ") {
		t.Errorf("outbox = %q, want the page below %s", got, public)
	}
	if got, want := srv.field(t, "to use it:"), "export JAM_BASE_URL="+public+"/ JAM_APP_ID="+app; got != want {
		t.Errorf("to use it: %q, want %q", got, want)
	}

	var dialer net.Dialer
	transport := &http.Transport{DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
		return dialer.DialContext(ctx, network, listen)
	}}
	defer transport.CloseIdleConnections()
	browser := &http.Client{
		Transport:     transport,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	client, err := jam.New(app, jam.WithBaseURL(public+"/"), jam.WithHTTPClient(browser))
	if err != nil {
		t.Fatal(err)
	}

	if err := client.Authenticate(ctx, ann); err != nil {
		t.Fatalf("Authenticate = %v", err)
	}
	link := srv.field(t, "magic link for "+ann+":")
	if !strings.HasPrefix(link, public+"/_jamtest/magic/") {
		t.Fatalf("magic link %q is not below %s", link, public)
	}
	resp, err := browser.Get(public + "/_jamtest/outbox")
	if err != nil {
		t.Fatal(err)
	}
	var box struct{ Messages []jamtest.Message }
	err = json.NewDecoder(resp.Body).Decode(&box)
	resp.Body.Close()
	if err != nil || len(box.Messages) != 1 || box.Messages[0].Link != link {
		t.Errorf("GET outbox = %+v, %v; want the link printed", box, err)
	}

	resp, err = browser.Get(link)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc, err := resp.Location()
	if err != nil {
		t.Fatalf("GET magic link = %s, no Location", resp.Status)
	}
	tokens, err := jam.TokensFromURL(loc)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := client.VerifyToken(ctx, tokens.IDToken)
	if err != nil {
		t.Fatalf("VerifyToken(token of jam serve --public-url) = %v, want nil", err)
	}
	if want := public + "/" + app; tok.Claims.Issuer != want {
		t.Errorf("iss = %q, want %q", tok.Claims.Issuer, want)
	}
}

func TestServeBadPublicURL(t *testing.T) {
	r := jamCmd(t, "", "serve", "--addr", "127.0.0.1:0", "--public-url", "jam:8787")
	if r.code != 1 || !strings.Contains(r.stderr, "public URL") {
		t.Errorf("jam serve --public-url jam:8787 = %d, stderr %q; want 1 and a message", r.code, r.stderr)
	}
}
