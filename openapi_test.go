package gojam_test

import (
	"context"
	"net/http"
	"slices"
	"strconv"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"

	gojam "github.com/go-jam/go-jam"
)

func loadSpec(t *testing.T) *openapi3.T {
	t.Helper()
	doc, err := openapi3.NewLoader().LoadFromData(gojam.OpenAPI)
	if err != nil {
		t.Fatalf("LoadFromData(openapi.yaml) = %v", err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatalf("Validate(openapi.yaml) = %v", err)
	}
	return doc
}

// TestSpecOperations pins the contract's shape: the six operations JAM has,
// where they live and every status JAM documents for them.
func TestSpecOperations(t *testing.T) {
	doc := loadSpec(t)

	if got := doc.OpenAPI; got != "3.0.3" {
		t.Errorf("openapi = %q, want 3.0.3", got)
	}
	if len(doc.Servers) != 1 || doc.Servers[0].URL != "https://api.justauthenticate.me" {
		t.Errorf("servers = %v, want https://api.justauthenticate.me only", doc.Servers)
	}

	tests := []struct {
		id, method, path string
		statuses         []int
		bearer           bool
	}{
		{"authenticate", http.MethodPost, "/{appId}/authenticate", []int{200, 400, 404}, false},
		{"getJWKS", http.MethodGet, "/{appId}/.well-known/jwks.json", []int{200, 404}, false},
		{"verifyToken", http.MethodPost, "/{appId}/verify", []int{200, 400, 401, 404}, false},
		{"refreshToken", http.MethodPost, "/{appId}/refresh", []int{200, 400, 401, 404}, false},
		{"deleteRefreshToken", http.MethodDelete, "/{appId}/user/refresh/{refreshToken}", []int{204, 401, 404}, true},
		{"deleteAllRefreshTokens", http.MethodDelete, "/{appId}/user/refresh", []int{204, 401}, true},
	}
	count := 0
	for _, item := range doc.Paths.Map() {
		count += len(item.Operations())
	}
	if count != len(tests) {
		t.Errorf("spec has %d operations, want %d", count, len(tests))
	}
	for _, tt := range tests {
		t.Run(tt.id, func(t *testing.T) {
			item := doc.Paths.Find(tt.path)
			if item == nil {
				t.Fatalf("Paths.Find(%q) = nil, want a path item", tt.path)
			}
			op := item.GetOperation(tt.method)
			if op == nil {
				t.Fatalf("%s %s: no operation", tt.method, tt.path)
			}
			if op.OperationID != tt.id {
				t.Errorf("operationId = %q, want %q", op.OperationID, tt.id)
			}
			if op.Summary == "" {
				t.Errorf("%s has no summary", tt.id)
			}

			params := slices.Concat(item.Parameters, op.Parameters)
			i := slices.IndexFunc(params, func(p *openapi3.ParameterRef) bool { return p.Value.Name == "appId" })
			if i < 0 {
				t.Fatalf("%s has no appId parameter", tt.id)
			}
			if p := params[i].Value; p.In != "path" || !p.Required || !p.Schema.Value.Type.Is("string") || p.Schema.Value.Format != "" {
				t.Errorf("appId = in %q, required %v, format %q; want a required path string with no format", p.In, p.Required, p.Schema.Value.Format)
			}

			for _, status := range tt.statuses {
				resp := op.Responses.Status(status)
				if resp == nil {
					t.Errorf("%s has no %d response", tt.id, status)
					continue
				}
				if status >= 400 {
					assertErrorBody(t, tt.id+" "+strconv.Itoa(status), resp.Value)
				}
			}
			if def := op.Responses.Default(); def == nil {
				t.Errorf("%s has no default response", tt.id)
			} else {
				assertErrorBody(t, tt.id+" default", def.Value)
			}

			hasBearer := op.Security != nil && slices.ContainsFunc(*op.Security, func(r openapi3.SecurityRequirement) bool {
				_, ok := r["bearerAuth"]
				return ok
			})
			if hasBearer != tt.bearer {
				t.Errorf("%s bearerAuth = %v, want %v", tt.id, hasBearer, tt.bearer)
			}
		})
	}
}

func assertErrorBody(t *testing.T, what string, resp *openapi3.Response) {
	t.Helper()
	mt := resp.Content.Get("application/json")
	if mt == nil || mt.Schema == nil || mt.Schema.Ref != "#/components/schemas/Error" {
		t.Errorf("%s: body is not the Error schema", what)
	}
}

func TestSpecSchemes(t *testing.T) {
	doc := loadSpec(t)

	scheme := doc.Components.SecuritySchemes["bearerAuth"]
	if scheme == nil || scheme.Value.Type != "http" || scheme.Value.Scheme != "bearer" {
		t.Errorf("bearerAuth = %+v, want an http bearer scheme", scheme)
	}

	errSchema := doc.Components.Schemas["Error"].Value
	if !slices.Contains(errSchema.Required, "message") || errSchema.Properties["message"] == nil {
		t.Errorf("Error schema = %+v, want a required message", errSchema)
	}

	jwk := doc.Components.Schemas["JWK"].Value
	for _, field := range []string{"kty", "crv", "x", "y", "kid", "use", "alg"} {
		if jwk.Properties[field] == nil {
			t.Errorf("JWK schema has no %q", field)
		}
	}
}
