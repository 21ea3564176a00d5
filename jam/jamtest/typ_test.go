package jamtest_test

import (
	"strings"
	"testing"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/go-jam/go-jam/jam/jamtest"
)

// TestTokenHeader pins the header of every ID token the server issues,
// however it is issued and whichever key signs it, to what python-jam
// requires (python_jwt's defaults): typ JWT, alg ES512, a kid, and none of
// the headers it refuses; and iat, nbf and exp among the claims.
func TestTokenHeader(t *testing.T) {
	store := &memStore{state: &jamtest.State{AppID: "app", Keys: []jose.JSONWebKey{p521Key(t, "stored-key")}}}
	srv := newServer(t, jamtest.WithStore(store))
	ctx := t.Context()
	tests := []struct {
		name  string
		issue func(t *testing.T) string
	}{
		{"IssueTokens, stored key", func(*testing.T) string { id, _ := srv.IssueTokens(ann); return id }},
		{"magic link", func(t *testing.T) string { return login(t, srv, ann).IDToken }},
		{"refresh", func(t *testing.T) string {
			_, refresh := srv.IssueTokens(ann)
			id, err := srv.Client(checked(t)).Refresh(ctx, refresh)
			if err != nil {
				t.Fatalf("Refresh = %v", err)
			}
			return id
		}},
		{"PublishKey", func(*testing.T) string { srv.PublishKey(); id, _ := srv.IssueTokens(ann); return id }},
		{"RotateKey", func(*testing.T) string { srv.RotateKey(); id, _ := srv.IssueTokens(ann); return id }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			parts := strings.Split(tt.issue(t), ".")
			if len(parts) != 3 {
				t.Fatalf("ID token has %d parts, want 3", len(parts))
			}
			var header map[string]any
			decodeSegment(t, parts[0], &header)
			if header["typ"] != "JWT" || header["alg"] != "ES512" || header["kid"] != srv.KeyIDs()[0] {
				t.Errorf("header = %v, want typ JWT, alg ES512 and kid %q", header, srv.KeyIDs()[0])
			}
			for _, refused := range []string{"jku", "jwk", "x5u", "x5c", "x5t", "x5t#S256"} {
				if _, ok := header[refused]; ok {
					t.Errorf("header has %s, which python-jam refuses", refused)
				}
			}
			var claims map[string]any
			decodeSegment(t, parts[1], &claims)
			for _, name := range []string{"iat", "nbf", "exp"} {
				if _, ok := claims[name].(float64); !ok {
					t.Errorf("claim %s = %v, want a number", name, claims[name])
				}
			}
		})
	}
}
