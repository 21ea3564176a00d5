package jamtest_test

import (
	"maps"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"

	gojam "github.com/go-jam/go-jam"
)

// TestIDTokenClaimsSchema checks every kind of token the server issues (a
// magic-link login, a refresh, IssueTokens, after a new key) against the
// IDTokenClaims schema of openapi.yaml, and that the schema refuses claims
// that break it.
func TestIDTokenClaimsSchema(t *testing.T) {
	doc, err := openapi3.NewLoader().LoadFromData(gojam.OpenAPI)
	if err != nil {
		t.Fatal(err)
	}
	ref := doc.Components.Schemas["IDTokenClaims"]
	if ref == nil {
		t.Fatal("openapi.yaml has no IDTokenClaims schema")
	}
	schema := ref.Value

	srv := newServer(t)
	login := login(t, srv, ann)
	refreshed, err := srv.Client(checked(t)).Refresh(t.Context(), login.RefreshToken)
	if err != nil {
		t.Fatal(err)
	}
	issued, _ := srv.IssueTokens(bob)
	srv.PublishKey()
	rotated, _ := srv.IssueTokens(bob)
	tokens := map[string]string{"login": login.IDToken, "refresh": refreshed, "IssueTokens": issued, "after PublishKey": rotated}
	for name, token := range tokens {
		if err := schema.VisitJSON(payload(t, token)); err != nil {
			t.Errorf("IDTokenClaims.VisitJSON(claims of the %s token) = %v, want nil", name, err)
		}
	}

	valid := payload(t, issued)
	tests := []struct {
		name  string
		claim string
		value any // nil deletes the claim
	}{
		{"no email", "email", nil},
		{"no exp", "exp", nil},
		{"empty sub", "sub", ""},
		{"aud an array", "aud", []any{srv.AppID}},
		{"iat a string", "iat", "1583695439"},
		{"nbf a fraction", "nbf", 1583695439.5},
		{"token_use access", "token_use", "access"},
		{"jti a number", "jti", 7.0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			claims := maps.Clone(valid)
			if tt.value == nil {
				delete(claims, tt.claim)
			} else {
				claims[tt.claim] = tt.value
			}
			if err := schema.VisitJSON(claims); err == nil {
				t.Errorf("IDTokenClaims.VisitJSON(claims with %s) = nil, want an error", tt.name)
			}
		})
	}
}

// payload decodes the claims of a JWS, as JSON values.
func payload(t *testing.T, token string) map[string]any {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("token has %d parts, want 3", len(parts))
	}
	var claims map[string]any
	decodeSegment(t, parts[1], &claims)
	return claims
}
