package jamtest_test

import (
	"net/http"
	"testing"

	"github.com/go-jam/go-jam/jam/jamtest"
)

// TestNoSniff checks that every kind of answer the server gives tells a
// browser not to guess its type.
func TestNoSniff(t *testing.T) {
	srv := newServer(t)
	app := srv.URL + "/" + srv.AppID
	if err := srv.Client().Authenticate(t.Context(), ann); err != nil {
		t.Fatalf("Authenticate = %v", err)
	}
	link, _ := srv.MagicLink(ann)
	used := func() string {
		if err := srv.Client().Authenticate(t.Context(), bob); err != nil {
			t.Fatalf("Authenticate = %v", err)
		}
		l, _ := srv.MagicLink(bob)
		follow(t, l)
		return l
	}()
	srv.SetFault(jamtest.OpVerifyRemote, jamtest.HTMLError(http.StatusBadGateway))

	tests := []struct {
		name, method, url string
		header            []string
		status            int
	}{
		{"key set", "GET", app + "/.well-known/jwks.json", nil, http.StatusOK},
		{"authenticate", "POST", app + "/authenticate", []string{"Content-Type", "application/json"}, http.StatusBadRequest},
		{"unknown app", "GET", srv.URL + "/another-app/.well-known/jwks.json", nil, http.StatusNotFound},
		{"logout, bad token", "DELETE", app + "/user/refresh", []string{"Authorization", "Bearer x"}, http.StatusUnauthorized},
		{"router 405", "PUT", app + "/refresh", nil, http.StatusMethodNotAllowed},
		{"router 404", "GET", srv.URL + "/", nil, http.StatusNotFound},
		{"not canonical", "GET", app + "/./verify", nil, http.StatusNotFound},
		{"fault", "POST", app + "/verify", []string{"Content-Type", "application/json"}, http.StatusBadGateway},
		{"preflight", "OPTIONS", app + "/refresh", []string{"Access-Control-Request-Method", "POST"}, http.StatusNoContent},
		{"outbox", "GET", srv.URL + "/_jamtest/outbox", nil, http.StatusOK},
		{"outbox page", "GET", srv.URL + "/_jamtest/", nil, http.StatusOK},
		{"magic link", "GET", link, nil, http.StatusFound},
		{"used magic link", "GET", used, nil, http.StatusNotFound},
		{"magic link, HEAD", "HEAD", used, nil, http.StatusMethodNotAllowed},
		{"outbox emptied", "DELETE", srv.URL + "/_jamtest/outbox", nil, http.StatusNoContent},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := corsRequest(t, tt.method, tt.url, page, tt.header...)
			if a.status != tt.status {
				t.Fatalf("%s = %d, want %d", tt.name, a.status, tt.status)
			}
			if got := a.header.Get("X-Content-Type-Options"); got != "nosniff" {
				t.Errorf("%s: X-Content-Type-Options = %q, want nosniff", tt.name, got)
			}
		})
	}
}
