package jamtest_test

import (
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/go-jam/go-jam/jam"
	"github.com/go-jam/go-jam/jam/jamtest"
)

// TestRequestsOffContract sends what no client of openapi.yaml would, and
// expects JAM's error body for each, whichever layer refused it.
func TestRequestsOffContract(t *testing.T) {
	srv := newServer(t)
	idToken, _ := srv.IssueTokens(ann)
	app := srv.URL + "/" + srv.AppID
	secret := "secret-" + ann

	tests := []struct {
		name, method, url, contentType, body, auth string
		status                                     int
		allow                                      string
	}{
		{name: "no email", method: "POST", url: app + "/authenticate", contentType: "application/json", body: `{}`, status: 400},
		{name: "email not a string", method: "POST", url: app + "/authenticate", contentType: "application/json", body: `{"email": ["` + secret + `"]}`, status: 400},
		{name: "not JSON", method: "POST", url: app + "/authenticate", contentType: "application/json", body: `{"email": `, status: 400},
		{name: "no body", method: "POST", url: app + "/verify", contentType: "application/json", status: 400},
		{name: "text body", method: "POST", url: app + "/verify", contentType: "text/plain", body: "token", status: 400},
		{name: "idToken a number", method: "POST", url: app + "/verify", contentType: "application/json", body: `{"idToken": 5}`, status: 400},
		{name: "huge body", method: "POST", url: app + "/refresh", contentType: "application/json", body: `{"refreshToken": "` + strings.Repeat("a", 100<<10) + `"}`, status: 400},
		{name: "empty idToken", method: "POST", url: app + "/verify", contentType: "application/json", body: `{"idToken": ""}`, status: 400},
		{name: "empty refreshToken", method: "POST", url: app + "/refresh", contentType: "application/json", body: `{"refreshToken": ""}`, status: 400},
		{name: "no bearer", method: "DELETE", url: app + "/user/refresh", status: 401},
		{name: "basic auth", method: "DELETE", url: app + "/user/refresh/x", auth: "Basic " + idToken, status: 401},
		{name: "unknown path", method: "GET", url: srv.URL + "/nope", status: 404},
		{name: "unknown operation", method: "GET", url: app + "/user", status: 404},
		{name: "wrong method", method: "GET", url: app + "/authenticate", status: 405, allow: "POST"},
		{name: "wrong method on jwks", method: "POST", url: app + "/.well-known/jwks.json", status: 405, allow: "GET, HEAD"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequestWithContext(t.Context(), tt.method, tt.url, strings.NewReader(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			if tt.contentType != "" {
				req.Header.Set("Content-Type", tt.contentType)
			}
			if tt.auth != "" {
				req.Header.Set("Authorization", tt.auth)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			msg := assertErrorBody(t, resp, tt.status)
			if strings.Contains(msg, secret) {
				t.Errorf("message %q quotes the request", msg)
			}
			if got := resp.Header.Get("Allow"); got != tt.allow {
				t.Errorf("Allow = %q, want %q", got, tt.allow)
			}
		})
	}
}

// TestRefreshTokenInPath checks that refresh tokens with characters that
// must be percent-encoded in a path segment are routed to
// deleteRefreshToken, validated and answered like any other.
func TestRefreshTokenInPath(t *testing.T) {
	odd := []string{"a/b", "a+b", "a b", "100%", "a?b=c", "a#b", "%2F", "é/ü", "a;b,c"}

	// A stored state is the one way to give the server refresh tokens of
	// our choosing.
	st := &jamtest.State{AppID: "app", Keys: []jose.JSONWebKey{p521Key(t, "k")}, RefreshTokens: map[string]string{}}
	for _, token := range odd {
		st.RefreshTokens[token] = ann
	}
	srv := newServer(t, jamtest.WithStore(&memStore{state: st}))
	client := srv.Client(checked(t))
	annID, _ := srv.IssueTokens(ann)
	bobID, _ := srv.IssueTokens(bob)

	for _, token := range odd {
		t.Run(url.PathEscape(token), func(t *testing.T) {
			ctx := t.Context()
			before := srv.Requests(jamtest.OpDeleteRefreshToken)
			if err := client.DeleteRefreshToken(ctx, bobID, token); !errors.Is(err, jam.ErrNotFound) {
				t.Errorf("DeleteRefreshToken(bob, %q) = %v, want ErrNotFound", token, err)
			}
			if err := client.DeleteRefreshToken(ctx, annID, token+"x"); !errors.Is(err, jam.ErrNotFound) {
				t.Errorf("DeleteRefreshToken(ann, %q) = %v, want ErrNotFound", token+"x", err)
			}
			if _, err := client.Refresh(ctx, token); err != nil {
				t.Errorf("Refresh(%q) = %v, want nil", token, err)
			}
			if err := client.DeleteRefreshToken(ctx, annID, token); err != nil {
				t.Errorf("DeleteRefreshToken(ann, %q) = %v, want nil", token, err)
			}
			if _, err := client.Refresh(ctx, token); !errors.Is(err, jam.ErrUnauthorized) {
				t.Errorf("Refresh(deleted %q) = %v, want ErrUnauthorized", token, err)
			}
			if got := srv.Requests(jamtest.OpDeleteRefreshToken) - before; got != 3 {
				t.Errorf("Requests(OpDeleteRefreshToken) grew by %d, want 3", got)
			}
		})
	}
}

// TestNonCanonicalPaths sends paths that ServeMux would clean ("/a/./b",
// "//a", "/a/b/..") and redirect to, for every method: a client that
// follows such a redirect with its bearer token (curl -L does) would log
// the user out everywhere from "DELETE …/user/refresh/.". Each must answer
// 404 with JAM's error body, never a redirect, and change nothing.
func TestNonCanonicalPaths(t *testing.T) {
	srv := newServer(t)
	idToken, refresh := srv.IssueTokens(ann)
	app := "/" + srv.AppID

	tests := []struct{ method, path string }{
		{"DELETE", app + "/user/refresh/."},
		{"DELETE", app + "/user/refresh/x/.."},
		{"DELETE", app + "//user/refresh"},
		{"DELETE", "/" + app + "/user/refresh"},
		{"POST", "/" + app + "/authenticate"},
		{"POST", app + "/./verify"},
		{"POST", app + "/refresh/."},
		{"GET", app + "/.well-known/./jwks.json"},
		{"GET", app + "/../" + srv.AppID + "/.well-known/jwks.json"},
		{"GET", "/_jamtest/magic/./x"},
		{"GET", "//_jamtest/outbox"},
		{"PUT", app + "/user/refresh/.."},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			req, err := http.NewRequestWithContext(t.Context(), tt.method, srv.URL+tt.path, strings.NewReader(`{"email":"ann@example.com","idToken":"x","refreshToken":"x"}`))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Authorization", "Bearer "+idToken)
			resp, err := noRedirects.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			if loc := resp.Header.Get("Location"); loc != "" {
				t.Errorf("%s %s: Location %q, want no redirect", tt.method, tt.path, loc)
			}
			assertErrorBody(t, resp, http.StatusNotFound)
		})
	}
	if _, err := srv.Client(checked(t)).Refresh(t.Context(), refresh); err != nil {
		t.Errorf("Refresh after the requests above = %v, want nil: a refresh token was deleted", err)
	}
}
