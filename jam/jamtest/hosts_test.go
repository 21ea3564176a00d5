package jamtest_test

import (
	"log/slog"
	"net/http"
	"testing"

	"github.com/go-jam/go-jam/jam/jamtest"
)

// TestAllowedHosts: the server answers requests for IP literals, localhost
// and the names it was given, and refuses every other Host, the outbox
// included, so that a page rebound to 127.0.0.1 reads nothing.
func TestAllowedHosts(t *testing.T) {
	srv := jamtest.NewServer(
		jamtest.WithLogger(slog.New(slog.DiscardHandler)),
		jamtest.WithPublicURL("http://jam:8787"),
		jamtest.WithAllowedHosts("Dev.Example"),
	)
	defer srv.Close()
	at := "http://" + srv.Addr().String()

	tests := []struct {
		host, path string
		want       int
	}{
		{"127.0.0.1", "/_jamtest/outbox", 200},
		{"127.0.0.1:8787", "/" + srv.AppID + "/.well-known/jwks.json", 200},
		{"[::1]:8787", "/_jamtest/outbox", 200},
		{"localhost:3000", "/_jamtest/outbox", 200},
		{"LOCALHOST.", "/_jamtest/outbox", 200},
		{"app.localhost", "/_jamtest/outbox", 200},
		{"jam:8787", "/_jamtest/outbox", 200},        // the public URL's
		{"dev.example", "/_jamtest/outbox", 200},     // WithAllowedHosts
		{"rebound.example", "/_jamtest/outbox", 403}, // DNS rebinding
		{"rebound.example:8787", "/_jamtest/", 403},  // the page too
		{"localhost.rebound.example", "/_jamtest/outbox", 403},
		{"rebound.example", "/" + srv.AppID + "/.well-known/jwks.json", 403},
	}
	for _, tt := range tests {
		t.Run(tt.host+tt.path, func(t *testing.T) {
			req, err := http.NewRequest(http.MethodGet, at+tt.path, nil)
			if err != nil {
				t.Fatal(err)
			}
			req.Host = tt.host
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tt.want {
				t.Errorf("GET %s with Host %q = %d, want %d", tt.path, tt.host, resp.StatusCode, tt.want)
			}
			if got := resp.Header.Get("X-Content-Type-Options"); got != "nosniff" {
				t.Errorf("GET %s with Host %q: X-Content-Type-Options = %q, want nosniff", tt.path, tt.host, got)
			}
		})
	}
}
