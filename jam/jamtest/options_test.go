package jamtest_test

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/go-jam/go-jam/jam"
	"github.com/go-jam/go-jam/jam/jamtest"
)

// TestRefreshNotFound checks the answer to a refresh token that is gone,
// with and without WithRefreshNotFound, on the wire and through a
// jam.Client, before and after it has fetched the key set.
func TestRefreshNotFound(t *testing.T) {
	tests := []struct {
		name       string
		opts       []jamtest.Option
		status     int
		beforeKeys []error // what Refresh matches before the key set loads
		notBefore  []error // and must not
	}{
		{"default", nil, http.StatusUnauthorized, []error{jam.ErrUnauthorized}, []error{jam.ErrNotFound}},
		{"WithRefreshNotFound", []jamtest.Option{jamtest.WithRefreshNotFound()}, http.StatusNotFound, []error{jam.ErrNotFound}, []error{jam.ErrUnauthorized}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := t.Context()
			srv := newServer(t, tt.opts...)
			idToken, refresh := srv.IssueTokens(ann)
			if err := srv.Client().DeleteRefreshToken(ctx, idToken, refresh); err != nil {
				t.Fatalf("DeleteRefreshToken = %v", err)
			}
			for name, token := range map[string]string{"deleted": refresh, "unknown": "no-such-token"} {
				t.Run(name, func(t *testing.T) {
					resp, err := http.Post(srv.URL+"/"+srv.AppID+"/refresh", "application/json",
						strings.NewReader(`{"refreshToken":"`+token+`"}`))
					if err != nil {
						t.Fatal(err)
					}
					assertErrorBody(t, resp, tt.status)
				})
			}

			client := srv.Client(checked(t))
			_, err := client.Refresh(ctx, refresh)
			for _, want := range tt.beforeKeys {
				if !errors.Is(err, want) {
					t.Errorf("Refresh(deleted) before the key set = %v, want %v", err, want)
				}
			}
			for _, not := range tt.notBefore {
				if errors.Is(err, not) {
					t.Errorf("Refresh(deleted) before the key set = %v, want it not to match %v", err, not)
				}
			}
			if _, err := client.VerifyToken(ctx, idToken); err != nil {
				t.Fatalf("VerifyToken = %v", err)
			}
			if _, err := client.Refresh(ctx, refresh); !errors.Is(err, jam.ErrUnauthorized) {
				t.Errorf("Refresh(deleted) after the key set = %v, want %v", err, jam.ErrUnauthorized)
			}
			// An unknown app is 404 whatever the option.
			other := jamtest.NewServer(append(tt.opts, jamtest.WithLogger(testLogger(t)))...)
			defer other.Close()
			_, err = other.Client(jam.WithBaseURL(srv.URL)).Refresh(ctx, refresh)
			if !errors.Is(err, jam.ErrNotFound) || errors.Is(err, jam.ErrUnauthorized) {
				t.Errorf("Refresh(unknown app) = %v, want ErrNotFound alone", err)
			}
		})
	}
}

// TestSetRedirectURL points a server's magic links at an app that starts
// after it, and checks that a URL that is not absolute changes nothing.
func TestSetRedirectURL(t *testing.T) {
	srv := newServer(t)
	app := httptest.NewServer(http.NotFoundHandler())
	defer app.Close()
	if err := srv.SetRedirectURL(app.URL + "/callback"); err != nil {
		t.Fatalf("SetRedirectURL(%q) = %v, want nil", app.URL+"/callback", err)
	}
	for _, bad := range []string{"", "/callback", "callback", "mailto:ann@example.com", "http://%zz"} {
		if err := srv.SetRedirectURL(bad); err == nil {
			t.Errorf("SetRedirectURL(%q) = nil, want an error", bad)
		}
	}
	// login follows a magic link for email and returns where it leads.
	login := func(email string) (*url.URL, error) {
		if err := srv.Client().Authenticate(t.Context(), email); err != nil {
			return nil, err
		}
		link, _ := srv.MagicLink(email)
		resp, err := noRedirects.Get(link)
		if err != nil {
			return nil, err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusFound {
			return nil, fmt.Errorf("GET magic link = %d, want 302", resp.StatusCode)
		}
		return url.Parse(resp.Header.Get("Location"))
	}
	u, err := login(ann)
	if err != nil {
		t.Fatalf("login = %v", err)
	}
	if u.Scheme+"://"+u.Host+u.Path != app.URL+"/callback" || u.Query().Get("idToken") == "" {
		t.Errorf("Location = %s, want %s/callback with an ID token", redact(u), app.URL)
	}

	// Safe for concurrent use: the race detector watches.
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Go(func() {
			if err := srv.SetRedirectURL(app.URL + "/cb" + strconv.Itoa(i)); err != nil {
				t.Errorf("SetRedirectURL = %v", err)
			}
		})
		wg.Go(func() {
			u, err := login(fmt.Sprintf("user%d@example.com", i))
			if err != nil {
				t.Errorf("login during SetRedirectURL = %v", err)
			} else if !strings.HasPrefix(u.Path, "/c") {
				t.Errorf("login during SetRedirectURL led to %s, want the app", redact(u))
			}
		})
	}
	wg.Wait()
}
