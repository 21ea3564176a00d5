package jam_test

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jam/go-jam/jam"
	"github.com/go-jam/go-jam/jam/jamtest"
)

// retryOp is one operation of the client, run with tokens fresh from srv.
type retryOp struct {
	name string
	op   jamtest.Operation
	// once: the operation must not run twice (Authenticate sends an email).
	once bool
	run  func(ctx context.Context, c *jam.Client, srv *jamtest.Server) error
}

var retryOps = []retryOp{
	{"JWKS", jamtest.OpGetJWKS, false, func(ctx context.Context, c *jam.Client, _ *jamtest.Server) error {
		_, err := c.JWKS(ctx)
		return err
	}},
	{"VerifyRemote", jamtest.OpVerifyRemote, false, func(ctx context.Context, c *jam.Client, srv *jamtest.Server) error {
		id, _ := srv.IssueTokens(testEmail)
		_, err := c.VerifyRemote(ctx, id)
		return err
	}},
	{"Refresh", jamtest.OpRefreshToken, false, func(ctx context.Context, c *jam.Client, srv *jamtest.Server) error {
		_, refresh := srv.IssueTokens(testEmail)
		_, err := c.Refresh(ctx, refresh)
		return err
	}},
	{"DeleteRefreshToken", jamtest.OpDeleteRefreshToken, false, func(ctx context.Context, c *jam.Client, srv *jamtest.Server) error {
		id, refresh := srv.IssueTokens(testEmail)
		return c.DeleteRefreshToken(ctx, id, refresh)
	}},
	{"DeleteAllRefreshTokens", jamtest.OpDeleteAllRefreshTokens, false, func(ctx context.Context, c *jam.Client, srv *jamtest.Server) error {
		id, _ := srv.IssueTokens(testEmail)
		return c.DeleteAllRefreshTokens(ctx, id)
	}},
	{"Authenticate", jamtest.OpAuthenticate, true, func(ctx context.Context, c *jam.Client, _ *jamtest.Server) error {
		return c.Authenticate(ctx, testEmail)
	}},
}

// retryClient returns a client of srv on a transport of its own, so that
// no connection is reused from another test (Go's transport resends a GET
// by itself on a reused connection that was reset), and the waits it
// would sleep through.
func retryClient(t *testing.T, srv *jamtest.Server, opts ...jam.Option) (*jam.Client, func() []time.Duration) {
	t.Helper()
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	c := srv.Client(append([]jam.Option{jam.WithHTTPClient(&http.Client{Transport: tr, Timeout: 10 * time.Second})}, opts...)...)
	return c, jam.RecordWaits(c)
}

func quietServer(t *testing.T, opts ...jamtest.Option) *jamtest.Server {
	t.Helper()
	srv := jamtest.NewServer(append([]jamtest.Option{jamtest.WithLogger(slog.New(slog.DiscardHandler))}, opts...)...)
	t.Cleanup(srv.Close)
	return srv
}

// TestRetries meets each operation with each transient fault once: the
// operations a repeat cannot harm are retried, Authenticate only when JAM
// provably did not run it, and what is not transient is never retried.
func TestRetries(t *testing.T) {
	const second = time.Second
	faults := []struct {
		name       string
		fault      jamtest.Fault
		retried    bool          // for an operation that may run twice
		onceToo    bool          // for Authenticate too
		retryAfter time.Duration // the wait asked for, if any
	}{
		{"connection reset", jamtest.Fault{Reset: true}, true, false, 0},
		{"gateway 502", jamtest.GatewayError(502), true, false, 0},
		{"HTML 502", jamtest.HTMLError(502), true, false, 0},
		{"gateway 504", jamtest.GatewayError(504), true, false, 0},
		{"HTML 504", jamtest.HTMLError(504), true, false, 0},
		{"503", jamtest.GatewayError(503), true, false, 0},
		{"429", jamtest.GatewayError(429), true, false, 0},
		{"503 Retry-After 1", jamtest.Throttled(503, second), true, true, second},
		{"429 Retry-After 2", jamtest.Throttled(429, 2*second), true, true, 2 * second},
		{"429 Retry-After 3, over the budget", jamtest.Throttled(429, 3*second), false, false, 0},
		{"500", jamtest.GatewayError(500), false, false, 0},
		{"501", jamtest.Fault{Status: 501}, false, false, 0},
	}
	for _, op := range retryOps {
		for _, f := range faults {
			t.Run(op.name+"/"+f.name, func(t *testing.T) {
				srv := quietServer(t)
				client, waits := retryClient(t, srv)
				fault := f.fault
				fault.Times = 1
				srv.SetFault(op.op, fault)

				err := op.run(context.Background(), client, srv)
				retried := f.retried && (!op.once || f.onceToo)
				wantRequests, wantRetries := 1, int64(0)
				if retried {
					wantRequests, wantRetries = 2, 1
				}
				if got := srv.Requests(op.op); got != wantRequests {
					t.Errorf("%s meeting %s: JAM got %d requests, want %d", op.name, f.name, got, wantRequests)
				}
				if got := client.Stats().Retries; got != wantRetries {
					t.Errorf("%s meeting %s: Stats().Retries = %d, want %d", op.name, f.name, got, wantRetries)
				}
				if !retried {
					var e *jam.Error
					if !errors.As(err, &e) || e.Attempts != 1 {
						t.Fatalf("%s meeting %s = %v, want a *jam.Error after 1 attempt", op.name, f.name, err)
					}
					if len(waits()) != 0 {
						t.Errorf("%s meeting %s waited %v, want no wait", op.name, f.name, waits())
					}
					return
				}
				if err != nil {
					t.Fatalf("%s meeting %s once = %v, want the retry to succeed", op.name, f.name, err)
				}
				w := waits()
				switch {
				case len(w) != 1:
					t.Errorf("%s meeting %s waited %v, want one wait", op.name, f.name, w)
				case f.retryAfter != 0 && w[0] != f.retryAfter:
					t.Errorf("%s meeting %s waited %v, want the Retry-After, %v", op.name, f.name, w[0], f.retryAfter)
				case f.retryAfter == 0 && (w[0] < 0 || w[0] >= 100*time.Millisecond):
					t.Errorf("%s meeting %s waited %v, want a first backoff in [0, 100ms)", op.name, f.name, w[0])
				}
			})
		}
	}
}

// TestRetriesNeverSent: a request that found no server to connect to
// never reached JAM, so even Authenticate is retried; and the final error
// still says what happened, and how many attempts were made.
func TestRetriesNeverSent(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now: connections are refused

	for _, op := range retryOps {
		t.Run(op.name, func(t *testing.T) {
			srv := quietServer(t)
			client, err := jam.New(srv.AppID, jam.WithBaseURL("http://"+addr))
			if err != nil {
				t.Fatal(err)
			}
			waits := jam.RecordWaits(client)
			err = op.run(context.Background(), client, srv)
			var e *jam.Error
			if !errors.As(err, &e) || e.Attempts != 3 || e.StatusCode != 0 {
				t.Fatalf("%s with connections refused = %v, want a *jam.Error with no status after 3 attempts", op.name, err)
			}
			if !strings.Contains(err.Error(), "after 3 attempts") {
				t.Errorf("%s error text %q does not say how many attempts were made", op.name, err)
			}
			if got := client.Stats().Retries; got != 2 {
				t.Errorf("%s: Stats().Retries = %d, want 2", op.name, got)
			}
			w := waits()
			if len(w) != 2 || w[0] >= 100*time.Millisecond || w[1] >= 200*time.Millisecond {
				t.Errorf("%s waited %v, want two backoffs under 100ms and 200ms", op.name, w)
			}
			if op.op == jamtest.OpGetJWKS && !errors.Is(err, jam.ErrKeySetUnavailable) {
				t.Errorf("JWKS() = %v, want ErrKeySetUnavailable", err)
			}
		})
	}
}

// TestRetryLimits: WithRetries bounds the attempts, 0 turns retries off,
// a Retry-After can be an HTTP date, and the caller's context ends a wait.
func TestRetryLimits(t *testing.T) {
	ctx := context.Background()
	refresh := retryOps[2]

	// Up to 4 retries, whose backoffs (at most 0.1, 0.2, 0.4 and 0.8 s)
	// always fit the 2-second budget; a fifth's (up to 1 s) may not.
	for _, n := range []int{0, 1, 2, 4} {
		srv := quietServer(t)
		client, _ := retryClient(t, srv, jam.WithRetries(n))
		srv.SetFault(refresh.op, jamtest.GatewayError(502))
		err := refresh.run(ctx, client, srv)
		var e *jam.Error
		if !errors.As(err, &e) || e.Attempts != n+1 || !errors.Is(err, jam.ErrUnexpectedStatus) || e.StatusCode != 502 {
			t.Errorf("WithRetries(%d): Refresh(502 every time) = %v, want ErrUnexpectedStatus (HTTP 502) after %d attempts", n, err, n+1)
		}
		if got := srv.Requests(refresh.op); got != n+1 {
			t.Errorf("WithRetries(%d): JAM got %d requests, want %d", n, got, n+1)
		}
	}

	t.Run("Retry-After as an HTTP date", func(t *testing.T) {
		srv := quietServer(t)
		clk := newClock()
		client, waits := retryClient(t, srv, jam.WithClock(clk.Now))
		f := jamtest.GatewayError(503)
		f.Header = http.Header{"Retry-After": {clk.Now().Add(time.Second).Format(http.TimeFormat)}}
		f.Times = 1
		srv.SetFault(jamtest.OpAuthenticate, f)
		if err := client.Authenticate(ctx, testEmail); err != nil {
			t.Fatalf("Authenticate(503, Retry-After a date) = %v, want a retry that succeeds", err)
		}
		if w := waits(); len(w) != 1 || w[0] != time.Second {
			t.Errorf("waited %v, want the second the date asked for", w)
		}
	})

	t.Run("the caller's context ends the wait", func(t *testing.T) {
		srv := quietServer(t)
		tr := &http.Transport{}
		t.Cleanup(tr.CloseIdleConnections)
		client := srv.Client(jam.WithHTTPClient(&http.Client{Transport: tr}))
		srv.SetFault(refresh.op, jamtest.Throttled(503, time.Second))
		ctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
		defer cancel()
		start := time.Now()
		err := refresh.run(ctx, client, srv)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Refresh(deadline within the Retry-After) = %v, want DeadlineExceeded", err)
		}
		if d := time.Since(start); d > 900*time.Millisecond {
			t.Errorf("Refresh returned after %v, want it to stop waiting at the deadline", d)
		}
		if got := srv.Requests(refresh.op); got != 1 {
			t.Errorf("JAM got %d requests, want 1", got)
		}
	})
}

// TestRetryAfterLostAnswer: a logout whose answer was lost ran on JAM's
// side; the retry finds the token gone, which means the logout succeeded.
// Authenticate, whose answer was lost, is not sent again.
func TestRetryAfterLostAnswer(t *testing.T) {
	ctx := context.Background()
	for _, f := range []jamtest.Fault{{Reset: true}, jamtest.GatewayError(504)} {
		srv := quietServer(t)
		client, _ := retryClient(t, srv)
		f.AfterHandling, f.Times = true, 1
		srv.SetFault(jamtest.OpDeleteRefreshToken, f)
		srv.SetFault(jamtest.OpAuthenticate, f)

		id, refresh := srv.IssueTokens(testEmail)
		if err := client.DeleteRefreshToken(ctx, id, refresh); err != nil {
			t.Errorf("DeleteRefreshToken(answer lost, then 404) = %v, want nil", err)
		}
		if _, err := client.Refresh(ctx, refresh); !errors.Is(err, jam.ErrUnauthorized) {
			t.Errorf("Refresh(the deleted token) = %v, want ErrUnauthorized", err)
		}
		// Without a lost answer, an unknown token is still ErrNotFound.
		if err := client.DeleteRefreshToken(ctx, id, refresh); !errors.Is(err, jam.ErrNotFound) {
			t.Errorf("DeleteRefreshToken(an unknown token) = %v, want ErrNotFound", err)
		}

		if err := client.Authenticate(ctx, testEmail); err == nil {
			t.Errorf("Authenticate(answer lost) = nil, want the error: it is not retried")
		}
		if got, handled := srv.Requests(jamtest.OpAuthenticate), srv.Handled(jamtest.OpAuthenticate); got != 1 || handled != 1 {
			t.Errorf("Authenticate(answer lost): %d requests, %d handled; want 1 and 1: one email", got, handled)
		}
	}
}

// TestRetrySharedFetch: verifications waiting on one key-set fetch share
// its retries: JAM sees one failed fetch and one retry, not one per waiter.
func TestRetrySharedFetch(t *testing.T) {
	srv := quietServer(t)
	client, _ := retryClient(t, srv)
	id, _ := srv.IssueTokens(testEmail)
	f := jamtest.GatewayError(502)
	f.Times, f.Delay = 1, 100*time.Millisecond // long enough for all to wait on it
	srv.SetFault(jamtest.OpGetJWKS, f)

	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for range 20 {
		wg.Go(func() {
			_, err := client.VerifyToken(context.Background(), id)
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("VerifyToken() = %v, want nil", err)
		}
	}
	if got := srv.Requests(jamtest.OpGetJWKS); got != 2 {
		t.Errorf("JAM got %d key-set requests, want 2: one fault, one retry", got)
	}
	if s := client.Stats(); s.Retries != 1 || s.KeySetFetches != 1 {
		t.Errorf("Stats() = %+v, want 1 retry within 1 fetch", s)
	}
}

// TestRetryBodyIntact: every attempt sends the same body.
func TestRetryBodyIntact(t *testing.T) {
	stub := newStubJAM(t)
	client := stub.client(t)
	jam.RecordWaits(client)
	stub.respond(http.StatusBadGateway, `<html>502</html>`)
	_, err := client.Refresh(context.Background(), awkwardRefresh)
	if !errors.Is(err, jam.ErrUnexpectedStatus) {
		t.Fatalf("Refresh(502 every time) = %v, want ErrUnexpectedStatus", err)
	}
	stub.mu.Lock()
	defer stub.mu.Unlock()
	if len(stub.requests) != 3 {
		t.Fatalf("stub got %d requests, want 3", len(stub.requests))
	}
	for i, r := range stub.requests {
		if want := `{"refreshToken":"` + awkwardRefresh + `"}`; r.body != want || r.contentType != "application/json" {
			t.Errorf("attempt %d sent %s %q, want %q", i+1, r.contentType, r.body, want)
		}
	}
}

// TestResponses maps every operation × status to the error a caller sees.
func TestResponses(t *testing.T) {
	stub := newStubJAM(t)
	client := stub.client(t)
	idToken := idTokenFor(t)
	secrets := []string{idToken, testEmail}

	statuses := []struct {
		name    string
		status  int
		body    string
		fault   bool // off-contract on purpose
		want    func(op operation) error
		message string
	}{
		{"400", 400, `{"message":"Invalid email"}`, false, func(operation) error { return jam.ErrBadRequest }, "Invalid email"},
		{"400 empty body", 400, ``, true, func(operation) error { return jam.ErrBadRequest }, ""},
		{"401", 401, `{"message":"ID token is invalid"}`, false, func(op operation) error { return op.on401 }, "ID token is invalid"},
		{"401 no body", 401, ``, true, func(op operation) error { return op.on401 }, ""},
		{"404", 404, `{"message":"App not found"}`, false, func(operation) error { return jam.ErrNotFound }, "App not found"},
		{"404 truncated JSON", 404, `{"message":"App not fo`, true, func(operation) error { return jam.ErrNotFound }, ""},
		{"500", 500, `{"message":"Internal Server Error"}`, false, func(operation) error { return jam.ErrUnexpectedStatus }, "Internal Server Error"},
		{"HTML 502", 502, `<html><body><h1>502 Bad Gateway</h1></body></html>`, true, func(operation) error { return jam.ErrUnexpectedStatus }, ""},
		{"message not a string", 400, `{"message":{"text":"x"}}`, true, func(operation) error { return jam.ErrBadRequest }, ""},
		{"message echoing secrets", 400, `{"message":"bad ` + testEmail + ` or eve@example.org or ` + idToken + `"}`, false, func(operation) error { return jam.ErrBadRequest }, "bad REDACTED or REDACTED or REDACTED"},
		{"message echoing an opaque token", 400, `{"message":"refresh token dGhpcyBpcyBhIHRva2VuMTIzNDU2 unknown; internationalization"}`, false, func(operation) error { return jam.ErrBadRequest }, "refresh token REDACTED unknown; internationalization"},
		{"message with control characters", 400, `{"message":"line\nbreak\u001b[31m"}`, false, func(operation) error { return jam.ErrBadRequest }, "line break [31m"},
		{"body over 1 MiB", 500, `{"message":"` + strings.Repeat("x", 1<<20) + `"}`, true, func(operation) error { return jam.ErrUnexpectedStatus }, ""},
		{"body of 10 MiB", 200, `{"idToken":"` + strings.Repeat("x", 10<<20) + `"}`, true, func(operation) error { return jam.ErrUnexpectedStatus }, ""},
	}
	for _, op := range operations(idToken) {
		for _, st := range statuses {
			t.Run(op.name+"/"+st.name, func(t *testing.T) {
				stub.respondAs(st.status, st.body, st.fault)
				err := op.call(context.Background(), client)
				want := st.want(op)
				if !errors.Is(err, want) {
					t.Fatalf("%s() = %v, want %v", op.name, err, want)
				}
				if op.always != nil && !errors.Is(err, op.always) {
					t.Errorf("%s() = %v, want it to match %v too", op.name, err, op.always)
				}
				var e *jam.Error
				if !errors.As(err, &e) {
					t.Fatalf("%s() = %T, want *jam.Error", op.name, err)
				}
				if e.Op != op.name || e.StatusCode != st.status || e.Message != st.message {
					t.Errorf("%s() = {Op %q, StatusCode %d, Message %q}, want {%q, %d, %q}", op.name, e.Op, e.StatusCode, e.Message, op.name, st.status, st.message)
				}
				assertNoSecrets(t, err, secrets...)
				if strings.Contains(err.Error(), "xxxxxxxx") || strings.Contains(err.Error(), "<html>") {
					t.Errorf("%s() error text %q holds the body", op.name, err)
				}
			})
		}
	}
}

func TestSuccessWithoutExpectedBody(t *testing.T) {
	stub := newStubJAM(t)
	client := stub.client(t)
	ctx := context.Background()

	for _, body := range []string{``, `{}`, `{"idToken":""}`, `{"idToken":42}`, `<html>ok</html>`} {
		stub.respond(http.StatusOK, body)
		_, err := client.Refresh(ctx, "rt")
		if !errors.Is(err, jam.ErrUnexpectedStatus) {
			t.Errorf("Refresh() on 200 %q = %v, want ErrUnexpectedStatus", body, err)
		}
	}

	stub.respond(http.StatusOK, `{"idToken":"new-token"}`)
	if got, err := client.Refresh(ctx, "rt"); err != nil || got != "new-token" {
		t.Errorf("Refresh() = %q, %v; want new-token, nil", got, err)
	}

	// 204 and 200 both mean done for the calls that return nothing.
	for _, status := range []int{http.StatusOK, http.StatusNoContent} {
		stub.respond(status, "")
		if err := client.DeleteAllRefreshTokens(ctx, "id"); err != nil {
			t.Errorf("DeleteAllRefreshTokens() on %d = %v, want nil", status, err)
		}
	}
}

func TestTransportFailures(t *testing.T) {
	idToken := idTokenFor(t)

	t.Run("connection refused", func(t *testing.T) {
		stub := newStubJAM(t)
		client := stub.client(t)
		stub.Close()
		for _, op := range operations(idToken) {
			err := op.call(context.Background(), client)
			var e *jam.Error
			if !errors.As(err, &e) || e.StatusCode != 0 || e.Op != op.name {
				t.Errorf("%s() = %#v, want a *jam.Error for %s with no status", op.name, err, op.name)
			}
			// The URL, which may hold a refresh token, stays out of the text.
			assertNoSecrets(t, err, idToken, testEmail, url.PathEscape(awkwardRefresh), stub.URL)
		}
	})

	// A server that never answers, for the timeout and cancel cases.
	hang := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-hang:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(slow.Close)
	t.Cleanup(func() { close(hang) })

	t.Run("context deadline", func(t *testing.T) {
		client, _ := jam.New(testAppID, jam.WithBaseURL(slow.URL))
		for _, op := range operations(idToken) {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
			err := op.call(ctx, client)
			cancel()
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("%s() = %v, want context.DeadlineExceeded", op.name, err)
			}
		}
	})

	t.Run("context cancelled mid-request", func(t *testing.T) {
		client, _ := jam.New(testAppID, jam.WithBaseURL(slow.URL))
		for _, op := range operations(idToken) {
			ctx, cancel := context.WithCancel(context.Background())
			time.AfterFunc(20*time.Millisecond, cancel)
			start := time.Now()
			err := op.call(ctx, client)
			if !errors.Is(err, context.Canceled) {
				t.Errorf("%s() = %v, want context.Canceled", op.name, err)
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("%s() returned %v after cancel, want promptly", op.name, d)
			}
		}
	})

	t.Run("HTTP client timeout", func(t *testing.T) {
		client, _ := jam.New(testAppID, jam.WithBaseURL(slow.URL), jam.WithHTTPClient(&http.Client{Timeout: 20 * time.Millisecond}))
		err := client.Authenticate(context.Background(), testEmail)
		var e *jam.Error
		if !errors.As(err, &e) || e.StatusCode != 0 {
			t.Fatalf("Authenticate() = %v, want a *jam.Error with no status", err)
		}
		var timeout interface{ Timeout() bool }
		if !errors.As(err, &timeout) || !timeout.Timeout() {
			t.Errorf("Authenticate() = %v, want a timeout", err)
		}
	})
}

// TestRetryAfterPassedOn: once the client's retries are spent, or JAM asks
// for a wait longer than they may take, JAM's Retry-After reaches the
// caller in Error.RetryAfter.
func TestRetryAfterPassedOn(t *testing.T) {
	srv := jamtest.NewServer()
	defer srv.Close()
	client := srv.Client()
	for _, tt := range []struct {
		status int
		after  time.Duration
	}{
		{http.StatusTooManyRequests, 2 * time.Minute},
		{http.StatusServiceUnavailable, 30 * time.Second},
	} {
		srv.SetFault(jamtest.OpAuthenticate, jamtest.Throttled(tt.status, tt.after))
		err := client.Authenticate(context.Background(), testEmail)
		var e *jam.Error
		if !errors.As(err, &e) || e.RetryAfter != tt.after {
			t.Errorf("Authenticate() throttled with %d and Retry-After %v = %v, want an *Error with RetryAfter %v", tt.status, tt.after, err, tt.after)
		}
	}
	srv.SetFault(jamtest.OpAuthenticate, jamtest.GatewayError(http.StatusBadGateway))
	var e *jam.Error
	if err := client.Authenticate(context.Background(), testEmail); !errors.As(err, &e) || e.RetryAfter != 0 {
		t.Errorf("Authenticate() with a 502 = %v, want no RetryAfter", err)
	}
}
