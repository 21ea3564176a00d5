package jamtest_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"runtime"
	"slices"
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
		{"HTML 502 on verify", jamtest.OpVerifyRemote, html502, func(ctx context.Context, srv *jamtest.Server, c *jam.Client) error {
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

// TestConcurrentServer runs every operation from many goroutines at once,
// each for a user of its own, while keys are published and faults set and
// cleared. Keys are only added and the faults only delay, so no outcome
// depends on the interleaving: each is asserted, and so are the counts
// once all are done.
func TestConcurrentServer(t *testing.T) {
	const users = 12
	srv := newServer(t)
	hc := checked(t)
	published := make(chan string, users)
	var wg sync.WaitGroup
	for i := range users {
		wg.Go(func() {
			email := fmt.Sprintf("user%d@example.com", i)
			if i%3 == 0 {
				published <- srv.PublishKey()
			}
			srv.SetFault(jamtest.OpGetJWKS, jamtest.Fault{Delay: time.Millisecond, Times: 1})
			if err := concurrentUser(t.Context(), srv, hc, email); err != nil {
				t.Errorf("%s: %v", email, err)
			}
			srv.ClearFaults()
		})
	}
	wg.Wait()
	close(published)

	for op, want := range map[jamtest.Operation]int{
		jamtest.OpAuthenticate:           users,
		jamtest.OpVerifyRemote:           users,
		jamtest.OpRefreshToken:           3 * users,
		jamtest.OpDeleteRefreshToken:     users,
		jamtest.OpDeleteAllRefreshTokens: users,
	} {
		if got := srv.Requests(op); got != want {
			t.Errorf("Requests(%q) = %d, want %d", op, got, want)
		}
	}
	// Each client fetches the set once, and once more if its second token
	// has a kid published after the first fetch.
	if got := srv.Requests(jamtest.OpGetJWKS); got < users || got > 2*users {
		t.Errorf("Requests(OpGetJWKS) = %d, want %d to %d", got, users, 2*users)
	}
	if got := len(srv.Outbox()); got != users {
		t.Errorf("len(Outbox()) = %d, want %d", got, users)
	}
	kids := srv.KeyIDs()
	if len(kids) != 1+(users+2)/3 {
		t.Errorf("KeyIDs() = %d kids, want %d", len(kids), 1+(users+2)/3)
	}
	for kid := range published {
		if !slices.Contains(kids, kid) {
			t.Errorf("KeyIDs() lacks %q, returned by PublishKey", kid)
		}
	}
}

// concurrentUser runs a user's whole life, from login to logout, and
// returns the first outcome that is not the one expected.
func concurrentUser(ctx context.Context, srv *jamtest.Server, hc jam.Option, email string) error {
	// Keys published by other goroutines are new kids at any moment, but
	// a client needs at most one refetch, which it is always allowed: its
	// first fetch follows the first token, and keys are never removed.
	client := srv.Client(hc)
	if err := client.Authenticate(ctx, email); err != nil {
		return fmt.Errorf("Authenticate = %w", err)
	}
	link, ok := srv.MagicLink(email)
	if !ok {
		return errors.New("MagicLink = _, false after Authenticate")
	}
	if !slices.ContainsFunc(srv.Outbox(), func(m jamtest.Message) bool { return m.Email == email && m.Link == link }) {
		return errors.New("Outbox() lacks the link MagicLink returns")
	}
	resp, err := noRedirects.Get(link)
	if err != nil {
		return err
	}
	resp.Body.Close()
	loc, err := resp.Location()
	if err != nil {
		return fmt.Errorf("GET magic link = %d, no Location", resp.StatusCode)
	}
	tokens, err := jam.TokensFromURL(loc)
	if err != nil || tokens.RefreshToken == "" {
		return fmt.Errorf("TokensFromURL = %v, %v; want both tokens", tokens, err)
	}
	if tok, err := client.VerifyToken(ctx, tokens.IDToken); err != nil || tok.Claims.Email != email {
		return fmt.Errorf("VerifyToken = %v, want the user's claims", err)
	}
	if _, err := client.VerifyRemote(ctx, tokens.IDToken); err != nil {
		return fmt.Errorf("VerifyRemote = %w", err)
	}
	idToken, err := client.Refresh(ctx, tokens.RefreshToken)
	if err != nil {
		return fmt.Errorf("Refresh = %w", err)
	}
	if tok, err := client.VerifyToken(ctx, idToken); err != nil || tok.Claims.Email != email {
		return fmt.Errorf("VerifyToken(refreshed) = %v, want the user's claims", err)
	}
	if err := client.DeleteRefreshToken(ctx, idToken, tokens.RefreshToken); err != nil {
		return fmt.Errorf("DeleteRefreshToken = %w", err)
	}
	if _, err := client.Refresh(ctx, tokens.RefreshToken); !errors.Is(err, jam.ErrUnauthorized) {
		return fmt.Errorf("Refresh(deleted) = %v, want ErrUnauthorized", err)
	}
	_, other := srv.IssueTokens(email)
	if err := client.DeleteAllRefreshTokens(ctx, idToken); err != nil {
		return fmt.Errorf("DeleteAllRefreshTokens = %w", err)
	}
	if _, err := client.Refresh(ctx, other); !errors.Is(err, jam.ErrUnauthorized) {
		return fmt.Errorf("Refresh(after DeleteAllRefreshTokens) = %v, want ErrUnauthorized", err)
	}
	return nil
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
