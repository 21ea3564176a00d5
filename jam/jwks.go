package jam

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"encoding/json"
	"errors"
	"net/http"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"golang.org/x/sync/singleflight"
)

// keySet caches the app's signing keys by kid and refetches them when a
// token names a kid it does not hold.
type keySet struct {
	fetch    func(context.Context) (*jose.JSONWebKeySet, error)
	now      func() time.Time
	cooldown time.Duration

	flight singleflight.Group

	mu          sync.RWMutex
	keys        map[string]*ecdsa.PublicKey // nil until a fetch succeeded
	lastRefetch time.Time                   // when an unknown kid last caused a fetch
	lastErr     error                       // of the last failed fetch, at failedAt
	failedAt    time.Time
}

// failureBackoff is how long after a failed fetch a Client with no keys
// yet refuses to fetch again, returning that failure instead.
const failureBackoff = time.Second

// key returns the public key with the given kid.
func (s *keySet) key(ctx context.Context, kid string) (*ecdsa.PublicKey, error) {
	s.mu.RLock()
	k, ok := s.keys[kid]
	s.mu.RUnlock()
	if ok {
		return k, nil
	}

	// Everyone missing a key shares one flight; each waits for it no
	// longer than its own context allows.
	ch := s.flight.DoChan("keys", func() (any, error) { return nil, s.update(ctx, kid) })
	select {
	case <-ctx.Done():
		return nil, &Error{Op: opVerifyToken, Err: ctx.Err(), kinds: []error{ErrKeySetUnavailable}}
	case res := <-ch:
		if res.Err != nil {
			return nil, res.Err
		}
	}

	s.mu.RLock()
	k, ok = s.keys[kid]
	s.mu.RUnlock()
	if !ok {
		return nil, notVerified(ErrUnknownKey, nil)
	}
	return k, nil
}

// update fetches the key set unless kid is already there, or the cache is
// warm and an unknown kid caused a fetch less than a cooldown ago. It runs
// in the flight, on behalf of every caller waiting; a failure keeps the
// keys already held.
func (s *keySet) update(ctx context.Context, kid string) error {
	s.mu.Lock()
	_, known := s.keys[kid]
	warm := s.keys != nil
	now := s.now()
	switch {
	case known || (warm && !s.lastRefetch.IsZero() && now.Sub(s.lastRefetch) < s.cooldown):
		s.mu.Unlock()
		return nil
	case !warm && s.lastErr != nil && now.Sub(s.failedAt) < failureBackoff:
		// Cold and JAM just failed: answer as it did rather than ask
		// again for every request of an outage.
		err := s.lastErr
		s.mu.Unlock()
		return err
	case warm:
		s.lastRefetch = now
	}
	s.mu.Unlock()

	// The fetch outlives the caller that started it: others wait on it.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), keySetFetchLimit)
	defer cancel()
	_, err := s.refresh(ctx)
	if err != nil {
		s.mu.Lock()
		s.lastErr, s.failedAt = err, now
		s.mu.Unlock()
	}
	return err
}

// refresh fetches the key set and replaces the cached one.
func (s *keySet) refresh(ctx context.Context) (*jose.JSONWebKeySet, error) {
	set, err := s.fetch(ctx)
	if err != nil {
		return nil, err
	}
	keys := make(map[string]*ecdsa.PublicKey, len(set.Keys))
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, k := range set.Keys {
		pub := k.Key.(*ecdsa.PublicKey)
		// Keep the pointer of a key held already, so that the tokens it
		// verified stay in the token cache.
		if old, ok := s.keys[k.KeyID]; ok && old.Equal(pub) {
			pub = old
		}
		keys[k.KeyID] = pub
	}
	s.keys = keys
	return set, nil
}

// has reports whether key is still the set's key for kid.
func (s *keySet) has(kid string, key *ecdsa.PublicKey) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.keys[kid] == key
}

// JWKS fetches the app's JWK Set now, replaces the cached keys with it and
// returns the keys VerifyToken can use: EC P-521 public keys for signing
// with a kid. Keys of other types, or that hold private parts, are left out.
//
// A key JAM retires keeps verifying tokens until the set is fetched again,
// which VerifyToken does only for a kid it does not know; call JWKS to
// make a retirement take effect at once.
func (c *Client) JWKS(ctx context.Context) (*jose.JSONWebKeySet, error) {
	return c.keys.refresh(ctx)
}

// fetchKeySet GETs the app's JWK Set and keeps the keys that can verify
// JAM's tokens. The set is decoded key by key, so that one key go-jose
// cannot parse (a new key type, an invalid point) does not hide the others.
func (c *Client) fetchKeySet(ctx context.Context) (*jose.JSONWebKeySet, error) {
	body, err := call(ctx, opFetchKeySet, func(ctx context.Context) (*http.Response, error) {
		return c.api.GetJWKS(ctx, c.appID)
	})
	if err != nil {
		// Whatever JAM answered, the keys are unavailable; the status's own
		// sentinel (ErrNotFound for an unknown app, …) still matches.
		e := err.(*Error)
		e.kinds = append([]error{ErrKeySetUnavailable}, e.kinds...)
		return nil, e
	}
	var raw struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(body, &raw); err != nil || raw.Keys == nil {
		return nil, &Error{Op: opFetchKeySet, StatusCode: http.StatusOK, Err: errors.New("response is not a JWK Set"), kinds: []error{ErrKeySetUnavailable, ErrUnexpectedStatus}}
	}
	set := &jose.JSONWebKeySet{Keys: make([]jose.JSONWebKey, 0, len(raw.Keys))}
	for _, r := range raw.Keys {
		var k jose.JSONWebKey
		if k.UnmarshalJSON(r) != nil || !usable(&k) {
			continue
		}
		set.Keys = append(set.Keys, k)
	}
	if len(set.Keys) == 0 {
		// A set no token can verify against is a broken deployment, not a
		// reason to refuse every user: keep the keys held, answer 503.
		return nil, &Error{Op: opFetchKeySet, StatusCode: http.StatusOK, Err: errors.New("no usable key in the JWK Set"), kinds: []error{ErrKeySetUnavailable, ErrUnexpectedStatus}}
	}
	return set, nil
}

// usable reports whether k can verify a JAM ID token.
func usable(k *jose.JSONWebKey) bool {
	pub, ok := k.Key.(*ecdsa.PublicKey)
	return ok && pub.Curve == elliptic.P521() && k.KeyID != "" &&
		(k.Use == "" || k.Use == "sig") &&
		(k.Algorithm == "" || k.Algorithm == string(jose.ES512))
}
