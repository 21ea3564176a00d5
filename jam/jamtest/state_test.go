package jamtest_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"net/url"
	"os"
	"path/filepath"
	"testing"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/go-jam/go-jam/jam"
	"github.com/go-jam/go-jam/jam/jamtest"
)

// TestStateRestart restarts a server on its state file, at the same
// address so that the issuer is the same, and expects the tokens issued
// before to work.
func TestStateRestart(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "state.json")

	first := newServer(t, jamtest.WithStateFile(path))
	addr := mustHost(t, first.URL)
	idToken, refresh := first.IssueTokens(ann)
	_, deleted := first.IssueTokens(ann)
	if err := first.Client().DeleteRefreshToken(ctx, idToken, deleted); err != nil {
		t.Fatalf("DeleteRefreshToken = %v", err)
	}
	first.RotateKey()
	idToken, _ = first.IssueTokens(ann)
	kid := keyID(t, first)
	first.Close()

	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if mode := info.Mode().Perm(); mode != 0o600 {
		t.Errorf("state file mode = %v, want 0600", mode)
	}

	second := newServer(t, jamtest.WithStateFile(path), jamtest.WithAddr(addr))
	client := second.Client()
	if second.AppID != first.AppID {
		t.Errorf("AppID after restart = %q, want %q", second.AppID, first.AppID)
	}
	if got := keyID(t, second); got != kid {
		t.Errorf("kid after restart = %q, want %q (the key after RotateKey)", got, kid)
	}
	if _, err := client.VerifyToken(ctx, idToken); err != nil {
		t.Errorf("VerifyToken(token from before restart) = %v, want nil", err)
	}
	if _, err := client.VerifyRemote(ctx, idToken); err != nil {
		t.Errorf("VerifyRemote(token from before restart) = %v, want nil", err)
	}
	if _, err := client.Refresh(ctx, refresh); err != nil {
		t.Errorf("Refresh(token from before restart) = %v, want nil", err)
	}
	if _, err := client.Refresh(ctx, deleted); !errors.Is(err, jam.ErrUnauthorized) {
		t.Errorf("Refresh(token deleted before restart) = %v, want ErrUnauthorized", err)
	}
}

func TestStateAppID(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.json")
	srv := newServer(t, jamtest.WithStateFile(path), jamtest.WithAppID("my-app"))
	srv.Close()

	same := newServer(t, jamtest.WithStateFile(path), jamtest.WithAppID("my-app"))
	if same.AppID != "my-app" {
		t.Errorf("AppID = %q, want my-app", same.AppID)
	}
	same.Close()
	if _, err := jamtest.Start(jamtest.WithStateFile(path), jamtest.WithAppID("other-app")); err == nil {
		t.Error("Start(state of my-app, WithAppID(other-app)) = nil error, want one")
	}
}

// TestStateCorrupt checks that a state file that cannot be used stops the
// server from starting, and is left as it was.
func TestStateCorrupt(t *testing.T) {
	p256, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	wrongCurve, err := json.Marshal(map[string]any{
		"version": 1, "appId": "app",
		"signingKey": jose.JSONWebKey{Key: p256, KeyID: "k"},
	})
	if err != nil {
		t.Fatal(err)
	}
	valid := func() []byte {
		path := filepath.Join(t.TempDir(), "state.json")
		newServer(t, jamtest.WithStateFile(path)).Close()
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}()

	tests := []struct {
		name string
		data []byte
	}{
		{"empty", nil},
		{"not JSON", []byte("hello")},
		{"truncated", valid[:len(valid)/2]},
		{"trailing garbage", append(bytes.Clone(valid), "}"...)},
		{"no version", []byte(`{"appId": "app"}`)},
		{"future version", bytes.Replace(valid, []byte(`"version": 1`), []byte(`"version": 2`), 1)},
		{"no app ID", bytes.Replace(valid, []byte(`"appId"`), []byte(`"appID_"`), 1)},
		{"no key", []byte(`{"version": 1, "appId": "app"}`)},
		{"public key only", publicOnly(t, valid)},
		{"P-256 key", wrongCurve},
		{"empty refresh token", bytes.Replace(valid, []byte(`"refreshTokens": {}`), []byte(`"refreshTokens": {"": "ann@example.com"}`), 1)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "state.json")
			if err := os.WriteFile(path, tt.data, 0o600); err != nil {
				t.Fatal(err)
			}
			if srv, err := jamtest.Start(jamtest.WithStateFile(path)); err == nil {
				srv.Close()
				t.Fatalf("Start(state file %s) = nil error, want one", tt.name)
			}
			if got, _ := os.ReadFile(path); !bytes.Equal(got, tt.data) {
				t.Errorf("state file changed after a failed Start")
			}
		})
	}

	t.Run("unreadable", func(t *testing.T) {
		path := t.TempDir() // a directory cannot be read as a file
		if _, err := jamtest.Start(jamtest.WithStateFile(path)); err == nil {
			t.Error("Start(state file is a directory) = nil error, want one")
		}
	})
	t.Run("unwritable", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "no-such-dir", "state.json")
		if _, err := jamtest.Start(jamtest.WithStateFile(path)); err == nil {
			t.Error("Start(state file in a missing directory) = nil error, want one")
		}
	})
	t.Run("NewServer panics", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "state.json")
		if err := os.WriteFile(path, []byte("{"), 0o600); err != nil {
			t.Fatal(err)
		}
		defer func() {
			if recover() == nil {
				t.Error("NewServer(corrupt state file) did not panic")
			}
		}()
		jamtest.NewServer(jamtest.WithStateFile(path)).Close()
	})
}

// publicOnly returns a state file whose key has lost its private part.
func publicOnly(t *testing.T, valid []byte) []byte {
	var st map[string]json.RawMessage
	if err := json.Unmarshal(valid, &st); err != nil {
		t.Fatal(err)
	}
	var key map[string]any
	if err := json.Unmarshal(st["signingKey"], &key); err != nil {
		t.Fatal(err)
	}
	delete(key, "d")
	b, _ := json.Marshal(key)
	st["signingKey"] = b
	out, _ := json.Marshal(st)
	return out
}

// writeRefreshTokens gives email the refresh tokens in the state file.
func writeRefreshTokens(t *testing.T, path, email string, tokens []string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var st map[string]any
	if err := json.Unmarshal(b, &st); err != nil {
		t.Fatal(err)
	}
	m := map[string]string{}
	for _, token := range tokens {
		m[token] = email
	}
	st["refreshTokens"] = m
	if b, err = json.Marshal(st); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

func mustHost(t *testing.T, rawURL string) string {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	return u.Host
}

func keyID(t *testing.T, srv *jamtest.Server) string {
	t.Helper()
	set, err := srv.Client(checked(t)).JWKS(t.Context())
	if err != nil || len(set.Keys) != 1 {
		t.Fatalf("JWKS() = %v, %v; want one key", set, err)
	}
	return set.Keys[0].KeyID
}
