// Package statefile keeps the state of jam serve's JAM server, its app ID,
// keys and refresh tokens, in a JSON file across restarts: it is the
// jamtest.Store of jam serve --state.
package statefile

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/go-jam/go-jam/jam/jamtest"
)

// version is the version of the file format, the only one read. Version
// 1, before any release, is refused rather than misread.
const version = 2

// contents is the file, as JSON.
type contents struct {
	Version int    `json:"version"`
	AppID   string `json:"appId"`
	// Keys are the private keys of the JWK Set, signing key first.
	Keys          []jose.JSONWebKey `json:"keys"`
	RefreshTokens map[string]string `json:"refreshTokens"` // token → email address
}

// File is a jamtest.Store in the file at a path. A missing file is a
// fresh start; a file that cannot be read or parsed makes the server's
// Start fail and is left as it is. The file is written atomically, mode
// 0600 because it holds private keys. Only one server may use a file at a
// time.
type File struct {
	path string
}

var _ jamtest.Store = (*File)(nil)

// New returns the Store in the file at path.
func New(path string) (*File, error) {
	if path == "" {
		return nil, errors.New("state file: empty path")
	}
	return &File{path: path}, nil
}

// Load reads the file; a missing one is a fresh start.
func (f *File) Load() (*jamtest.State, error) {
	data, err := os.ReadFile(f.path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading state file: %w", err)
	}
	var c contents
	if err := json.Unmarshal(data, &c); err != nil {
		return nil, fmt.Errorf("state file %s is corrupt: %w", f.path, err)
	}
	if c.Version != version {
		return nil, fmt.Errorf("state file %s has version %d, want %d", f.path, c.Version, version)
	}
	return &jamtest.State{AppID: c.AppID, Keys: c.Keys, RefreshTokens: c.RefreshTokens}, nil
}

// Save replaces the file with st.
func (f *File) Save(st jamtest.State) error {
	data, err := json.MarshalIndent(contents{
		Version:       version,
		AppID:         st.AppID,
		Keys:          st.Keys,
		RefreshTokens: st.RefreshTokens,
	}, "", "\t")
	if err == nil {
		err = writeFileAtomic(f.path, append(data, '\n'))
	}
	if err != nil {
		return fmt.Errorf("writing state file: %w", err)
	}
	return nil
}

// writeFileAtomic replaces the file at path with data, so that a crash
// leaves either the old file or the new one, never a mix: it writes a
// temporary file in the same directory, syncs it, renames it over path and
// syncs the directory. The file has mode 0600: it holds private keys.
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
