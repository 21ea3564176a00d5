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
	"slices"
	"testing"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/go-jam/go-jam/jam"
	"github.com/go-jam/go-jam/jam/jamtest"
)

// TestStateRestart restarts a server on its state file, at the same
// address so that the issuer is the same, and expects the tokens issued
// before, and every key published, to work.
func TestStateRestart(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "state.json")

	first := newServer(t, jamtest.WithStateFile(path))
	addr := mustHost(t, first.URL)
	oldKeyID, refresh := first.IssueTokens(ann)
	_, deleted := first.IssueTokens(ann)
	if err := first.Client().DeleteRefreshToken(ctx, oldKeyID, deleted); err != nil {
		t.Fatalf("DeleteRefreshToken = %v", err)
	}
	removed := first.PublishKey()
	first.PublishKey()
	if err := first.RemoveKey(removed); err != nil {
		t.Fatalf("RemoveKey(%q) = %v", removed, err)
	}
	newKeyID, _ := first.IssueTokens(ann)
	kids := first.KeyIDs()
	first.Close()

	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if mode := info.Mode().Perm(); mode != 0o600 {
		t.Errorf("state file mode = %v, want 0600", mode)
	}

	second := newServer(t, jamtest.WithStateFile(path), jamtest.WithAddr(addr))
	client := second.Client(checked(t))
	if second.AppID != first.AppID {
		t.Errorf("AppID after restart = %q, want %q", second.AppID, first.AppID)
	}
	if got := second.KeyIDs(); !slices.Equal(got, kids) {
		t.Errorf("KeyIDs() after restart = %q, want %q", got, kids)
	}
	if got := tokenKeyID(t, second, ann); got != kids[0] {
		t.Errorf("kid of a new token after restart = %q, want the signing key %q", got, kids[0])
	}
	for name, idToken := range map[string]string{"old key": oldKeyID, "new key": newKeyID} {
		if _, err := client.VerifyToken(ctx, idToken); err != nil {
			t.Errorf("VerifyToken(token of the %s from before restart) = %v, want nil", name, err)
		}
		if _, err := client.VerifyRemote(ctx, idToken); err != nil {
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

// TestStateVersion1 starts a server on a file in the format of version 1,
// which held one signing key, and expects that key, the app and the
// refresh tokens, and the file rewritten in the current format.
func TestStateVersion1(t *testing.T) {
	ctx := t.Context()
	priv, err := ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	v1, err := json.Marshal(map[string]any{
		"version":       1,
		"appId":         "app-v1",
		"signingKey":    jose.JSONWebKey{Key: priv, KeyID: "kid-v1", Use: "sig", Algorithm: "ES512"},
		"refreshTokens": map[string]string{"refresh-v1": ann},
	})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "state.json")
	if err := os.WriteFile(path, v1, 0o600); err != nil {
		t.Fatal(err)
	}

	srv := newServer(t, jamtest.WithStateFile(path))
	if srv.AppID != "app-v1" {
		t.Errorf("AppID = %q, want app-v1", srv.AppID)
	}
	if got := srv.KeyIDs(); !slices.Equal(got, []string{"kid-v1"}) {
		t.Errorf("KeyIDs() = %q, want [kid-v1]", got)
	}
	idToken, err := srv.Client(checked(t)).Refresh(ctx, "refresh-v1")
	if err != nil {
		t.Fatalf("Refresh(refresh token of the version 1 file) = %v", err)
	}
	// Signed by the file's key itself, not just under its kid.
	jws, err := jose.ParseSignedCompact(idToken, []jose.SignatureAlgorithm{jose.ES512})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := jws.Verify(&priv.PublicKey); err != nil {
		t.Errorf("refreshed token does not verify with the version 1 file's key: %v", err)
	}
	srv.Close()

	var st struct {
		Version int
		Keys    []jose.JSONWebKey
	}
	if b, err := os.ReadFile(path); err != nil || json.Unmarshal(b, &st) != nil {
		t.Fatalf("state file after start: %v", err)
	}
	if st.Version != 2 || len(st.Keys) != 1 || st.Keys[0].KeyID != "kid-v1" {
		t.Errorf("state file after start = version %d with %d keys, want version 2 with kid-v1", st.Version, len(st.Keys))
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
	p521, err := ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	stateFile := func(st map[string]any) []byte {
		b, err := json.Marshal(st)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	key := func(priv any, kid string) jose.JSONWebKey { return jose.JSONWebKey{Key: priv, KeyID: kid} }
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
		{"future version", bytes.Replace(valid, []byte(`"version": 2`), []byte(`"version": 3`), 1)},
		{"no app ID", bytes.Replace(valid, []byte(`"appId"`), []byte(`"appID_"`), 1)},
		{"no key", []byte(`{"version": 2, "appId": "app"}`)},
		{"empty key list", []byte(`{"version": 2, "appId": "app", "keys": []}`)},
		{"version 1 without a key", []byte(`{"version": 1, "appId": "app"}`)},
		{"public key only", publicOnly(t, valid)},
		{"P-256 key", stateFile(map[string]any{"version": 2, "appId": "app", "keys": []jose.JSONWebKey{key(p521, "a"), key(p256, "b")}})},
		{"version 1 P-256 key", stateFile(map[string]any{"version": 1, "appId": "app", "signingKey": key(p256, "k")})},
		{"key without kid", stateFile(map[string]any{"version": 2, "appId": "app", "keys": []jose.JSONWebKey{key(p521, "")}})},
		{"two keys, one kid", stateFile(map[string]any{"version": 2, "appId": "app", "keys": []jose.JSONWebKey{key(p521, "k"), key(p521, "k")}})},
		{"version 2 with a version 1 key", stateFile(map[string]any{"version": 2, "appId": "app", "signingKey": key(p521, "k")})},
		{"version 1 with version 2 keys", stateFile(map[string]any{"version": 1, "appId": "app", "keys": []jose.JSONWebKey{key(p521, "k")}})},
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

// tokenKeyID returns the kid of a new token the server issues for email.
func tokenKeyID(t *testing.T, srv *jamtest.Server, email string) string {
	t.Helper()
	idToken, _ := srv.IssueTokens(email)
	tok, err := srv.Client(checked(t)).VerifyToken(t.Context(), idToken)
	if err != nil {
		t.Fatalf("VerifyToken(new token) = %v", err)
	}
	return tok.Header.KeyID
}
