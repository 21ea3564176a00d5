package jam_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"strings"
	"testing"

	"github.com/go-jam/go-jam/jam"
)

func TestTokensFromURL(t *testing.T) {
	tests := []struct {
		url     string
		want    jam.Tokens
		wantErr bool
	}{
		{"https://app.example/cb?idToken=a.b.c&refreshToken=r%2Bs%2Ft", jam.Tokens{IDToken: "a.b.c", RefreshToken: "r+s/t"}, false},
		{"https://app.example/cb?idToken=a.b.c", jam.Tokens{IDToken: "a.b.c"}, false},
		{"https://app.example/cb?next=%2F&idToken=a.b.c&refreshToken=", jam.Tokens{IDToken: "a.b.c"}, false},
		{"https://app.example/cb", jam.Tokens{}, true},
		{"https://app.example/cb?idToken=", jam.Tokens{}, true},
		{"https://app.example/cb?idToken=a&idToken=b", jam.Tokens{}, true},
		{"https://app.example/cb?idToken=a&refreshToken=r&refreshToken=s", jam.Tokens{}, true},
		{"https://app.example/cb?idToken=a;b", jam.Tokens{}, true},
		{"https://app.example/cb?idToken=%zz", jam.Tokens{}, true},
	}
	for _, tt := range tests {
		u, err := url.Parse(tt.url)
		if err != nil {
			t.Fatal(err)
		}
		got, err := jam.TokensFromURL(u)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("TokensFromURL(%q) = %+v, %v; want %+v, error %v", tt.url, got, err, tt.want, tt.wantErr)
		}
		if err != nil && !errors.Is(err, jam.ErrBadRequest) {
			t.Errorf("TokensFromURL(%q) = %v, want ErrBadRequest", tt.url, err)
		}
	}
	if _, err := jam.TokensFromURL(nil); !errors.Is(err, jam.ErrBadRequest) {
		t.Errorf("TokensFromURL(nil) = %v, want ErrBadRequest", err)
	}
}

// TestTokensRedacted prints Tokens with every verb and flag of fmt, alone,
// by pointer and inside a struct, and logs them: no form may show a token,
// or its hex.
func TestTokensRedacted(t *testing.T) {
	tok := jam.Tokens{IDToken: "secret-id", RefreshToken: "secret-refresh"}
	secrets := []string{"secret", fmt.Sprintf("%x", "secret"), fmt.Sprintf("%X", "secret")}
	check := func(what, s string) {
		t.Helper()
		for _, secret := range secrets {
			if strings.Contains(s, secret) {
				t.Errorf("%s = %q, want the tokens REDACTED", what, s)
			}
		}
	}
	type session struct {
		User   string
		Tokens jam.Tokens
	}
	// %p is left out: go vet refuses it for anything but a pointer, and fmt
	// prints a value given a verb it does not take without calling any of
	// its methods; for a pointer it prints the address alone.
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "% x", "%X", "%d", "%T", "%t", "%c", "%U", "%b", "%o", "%e", "%g", "%10.4s", "%-40v"} {
		for _, arg := range []any{tok, &tok, session{"ann", tok}, []jam.Tokens{tok}, map[string]jam.Tokens{"t": tok}} {
			check(fmt.Sprintf("Sprintf(%q, %T)", verb, arg), fmt.Sprintf(verb, arg))
		}
	}
	check("Sprintf(%p, *jam.Tokens)", fmt.Sprintf("%p", &tok))
	data, err := json.Marshal(session{"ann", tok})
	if err != nil {
		t.Fatalf("json.Marshal(session) = %v", err)
	}
	check("json.Marshal", string(data))
	check("Sprint", fmt.Sprint(tok))
	check("Sprintln", fmt.Sprintln(tok, &tok))
	if s := fmt.Sprint(tok); !strings.Contains(s, "REDACTED") {
		t.Errorf("Sprint(tokens) = %q, want REDACTED in place of each token", s)
	}

	for _, newHandler := range []func(io.Writer) slog.Handler{
		func(w io.Writer) slog.Handler { return slog.NewJSONHandler(w, nil) },
		func(w io.Writer) slog.Handler { return slog.NewTextHandler(w, nil) },
	} {
		var b strings.Builder
		slog.New(newHandler(&b)).Info("login", "tokens", tok, "session", session{"ann", tok})
		check("a log line", b.String())
		if !strings.Contains(b.String(), "REDACTED") {
			t.Errorf("log line %q, want REDACTED in place of each token", b.String())
		}
	}
}

// FuzzTokensFromURL: whatever the redirect URL, TokensFromURL does not
// panic, and what it returns is what the query holds.
func FuzzTokensFromURL(f *testing.F) {
	f.Add("https://app.example/callback?idToken=a.b.c&refreshToken=r")
	f.Add("https://app.example/callback?idToken=a.b.c")
	f.Add("/callback?refreshToken=r&idToken=a%2Eb.c&next=%2F")
	f.Add("https://app.example/callback?idToken=a;b")

	f.Fuzz(func(t *testing.T, raw string) {
		u, err := url.Parse(raw)
		if err != nil {
			return
		}
		tokens, err := jam.TokensFromURL(u)
		if err != nil {
			if !errors.Is(err, jam.ErrBadRequest) {
				t.Fatalf("TokensFromURL(%q) = %v, want ErrBadRequest", raw, err)
			}
			return
		}
		q, err := url.ParseQuery(u.RawQuery)
		if err != nil {
			t.Fatalf("TokensFromURL(%q) accepted a query url.ParseQuery refuses: %v", raw, err)
		}
		if tokens.IDToken == "" || tokens.IDToken != q.Get("idToken") || tokens.RefreshToken != q.Get("refreshToken") {
			t.Fatalf("TokensFromURL(%q) = %+v, want the query's idToken and refreshToken", raw, tokens)
		}
	})
}
