package jamtest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"slices"

	jose "github.com/go-jose/go-jose/v4"
)

// stateVersion is the version of the state file format this package
// writes. It reads this one and version 1, which held one signing key.
const stateVersion = 2

// state is what WithStateFile keeps, as JSON.
type state struct {
	Version int    `json:"version"`
	AppID   string `json:"appId"`
	// Keys are the private keys of the JWK Set, signing key first.
	Keys []jose.JSONWebKey `json:"keys,omitempty"`
	// SigningKey was the one key of version 1.
	SigningKey    *jose.JSONWebKey  `json:"signingKey,omitempty"`
	RefreshTokens map[string]string `json:"refreshTokens"` // token → email address
}

// load reads the state file, if there is one, into s before it starts.
func (s *Server) load() error {
	path := s.cfg.stateFile
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("jamtest: reading state file: %w", err)
	}
	var st state
	if err := json.Unmarshal(data, &st); err != nil {
		return fmt.Errorf("jamtest: state file %s is corrupt: %w", path, err)
	}
	var jwks []jose.JSONWebKey
	switch {
	case st.Version == 1 && st.Keys == nil:
		if st.SigningKey != nil {
			jwks = []jose.JSONWebKey{*st.SigningKey}
		}
	case st.Version == stateVersion && st.SigningKey == nil:
		jwks = st.Keys
	case st.Version == 1 || st.Version == stateVersion:
		return fmt.Errorf("jamtest: state file %s is corrupt: keys in the format of another version", path)
	default:
		return fmt.Errorf("jamtest: state file %s has version %d, want 1 or %d", path, st.Version, stateVersion)
	}
	switch {
	case st.AppID == "":
		return fmt.Errorf("jamtest: state file %s is corrupt: no app ID", path)
	case len(jwks) == 0:
		return fmt.Errorf("jamtest: state file %s is corrupt: no key", path)
	case s.AppID != "" && s.AppID != st.AppID:
		return fmt.Errorf("jamtest: state file %s is for app %q, not %q", path, st.AppID, s.AppID)
	}
	for token, email := range st.RefreshTokens {
		if token == "" || email == "" {
			return fmt.Errorf("jamtest: state file %s is corrupt: empty refresh token or address", path)
		}
	}
	keys := make([]*signingKey, len(jwks))
	for i, jwk := range jwks {
		priv, ok := jwk.Key.(*ecdsa.PrivateKey)
		if !ok || priv.Curve != elliptic.P521() || jwk.KeyID == "" {
			return fmt.Errorf("jamtest: state file %s is corrupt: a key is not a P-521 private key with a kid", path)
		}
		if slices.ContainsFunc(keys[:i], func(k *signingKey) bool { return k.id == jwk.KeyID }) {
			return fmt.Errorf("jamtest: state file %s is corrupt: two keys have the same kid", path)
		}
		if keys[i], err = newSigningKey(jwk.KeyID, priv); err != nil {
			return err
		}
	}
	s.AppID, s.keys = st.AppID, keys
	maps.Copy(s.refresh, st.RefreshTokens)
	return nil
}

// save writes the state file, if there is one. Writes are serialized and
// each takes its snapshot after the change that caused it, so the file
// ends up holding the latest state.
func (s *Server) save() error {
	if s.cfg.stateFile == "" {
		return nil
	}
	s.saving.Lock()
	defer s.saving.Unlock()
	s.mu.Lock()
	st := state{
		Version:       stateVersion,
		AppID:         s.AppID,
		Keys:          make([]jose.JSONWebKey, len(s.keys)),
		RefreshTokens: maps.Clone(s.refresh),
	}
	for i, k := range s.keys {
		st.Keys[i] = jose.JSONWebKey{Key: k.priv, KeyID: k.id, Use: "sig", Algorithm: string(jose.ES512)}
	}
	s.mu.Unlock()
	data, err := json.MarshalIndent(st, "", "\t")
	if err == nil {
		err = writeFileAtomic(s.cfg.stateFile, append(data, '\n'))
	}
	if err != nil {
		return fmt.Errorf("jamtest: saving state file: %w", err)
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

// writeFileAtomic replaces the file at path with data, so that a crash
// leaves either the old file or the new one, never a mix: it writes a
// temporary file in the same directory, syncs it, renames it over path and
// syncs the directory. The file has mode 0600: it holds a private key.
func writeFileAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*") // mode 0600
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	if runtime.GOOS == "windows" {
		return nil // directories cannot be synced there
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
