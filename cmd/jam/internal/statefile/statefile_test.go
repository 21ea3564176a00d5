package statefile_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"testing"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/go-jam/go-jam/cmd/jam/internal/statefile"
	"github.com/go-jam/go-jam/jam"
	"github.com/go-jam/go-jam/jam/jamtest"
)

const ann = "ann@example.com"

func open(t *testing.T, path string) *statefile.File {
	t.Helper()
	f, err := statefile.New(path)
	if err != nil {
		t.Fatalf("New(%q) = %v", path, err)
	}
	return f
}

func start(t *testing.T, path string, opts ...jamtest.Option) *jamtest.Server {
	t.Helper()
	opts = append([]jamtest.Option{jamtest.WithLogger(slog.New(slog.DiscardHandler)), jamtest.WithStore(open(t, path))}, opts...)
	srv, err := jamtest.Start(opts...)
	if err != nil {
		t.Fatalf("Start(state file) = %v", err)
	}
	t.Cleanup(srv.Close)
	return srv
}

// TestRestart restarts a server on its state file, at the same address so
// that the issuer is the same, and expects the tokens issued before to
// work, and the file private.
func TestRestart(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "state.json")
	first := start(t, path)
	u, _ := url.Parse(first.URL)
	oldKey, refresh := first.IssueTokens(ann)
	first.PublishKey()
	idToken, deleted := first.IssueTokens(ann)
	if err := first.Client().DeleteRefreshToken(ctx, idToken, deleted); err != nil {
		t.Fatalf("DeleteRefreshToken = %v", err)
	}
	kids := first.KeyIDs()
	first.Close()

	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if mode := info.Mode().Perm(); mode != 0o600 {
		t.Errorf("state file mode = %v, want 0600", mode)
	}
	if matches, _ := filepath.Glob(filepath.Join(filepath.Dir(path), ".*tmp*")); len(matches) != 0 {
		t.Errorf("temporary files left behind: %q", matches)
	}

	second := start(t, path, jamtest.WithAddr(u.Host))
	client := second.Client()
	if second.AppID != first.AppID || !slices.Equal(second.KeyIDs(), kids) {
		t.Errorf("after restart: app %q, kids %q; want %q, %q", second.AppID, second.KeyIDs(), first.AppID, kids)
	}
	for name, tok := range map[string]string{"old key": oldKey, "new key": idToken} {
		if _, err := client.VerifyRemote(ctx, tok); err != nil {
			t.Errorf("VerifyRemote(token of the %s from before restart) = %v, want nil", name, err)
		}
	}
	if _, err := client.Refresh(ctx, refresh); err != nil {
		t.Errorf("Refresh(token from before restart) = %v, want nil", err)
	}
	if _, err := client.Refresh(ctx, deleted); !errors.Is(err, jam.ErrUnauthorized) {
		t.Errorf("Refresh(token deleted before restart) = %v, want ErrUnauthorized", err)
	}
}

// TestCorrupt checks that a state file that cannot be used stops the
// server from starting, and is left as it was.
func TestCorrupt(t *testing.T) {
	p256, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	p521, err := ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	file := func(st map[string]any) []byte {
		b, err := json.Marshal(st)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	key := func(priv any, kid string) jose.JSONWebKey { return jose.JSONWebKey{Key: priv, KeyID: kid} }
	valid := func() []byte {
		path := filepath.Join(t.TempDir(), "state.json")
		start(t, path).Close()
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
		{"version 1", file(map[string]any{"version": 1, "appId": "app", "signingKey": key(p521, "k")})},
		{"future version", bytes.Replace(valid, []byte(`"version": 2`), []byte(`"version": 3`), 1)},
		{"no app ID", bytes.Replace(valid, []byte(`"appId"`), []byte(`"appID_"`), 1)},
		{"no key", []byte(`{"version": 2, "appId": "app"}`)},
		{"empty key list", []byte(`{"version": 2, "appId": "app", "keys": []}`)},
		{"public key only", publicOnly(t, valid)},
		{"P-256 key", file(map[string]any{"version": 2, "appId": "app", "keys": []jose.JSONWebKey{key(p521, "a"), key(p256, "b")}})},
		{"key without kid", file(map[string]any{"version": 2, "appId": "app", "keys": []jose.JSONWebKey{key(p521, "")}})},
		{"two keys, one kid", file(map[string]any{"version": 2, "appId": "app", "keys": []jose.JSONWebKey{key(p521, "k"), key(p521, "k")}})},
		{"empty refresh token", bytes.Replace(valid, []byte(`"refreshTokens": {}`), []byte(`"refreshTokens": {"": "ann@example.com"}`), 1)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "state.json")
			if err := os.WriteFile(path, tt.data, 0o600); err != nil {
				t.Fatal(err)
			}
			if srv, err := jamtest.Start(jamtest.WithStore(open(t, path))); err == nil {
				srv.Close()
				t.Fatalf("Start(state file %s) = nil error, want one", tt.name)
			}
			if got, _ := os.ReadFile(path); !bytes.Equal(got, tt.data) {
				t.Errorf("state file changed after a failed Start")
			}
		})
	}
	if !bytes.Contains(valid, []byte(`"refreshTokens": {}`)) {
		t.Error(`a new state file has no "refreshTokens": {}, which the test above replaces`)
	}

	t.Run("unreadable", func(t *testing.T) {
		path := t.TempDir() // a directory cannot be read as a file
		if _, err := jamtest.Start(jamtest.WithStore(open(t, path))); err == nil {
			t.Error("Start(state file is a directory) = nil error, want one")
		}
	})
	t.Run("unwritable", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "no-such-dir", "state.json")
		if _, err := jamtest.Start(jamtest.WithStore(open(t, path))); err == nil {
			t.Error("Start(state file in a missing directory) = nil error, want one")
		}
	})
	t.Run("empty path", func(t *testing.T) {
		if _, err := statefile.New(""); err == nil {
			t.Error(`New("") = nil error, want one`)
		}
	})
}

// publicOnly returns a state file whose key has lost its private part.
func publicOnly(t *testing.T, valid []byte) []byte {
	var st map[string]json.RawMessage
	if err := json.Unmarshal(valid, &st); err != nil {
		t.Fatal(err)
	}
	var keys []map[string]any
	if err := json.Unmarshal(st["keys"], &keys); err != nil || len(keys) != 1 {
		t.Fatalf("keys of a new state file = %s, %v; want one", st["keys"], err)
	}
	delete(keys[0], "d")
	b, _ := json.Marshal(keys)
	st["keys"] = b
	out, _ := json.Marshal(st)
	return out
}
