package jamtest_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jam/go-jam/jam"
	"github.com/go-jam/go-jam/jam/jamtest"
)

// syncBuffer is a log destination safe for the server's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestNoSecretsLeak runs every failing path of the client, the server and
// the middleware, including answers that echo the secrets back, and checks
// that no error text, response body or log line holds the ID token, the
// refresh token or the email address.
func TestNoSecretsLeak(t *testing.T) {
	const email = "leaky.user@example.com"
	var logs syncBuffer
	logger := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	clk := newClock()
	srv := newServer(t, jamtest.WithLogger(logger), jamtest.WithClock(clk.Now))
	client := srv.Client(checked(t))
	ctx := t.Context()
	idToken, refreshToken := srv.IssueTokens(email)
	secrets := map[string]string{"ID token": idToken, "refresh token": refreshToken, "email address": email}

	var texts []string // every error text and body the paths produce
	collect := func(what string, err error) {
		if err == nil {
			t.Errorf("%s = nil, want an error", what)
			return
		}
		texts = append(texts, what+": "+err.Error())
		slog.New(slog.NewTextHandler(&logs, nil)).Error("failed", "op", what, "err", err)
	}
	calls := map[string]func() error{
		"Authenticate":           func() error { return client.Authenticate(ctx, email) },
		"VerifyToken":            func() error { _, err := client.VerifyToken(ctx, idToken); return err },
		"VerifyRemote":           func() error { _, err := client.VerifyRemote(ctx, idToken); return err },
		"Refresh":                func() error { _, err := client.Refresh(ctx, refreshToken); return err },
		"DeleteRefreshToken":     func() error { return client.DeleteRefreshToken(ctx, idToken, refreshToken) },
		"DeleteAllRefreshTokens": func() error { return client.DeleteAllRefreshTokens(ctx, idToken) },
	}
	ops := map[string]jamtest.Operation{
		"Authenticate": jamtest.OpAuthenticate, "VerifyToken": jamtest.OpGetJWKS, "VerifyRemote": jamtest.OpVerifyRemote,
		"Refresh": jamtest.OpRefreshToken, "DeleteRefreshToken": jamtest.OpDeleteRefreshToken, "DeleteAllRefreshTokens": jamtest.OpDeleteAllRefreshTokens,
	}

	// JAM answering with the secrets in its message, or in an HTML page.
	echo := fmt.Sprintf(`{"message":"bad %s / %s / %s"}`, idToken, refreshToken, email)
	html := fmt.Sprintf(`<html><body>%s %s %s</body></html>`, idToken, refreshToken, email)
	for name, call := range calls {
		for _, f := range []jamtest.Fault{
			{Status: 400, ContentType: "application/json", Body: []byte(echo)},
			{Status: 401, ContentType: "application/json", Body: []byte(echo)},
			{Status: 404, ContentType: "application/json", Body: []byte(echo)},
			{Status: 500, ContentType: "application/json", Body: []byte(echo)},
			{Status: 502, ContentType: "text/html", Body: []byte(html)},
		} {
			srv.SetFault(ops[name], f)
			collect(fmt.Sprintf("%s on %d", name, f.Status), call())
			srv.ClearFaults()
			clk.Advance(time.Second) // past the client's back-off after a failed key-set fetch
		}
	}

	// The server's own refusals.
	other := srv.Client(checked(t))
	collect("Authenticate(display name)", other.Authenticate(ctx, "Leaky <"+email+">"))
	collect("Refresh(unknown)", func() error { _, err := other.Refresh(ctx, refreshToken+"x"); return err }())
	collect("DeleteRefreshToken(bad bearer)", other.DeleteRefreshToken(ctx, idToken+"x", refreshToken))
	collect("DeleteAllRefreshTokens(bad bearer)", other.DeleteAllRefreshTokens(ctx, idToken[:len(idToken)-2]))
	collect("VerifyRemote(tampered)", func() error { _, err := other.VerifyRemote(ctx, idToken[:len(idToken)-4]+"AAAA"); return err }())
	wrongApp, _ := jam.New("another-app", jam.WithBaseURL(srv.URL))
	collect("Refresh(unknown app)", func() error { _, err := wrongApp.Refresh(ctx, refreshToken); return err }())

	// Local refusals, and tokens that expired.
	collect("VerifyToken(tampered)", func() error { _, err := other.VerifyToken(ctx, idToken[:len(idToken)-4]+"AAAA"); return err }())
	clk.Advance(time.Hour)
	collect("VerifyToken(expired)", func() error { _, err := other.VerifyToken(ctx, idToken); return err }())
	collect("VerifyRemote(expired)", func() error { _, err := other.VerifyRemote(ctx, idToken); return err }())

	// The middleware's answers.
	for _, auth := range []string{"Bearer " + idToken, "Bearer " + idToken + " " + email, "Basic " + refreshToken} {
		r := httptest.NewRequest("GET", "/me", nil)
		r.Header.Set("Authorization", auth)
		w := httptest.NewRecorder()
		other.Middleware()(http.NotFoundHandler()).ServeHTTP(w, r)
		texts = append(texts, fmt.Sprintf("middleware %d: %s %s", w.Code, w.Header().Get("WWW-Authenticate"), w.Body))
	}

	// Nowhere to connect: the request URL holds the refresh token.
	srv.Close()
	collect("DeleteRefreshToken(server gone)", other.DeleteRefreshToken(context.Background(), idToken, refreshToken))
	collect("Refresh(server gone)", func() error { _, err := other.Refresh(context.Background(), refreshToken); return err }())

	texts = append(texts, "logs: "+logs.String())
	for _, text := range texts {
		for what, secret := range secrets {
			if strings.Contains(text, secret) {
				t.Errorf("%s holds the %s", firstLine(text), what)
			}
		}
	}
	if len(texts) != 45 {
		t.Errorf("checked %d texts, want the 45 above", len(texts))
	}
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	if len(s) > 120 {
		s = s[:120] + "…"
	}
	return s
}
