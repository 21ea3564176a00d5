package jamtest

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
)

// TestOperations checks that the Op constants are the operations of
// openapi.yaml, no more and no fewer.
func TestOperations(t *testing.T) {
	c, err := loadContract()
	if err != nil {
		t.Fatalf("loadContract() = %v", err)
	}
	var got []Operation
	for _, op := range c.Operations() {
		got = append(got, Operation(op))
	}
	want := slices.Sorted(slices.Values(operations))
	if !slices.Equal(got, want) {
		t.Errorf("operations of openapi.yaml = %v, want %v", got, want)
	}
}

// TestResponseViolation puts a handler that breaks the contract behind the
// middleware every operation has, and expects the violation to be caught,
// logged, recorded and answered 500, without quoting the response.
func TestResponseViolation(t *testing.T) {
	var log bytes.Buffer
	srv, err := Start(WithLogger(slog.New(slog.NewTextHandler(&log, nil))))
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()

	const secret = "eyJsecret.token"
	tests := []struct {
		name, contentType, body string
		status                  int
	}{
		{"keys not an array", "application/json", `{"keys": "` + secret + `"}`, http.StatusOK},
		{"key without kty", "application/json", `{"keys": [{"kid": "` + secret + `"}]}`, http.StatusOK},
		{"not JSON", "application/json", secret, http.StatusOK},
		{"HTML", "text/html", "<p>" + secret + "</p>", http.StatusOK},
		{"error without message", "application/json", `{"error": "` + secret + `"}`, http.StatusNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			log.Reset()
			before := len(srv.Violations())
			mux := http.NewServeMux()
			mux.Handle("GET /{appId}/.well-known/jwks.json", srv.enforce(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", tt.contentType)
				w.WriteHeader(tt.status)
				io.WriteString(w, tt.body)
			})))
			ts := httptest.NewServer(mux)
			defer ts.Close()

			resp, err := http.Get(ts.URL + "/app/.well-known/jwks.json")
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var body struct{ Message string }
			if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
				t.Fatalf("body: %v", err)
			}
			if resp.StatusCode != http.StatusInternalServerError || !strings.HasPrefix(body.Message, "jamtest: response violates openapi.yaml: ") {
				t.Errorf("GET = %d %q, want 500 and a violation", resp.StatusCode, body.Message)
			}
			if got := len(srv.Violations()) - before; got != 1 {
				t.Errorf("Violations() grew by %d, want 1", got)
			}
			if !strings.Contains(log.String(), "violates openapi.yaml") {
				t.Errorf("log = %q, want the violation", log.String())
			}
			for what, s := range map[string]string{"message": body.Message, "log": log.String()} {
				if strings.Contains(s, "secret") {
					t.Errorf("%s %q quotes the response", what, s)
				}
			}
		})
	}
}
