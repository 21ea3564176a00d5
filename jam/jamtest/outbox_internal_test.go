package jamtest

import (
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestOutboxBound fills the outbox past OutboxSize and expects the newest
// OutboxSize messages, newest first.
func TestOutboxBound(t *testing.T) {
	srv, err := Start(WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	const extra = 5
	for i := range OutboxSize + extra {
		srv.sendMagicLink(fmt.Sprintf("user%d@example.com", i))
	}
	box := srv.Outbox()
	if len(box) != OutboxSize {
		t.Fatalf("len(Outbox()) = %d, want OutboxSize %d", len(box), OutboxSize)
	}
	for i, m := range box {
		if want := fmt.Sprintf("user%d@example.com", OutboxSize+extra-1-i); m.Email != want {
			t.Fatalf("Outbox()[%d].Email = %q, want %q", i, m.Email, want)
		}
	}
	if _, ok := srv.MagicLink("user0@example.com"); ok {
		t.Error("MagicLink(address of a message dropped) = _, true, want false")
	}
}

// TestOutboxPageScript puts an address that no valid one could be in the
// outbox, to show the page escapes it whatever Authenticate lets through.
func TestOutboxPageScript(t *testing.T) {
	srv, err := Start(WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	const evil = `"><script>alert(1)</script><a href="javascript:x`
	srv.sendMagicLink(evil)

	w := httptest.NewRecorder()
	srv.handler().ServeHTTP(w, httptest.NewRequest(http.MethodGet, "http://127.0.0.1/_jamtest/", nil))
	body, _ := io.ReadAll(w.Body)
	if w.Code != http.StatusOK {
		t.Fatalf("GET /_jamtest/ = %d, want 200", w.Code)
	}
	for _, bad := range []string{"<script>", `"><`, `href="javascript:`} {
		if strings.Contains(string(body), bad) {
			t.Errorf("GET /_jamtest/ holds %q unescaped:\n%s", bad, body)
		}
	}
	if !strings.Contains(string(body), "&lt;script&gt;alert(1)&lt;/script&gt;") {
		t.Errorf("GET /_jamtest/ does not show the address escaped:\n%s", body)
	}
}
