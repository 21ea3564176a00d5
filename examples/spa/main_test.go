package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/go-jam/go-jam/jam"
	"github.com/go-jam/go-jam/jam/jamtest"
)

// runMainEnv, set in a child process of the test binary, makes it the
// program instead, so that a test can send it signals.
const runMainEnv = "SPA_TEST_RUN_MAIN"

// TestMain fails the tests if a goroutine outlives them: a server, a
// request or a connection left running.
func TestMain(m *testing.M) {
	if os.Getenv(runMainEnv) == "1" {
		main()
	}
	goleak.VerifyTestMain(m)
}

// lines reads the "name: value" lines a program prints until it has those
// named in want, and keeps reading the rest in the background.
func lines(t *testing.T, out io.Reader, stderr *lockedBuffer, want ...string) map[string]string {
	t.Helper()
	printed := make(chan [2]string)
	go func() {
		defer close(printed)
		s := bufio.NewScanner(out)
		for s.Scan() {
			if k, v, ok := strings.Cut(s.Text(), ":"); ok {
				printed <- [2]string{k, strings.TrimSpace(v)}
			}
		}
	}()
	got := map[string]string{}
	timeout := time.After(10 * time.Second)
	for _, name := range want {
		for got[name] == "" {
			select {
			case kv, ok := <-printed:
				if !ok {
					t.Fatalf("the program printed no %q line; stderr:\n%s", name, stderr)
				}
				got[kv[0]] = kv[1]
			case <-timeout:
				t.Fatalf("the program printed no %q line in 10s; stderr:\n%s", name, stderr)
			}
		}
	}
	go func() {
		for range printed {
		}
	}()
	return got
}

// running is run in a goroutine, with what it printed.
type running struct {
	lines  map[string]string
	stderr *lockedBuffer
	cancel context.CancelFunc
	stops  chan struct{} // receives run's calls of stop
	code   chan int
}

// start runs the program with the arguments until the test ends, and
// waits until it has printed the lines named in want.
func start(t *testing.T, args []string, want ...string) *running {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	out, w := io.Pipe()
	r := &running{stderr: &lockedBuffer{}, cancel: cancel, stops: make(chan struct{}, 1), code: make(chan int, 1)}
	stop := func() { r.stops <- struct{}{} }
	go func() {
		r.code <- run(ctx, stop, args, w, r.stderr)
		w.Close()
	}()
	t.Cleanup(func() {
		if code := r.stop(t); code != 0 {
			t.Errorf("run after an interrupt = %d, want 0; stderr:\n%s", code, r.stderr)
		}
	})
	r.lines = lines(t, out, r.stderr, want...)
	return r
}

// stop interrupts the program and returns its exit status.
func (r *running) stop(t *testing.T) int {
	r.cancel()
	select {
	case code := <-r.code:
		r.code <- code
		return code
	case <-time.After(2 * defaultShutdownTimeout):
		t.Fatal("run did not return after the interrupt")
		return -1
	}
}

// getJSON gets a URL and decodes its JSON body into v.
func getJSON(t *testing.T, target string, header http.Header, v any) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, target, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header = header
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", req.URL.Path, err)
	}
	defer res.Body.Close()
	if err := json.NewDecoder(res.Body).Decode(v); err != nil {
		t.Fatalf("GET %s = %d: %v", req.URL.Path, res.StatusCode, err)
	}
	return res.StatusCode
}

// TestRun runs the program with its own JAM: the page's configuration
// names it, its magic link leads to the page with the tokens, and the API
// takes the ID token.
func TestRun(t *testing.T) {
	r := start(t, []string{"-addr", "127.0.0.1:0", "-jam-addr", "127.0.0.1:0", "-token-ttl", "10m"}, "app", "jam", "app ID", "outbox")
	appURL, jamURL, appID := r.lines["app"], r.lines["jam"], r.lines["app ID"]
	if !strings.HasPrefix(appURL, "http://127.0.0.1:") || !strings.HasPrefix(jamURL, "http://127.0.0.1:") || appURL == jamURL {
		t.Fatalf("run printed app %q, jam %q; want two loopback origins", appURL, jamURL)
	}
	if r.lines["outbox"] != jamURL+"_jamtest/" {
		t.Errorf("run printed outbox %q, want %q", r.lines["outbox"], jamURL+"_jamtest/")
	}

	var cfg pageConfig
	if status := getJSON(t, appURL+"config.json", nil, &cfg); status != http.StatusOK {
		t.Fatalf("GET /config.json = %d, want 200", status)
	}
	if want := (pageConfig{JAMURL: jamURL, AppID: appID, OutboxURL: jamURL + "_jamtest/"}); cfg != want {
		t.Errorf("GET /config.json = %+v, want %+v", cfg, want)
	}

	// Log in as the page does: JAM emails the link, the link redirects to
	// the page with the tokens.
	client, err := jam.New(cfg.AppID, jam.WithBaseURL(cfg.JAMURL))
	if err != nil {
		t.Fatal(err)
	}
	if err := client.Authenticate(t.Context(), ann); err != nil {
		t.Fatalf("Authenticate(%q) = %v, want nil", ann, err)
	}
	var outbox struct{ Messages []jamtest.Message }
	if status := getJSON(t, r.lines["outbox"]+"outbox?email="+ann, nil, &outbox); status != http.StatusOK || len(outbox.Messages) != 1 {
		t.Fatalf("GET the outbox = %d, %d messages; want 200 and the login's", status, len(outbox.Messages))
	}
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := noRedirect.Get(outbox.Messages[0].Link)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	loc, err := res.Location()
	if err != nil || !strings.HasPrefix(loc.String(), appURL+"?") {
		t.Fatalf("the magic link redirects to %v (%v), want the page, %s", loc, err, appURL)
	}
	tokens, err := jam.TokensFromURL(loc)
	if err != nil || tokens.RefreshToken == "" {
		t.Fatalf("TokensFromURL(the redirect) = %v, %v; want both tokens", tokens, err)
	}

	var me struct{ Email string }
	before := time.Now().Truncate(time.Second)
	if status := getJSON(t, appURL+"api/me", http.Header{"Authorization": {"Bearer " + tokens.IDToken}}, &me); status != http.StatusOK || me.Email != ann {
		t.Errorf("GET /api/me = %d %+v, want 200 and %s", status, me, ann)
	}
	tok, err := client.VerifyToken(t.Context(), tokens.IDToken)
	if err != nil {
		t.Fatalf("VerifyToken(the redirect's ID token) = %v, want nil", err)
	}
	if ttl := tok.Claims.Expiry.Sub(before); ttl < 10*time.Minute-2*time.Second || ttl > 10*time.Minute {
		t.Errorf("the ID token expires %v after the login, want 10m (-token-ttl)", ttl)
	}

	if code := r.stop(t); code != 0 {
		t.Errorf("run after an interrupt = %d, want 0; stderr:\n%s", code, r.stderr)
	}
	select {
	case <-r.stops:
	default:
		t.Error("run did not call stop after the interrupt: a second one would not end the process at once")
	}
	if res, err := http.Get(appURL); err == nil {
		res.Body.Close()
		t.Error("the app still answers after the interrupt")
	}
	for _, secret := range []string{ann, tokens.IDToken, tokens.RefreshToken} {
		if strings.Contains(r.stderr.String(), secret) {
			t.Errorf("the program's standard error holds a secret %.12q…:\n%s", secret, r.stderr)
		}
	}
}

// TestRunExternalJAM runs the app on the JAM that JAM_APP_ID and
// JAM_BASE_URL name, as it runs on the real one.
func TestRunExternalJAM(t *testing.T) {
	srv := externalJAM(t)
	r := start(t, []string{"-addr", "127.0.0.1:0"}, "app", "jam", "app ID")
	if r.lines["jam"] != srv.URL+"/" || r.lines["app ID"] != srv.AppID {
		t.Errorf("run printed jam %q, app ID %q; want %q, %q", r.lines["jam"], r.lines["app ID"], srv.URL+"/", srv.AppID)
	}
	if _, ok := r.lines["outbox"]; ok {
		t.Errorf("with %s, run printed an outbox: %q", jam.EnvAppID, r.lines["outbox"])
	}
	var cfg pageConfig
	if status := getJSON(t, r.lines["app"]+"config.json", nil, &cfg); status != http.StatusOK || cfg != (pageConfig{JAMURL: srv.URL + "/", AppID: srv.AppID}) {
		t.Errorf("GET /config.json = %d %+v, want 200 and the JAM of the environment, no outbox", status, cfg)
	}
	token, _ := srv.IssueTokens(ann)
	var me struct{ Email string }
	if status := getJSON(t, r.lines["app"]+"api/me", http.Header{"Authorization": {"Bearer " + token}}, &me); status != http.StatusOK || me.Email != ann {
		t.Errorf("GET /api/me = %d %+v, want 200 and %s", status, me, ann)
	}
}

func TestRunRefused(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()

	tests := []struct {
		name     string
		args     []string
		env      map[string]string
		wantCode int
		wantErr  string
	}{
		{"help", []string{"-h"}, nil, 0, ""},
		{"unknown flag", []string{"-port", "80"}, nil, 2, "flag provided but not defined"},
		{"argument", []string{"serve"}, nil, 2, "no arguments"},
		{"token TTL under a second", []string{"-token-ttl", "500ms"}, nil, 2, "-token-ttl"},
		{"no shutdown timeout", []string{"-shutdown-timeout", "0s"}, nil, 2, "-shutdown-timeout"},
		{"base URL without app ID", nil, map[string]string{jam.EnvBaseURL: "http://127.0.0.1:1/"}, 2, "JAM_BASE_URL needs JAM_APP_ID"},
		{"jam-addr with app ID", []string{"-jam-addr", "127.0.0.1:0"}, map[string]string{jam.EnvAppID: "app"}, 2, "in-process"},
		{"token-ttl with app ID", []string{"-token-ttl", "1m"}, map[string]string{jam.EnvAppID: "app"}, 2, "in-process"},
		{"invalid base URL", []string{"-addr", "127.0.0.1:0"}, map[string]string{jam.EnvAppID: "app", jam.EnvBaseURL: "ftp://jam.example"}, 2, "base URL"},
		{"app address busy", []string{"-addr", busy.Addr().String()}, nil, 1, "address already in use"},
		{"JAM address busy", []string{"-addr", "127.0.0.1:0", "-jam-addr", busy.Addr().String()}, nil, 1, "address already in use"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv(jam.EnvAppID, tt.env[jam.EnvAppID])
			t.Setenv(jam.EnvBaseURL, tt.env[jam.EnvBaseURL])
			var stdout, stderr strings.Builder
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			code := run(ctx, func() {}, tt.args, &stdout, &stderr)
			if code != tt.wantCode || !strings.Contains(stderr.String(), tt.wantErr) {
				t.Errorf("run(%q) = %d, stderr %q; want %d, %q", tt.args, code, stderr.String(), tt.wantCode, tt.wantErr)
			}
			// Help is a result, for stdout; a mistake's usage is for
			// stderr; a failure is no mistake of the caller's.
			wantStdout, wantStderr := false, tt.wantCode == 2
			if tt.wantCode == 0 {
				wantStdout = true
			}
			if got := strings.Contains(stdout.String(), "usage: spa"); got != wantStdout {
				t.Errorf("run(%q): usage on stdout = %v, want %v", tt.args, got, wantStdout)
			}
			if got := strings.Contains(stderr.String(), "usage: spa"); got != wantStderr {
				t.Errorf("run(%q): usage on stderr = %v, want %v", tt.args, got, wantStderr)
			}
		})
	}
}

// externalJAM is a JAM the app is configured to use through the
// environment, as jam.NewFromEnv reads it.
func externalJAM(t *testing.T) *jamtest.Server {
	t.Helper()
	srv := jamtest.NewServer(jamtest.WithLogger(slog.New(slog.DiscardHandler)))
	t.Cleanup(srv.Close)
	t.Setenv(jam.EnvAppID, srv.AppID)
	t.Setenv(jam.EnvBaseURL, srv.URL)
	return srv
}

// inFlight sends an API request with a token of a key the app has not
// fetched, to a JAM whose key set now answers after delay, and returns once
// the app waits for it: the request is in flight. Its result arrives on
// the channel.
func inFlight(t *testing.T, srv *jamtest.Server, appURL string, delay time.Duration) <-chan error {
	t.Helper()
	srv.PublishKey()
	token, _ := srv.IssueTokens(ann)
	srv.SetFault(jamtest.OpGetJWKS, jamtest.Fault{Delay: delay})
	fetches := srv.Requests(jamtest.OpGetJWKS)
	done := make(chan error, 1)
	go func() {
		req, _ := http.NewRequest(http.MethodGet, appURL+"api/me", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		res, err := http.DefaultClient.Do(req)
		if err == nil {
			res.Body.Close()
			if res.StatusCode != http.StatusOK {
				err = errors.New(res.Status)
			}
		}
		done <- err
	}()
	// Polls a condition, not the clock: the key-set fetch has reached JAM.
	deadline := time.Now().Add(10 * time.Second)
	for srv.Requests(jamtest.OpGetJWKS) == fetches {
		if time.Now().After(deadline) {
			t.Fatal("the API request with a new key's token did not make the app fetch the key set")
		}
		time.Sleep(5 * time.Millisecond)
	}
	return done
}

// TestShutdown interrupts the program while an API request is in flight:
// the request finishes within the shutdown timeout, or is cut off at it.
func TestShutdown(t *testing.T) {
	tests := []struct {
		name     string
		delay    time.Duration // of the request in flight
		timeout  time.Duration // -shutdown-timeout
		wantCode int
		wantErr  bool // the request's
	}{
		{"request finishes", 300 * time.Millisecond, time.Minute, 0, false},
		{"request cut off", time.Minute, 200 * time.Millisecond, 1, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := externalJAM(t)
			stderr := &lockedBuffer{}
			out, w := io.Pipe()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			code := make(chan int, 1)
			go func() {
				code <- run(ctx, func() {}, []string{"-addr", "127.0.0.1:0", "-shutdown-timeout", tt.timeout.String()}, w, stderr)
				w.Close()
			}()
			printed := lines(t, out, stderr, "app")
			done := inFlight(t, srv, printed["app"], tt.delay)

			cancel()
			select {
			case got := <-code:
				if got != tt.wantCode {
					t.Errorf("run after an interrupt with a request in flight = %d, want %d; stderr:\n%s", got, tt.wantCode, stderr)
				}
			case <-time.After(tt.timeout + 10*time.Second):
				t.Fatalf("run did not return within -shutdown-timeout %v of the interrupt", tt.timeout)
			}
			if err := <-done; (err != nil) != tt.wantErr {
				t.Errorf("the API request in flight at the interrupt: %v, want an error: %v", err, tt.wantErr)
			}
		})
	}
}

// TestSignals sends the program, in a process of its own, SIGTERM while an
// API request is in flight: it waits for the request, unless a second
// SIGTERM ends it at once.
func TestSignals(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the program in a process of its own")
	}
	tests := []struct {
		name    string
		signals int
		delay   time.Duration // of the request in flight
	}{
		{"one signal: graceful", 1, 300 * time.Millisecond},
		{"two signals: at once", 2, time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := externalJAM(t)
			cmd := exec.Command(os.Args[0], "-addr", "127.0.0.1:0", "-shutdown-timeout", "1m")
			cmd.Env = append(os.Environ(), runMainEnv+"=1")
			stderr := &lockedBuffer{}
			cmd.Stderr = stderr
			// A pipe of the test's, not StdoutPipe: Wait may then run
			// while lines reads.
			stdout, w := io.Pipe()
			cmd.Stdout = w
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			exited := make(chan error, 1)
			go func() {
				err := cmd.Wait()
				w.Close()
				exited <- err
			}()
			reaped := false
			defer func() {
				if !reaped {
					cmd.Process.Kill()
					<-exited
				}
			}()
			printed := lines(t, stdout, stderr, "app")
			done := inFlight(t, srv, printed["app"], tt.delay)

			cmd.Process.Signal(syscall.SIGTERM)
			if tt.signals == 2 {
				// The second signal counts once the first has been
				// taken: the program says so.
				deadline := time.Now().Add(10 * time.Second)
				for !strings.Contains(stderr.String(), "interrupt again") {
					if time.Now().After(deadline) {
						t.Fatalf("the program did not say it was stopping; stderr:\n%s", stderr)
					}
					time.Sleep(5 * time.Millisecond)
				}
				cmd.Process.Signal(syscall.SIGTERM)
			}
			select {
			case err := <-exited:
				reaped = true
				status, _ := cmd.ProcessState.Sys().(syscall.WaitStatus)
				if tt.signals == 1 && err != nil {
					t.Errorf("the program after SIGTERM: %v, want exit status 0; stderr:\n%s", err, stderr)
				}
				if tt.signals == 2 && !(status.Signaled() && status.Signal() == syscall.SIGTERM) {
					t.Errorf("the program after two SIGTERMs: %v, want killed by the second; stderr:\n%s", err, stderr)
				}
			case <-time.After(10 * time.Second):
				t.Fatalf("the program did not exit within 10s of %d SIGTERM; stderr:\n%s", tt.signals, stderr)
			}
			if err := <-done; (err != nil) != (tt.signals == 2) {
				t.Errorf("the API request in flight: %v, want an error: %v", err, tt.signals == 2)
			}
		})
	}
}
