package jamtest_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"log/slog"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/go-jam/go-jam/jam"
	"github.com/go-jam/go-jam/jam/jamtest"
)

// memStore is a jamtest.Store in memory, whose failures a test chooses.
type memStore struct {
	mu      sync.Mutex
	state   *jamtest.State
	saves   int
	loadErr error
	saveErr error
}

func (m *memStore) Load() (*jamtest.State, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.loadErr != nil || m.state == nil {
		return nil, m.loadErr
	}
	st := *m.state
	return &st, nil
}

func (m *memStore) Save(st jamtest.State) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.saveErr != nil {
		return m.saveErr
	}
	m.state = &st
	m.saves++
	return nil
}

// saved returns the last state saved and how many saves there were.
func (m *memStore) saved() (jamtest.State, int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.state == nil {
		return jamtest.State{}, m.saves
	}
	return *m.state, m.saves
}

func (m *memStore) failSaves(err error) {
	m.mu.Lock()
	m.saveErr = err
	m.mu.Unlock()
}

func p521Key(t *testing.T, kid string) jose.JSONWebKey {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return jose.JSONWebKey{Key: priv, KeyID: kid}
}

func mustHost(t *testing.T, rawURL string) string {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	return u.Host
}

// TestStoreRestart restarts a server on its store, at the same address so
// that the issuer is the same, and expects the tokens issued before, and
// every key published, to work.
func TestStoreRestart(t *testing.T) {
	ctx := t.Context()
	store := &memStore{}

	first := newServer(t, jamtest.WithStore(store))
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

	second := newServer(t, jamtest.WithStore(store), jamtest.WithAddr(addr))
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

// TestStoreSaves checks that every change of keys or refresh tokens is
// saved, and that the store holds the server's state after it.
func TestStoreSaves(t *testing.T) {
	store := &memStore{}
	srv := newServer(t, jamtest.WithStore(store))
	client := srv.Client(checked(t))
	ctx := t.Context()
	var annID, annRefresh string
	tests := []struct {
		name   string
		change func(t *testing.T)
		tokens int // refresh tokens after the change
	}{
		{"start", func(*testing.T) {}, 0},
		{"IssueTokens", func(*testing.T) { annID, annRefresh = srv.IssueTokens(ann) }, 1},
		{"magic link", func(t *testing.T) { login(t, srv, bob) }, 2},
		{"PublishKey", func(*testing.T) { srv.PublishKey() }, 2},
		{"RemoveKey", func(t *testing.T) {
			if err := srv.RemoveKey(srv.KeyIDs()[1]); err != nil {
				t.Fatalf("RemoveKey = %v", err)
			}
		}, 2},
		{"RotateKey", func(*testing.T) { srv.RotateKey(); annID, _ = srv.IssueTokens(ann) }, 3},
		{"DeleteRefreshToken", func(t *testing.T) {
			if err := client.DeleteRefreshToken(ctx, annID, annRefresh); err != nil {
				t.Fatalf("DeleteRefreshToken = %v", err)
			}
		}, 2},
		{"DeleteAllRefreshTokens", func(t *testing.T) {
			if err := client.DeleteAllRefreshTokens(ctx, annID); err != nil {
				t.Fatalf("DeleteAllRefreshTokens = %v", err)
			}
		}, 1},
	}
	_, saves := store.saved()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.change(t)
			st, n := store.saved()
			if n <= saves && tt.name != "start" {
				t.Errorf("saves after %s = %d, want more than %d", tt.name, n, saves)
			}
			saves = n
			kids := make([]string, len(st.Keys))
			for i, k := range st.Keys {
				kids[i] = k.KeyID
			}
			if st.AppID != srv.AppID || !slices.Equal(kids, srv.KeyIDs()) || len(st.RefreshTokens) != tt.tokens {
				t.Errorf("saved state = app %q, kids %q, %d refresh tokens; want %q, %q, %d",
					st.AppID, kids, len(st.RefreshTokens), srv.AppID, srv.KeyIDs(), tt.tokens)
			}
		})
	}
}

// TestStoreInvalid checks that a stored state the server cannot use makes
// Start fail, and is not overwritten.
func TestStoreInvalid(t *testing.T) {
	p256, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	good := p521Key(t, "k")
	public := jose.JSONWebKey{Key: &good.Key.(*ecdsa.PrivateKey).PublicKey, KeyID: "k"}
	tests := []struct {
		name  string
		state jamtest.State
		opts  []jamtest.Option
	}{
		{"no app ID", jamtest.State{Keys: []jose.JSONWebKey{good}}, nil},
		{"app ID jam refuses", jamtest.State{AppID: "..", Keys: []jose.JSONWebKey{good}}, nil},
		{"no key", jamtest.State{AppID: "app"}, nil},
		{"public key only", jamtest.State{AppID: "app", Keys: []jose.JSONWebKey{public}}, nil},
		{"P-256 key", jamtest.State{AppID: "app", Keys: []jose.JSONWebKey{good, {Key: p256, KeyID: "b"}}}, nil},
		{"key without kid", jamtest.State{AppID: "app", Keys: []jose.JSONWebKey{p521Key(t, "")}}, nil},
		{"two keys, one kid", jamtest.State{AppID: "app", Keys: []jose.JSONWebKey{good, p521Key(t, "k")}}, nil},
		{"empty refresh token", jamtest.State{AppID: "app", Keys: []jose.JSONWebKey{good}, RefreshTokens: map[string]string{"": ann}}, nil},
		{"empty address", jamtest.State{AppID: "app", Keys: []jose.JSONWebKey{good}, RefreshTokens: map[string]string{"t": ""}}, nil},
		{"another app", jamtest.State{AppID: "app", Keys: []jose.JSONWebKey{good}}, []jamtest.Option{jamtest.WithAppID("other-app")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			store := &memStore{state: &tt.state}
			if srv, err := jamtest.Start(append(tt.opts, jamtest.WithStore(store))...); err == nil {
				srv.Close()
				t.Fatalf("Start(state with %s) = nil error, want one", tt.name)
			}
			if _, saves := store.saved(); saves != 0 {
				t.Errorf("saves after a failed Start = %d, want 0", saves)
			}
		})
	}

	// The same app is no conflict.
	store := &memStore{state: &jamtest.State{AppID: "app", Keys: []jose.JSONWebKey{good}}}
	srv := newServer(t, jamtest.WithStore(store), jamtest.WithAppID("app"))
	if srv.AppID != "app" || !slices.Equal(srv.KeyIDs(), []string{"k"}) {
		t.Errorf("server on a stored state = app %q, kids %q; want app, [k]", srv.AppID, srv.KeyIDs())
	}
}

// TestStoreFailures checks what a store that fails does: at start, Start
// fails with its error; later, the failure is logged and the change holds.
func TestStoreFailures(t *testing.T) {
	errDisk := errors.New("disk on fire")
	t.Run("load", func(t *testing.T) {
		_, err := jamtest.Start(jamtest.WithStore(&memStore{loadErr: errDisk}))
		if !errors.Is(err, errDisk) {
			t.Errorf("Start(store failing to load) = %v, want %v", err, errDisk)
		}
	})
	t.Run("save at start", func(t *testing.T) {
		_, err := jamtest.Start(jamtest.WithStore(&memStore{saveErr: errDisk}))
		if !errors.Is(err, errDisk) {
			t.Errorf("Start(store failing to save) = %v, want %v", err, errDisk)
		}
	})
	t.Run("save later", func(t *testing.T) {
		var logs syncBuffer
		store := &memStore{}
		srv := jamtest.NewServer(jamtest.WithStore(store), jamtest.WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
		defer srv.Close()
		store.failSaves(errDisk)
		idToken, refresh := srv.IssueTokens(ann)
		if _, err := srv.Client().Refresh(t.Context(), refresh); err != nil {
			t.Errorf("Refresh(token not saved) = %v, want nil", err)
		}
		if err := srv.Client().DeleteAllRefreshTokens(t.Context(), idToken); !errors.Is(err, jam.ErrUnexpectedStatus) {
			t.Errorf("DeleteAllRefreshTokens(not saved) = %v, want ErrUnexpectedStatus", err)
		}
		got := logs.String()
		if !strings.Contains(got, "state not saved") || !strings.Contains(got, errDisk.Error()) {
			t.Errorf("log = %q, want the failure to save", got)
		}
		for _, secret := range []string{idToken, refresh, ann} {
			if strings.Contains(got, secret) {
				t.Errorf("log holds a token or address: %q", got)
			}
		}
	})
}

// TestStateLogValue checks that a State logs neither keys nor tokens.
func TestStateLogValue(t *testing.T) {
	key := p521Key(t, "kid-1")
	raw, err := key.Key.(*ecdsa.PrivateKey).Bytes()
	if err != nil {
		t.Fatal(err)
	}
	d := base64.RawURLEncoding.EncodeToString(raw) // as in a JWK
	st := jamtest.State{AppID: "app", Keys: []jose.JSONWebKey{key}, RefreshTokens: map[string]string{"refresh-secret": ann}}
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("state", "state", st)
	got := buf.String()
	for _, secret := range []string{d, "refresh-secret", ann} {
		if strings.Contains(got, secret) {
			t.Errorf("log of a State = %s, holds a secret", got)
		}
	}
	if !strings.Contains(got, `"appId":"app"`) || !strings.Contains(got, `"refreshTokens":1`) {
		t.Errorf("log of a State = %s, want its app ID and sizes", got)
	}
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
