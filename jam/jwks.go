package jam

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"golang.org/x/sync/singleflight"
	"golang.org/x/time/rate"
)

// keySet caches the app's signing keys by kid. It fetches them on first
// use, and again, within a rate limit, when a token names a kid it does not
// hold. Every fetch is one flight that all callers share.
type keySet struct {
	fetch   func(context.Context) (*jose.JSONWebKeySet, error)
	now     func() time.Time
	refetch *rate.Limiter // the refetches unknown kids may cause

	flight singleflight.Group

	mu       sync.RWMutex
	keys     map[string][]*ecdsa.PublicKey // by kid; nil until a fetch succeeded
	lastErr  error                         // of the last fetch; nil if it succeeded
	failedAt time.Time                     // when the last failed fetch ended
}

// failureBackoff is how long after a failed fetch a Client with no keys
// yet refuses to fetch again, returning that failure instead.
const failureBackoff = time.Second

// lookup returns the keys with the given kid, fetching the set if it holds
// none and may fetch.
func (s *keySet) lookup(ctx context.Context, kid string) ([]*ecdsa.PublicKey, error) {
	keys, fetch, err := s.held(kid)
	if !fetch {
		return keys, err
	}
	if _, err := s.fetchShared(ctx); err != nil {
		return nil, err
	}
	s.mu.RLock()
	keys = s.keys[kid]
	s.mu.RUnlock()
	if keys == nil {
		return nil, notVerified(ErrUnknownKey, nil)
	}
	return keys, nil
}

// held returns the keys with the given kid, or the answer for a kid the
// set lacks, or fetch = true when the set may be fetched to look for it.
func (s *keySet) held(kid string) (keys []*ecdsa.PublicKey, fetch bool, err error) {
	s.mu.RLock()
	keys, warm, lastErr, failedAt := s.keys[kid], s.keys != nil, s.lastErr, s.failedAt
	s.mu.RUnlock()
	now := s.now()
	switch {
	case keys != nil:
		return keys, false, nil
	case !warm:
		// Cold and JAM just failed: answer as it did rather than ask again
		// for every request of an outage.
		if lastErr != nil && now.Sub(failedAt) < failureBackoff {
			return nil, false, lastErr
		}
		return nil, true, nil
	case s.refetch.AllowN(now, 1):
		return nil, true, nil
	case lastErr != nil:
		// The last fetch failed, so the kid may be a new key JAM could not
		// tell: an outage, not a bad token.
		return nil, false, lastErr
	}
	return nil, false, notVerified(ErrUnknownKey, nil)
}

// fetchShared fetches the key set, or joins the fetch in flight, and waits
// for it no longer than ctx allows. The fetch runs on behalf of every
// caller waiting, so it is bounded by keySetFetchLimit rather than by ctx.
func (s *keySet) fetchShared(ctx context.Context) (*jose.JSONWebKeySet, error) {
	ch := s.flight.DoChan("keys", func() (any, error) {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), keySetFetchLimit)
		defer cancel()
		set, err := s.fetch(ctx)
		s.store(set, err)
		return set, err
	})
	select {
	case <-ctx.Done():
		return nil, &Error{Op: opFetchKeySet, Err: ctx.Err(), kinds: []error{ErrKeySetUnavailable}}
	case res := <-ch:
		if res.Err != nil {
			return nil, res.Err
		}
		return res.Val.(*jose.JSONWebKeySet), nil
	}
}

// store replaces the keys with those of a successful fetch, or records a
// failure and keeps the keys held: an outage must not log users out.
func (s *keySet) store(set *jose.JSONWebKeySet, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		s.lastErr, s.failedAt = err, s.now()
		return
	}
	keys := make(map[string][]*ecdsa.PublicKey, len(set.Keys))
	for _, k := range set.Keys {
		pub := k.Key.(*ecdsa.PublicKey)
		// Keep the pointer of a key held already, so that the tokens it
		// verified stay in the token cache.
		if i := slices.IndexFunc(s.keys[k.KeyID], func(old *ecdsa.PublicKey) bool { return old.Equal(pub) }); i >= 0 {
			pub = s.keys[k.KeyID][i]
		}
		keys[k.KeyID] = append(keys[k.KeyID], pub)
	}
	s.keys, s.lastErr = keys, nil
}

// has reports whether key is still one of the set's keys for kid.
func (s *keySet) has(kid string, key *ecdsa.PublicKey) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return slices.Contains(s.keys[kid], key)
}

// JWKS fetches the app's JWK Set now, or joins a fetch already in flight,
// replaces the cached keys with it and returns the keys VerifyToken can
// use: EC P-521 public keys for signing with a kid. Keys of other types, or
// that hold private parts, are left out.
//
// A key JAM retires keeps verifying tokens until the set is fetched again,
// which VerifyToken does only for a kid it does not know; call JWKS to
// make a retirement take effect at once.
func (c *Client) JWKS(ctx context.Context) (*jose.JSONWebKeySet, error) {
	set, err := c.keys.fetchShared(ctx)
	if err != nil {
		return nil, err
	}
	// Callers that shared the fetch each get a slice of their own.
	return &jose.JSONWebKeySet{Keys: slices.Clone(set.Keys)}, nil
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
