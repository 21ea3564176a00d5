package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/go-jam/go-jam/jam"
)

const (
	refreshAppID = "b19a21b4-ad9d-4fd7-88c1-1b68b825c671"
	refreshToken = "kX3P0p2eFq1vT8mJ6wYbN4sR7uZ9aC5dE2gH0iL3oQ8"
)

// refreshRequest and refreshResult are the JSON of JAM's refresh call.
type refreshRequest struct {
	RefreshToken string `json:"refreshToken"`
}

type refreshResult struct {
	IDToken string `json:"idToken"`
}

// refreshServer answers JAM's refresh call, and nothing else, with a
// fixed ID token, doing as little as it can, so that the clients' costs
// are what the benchmark sees. jamtest would sign a new token and check
// the traffic against openapi.yaml on every call, which would hide them.
// conns counts the connections the server accepted.
func refreshServer(tb testing.TB, idToken string) (srv *httptest.Server, conns *atomic.Int64) {
	tb.Helper()
	answer, err := json.Marshal(refreshResult{IDToken: idToken})
	if err != nil {
		tb.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /{appId}/refresh", func(w http.ResponseWriter, r *http.Request) {
		var req refreshRequest
		if r.Header.Get("Content-Type") != "application/json" || r.PathValue("appId") != refreshAppID ||
			json.NewDecoder(r.Body).Decode(&req) != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		if req.RefreshToken != refreshToken {
			w.WriteHeader(http.StatusUnauthorized)
			io.WriteString(w, `{"message":"Refresh token was invalid or expired"}`)
			return
		}
		w.Write(answer)
	})
	srv = httptest.NewUnstartedServer(mux)
	conns = new(atomic.Int64)
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	tb.Cleanup(srv.Close)
	return srv, conns
}

// bareRefresh is Refresh as one would write it with net/http alone: the
// same JSON body, the response read whole and decoded.
func bareRefresh(ctx context.Context, hc *http.Client, url, token string) (string, error) {
	body, err := json.Marshal(refreshRequest{RefreshToken: token})
	if err != nil {
		return "", err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("refresh: HTTP %d", resp.StatusCode)
	}
	var res refreshResult
	if err := json.Unmarshal(b, &res); err != nil || res.IDToken == "" {
		return "", errors.New("refresh: no idToken in the response")
	}
	return res.IDToken, nil
}

// refreshers returns go-jam's Refresh and the bare round trip, both
// through the server's own http.Client, so that they share a transport
// configuration and only the client code differs.
func refreshers(tb testing.TB, srv *httptest.Server) []impl {
	tb.Helper()
	hc := srv.Client()
	client, err := jam.New(refreshAppID, jam.WithBaseURL(srv.URL), jam.WithHTTPClient(hc))
	if err != nil {
		tb.Fatal(err)
	}
	url := srv.URL + "/" + refreshAppID + "/refresh"
	return []impl{
		{"go-jam", func(ctx context.Context, token string) error {
			_, err := client.Refresh(ctx, token)
			return err
		}},
		{"bare", func(ctx context.Context, token string) error {
			_, err := bareRefresh(ctx, hc, url, token)
			return err
		}},
	}
}

// BenchmarkRefresh is one refresh round trip to a loopback server, by
// go-jam and by bare net/http, over a kept-alive connection.
func BenchmarkRefresh(b *testing.B) {
	f := newFixture(b) // for an ID token of JAM's size
	srv, _ := refreshServer(b, f.token)
	ctx := context.Background()
	for _, r := range refreshers(b, srv) {
		b.Run("client="+r.name, func(b *testing.B) {
			if err := r.run(ctx, refreshToken); err != nil { // opens the connection
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if err := r.run(ctx, refreshToken); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestRefreshOneConnection makes 1,000 sequential Refresh calls through a
// fresh go-jam client with its default HTTP client, and counts the
// connections the server accepted: exactly 1 means every response body
// was read to the end and closed, so the connection was kept alive and
// reused. Refused calls (401, with a body) must not cost a connection
// either. The control, a client that closes bodies unread, shows that the
// count does see connections that are not reused.
func TestRefreshOneConnection(t *testing.T) {
	const calls = 1000
	for _, tc := range []struct {
		name    string
		refresh func(ctx context.Context, srv *httptest.Server, client *jam.Client) error
		reused  bool
	}{
		{"go-jam 200", func(ctx context.Context, _ *httptest.Server, client *jam.Client) error {
			_, err := client.Refresh(ctx, refreshToken)
			return err
		}, true},
		{"go-jam 401", func(ctx context.Context, _ *httptest.Server, client *jam.Client) error {
			if _, err := client.Refresh(ctx, "not-"+refreshToken); !errors.Is(err, jam.ErrUnauthorized) {
				return fmt.Errorf("Refresh(bad token) = %v, want ErrUnauthorized", err)
			}
			return nil
		}, true},
		{"control: bodies closed unread", func(ctx context.Context, srv *httptest.Server, _ *jam.Client) error {
			body, _ := json.Marshal(refreshRequest{RefreshToken: refreshToken})
			resp, err := http.Post(srv.URL+"/"+refreshAppID+"/refresh", "application/json", bytes.NewReader(body))
			if err != nil {
				return err
			}
			return resp.Body.Close()
		}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, conns := refreshServer(t, "eyJhbGciOiJFUzUxMiJ9.e30.c2ln")
			client, err := jam.New(refreshAppID, jam.WithBaseURL(srv.URL))
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			for i := range calls {
				if err := tc.refresh(ctx, srv, client); err != nil {
					t.Fatalf("call %d: %v", i, err)
				}
			}
			got := conns.Load()
			t.Logf("%s: %d sequential calls opened %d connection(s)", tc.name, calls, got)
			if tc.reused && got != 1 {
				t.Errorf("connections for %d calls = %d, want 1", calls, got)
			}
			if !tc.reused && got < 2 {
				t.Errorf("connections for %d calls = %d, want more than 1: the count misses new connections", calls, got)
			}
		})
	}
}

// TestRefreshers checks that the two sides of BenchmarkRefresh do the same
// thing: each gets the ID token for a good refresh token, and an error for
// a bad one.
func TestRefreshers(t *testing.T) {
	srv, _ := refreshServer(t, "id-token")
	ctx := context.Background()
	for _, r := range refreshers(t, srv) {
		if err := r.run(ctx, refreshToken); err != nil {
			t.Errorf("%s(good token) = %v, want nil", r.name, err)
		}
		if err := r.run(ctx, "bad"); err == nil {
			t.Errorf("%s(bad token) = nil, want an error", r.name)
		}
	}
}
