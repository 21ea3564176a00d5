package jamtest_test

import (
	"context"
	"errors"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jam/go-jam/jam"
	"github.com/go-jam/go-jam/jam/jamtest"
)

func TestFaults(t *testing.T) {
	html502 := jamtest.Fault{Status: http.StatusBadGateway, ContentType: "text/html", Body: []byte("<html><body>502 Bad Gateway</body></html>")}
	truncated := jamtest.Fault{Status: http.StatusOK, ContentType: "application/json", Body: []byte(`{"idTok`)}
	huge := jamtest.Fault{Status: http.StatusOK, ContentType: "application/json", Body: []byte(`{"keys": [` + strings.Repeat(" ", 10<<20) + `]}`)}

	tests := []struct {
		name  string
		op    jamtest.Operation
		fault jamtest.Fault
		call  func(context.Context, *jamtest.Server, *jam.Client) error
		want  []error
	}{
		{"HTML 502 on verify", jamtest.OpVerifyToken, html502, func(ctx context.Context, srv *jamtest.Server, c *jam.Client) error {
			id, _ := srv.IssueTokens(ann)
			_, err := c.VerifyRemote(ctx, id)
			return err
		}, []error{jam.ErrUnexpectedStatus}},
		{"truncated JSON on refresh", jamtest.OpRefreshToken, truncated, func(ctx context.Context, srv *jamtest.Server, c *jam.Client) error {
			_, refresh := srv.IssueTokens(ann)
			_, err := c.Refresh(ctx, refresh)
			return err
		}, []error{jam.ErrUnexpectedStatus}},
		{"10 MiB key set", jamtest.OpGetJWKS, huge, func(ctx context.Context, srv *jamtest.Server, c *jam.Client) error {
			id, _ := srv.IssueTokens(ann)
			_, err := c.VerifyToken(ctx, id)
			return err
		}, []error{jam.ErrKeySetUnavailable}},
		{"500 on authenticate", jamtest.OpAuthenticate, jamtest.Fault{Status: 500}, func(ctx context.Context, srv *jamtest.Server, c *jam.Client) error {
			return c.Authenticate(ctx, ann)
		}, []error{jam.ErrUnexpectedStatus}},
		{"401 on delete all", jamtest.OpDeleteAllRefreshTokens, jamtest.Fault{Status: 401}, func(ctx context.Context, srv *jamtest.Server, c *jam.Client) error {
			id, _ := srv.IssueTokens(ann)
			return c.DeleteAllRefreshTokens(ctx, id)
		}, []error{jam.ErrUnauthorized}},
		{"429 on delete", jamtest.OpDeleteRefreshToken, jamtest.Fault{Status: 429}, func(ctx context.Context, srv *jamtest.Server, c *jam.Client) error {
			id, refresh := srv.IssueTokens(ann)
			return c.DeleteRefreshToken(ctx, id, refresh)
		}, []error{jam.ErrUnexpectedStatus}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := t.Context()
			clk := newClock()
			srv := newServer(t, jamtest.WithClock(clk.Now))
			// Each fault met once: what the client makes of it, unretried.
			client := srv.Client(checked(t), jam.WithRetries(0))

			srv.SetFault(tt.op, tt.fault)
			err := tt.call(ctx, srv, client)
			for _, want := range tt.want {
				if !errors.Is(err, want) {
					t.Errorf("with fault: %s = %v, want errors.Is %v", tt.name, err, want)
				}
			}
			if got := srv.Requests(tt.op); got != 1 {
				t.Errorf("Requests(%q) = %d, want 1", tt.op, got)
			}

			srv.ClearFaults()
			clk.Advance(time.Second) // past the client's back-off after a failed key-set fetch
			if err := tt.call(ctx, srv, client); err != nil {
				t.Errorf("after ClearFaults: %s = %v, want nil", tt.name, err)
			}
		})
	}
}

func TestFaultTimes(t *testing.T) {
	ctx := t.Context()
	srv := newServer(t)
	client := srv.Client(checked(t))
	srv.SetFault(jamtest.OpAuthenticate, jamtest.Fault{Status: http.StatusServiceUnavailable, Times: 2})
	for i, wantErr := range []bool{true, true, false, false} {
		if err := client.Authenticate(ctx, ann); (err != nil) != wantErr {
			t.Errorf("Authenticate #%d = %v, want error %v", i+1, err, wantErr)
		}
	}
	if got := srv.Requests(jamtest.OpAuthenticate); got != 4 {
		t.Errorf("Requests(OpAuthenticate) = %d, want 4", got)
	}
}

func TestFailKeySet(t *testing.T) {
	ctx := t.Context()
	clk := newClock()
	srv := newServer(t, jamtest.WithClock(clk.Now))
	client := srv.Client(checked(t))
	id, _ := srv.IssueTokens(ann)

	srv.FailKeySet()
	_, err := client.VerifyToken(ctx, id)
	if !errors.Is(err, jam.ErrKeySetUnavailable) || errors.Is(err, jam.ErrNotFound) || errors.Is(err, jam.ErrNotVerified) {
		t.Errorf("VerifyToken(key set failing) = %v, want ErrKeySetUnavailable only", err)
	}
	if e, ok := errors.AsType[*jam.Error](err); !ok || e.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("VerifyToken(key set failing) = %v, want status 503", err)
	}
	// Remote verification does not need the key set.
	if _, err := client.VerifyRemote(ctx, id); err != nil {
		t.Errorf("VerifyRemote(key set failing) = %v, want nil", err)
	}

	srv.ClearFaults()
	clk.Advance(time.Second) // past the client's back-off after a failed fetch
	if _, err := client.VerifyToken(ctx, id); err != nil {
		t.Errorf("VerifyToken(key set back) = %v, want nil", err)
	}
}

func TestFaultDelay(t *testing.T) {
	t.Run("then handled", func(t *testing.T) {
		srv := newServer(t)
		srv.SetFault(jamtest.OpAuthenticate, jamtest.Fault{Delay: time.Millisecond})
		if err := srv.Client(checked(t)).Authenticate(t.Context(), ann); err != nil {
			t.Errorf("Authenticate(delayed) = %v, want nil", err)
		}
		if _, ok := srv.MagicLink(ann); !ok {
			t.Error("a delayed Authenticate sent no link")
		}
	})

	t.Run("client deadline", func(t *testing.T) {
		srv := newServer(t)
		srv.SetFault(jamtest.OpRefreshToken, jamtest.Fault{Delay: time.Hour})
		ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
		defer cancel()
		if _, err := srv.Client(checked(t)).Refresh(ctx, "x"); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Refresh(delayed an hour, 50ms deadline) = %v, want DeadlineExceeded", err)
		}
	})

	t.Run("Close does not wait", func(t *testing.T) {
		srv := newServer(t)
		srv.SetFault(jamtest.OpGetJWKS, jamtest.Fault{Delay: time.Hour})
		client := srv.Client(checked(t))
		done := make(chan error)
		go func() {
			_, err := client.JWKS(context.Background())
			done <- err
		}()
		for srv.Requests(jamtest.OpGetJWKS) == 0 {
			runtime.Gosched()
		}
		srv.Close() // returns, though a request waits for an hour
		if err := <-done; err == nil {
			t.Error("JWKS() cut short by Close = nil error, want one")
		}
	})
}

// TestConcurrentVerify checks that concurrent verifications on a fresh
// client share one key-set fetch. The fetch is slowed down so that the
// callers pile up on it rather than find the keys cached.
func TestConcurrentVerify(t *testing.T) {
	const callers = 300 // each verification costs milliseconds of P-521
	ctx := t.Context()
	srv := newServer(t)
	client := srv.Client(checked(t))
	id, _ := srv.IssueTokens(ann)
	srv.SetFault(jamtest.OpGetJWKS, jamtest.Fault{Delay: 100 * time.Millisecond})

	var wg sync.WaitGroup
	errs := make(chan error, callers)
	for range callers {
		wg.Go(func() {
			if _, err := client.VerifyToken(ctx, id); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		t.Errorf("VerifyToken = %v, want nil", err)
	}
	if got := srv.Requests(jamtest.OpGetJWKS); got != 1 {
		t.Errorf("Requests(OpGetJWKS) = %d, want 1", got)
	}
}

// TestConcurrentServer runs every operation from many goroutines at once,
// for the race detector.
func TestConcurrentServer(t *testing.T) {
	srv := newServer(t)
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() {
			ctx := t.Context()
			client := srv.Client(checked(t))
			if i%5 == 0 {
				srv.RotateKey()
			}
			if err := client.Authenticate(ctx, ann); err != nil {
				t.Errorf("Authenticate = %v, want nil", err)
			}
			if link, ok := srv.MagicLink(ann); ok {
				if resp, err := noRedirects.Get(link); err == nil {
					resp.Body.Close()
				}
			}
			// Outcomes vary with the rotations racing them; only the race
			// detector judges here.
			id, refresh := srv.IssueTokens(ann)
			client.VerifyRemote(ctx, id)
			if id, err := client.Refresh(ctx, refresh); err == nil {
				client.VerifyToken(ctx, id)
				client.DeleteRefreshToken(ctx, id, refresh)
				client.DeleteAllRefreshTokens(ctx, id)
			}
			srv.SetFault(jamtest.OpGetJWKS, jamtest.Fault{Times: 1})
			srv.Requests(jamtest.OpGetJWKS)
			srv.ClearFaults()
		})
	}
	wg.Wait()
}

func TestSetFaultMisuse(t *testing.T) {
	srv := newServer(t)
	tests := []struct {
		name string
		op   jamtest.Operation
		f    jamtest.Fault
	}{
		{"unknown operation", "login", jamtest.Fault{Status: 500}},
		{"status too small", jamtest.OpGetJWKS, jamtest.Fault{Status: 99}},
		{"status too large", jamtest.OpGetJWKS, jamtest.Fault{Status: 600}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Errorf("SetFault(%q, %+v) did not panic", tt.op, tt.f)
				}
			}()
			srv.SetFault(tt.op, tt.f)
		})
	}
}

// TestFaultHeader: faulted answers say so, for clients that check
// responses against openapi.yaml; real answers do not.
func TestFaultHeader(t *testing.T) {
	srv := newServer(t)
	url := srv.URL + "/" + srv.AppID + "/.well-known/jwks.json"
	get := func() string {
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.Header.Get("Jamtest-Fault")
	}
	if got := get(); got != "" {
		t.Errorf("Jamtest-Fault = %q on a real answer, want none", got)
	}
	srv.FailKeySet()
	if got := get(); got != string(jamtest.OpGetJWKS) {
		t.Errorf("Jamtest-Fault = %q on a faulted answer, want %q", got, jamtest.OpGetJWKS)
	}
}
