package jam_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"testing"

	"github.com/go-jam/go-jam/jam"
	"github.com/go-jam/go-jam/jam/jamtest"
)

// TestHTTPStatus answers each kind of failure as the README's table of
// what the app does says, with errors met through real HTTP where a
// server can produce them.
func TestHTTPStatus(t *testing.T) {
	srv := jamtest.NewServer()
	defer srv.Close()
	client := srv.Client(jam.WithRetries(0))
	ctx := context.Background()
	idToken, refreshToken := srv.IssueTokens(testEmail)

	failWith := func(op jamtest.Operation, status int, header http.Header) {
		srv.ClearFaults()
		srv.SetFault(op, jamtest.Fault{Status: status, ContentType: "application/json", Body: []byte(`{"message":"x"}`), Header: header})
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()

	tests := []struct {
		name string
		err  func() error
		want int
	}{
		{"nil", func() error { return nil }, 200},
		{"not verified", func() error { _, err := client.VerifyToken(ctx, "a.b.c"); return err }, 401},
		{"no token", func() error { _, err := jam.BearerToken(&http.Request{Header: http.Header{}}); return err }, 401},
		{"two Authorization headers", func() error {
			_, err := jam.BearerToken(&http.Request{Header: http.Header{"Authorization": {"Bearer a", "Bearer b"}}})
			return err
		}, 400},
		{"key set unavailable", func() error {
			srv.FailKeySet()
			defer srv.ClearFaults()
			c := srv.Client(jam.WithRetries(0))
			_, err := c.VerifyToken(ctx, idToken)
			return err
		}, 503},
		{"authenticate 400", func() error { failWith(jamtest.OpAuthenticate, 400, nil); return client.Authenticate(ctx, testEmail) }, 400},
		{"refresh 400", func() error {
			failWith(jamtest.OpRefreshToken, 400, nil)
			_, err := client.Refresh(ctx, refreshToken)
			return err
		}, 500},
		{"refresh 401", func() error {
			failWith(jamtest.OpRefreshToken, 401, nil)
			_, err := client.Refresh(ctx, refreshToken)
			return err
		}, 401},
		{"logout 401", func() error {
			failWith(jamtest.OpDeleteAllRefreshTokens, 401, nil)
			return client.DeleteAllRefreshTokens(ctx, idToken)
		}, 401},
		{"unknown app", func() error { failWith(jamtest.OpAuthenticate, 404, nil); return client.Authenticate(ctx, testEmail) }, 500},
		{"JAM throttles", func() error {
			failWith(jamtest.OpAuthenticate, 429, http.Header{"Retry-After": {"1"}})
			return client.Authenticate(ctx, testEmail)
		}, 429},
		{"JAM fails", func() error {
			failWith(jamtest.OpRefreshToken, 500, nil)
			_, err := client.Refresh(ctx, refreshToken)
			return err
		}, 503},
		{"deadline", func() error { return fmt.Errorf("wrapped: %w", context.DeadlineExceeded) }, 504},
		{"cancelled", func() error { return client.Authenticate(cancelled, testEmail) }, 503},
		{"not go-jam's", func() error { return errors.New("disk full") }, 500},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.err()
			srv.ClearFaults()
			if got := jam.HTTPStatus(err); got != tt.want {
				t.Errorf("HTTPStatus(%v) = %d, want %d", err, got, tt.want)
			}
		})
	}
}

// TestRefreshNotFound: JAM answers 404 for a deleted refresh token, and
// for an unknown app. Only once the key set has loaded, proving the app
// exists, does the 404 read as a dead refresh token.
func TestRefreshNotFound(t *testing.T) {
	srv := jamtest.NewServer()
	defer srv.Close()
	ctx := context.Background()
	idToken, refreshToken := srv.IssueTokens(testEmail)
	srv.SetFault(jamtest.OpRefreshToken, jamtest.Fault{Status: 404, ContentType: "application/json", Body: []byte(`{"message":"Refresh token not found"}`)})

	client := srv.Client()
	_, err := client.Refresh(ctx, refreshToken)
	if !errors.Is(err, jam.ErrNotFound) || errors.Is(err, jam.ErrUnauthorized) {
		t.Fatalf("Refresh() before the key set loaded = %v, want ErrNotFound alone", err)
	}
	if _, err := client.VerifyToken(ctx, idToken); err != nil {
		t.Fatalf("VerifyToken() = %v", err)
	}
	_, err = client.Refresh(ctx, refreshToken)
	if !errors.Is(err, jam.ErrNotFound) || !errors.Is(err, jam.ErrUnauthorized) {
		t.Fatalf("Refresh() once the key set loaded = %v, want ErrUnauthorized and ErrNotFound", err)
	}
	if got := jam.HTTPStatus(err); got != http.StatusUnauthorized {
		t.Errorf("HTTPStatus(%v) = %d, want 401", err, got)
	}

	// A wrong app ID: its key set never loads, so the 404 stays a
	// configuration error however often it is met.
	wrong, err := jam.New("another-app", jam.WithBaseURL(srv.URL), jam.WithRetries(0))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := wrong.VerifyToken(ctx, idToken); !errors.Is(err, jam.ErrKeySetUnavailable) {
		t.Fatalf("VerifyToken() for an unknown app = %v, want ErrKeySetUnavailable", err)
	}
	srv.ClearFaults()
	_, err = wrong.Refresh(ctx, refreshToken)
	if !errors.Is(err, jam.ErrNotFound) || errors.Is(err, jam.ErrUnauthorized) {
		t.Fatalf("Refresh() for an unknown app = %v, want ErrNotFound alone", err)
	}
}

func TestNewFromEnv(t *testing.T) {
	srv := jamtest.NewServer()
	defer srv.Close()
	idToken, _ := srv.IssueTokens(testEmail)

	t.Setenv(jam.EnvAppID, "")
	t.Setenv(jam.EnvBaseURL, srv.URL)
	if _, err := jam.NewFromEnv(); err == nil {
		t.Fatal("NewFromEnv() with JAM_APP_ID unset = nil error, want one")
	}

	t.Setenv(jam.EnvAppID, srv.AppID)
	client, err := jam.NewFromEnv()
	if err != nil {
		t.Fatalf("NewFromEnv() = %v", err)
	}
	if _, err := client.VerifyToken(context.Background(), idToken); err != nil {
		t.Errorf("VerifyToken() through NewFromEnv's client = %v, want nil", err)
	}

	t.Setenv(jam.EnvBaseURL, "127.0.0.1:8787")
	if _, err := jam.NewFromEnv(); err == nil {
		t.Error("NewFromEnv() with a base URL without a scheme = nil error, want one")
	}
	// Options given after the environment win.
	t.Setenv(jam.EnvBaseURL, "http://127.0.0.1:1")
	client, err = jam.NewFromEnv(jam.WithBaseURL(srv.URL))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client.VerifyToken(context.Background(), idToken); err != nil {
		t.Errorf("VerifyToken() with WithBaseURL over JAM_BASE_URL = %v, want nil", err)
	}
}

// TestReady: a Client made during start-up fetches its keys within the
// wait it is given, and an outage makes Ready fail without making the
// Client unusable once JAM is back.
func TestReady(t *testing.T) {
	srv := jamtest.NewServer()
	defer srv.Close()
	idToken, _ := srv.IssueTokens(testEmail)
	ctx := context.Background()

	srv.FailKeySet()
	client := srv.Client(jam.WithRetries(0))
	if err := client.Ready(ctx); !errors.Is(err, jam.ErrKeySetUnavailable) {
		t.Fatalf("Ready() during an outage = %v, want ErrKeySetUnavailable", err)
	}
	srv.ClearFaults()
	if err := client.Ready(ctx); err != nil {
		t.Fatalf("Ready() once JAM is back = %v, want nil", err)
	}
	fetches := srv.Requests(jamtest.OpGetJWKS)
	if err := client.Ready(ctx); err != nil {
		t.Fatalf("Ready() again = %v, want nil", err)
	}
	if _, err := client.VerifyToken(ctx, idToken); err != nil {
		t.Fatalf("VerifyToken() after Ready() = %v", err)
	}
	if got := srv.Requests(jamtest.OpGetJWKS); got != fetches {
		t.Errorf("key-set requests after Ready() = %d, want %d: a ready Client fetches no more", got, fetches)
	}
}
