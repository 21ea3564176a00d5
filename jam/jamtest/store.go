package jamtest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/go-jam/go-jam/jam"
)

// State is what a Server must keep to start again as the same JAM: tokens
// issued before a restart keep working after it. It holds private keys
// and refresh tokens, so it logs as REDACTED but for its app ID and sizes.
type State struct {
	// AppID is the ID of the server's app.
	AppID string
	// Keys are the private keys of the JWK Set, P-521 with a kid each,
	// the signing key first.
	Keys []jose.JSONWebKey
	// RefreshTokens maps each valid refresh token to its user's address.
	RefreshTokens map[string]string
}

// LogValue shows the app ID and how many keys and refresh tokens there
// are, not the keys and tokens.
func (st State) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("appId", st.AppID),
		slog.Int("keys", len(st.Keys)),
		slog.Int("refreshTokens", len(st.RefreshTokens)),
	)
}

// A Store keeps a Server's State across restarts, as jam serve --state does
// in a file. A Server calls its methods one at a time.
type Store interface {
	// Load returns the state to start from, or nil for a fresh start. An
	// error makes Start fail.
	Load() (*State, error)
	// Save keeps st, the whole state: at start, and after every change of
	// keys or refresh tokens. An error at start makes Start fail; later,
	// it is logged (WithLogger), and the change holds until the server
	// stops. st is a copy, the Store's to keep.
	Save(st State) error
}

// WithStore makes the server start from the state st loads, and keep every
// change of its keys and refresh tokens in st, so that a server started
// again on the same Store, at the same URL, accepts the tokens issued
// before. A state for another app than WithAppID's, or with keys that are
// not P-521 private keys with distinct kids, makes Start fail. Magic links
// are not kept. By default, and with nil, the server keeps nothing.
func WithStore(st Store) Option {
	return func(c *config) error {
		c.store = st
		return nil
	}
}

// load starts s from its store's state, if there is one.
func (s *Server) load() error {
	if s.cfg.store == nil {
		return nil
	}
	st, err := s.cfg.store.Load()
	if err != nil {
		return fmt.Errorf("jamtest: loading state: %w", err)
	}
	if st == nil {
		return nil
	}
	if _, err := jam.New(st.AppID); err != nil {
		return fmt.Errorf("jamtest: stored state: %w", err)
	}
	switch {
	case s.AppID != "" && s.AppID != st.AppID:
		return errors.New("jamtest: stored state is for another app than WithAppID's")
	case len(st.Keys) == 0:
		return errors.New("jamtest: stored state has no key")
	}
	for token, email := range st.RefreshTokens {
		if token == "" || email == "" {
			return errors.New("jamtest: stored state has an empty refresh token or address")
		}
	}
	keys := make([]*signingKey, len(st.Keys))
	for i, jwk := range st.Keys {
		priv, ok := jwk.Key.(*ecdsa.PrivateKey)
		if !ok || priv.Curve != elliptic.P521() || jwk.KeyID == "" {
			return errors.New("jamtest: stored state has a key that is not a P-521 private key with a kid")
		}
		if slices.ContainsFunc(keys[:i], func(k *signingKey) bool { return k.id == jwk.KeyID }) {
			return errors.New("jamtest: stored state has two keys with the same kid")
		}
		if keys[i], err = newSigningKey(jwk.KeyID, priv); err != nil {
			return err
		}
	}
	s.AppID, s.keys = st.AppID, keys
	maps.Copy(s.refresh, st.RefreshTokens)
	return nil
}

// save hands the state to the store, if there is one. Saves are
// serialized and each takes its snapshot after the change that caused it,
// so the store ends up holding the latest state.
func (s *Server) save() error {
	if s.cfg.store == nil {
		return nil
	}
	s.saving.Lock()
	defer s.saving.Unlock()
	s.mu.Lock()
	st := State{
		AppID:         s.AppID,
		Keys:          make([]jose.JSONWebKey, len(s.keys)),
		RefreshTokens: maps.Clone(s.refresh),
	}
	for i, k := range s.keys {
		st.Keys[i] = jose.JSONWebKey{Key: k.priv, KeyID: k.id, Use: "sig", Algorithm: string(jose.ES512)}
	}
	s.mu.Unlock()
	if err := s.cfg.store.Save(st); err != nil {
		return fmt.Errorf("jamtest: saving state: %w", err)
	}
	return nil
}

// saveOrLog saves the state after a change a method cannot report an
// error for: the change holds until the server stops either way.
func (s *Server) saveOrLog() {
	if err := s.save(); err != nil {
		s.logSaveError(err)
	}
}

func (s *Server) logSaveError(err error) {
	s.cfg.logger.Error("jamtest: state not saved", "err", err)
}
