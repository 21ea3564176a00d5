package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// process is the program built and running in a process of its own, so
// that it gets real signals.
type process struct {
	cmd    *exec.Cmd
	app    string // host:port
	stderr chan string
	exited chan error
}

func startProcess(t *testing.T) *process {
	t.Helper()
	if testing.Short() {
		t.Skip("builds the program")
	}
	bin := filepath.Join(t.TempDir(), "webapp")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	p := &process{cmd: exec.Command(bin, "-addr", "127.0.0.1:0", "-jam-addr", "127.0.0.1:0"), stderr: make(chan string, 100), exited: make(chan error, 1)}
	p.cmd.Env = append(os.Environ(), "JAM_APP_ID=", "JAM_BASE_URL=")
	stdout, _ := p.cmd.StdoutPipe()
	stderr, _ := p.cmd.StderrPipe()
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.cmd.Process.Kill() })
	lines := make(chan string)
	go func() {
		s := bufio.NewScanner(stdout)
		for s.Scan() {
			lines <- s.Text()
		}
		close(lines)
	}()
	go func() {
		s := bufio.NewScanner(stderr)
		for s.Scan() {
			p.stderr <- s.Text()
		}
		close(p.stderr)
		p.exited <- p.cmd.Wait()
	}()
	timeout := time.After(30 * time.Second)
	for p.app == "" {
		select {
		case line, ok := <-lines:
			if !ok {
				t.Fatal("the program exited before printing its address")
			}
			if v, ok := strings.CutPrefix(line, "app:"); ok {
				p.app = strings.TrimSuffix(strings.TrimPrefix(strings.TrimSpace(v), "http://"), "/")
			}
		case <-timeout:
			t.Fatal("the program printed no address in 30s")
		}
	}
	go func() {
		for range lines {
		}
	}()
	return p
}

// holdBody starts a login whose body never finishes coming.
func (p *process) holdBody(t *testing.T) net.Conn {
	t.Helper()
	conn, err := net.Dial("tcp", p.app)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	fmt.Fprintf(conn, "POST /login HTTP/1.1\r\nHost: %s\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\nemail=ann", p.app)
	// The handler is running once the server answers another request:
	// connections are served concurrently, so wait for a request on a
	// second one to be sure the server took the first.
	c2, err := net.Dial("tcp", p.app)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(c2, "GET /static/app.css HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", p.app)
	io.Copy(io.Discard, c2)
	c2.Close()
	return conn
}

// waitLine waits for a line of standard error with the text.
func (p *process) waitLine(t *testing.T, text string) {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case line, ok := <-p.stderr:
			if !ok {
				t.Fatalf("the program exited without writing %q", text)
			}
			if strings.Contains(line, text) {
				return
			}
		case <-timeout:
			t.Fatalf("the program wrote no %q in 10s", text)
		}
	}
}

func (p *process) wait(t *testing.T, within time.Duration) (time.Duration, error) {
	t.Helper()
	start := time.Now()
	go func() {
		for range p.stderr {
		}
	}()
	select {
	case err := <-p.exited:
		return time.Since(start), err
	case <-time.After(within):
		t.Fatalf("the program did not exit within %v", within)
		return 0, nil
	}
}

// TestShutdown interrupts the program while a client holds a request body
// open: it waits for it no longer than shutdownTimeout, then exits 0.
func TestShutdown(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM} {
		t.Run(sig.String(), func(t *testing.T) {
			p := startProcess(t)
			p.holdBody(t)
			start := time.Now()
			p.cmd.Process.Signal(sig)
			p.waitLine(t, "shutting down")
			_, err := p.wait(t, shutdownTimeout+5*time.Second)
			if took := time.Since(start); err != nil || took < shutdownTimeout || took > shutdownTimeout+3*time.Second {
				t.Errorf("after %v with a body held open, the program exited %v after %v; want status 0 after about %v", sig, err, took, shutdownTimeout)
			}
		})
	}
}

// TestSecondSignal interrupts the program twice: the second ends it at
// once, without waiting for the request body held open.
func TestSecondSignal(t *testing.T) {
	p := startProcess(t)
	p.holdBody(t)
	p.cmd.Process.Signal(syscall.SIGINT)
	p.waitLine(t, "shutting down")
	p.cmd.Process.Signal(syscall.SIGINT)
	took, err := p.wait(t, shutdownTimeout)
	if took > time.Second {
		t.Errorf("the program exited %v after the second signal, want at once", took)
	}
	if ee, ok := err.(*exec.ExitError); !ok || ee.Success() {
		t.Errorf("the program, interrupted twice, exited %v; want a failure status", err)
	}
}
