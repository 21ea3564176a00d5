package gojam_test

import (
	"context"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"

	gojam "github.com/go-jam/go-jam"
	"github.com/go-jam/go-jam/jam"
)

// loadSpec loads openapi.yaml and fails unless it is a valid OpenAPI
// document.
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

// TestSpecOperations checks the operations against what JAM documents:
// where each lives, exactly the statuses it answers, a {"message"} body
// for each failure, and who may call it. The client and jamtest are both
// generated from the spec, so their tests agree with each other whatever
// it says; only this test holds it to JAM.
func TestSpecOperations(t *testing.T) {
	doc := loadSpec(t)
	if len(doc.Servers) != 1 || doc.Servers[0].URL != jam.DefaultBaseURL {
		t.Errorf("servers = %v, want jam.DefaultBaseURL %s alone", doc.Servers, jam.DefaultBaseURL)
	}

	tests := []struct {
		id, method, path string
		statuses         []int // besides default
		bearer           bool
	}{
		{"authenticate", http.MethodPost, "/{appId}/authenticate", []int{200, 400, 404}, false},
		{"getJWKS", http.MethodGet, "/{appId}/.well-known/jwks.json", []int{200, 404}, false},
		{"verifyToken", http.MethodPost, "/{appId}/verify", []int{200, 400, 401, 404}, false},
		{"refreshToken", http.MethodPost, "/{appId}/refresh", []int{200, 400, 401, 404}, false},
		{"deleteRefreshToken", http.MethodDelete, "/{appId}/user/refresh/{refreshToken}", []int{204, 401, 404}, true},
		{"deleteAllRefreshTokens", http.MethodDelete, "/{appId}/user/refresh", []int{204, 401, 404}, true},
	}
	for _, tt := range tests {
		t.Run(tt.id, func(t *testing.T) {
			item := doc.Paths.Find(tt.path)
			if item == nil {
				t.Fatalf("Paths.Find(%q) = nil, want a path item", tt.path)
			}
			op := item.GetOperation(tt.method)
			if op == nil || op.OperationID != tt.id {
				t.Fatalf("%s %s = %v, want operation %s", tt.method, tt.path, op, tt.id)
			}

			var got []int
			for code, resp := range op.Responses.Map() {
				if code == "default" {
					assertErrorBody(t, tt.id+" default", resp.Value)
					continue
				}
				status, err := strconv.Atoi(code)
				if err != nil {
					t.Errorf("%s: response %q is not a status", tt.id, code)
					continue
				}
				got = append(got, status)
				if status >= 400 {
					assertErrorBody(t, tt.id+" "+code, resp.Value)
				}
			}
			slices.Sort(got)
			if !slices.Equal(got, tt.statuses) {
				t.Errorf("%s statuses = %v, want %v", tt.id, got, tt.statuses)
			}
			if op.Responses.Default() == nil {
				t.Errorf("%s has no default response", tt.id)
			}

			// Public operations say so with security: [], so that a
			// global security requirement added later cannot reach them.
			switch {
			case op.Security == nil:
				t.Errorf("%s has no security requirement; want [] or bearerAuth", tt.id)
			case tt.bearer:
				if len(*op.Security) != 1 || !slices.Equal(slices.Collect(maps.Keys((*op.Security)[0])), []string{"bearerAuth"}) {
					t.Errorf("%s security = %v, want bearerAuth alone", tt.id, *op.Security)
				}
			case len(*op.Security) != 0:
				t.Errorf("%s security = %v, want [] (public)", tt.id, *op.Security)
			}
		})
	}
	if n := len(doc.Paths.Map()); n != len(tests) {
		t.Errorf("spec has %d paths, want the %d above", n, len(tests))
	}

	scheme := doc.Components.SecuritySchemes["bearerAuth"]
	if scheme == nil || scheme.Value.Type != "http" || scheme.Value.Scheme != "bearer" {
		t.Errorf("bearerAuth = %+v, want an http bearer scheme", scheme)
	}
}

// assertErrorBody checks that a response is JAM's error body, whose
// message clients read.
func assertErrorBody(t *testing.T, what string, resp *openapi3.Response) {
	t.Helper()
	mt := resp.Content.Get("application/json")
	if mt == nil || mt.Schema == nil || mt.Schema.Ref != "#/components/schemas/Error" {
		t.Errorf("%s: body is not the Error schema", what)
		return
	}
	s := mt.Schema.Value
	if !slices.Contains(s.Required, "message") || s.Properties["message"] == nil || !s.Properties["message"].Value.Type.Is("string") {
		t.Errorf("%s: Error does not require a string message", what)
	}
}

// TestSpecDescriptions checks that every operation, parameter, schema and
// property says what it is, as Redocly's lint in .ci/run wants too: the
// generated code's doc comments come from them.
func TestSpecDescriptions(t *testing.T) {
	doc := loadSpec(t)
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			if op.Summary == "" || op.Description == "" {
				t.Errorf("%s %s: summary %q, description %q; want both", method, path, op.Summary, op.Description)
			}
			for _, p := range slices.Concat(item.Parameters, op.Parameters) {
				if p.Value.Description == "" {
					t.Errorf("%s %s: parameter %s has no description", method, path, p.Value.Name)
				}
			}
		}
	}
	var walk func(where string, s *openapi3.SchemaRef)
	walk = func(where string, s *openapi3.SchemaRef) {
		if s.Ref != "" {
			return // described where it is defined
		}
		if s.Value.Description == "" {
			t.Errorf("%s has no description", where)
		}
		for name, p := range s.Value.Properties {
			walk(where+"."+name, p)
		}
		if s.Value.Items != nil && s.Value.Items.Ref == "" {
			walk(where+"[]", s.Value.Items)
		}
	}
	for name, s := range doc.Components.Schemas {
		walk(name, s)
	}
}
