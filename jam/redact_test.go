package jam_test

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"testing"

	"github.com/go-jam/go-jam/jam"
)

// TestRefreshTokenRedacted: an opaque refresh token has no shape to spot,
// so the calls that send one redact it by value.
func TestRefreshTokenRedacted(t *testing.T) {
	stub := newStubJAM(t)
	client := stub.client(t)
	ctx := context.Background()
	stub.respond(http.StatusUnauthorized, `{"message":"Refresh token `+awkwardRefresh+` was invalid"}`)

	_, err := client.Refresh(ctx, awkwardRefresh)
	assertNoSecrets(t, err, awkwardRefresh)

	// JAM may echo a secret percent-encoded, as a path or a query has it.
	escaped := []string{url.PathEscape(awkwardRefresh), url.QueryEscape(awkwardRefresh)}
	stub.respond(http.StatusNotFound, `{"message":"Refresh token `+escaped[0]+` or `+escaped[1]+` not found"}`)
	err = client.DeleteRefreshToken(ctx, "id-token", awkwardRefresh)
	assertNoSecrets(t, err, append(escaped, awkwardRefresh)...)
	stub.respond(http.StatusBadRequest, `{"message":"Invalid email `+url.QueryEscape("ann+jam@example.com")+`"}`)
	err = client.Authenticate(ctx, "ann+jam@example.com")
	assertNoSecrets(t, err, url.QueryEscape("ann+jam@example.com"), url.PathEscape("ann+jam@example.com"))

	stub.respond(http.StatusUnauthorized, `{"message":"Refresh token `+awkwardRefresh+` was invalid"}`)
	err = client.DeleteRefreshToken(ctx, "id", awkwardRefresh)
	assertNoSecrets(t, err, awkwardRefresh)
	var e *jam.Error
	if errors.As(err, &e); e.Message != "Refresh token REDACTED was invalid" {
		t.Errorf("DeleteRefreshToken() Message = %q, want the refresh token REDACTED", e.Message)
	}
}
