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

// TestHTTPStatus answers each kind of failure as the table of what the app
// does (docs/errors-and-reliability.md) says, with errors met through real
// HTTP where a server can produce them.
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
