package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/go-jam/go-jam/jam/jamtest"
)

// running is run in a goroutine, with what it printed.
type running struct {
	lines  map[string]string // the "name: value" lines of standard output
	stderr *lockedBuffer
	cancel context.CancelFunc
	code   chan int
}

// start runs the program with the arguments and environment until the
// test ends, and waits until it has printed the lines named in want.
func start(t *testing.T, args []string, env map[string]string, want ...string) *running {
	t.Helper()
	for k, v := range env {
		t.Setenv(k, v)
	}
	ctx, cancel := context.WithCancel(context.Background())
	out, w := io.Pipe()
	r := &running{lines: map[string]string{}, stderr: &lockedBuffer{}, cancel: cancel, code: make(chan int, 1)}
	go func() {
		r.code <- run(ctx, func() {}, args, w, r.stderr)
		w.Close()
	}()
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
	t.Cleanup(func() {
		if code := r.stop(t); code != 0 {
			t.Errorf("run after an interrupt = %d, want 0; stderr:\n%s", code, r.stderr)
		}
	})
	timeout := time.After(10 * time.Second)
	for _, name := range want {
		for r.lines[name] == "" {
			select {
			case kv, ok := <-printed:
				if !ok {
					t.Fatalf("run printed no %q line; stderr:\n%s", name, r.stderr)
				}
				r.lines[kv[0]] = kv[1]
			case <-timeout:
				t.Fatalf("run printed no %q line in 10s; stderr:\n%s", name, r.stderr)
			}
		}
	}
	// Keep reading, so that a later line cannot block the program.
	go func() {
		for range printed {
		}
	}()
	return r
}

// stop interrupts the program and returns its exit status.
func (r *running) stop(t *testing.T) int {
	r.cancel()
	select {
	case code := <-r.code:
		r.code <- code
		return code
	case <-time.After(3 * shutdownTimeout):
		t.Fatal("run did not return after the interrupt")
		return -1
	}
}

func TestRun(t *testing.T) {
	r := start(t, []string{"-addr", "127.0.0.1:0", "-jam-addr", "127.0.0.1:0", "-token-ttl", "10m"}, nil, "app", "jam", "app ID", "outbox")
	app, jamURL := r.lines["app"], r.lines["jam"]
	if r.lines["outbox"] != jamURL+"_jamtest/outbox" {
		t.Errorf("outbox line = %q, want %q", r.lines["outbox"], jamURL+"_jamtest/outbox")
	}

	jar, _ := cookiejar.New(nil)
	hc := &http.Client{Transport: &http.Transport{}, Jar: jar, Timeout: 10 * time.Second}
	defer hc.CloseIdleConnections()
	get := func(u string) (int, string) {
		t.Helper()
		res, err := hc.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		body, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(body)
	}
	if code, body := get(app); code != http.StatusOK || !strings.Contains(body, `action="/login"`) {
		t.Errorf("GET %s = %d, want 200 and the login form", app, code)
	}
	res, err := hc.PostForm(app+"login", url.Values{"email": {ann}})
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	var outbox struct{ Messages []jamtest.Message }
	code, body := get(jamURL + "_jamtest/outbox?email=" + url.QueryEscape(ann))
	if err := json.Unmarshal([]byte(body), &outbox); code != http.StatusOK || err != nil || len(outbox.Messages) != 1 {
		t.Fatalf("GET outbox = %d %s, want the one magic link of the login", code, body)
	}

	// The link leads through the app's callback to /me, with an ID token
	// of the lifetime asked for.
	before := time.Now().Truncate(time.Second)
	code, body = get(outbox.Messages[0].Link)
	if code != http.StatusOK || !strings.Contains(body, "Hello, "+ann) {
		t.Fatalf("following the magic link = %d, want 200 on /me; body:\n%s", code, body)
	}
	m := regexp.MustCompile(`datetime="([^"]+)"`).FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("/me shows no expiry:\n%s", body)
	}
	expiry, err := time.Parse(time.RFC3339, m[1])
	if ttl := expiry.Sub(before); err != nil || ttl < 10*time.Minute || ttl > 10*time.Minute+2*time.Second {
		t.Errorf("ID token expires %v after the login (%v), want 10m (-token-ttl)", ttl, err)
	}

	if code := r.stop(t); code != 0 {
		t.Errorf("run after an interrupt = %d, want 0; stderr:\n%s", code, r.stderr)
	}
	if res, err := hc.Get(app); err == nil {
		res.Body.Close()
		t.Error("the app still answers after the interrupt")
	}
}

// TestRunExternalJAM runs the app on a JAM that JAM_APP_ID and
// JAM_BASE_URL name, as it runs on the real one.
func TestRunExternalJAM(t *testing.T) {
	srv := jamtest.NewServer(jamtest.WithLogger(slog.New(slog.DiscardHandler)))
	defer srv.Close()
	r := start(t, []string{"-addr", "127.0.0.1:0"}, map[string]string{"JAM_APP_ID": srv.AppID, "JAM_BASE_URL": srv.URL + "/"}, "app", "jam", "app ID")
	if r.lines["jam"] != srv.URL+"/" || r.lines["app ID"] != srv.AppID {
		t.Errorf("run printed jam %q, app ID %q; want %q, %q", r.lines["jam"], r.lines["app ID"], srv.URL+"/", srv.AppID)
	}
	hc := &http.Client{Transport: &http.Transport{}, Timeout: 10 * time.Second}
	defer hc.CloseIdleConnections()
	res, err := hc.PostForm(r.lines["app"]+"login", url.Values{"email": {ann}})
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusOK || strings.Contains(string(body), "outbox") {
		t.Errorf("POST /login = %d, want 200 and no outbox link (the JAM is not the app's own); body:\n%s", res.StatusCode, body)
	}
	if _, ok := srv.MagicLink(ann); !ok {
		t.Error("POST /login sent no magic link through JAM_BASE_URL")
	}
	if _, ok := r.lines["outbox"]; ok {
		t.Errorf("with JAM_APP_ID, run printed an outbox: %q", r.lines["outbox"])
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
		{"negative refresh-before", []string{"-refresh-before", "-1m"}, nil, 2, "-refresh-before"},
		{"base URL without app ID", nil, map[string]string{"JAM_BASE_URL": "http://127.0.0.1:1/"}, 2, "JAM_BASE_URL needs JAM_APP_ID"},
		{"jam-addr with app ID", []string{"-jam-addr", "127.0.0.1:0"}, map[string]string{"JAM_APP_ID": "app"}, 2, "in-process"},
		{"invalid base URL", []string{"-addr", "127.0.0.1:0"}, map[string]string{"JAM_APP_ID": "app", "JAM_BASE_URL": "ftp://jam.example"}, 2, "base URL"},
		{"app address busy", []string{"-addr", busy.Addr().String()}, nil, 1, "address already in use"},
		{"JAM address busy", []string{"-addr", "127.0.0.1:0", "-jam-addr", busy.Addr().String()}, nil, 1, "address already in use"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			var stdout, stderr strings.Builder
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			code := run(ctx, func() {}, tt.args, &stdout, &stderr)
			if code != tt.wantCode || !strings.Contains(stderr.String(), tt.wantErr) {
				t.Errorf("run(%q) = %d, stderr %q; want %d, %q", tt.args, code, stderr.String(), tt.wantCode, tt.wantErr)
			}
			// Help and a mistake's usage go to stderr, as flag's do;
			// a failure is no mistake of the caller's.
			wantStdout, wantStderr := "", "usage: webapp"
			if tt.wantCode == 1 {
				wantStderr = ""
			}
			if usageIn := func(s string) string {
				if strings.Contains(s, "usage: webapp") {
					return "usage: webapp"
				}
				return ""
			}; usageIn(stdout.String()) != wantStdout || usageIn(stderr.String()) != wantStderr {
				t.Errorf("run(%q): usage on stdout %q, on stderr %q; want %q, %q", tt.args, usageIn(stdout.String()), usageIn(stderr.String()), wantStdout, wantStderr)
			}
		})
	}
}
