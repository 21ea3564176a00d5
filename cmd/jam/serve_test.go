package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/go-jam/go-jam/jam"
)

// holdBody starts a request to JAM at baseURL and keeps its body open: it
// returns once the server's handler is reading the body (the server's
// 100 Continue says so), holding the connection.
func holdBody(t *testing.T, baseURL, app string) net.Conn {
	t.Helper()
	u, err := url.Parse(baseURL)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.Dial("tcp", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	fmt.Fprintf(conn, "POST /%s/authenticate HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n"+
		"Content-Length: 100\r\nExpect: 100-continue\r\n\r\n", app, u.Host)
	status, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil || !strings.Contains(status, "100") {
		t.Fatalf("request with Expect: 100-continue: status line %q, %v; want 100 Continue", status, err)
	}
	io.WriteString(conn, `{"email":`)
	return conn
}

// TestServeShutdownWithBodyOpen: a client that never finishes its request
// body holds jam serve no longer than its shutdown timeout.
func TestServeShutdownWithBodyOpen(t *testing.T) {
	s := startServe(t, "--addr", "127.0.0.1:0", "--shutdown-timeout", "200ms")
	holdBody(t, s.field(t, "base URL:"), s.field(t, "app ID:"))

	stopped := make(chan struct{})
	start := time.Now()
	go func() { s.stop(t); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(10 * time.Second):
		t.Fatal("jam serve still running 10s after it was stopped, with a request body open")
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("jam serve took %v to stop with a request body open, want at most 5s", took)
	}
	if !strings.Contains(s.stderr.String(), "cut short") {
		t.Errorf("jam serve stderr = %q, want it to say requests were cut short", s.stderr)
	}
}

// TestJamProcess is jam itself when run by startProcess, and skipped
// otherwise.
func TestJamProcess(t *testing.T) {
	args, ok := os.LookupEnv("JAM_TEST_PROCESS_ARGS")
	if !ok {
		t.Skip("only run as jam by startProcess")
	}
	os.Args = append([]string{"jam"}, strings.Fields(args)...)
	main()
}

// process is jam running in a process of its own.
type process struct {
	cmd    *exec.Cmd
	stdout *bufio.Scanner
	stderr *lockedBuffer
	exited chan struct{}
}

// startProcess runs jam with args in a process of its own: this test
// binary, which TestJamProcess turns into jam.
func startProcess(t *testing.T, args ...string) *process {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestJamProcess$")
	cmd.Env = append(os.Environ(), "JAM_TEST_PROCESS_ARGS="+strings.Join(args, " "))
	p := &process{cmd: cmd, stderr: newLockedBuffer(), exited: make(chan struct{})}
	cmd.Stderr = p.stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	p.stdout = bufio.NewScanner(out)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { cmd.Wait(); close(p.exited) }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-p.exited
	})
	return p
}

// field reads stdout until a line starts with prefix, and returns the rest.
func (p *process) field(t *testing.T, prefix string) string {
	t.Helper()
	for p.stdout.Scan() {
		if rest, ok := strings.CutPrefix(p.stdout.Text(), prefix); ok {
			return strings.TrimSpace(rest)
		}
	}
	t.Fatalf("jam stopped before printing %q; stderr:\n%s", prefix, p.stderr)
	return ""
}

// exitWithin waits at most d for the process to exit.
func (p *process) exitWithin(d time.Duration) bool {
	select {
	case <-p.exited:
		return true
	case <-time.After(d):
		return false
	}
}

// TestServeSignals: in a process of its own, with a client holding a
// request body open, jam serve exits within 5 s of SIGTERM, and at once on
// a second signal however long its shutdown timeout.
func TestServeSignals(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	t.Run("SIGTERM", func(t *testing.T) {
		p := startProcess(t, "serve", "--addr", "127.0.0.1:0")
		holdBody(t, p.field(t, "base URL:"), p.field(t, "app ID:"))
		p.cmd.Process.Signal(syscall.SIGTERM)
		if !p.exitWithin(5 * time.Second) {
			t.Fatalf("jam serve still running 5s after SIGTERM; stderr:\n%s", p.stderr)
		}
		if code := p.cmd.ProcessState.ExitCode(); code != 0 {
			t.Errorf("jam serve = %d after SIGTERM, want 0; stderr:\n%s", code, p.stderr)
		}
	})
	t.Run("second signal", func(t *testing.T) {
		p := startProcess(t, "serve", "--addr", "127.0.0.1:0", "--shutdown-timeout", "1h")
		holdBody(t, p.field(t, "base URL:"), p.field(t, "app ID:"))
		p.cmd.Process.Signal(syscall.SIGTERM)
		deadline := time.Now().Add(10 * time.Second)
		for !strings.Contains(p.stderr.String(), "stopping") {
			if time.Now().After(deadline) {
				t.Fatalf("jam serve did not start stopping after SIGTERM; stderr:\n%s", p.stderr)
			}
			time.Sleep(10 * time.Millisecond) // another process: poll its output
		}
		p.cmd.Process.Signal(os.Interrupt)
		if !p.exitWithin(5 * time.Second) {
			t.Fatalf("jam serve still running 5s after a second signal; stderr:\n%s", p.stderr)
		}
		if p.cmd.ProcessState.Success() {
			t.Errorf("jam serve exited 0 on a second signal, want the signal's exit")
		}
	})
}

// TestServeBusyPort: a port in use is reported with the way out.
func TestServeBusyPort(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	r := jamCmd(t, "", "serve", "--addr", ln.Addr().String())
	if r.code != 1 || !strings.Contains(r.stderr, "--addr") {
		t.Errorf("jam serve --addr %s (in use) = %d, stderr %q; want 1 and a hint of --addr", ln.Addr(), r.code, r.stderr)
	}
}

// TestServeCORSOrigin: --cors-origin replaces the loopback default.
func TestServeCORSOrigin(t *testing.T) {
	s := startServe(t, "--addr", "127.0.0.1:0", "--cors-origin", "http://app.example:3000", "--cors-origin", "https://app.example")
	endpoint := s.field(t, "base URL:") + s.field(t, "app ID:") + "/refresh"
	for _, tt := range []struct {
		origin string
		allow  bool
	}{
		{"http://app.example:3000", true},
		{"https://app.example", true},
		{"http://localhost:5173", false},
		{"http://evil.example", false},
	} {
		req, _ := http.NewRequest(http.MethodOptions, endpoint, nil)
		req.Header.Set("Origin", tt.origin)
		req.Header.Set("Access-Control-Request-Method", "POST")
		req.Header.Set("Access-Control-Request-Headers", "content-type")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if got := resp.Header.Get("Access-Control-Allow-Origin"); (got == tt.origin) != tt.allow || (!tt.allow && got != "") {
			t.Errorf("preflight from %s: Access-Control-Allow-Origin = %q, want allowed %v", tt.origin, got, tt.allow)
		}
	}
}

// TestServePrintsAddressesSafely: an address JAM accepts may hold
// characters a terminal acts on; jam serve prints them escaped.
func TestServePrintsAddressesSafely(t *testing.T) {
	s := startServe(t, "--addr", "127.0.0.1:0")
	base, app := s.field(t, "base URL:"), s.field(t, "app ID:")
	client, err := jam.New(app, jam.WithBaseURL(base))
	if err != nil {
		t.Fatal(err)
	}
	for _, email := range []string{"ann\u202e@example.com", "ann@exa\u202emple.com"} {
		if err := client.Authenticate(t.Context(), email); err != nil {
			t.Fatalf("Authenticate(%q) = %v", email, err)
		}
		want := strconv.QuoteToGraphic(email)
		if got := s.field(t, "magic link for "); !strings.HasPrefix(got, want+": ") {
			t.Errorf("jam serve printed %q for %q, want it to start with %s", got, email, want)
		}
	}
}

// TestServeHosts: jam serve refuses a Host it was not told of, and serves
// one --allow-host names.
func TestServeHosts(t *testing.T) {
	s := startServe(t, "--addr", "127.0.0.1:0", "--allow-host", "jam.test")
	outbox := s.field(t, "base URL:") + "_jamtest/outbox"
	for host, want := range map[string]int{"rebound.example": 403, "jam.test": 200, "localhost": 200} {
		req, _ := http.NewRequest(http.MethodGet, outbox, nil)
		req.Host = host
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("GET the outbox with Host %q = %d, want %d", host, resp.StatusCode, want)
		}
	}
}
