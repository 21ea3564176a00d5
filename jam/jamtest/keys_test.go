package jamtest_test

import (
	"errors"
	"slices"
	"testing"

	"github.com/go-jam/go-jam/jam"
	"github.com/go-jam/go-jam/jam/jamtest"
)

// TestPublishKey checks a rotation with an overlap: the new key signs, and
// tokens of the old one keep working everywhere.
func TestPublishKey(t *testing.T) {
	ctx := t.Context()
	srv := newServer(t)
	client := srv.Client(checked(t))
	first := srv.KeyIDs()
	if len(first) != 1 || first[0] == "" {
		t.Fatalf("KeyIDs() of a new server = %q, want one kid", first)
	}
	oldID, _ := srv.IssueTokens(ann)
	if _, err := client.VerifyToken(ctx, oldID); err != nil {
		t.Fatalf("VerifyToken(before PublishKey) = %v", err)
	}

	kid := srv.PublishKey()
	if want := []string{kid, first[0]}; !slices.Equal(srv.KeyIDs(), want) || kid == first[0] {
		t.Errorf("KeyIDs() after PublishKey() = %q = %q, want %q", srv.KeyIDs(), kid, want)
	}
	newID, newRefresh := srv.IssueTokens(ann)
	tok, err := client.VerifyToken(ctx, newID)
	if err != nil || tok.Header.KeyID != kid {
		t.Errorf("VerifyToken(new token) = %v, %v; want kid %q", tok, err, kid)
	}
	set, err := client.JWKS(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var published []string
	for _, k := range set.Keys {
		published = append(published, k.KeyID)
	}
	if !slices.Equal(published, srv.KeyIDs()) {
		t.Errorf("JWKS() kids = %q, want KeyIDs() %q", published, srv.KeyIDs())
	}

	// The old key is still published: its tokens verify everywhere.
	if _, err := client.VerifyToken(ctx, oldID); err != nil {
		t.Errorf("VerifyToken(old key's token) = %v, want nil", err)
	}
	if _, err := client.VerifyRemote(ctx, oldID); err != nil {
		t.Errorf("VerifyRemote(old key's token) = %v, want nil", err)
	}
	if err := client.DeleteRefreshToken(ctx, oldID, newRefresh); err != nil {
		t.Errorf("DeleteRefreshToken(bearer of the old key) = %v, want nil", err)
	}
}

// TestRemoveKey checks a revocation: the key leaves the set and its tokens
// stop working at the server at once, and in the client once it refetches.
func TestRemoveKey(t *testing.T) {
	ctx := t.Context()
	srv := newServer(t)
	client := srv.Client(checked(t))
	revoked := srv.KeyIDs()[0]
	oldID, oldRefresh := srv.IssueTokens(ann)
	if _, err := client.VerifyToken(ctx, oldID); err != nil {
		t.Fatalf("VerifyToken(before RemoveKey) = %v", err)
	}
	signing := srv.PublishKey()
	newID, _ := srv.IssueTokens(ann)

	if err := srv.RemoveKey(revoked); err != nil {
		t.Fatalf("RemoveKey(%q) = %v, want nil", revoked, err)
	}
	if got := srv.KeyIDs(); !slices.Equal(got, []string{signing}) {
		t.Errorf("KeyIDs() after RemoveKey = %q, want [%q]", got, signing)
	}
	if _, err := client.VerifyRemote(ctx, oldID); !errors.Is(err, jam.ErrNotVerified) {
		t.Errorf("VerifyRemote(revoked key's token) = %v, want ErrNotVerified", err)
	}
	if err := client.DeleteRefreshToken(ctx, oldID, oldRefresh); !errors.Is(err, jam.ErrUnauthorized) {
		t.Errorf("DeleteRefreshToken(bearer of the revoked key) = %v, want ErrUnauthorized", err)
	}
	if err := client.DeleteAllRefreshTokens(ctx, oldID); !errors.Is(err, jam.ErrUnauthorized) {
		t.Errorf("DeleteAllRefreshTokens(bearer of the revoked key) = %v, want ErrUnauthorized", err)
	}
	if _, err := client.JWKS(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := client.VerifyToken(ctx, oldID); !errors.Is(err, jam.ErrUnknownKey) {
		t.Errorf("VerifyToken(revoked key's token, after a refetch) = %v, want ErrUnknownKey", err)
	}
	if _, err := client.VerifyRemote(ctx, newID); err != nil {
		t.Errorf("VerifyRemote(signing key's token) = %v, want nil", err)
	}
	// The refresh token outlives the key of the ID token it came with.
	if _, err := client.Refresh(ctx, oldRefresh); err != nil {
		t.Errorf("Refresh after RemoveKey = %v, want nil", err)
	}

	tests := []struct {
		kid  string
		want error
	}{
		{signing, jamtest.ErrSigningKey},
		{revoked, jamtest.ErrKeyNotFound},
		{"", jamtest.ErrKeyNotFound},
		{"no-such-kid", jamtest.ErrKeyNotFound},
	}
	for _, tt := range tests {
		if err := srv.RemoveKey(tt.kid); !errors.Is(err, tt.want) {
			t.Errorf("RemoveKey(%q) = %v, want %v", tt.kid, err, tt.want)
		}
	}
	if got := srv.KeyIDs(); !slices.Equal(got, []string{signing}) {
		t.Errorf("KeyIDs() after refused RemoveKeys = %q, want [%q]", got, signing)
	}
}
