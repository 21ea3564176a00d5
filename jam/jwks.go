package jam

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"golang.org/x/time/rate"

	"github.com/go-jam/go-jam/jam/internal/es512"
)

// keySet caches the app's signing keys by kid. It fetches them on first
// use; again, in the background, once they are older than their max age;
// and, within a rate limit, when a token names a kid it does not hold.
type keySet struct {
	fetch   func(context.Context) (*fetchedSet, error)
	now     func() time.Time
	maxAge  time.Duration // the longest the keys are used without a refetch
	refetch *rate.Limiter // the refetches after the first
	minAge  time.Duration // the refetch interval: the shortest max age
	log     *slog.Logger
	stats   *counters

	mu     sync.Mutex // guards flight, and orders the writes of state
	flight *flight    // the fetch in progress, if any
	state  atomic.Pointer[keyState]
}

// A flight is one fetch of the key set, which every caller that needs one
// while it runs shares. Unlike singleflight's, joining one and deciding
// whether to start one happen under one lock, so that a caller the rate
// limit would refuse still joins the fetch in progress.
type flight struct {
	done chan struct{} // closed once the result is stored
	set  *jose.JSONWebKeySet
	err  error
}

// maxPrecomputedKeys is how many keys of the set get the tables of the
// fast ES512 verifier (es512.New: 2.1 MiB each, built in about 40 ms when
// the key enters the set, beside 6.8 MiB shared by all, built once); keys
// past it verify with crypto/ecdsa. JAM's sets hold one key, two during a
// rotation.
const maxPrecomputedKeys = 4

// A key is a signing key of the set and its verifier.
type key struct {
	pub *ecdsa.PublicKey
	v   *es512.Verifier
}

// keyState is what the key set holds at one time; it is replaced whole,
// never changed, so that readers need no lock.
type keyState struct {
	keys      map[string][]*key // by kid; nil until a fetch succeeded
	count     int               // keys held
	fetchedAt time.Time         // of the last successful fetch
	staleAt   time.Time         // when the keys are older than their max age
	lastErr   error             // of the last fetch; nil if it succeeded
	failedAt  time.Time         // when the last failed fetch ended
}

// fetchedSet is a key set as fetched, with the max age its response's
// Cache-Control gave, if any.
type fetchedSet struct {
	set       *jose.JSONWebKeySet
	maxAge    time.Duration
	hasMaxAge bool
}

// failureBackoff is how long after a failed fetch a Client with no keys
// yet refuses to fetch again, returning that failure instead.
const failureBackoff = time.Second

// lookup returns the keys with the given kid, fetching the set if it holds
// none and may fetch.
func (s *keySet) lookup(ctx context.Context, kid string, now time.Time) ([]*key, error) {
	st := s.state.Load()
	if keys := st.keys[kid]; keys != nil {
		s.refreshIfStale(st, now)
		return keys, nil
	}
	may := func(st *keyState) bool {
		switch {
		case st.keys[kid] != nil: // a fetch that just ended brought it
			return false
		case st.keys == nil:
			// Cold and JAM just failed: answer as it did rather than ask
			// again for every request of an outage.
			return st.lastErr == nil || now.Sub(st.failedAt) >= failureBackoff
		}
		return s.refetch.AllowN(now, 1)
	}
	// A fetch this call joined may have begun before the key was
	// published; then one of its own may follow.
	for range 2 {
		f, started := s.join(ctx, may)
		if f != nil {
			if _, err := f.wait(ctx); err != nil {
				return nil, err
			}
		}
		st = s.state.Load()
		switch keys := st.keys[kid]; {
		case keys != nil:
			return keys, nil
		case f == nil && st.lastErr != nil:
			// No fetch was allowed and the last one failed, so the kid may
			// be a new key JAM could not tell: an outage, not a bad token.
			return nil, st.lastErr
		case f == nil:
			s.log.Debug("unknown kid; refetch refused by the rate limit", "kid", kid)
		case !started:
			continue
		}
		break
	}
	return nil, notVerified(ErrUnknownKey, nil)
}

// has reports whether k is still one of the set's keys for kid, for a
// token the cache holds.
func (s *keySet) has(kid string, k *key, now time.Time) bool {
	st := s.state.Load()
	s.refreshIfStale(st, now)
	return slices.Contains(st.keys[kid], k)
}

// refreshIfStale starts a refetch of keys older than their max age, if the
// rate limit allows, and returns without waiting for it: the keys held
// serve until it succeeds, and after it fails.
func (s *keySet) refreshIfStale(st *keyState, now time.Time) {
	if now.Before(st.staleAt) {
		return
	}
	s.join(context.Background(), func(st *keyState) bool {
		return !now.Before(st.staleAt) && s.refetch.AllowN(now, 1)
	})
}

// join returns the fetch in flight, or else starts one if may, given the
// current state, allows it, and says whether it started it; nil means
// neither. A nil may always allows.
func (s *keySet) join(ctx context.Context, may func(*keyState) bool) (f *flight, started bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.flight == nil && (may == nil || may(s.state.Load())) {
		s.flight = &flight{done: make(chan struct{})}
		started = true
		go s.run(context.WithoutCancel(ctx), s.flight)
	}
	return s.flight, started
}

// run fetches the key set for f. It runs on behalf of every caller
// waiting, so it is bounded by keySetFetchLimit, not by their contexts.
func (s *keySet) run(ctx context.Context, f *flight) {
	ctx, cancel := context.WithTimeout(ctx, keySetFetchLimit)
	defer cancel()
	start := time.Now()
	fetched, err := s.fetch(ctx)
	var keys map[string][]*key
	if err == nil {
		// Outside the lock: the tables of new keys take a while to build.
		keys = s.verifiers(fetched.set)
	}
	s.mu.Lock()
	s.store(fetched, keys, err, time.Since(start))
	s.flight = nil
	s.mu.Unlock()
	if err == nil {
		f.set = fetched.set
	}
	f.err = err
	close(f.done)
}

// wait returns the result of f, waiting for it no longer than ctx allows.
func (f *flight) wait(ctx context.Context) (*jose.JSONWebKeySet, error) {
	select {
	case <-ctx.Done():
		return nil, &Error{Op: opFetchKeySet, Err: ctx.Err(), kinds: []error{ErrKeySetUnavailable}}
	case <-f.done:
		return f.set, f.err
	}
}

// verifiers returns the keys of set by kid, each with its verifier. A key
// held already keeps its verifier, and its pointer, so that the tokens it
// verified stay in the token cache. It runs in the fetch, which is alone.
func (s *keySet) verifiers(set *jose.JSONWebKeySet) map[string][]*key {
	old := s.state.Load().keys
	keys := make(map[string][]*key, len(set.Keys))
	var fresh []*key
	precomputed := 0
	for _, jwk := range set.Keys {
		pub := jwk.Key.(*ecdsa.PublicKey)
		i := slices.IndexFunc(old[jwk.KeyID], func(o *key) bool { return o.pub.Equal(pub) })
		if i >= 0 {
			k := old[jwk.KeyID][i]
			keys[jwk.KeyID] = append(keys[jwk.KeyID], k)
			if k.v.Precomputed() {
				precomputed++
			}
			continue
		}
		k := &key{pub: pub}
		keys[jwk.KeyID] = append(keys[jwk.KeyID], k)
		fresh = append(fresh, k)
	}
	for _, k := range fresh {
		newVerifier := es512.NewStandard
		if precomputed < maxPrecomputedKeys {
			newVerifier = es512.New
		}
		// go-jose has checked that the key is a point of P-521, and so has
		// usable, so this cannot fail; if it did, crypto/ecdsa would refuse
		// the key just the same.
		k.v, _ = newVerifier(k.pub)
		if k.v.Precomputed() {
			precomputed++
		}
	}
	return keys
}

// store replaces the keys with those of a successful fetch, or records a
// failure and keeps the keys held: an outage must not log users out. The
// caller holds s.mu.
func (s *keySet) store(f *fetchedSet, keys map[string][]*key, err error, took time.Duration) {
	s.stats.fetches.Add(1)
	old := s.state.Load()
	now := s.now()
	if err != nil {
		s.stats.fetchErrors.Add(1)
		s.log.Warn("key set fetch failed", "error", err.Error(), "duration", took, "keys_kept", old.count)
		next := *old
		next.lastErr, next.failedAt = err, now
		s.state.Store(&next)
		return
	}

	next := &keyState{keys: keys, fetchedAt: now, staleAt: now.Add(s.maxAgeOf(f))}
	var added, removed []string
	for kid, ks := range keys {
		next.count += len(ks)
		for _, k := range ks {
			if !slices.Contains(old.keys[kid], k) {
				added = append(added, kid)
			}
		}
	}
	for kid, ks := range old.keys {
		for _, k := range ks {
			if !slices.Contains(keys[kid], k) {
				removed = append(removed, kid)
			}
		}
	}
	s.state.Store(next)

	s.log.Debug("key set fetched", "keys", next.count, "duration", took)
	if len(added) > 0 || len(removed) > 0 {
		slices.Sort(added)
		slices.Sort(removed)
		s.log.Info("key set changed", "added", added, "removed", removed)
	}
}

// maxAgeOf is how long the keys of f may be used before a refetch: the
// Cache-Control max-age of the response, clamped between the refetch
// interval and the configured max age.
func (s *keySet) maxAgeOf(f *fetchedSet) time.Duration {
	if !f.hasMaxAge {
		return s.maxAge
	}
	return min(max(f.maxAge, s.minAge), s.maxAge)
}

// cacheMaxAge reads the max age of a response from its Cache-Control
// header: max-age, or zero for no-store and no-cache. ok is false when it
// says neither.
func cacheMaxAge(h http.Header) (d time.Duration, ok bool) {
	for _, field := range h.Values("Cache-Control") {
		for directive := range strings.SplitSeq(field, ",") {
			name, value, _ := strings.Cut(strings.TrimSpace(directive), "=")
			switch strings.ToLower(name) {
			case "no-store", "no-cache":
				return 0, true
			case "max-age":
				secs, err := strconv.ParseUint(strings.Trim(value, `"`), 10, 32)
				if err == nil {
					d, ok = time.Duration(secs)*time.Second, true
				}
			}
		}
	}
	return d, ok
}

// JWKS fetches the app's JWK Set now, or joins a fetch already in flight,
// replaces the cached keys with it and returns the keys VerifyToken can
// use: EC P-521 public keys for signing with a kid. Keys of other types, or
// that hold private parts, are left out.
//
// VerifyToken refetches the set by itself once it is older than its max
// age (WithKeySetMaxAge); call JWKS to make a key JAM removed stop
// verifying at once.
func (c *Client) JWKS(ctx context.Context) (*jose.JSONWebKeySet, error) {
	f, _ := c.keys.join(ctx, nil)
	set, err := f.wait(ctx)
	if err != nil {
		return nil, err
	}
	// Callers that shared the fetch each get a slice of their own.
	return &jose.JSONWebKeySet{Keys: slices.Clone(set.Keys)}, nil
}

// Ready fetches the app's key set unless the Client holds it already,
// waiting no longer than ctx allows, and returns nil once the Client holds
// keys. Call it during start-up with a bounded context, so that the first
// request does not wait for the fetch, and from a readiness probe. Its
// error, which matches ErrKeySetUnavailable, is for logs and probes: a
// Client that is not ready still works, and fetches the set on the first
// verification, so an outage of JAM at start-up MUST NOT stop a process.
func (c *Client) Ready(ctx context.Context) error {
	if c.keys.state.Load().keys != nil {
		return nil
	}
	_, err := c.JWKS(ctx)
	return err
}

// fetchKeySet GETs the app's JWK Set and keeps the keys that can verify
// JAM's tokens. The set is decoded key by key, so that one key go-jose
// cannot parse (a new key type, an invalid point) does not hide the others.
func (c *Client) fetchKeySet(ctx context.Context) (*fetchedSet, error) {
	body, header, err := c.call(ctx, request{
		op: opFetchKeySet,
		send: func(ctx context.Context) (*http.Response, error) {
			return c.api.GetJWKS(ctx, c.appID)
		},
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
	f := &fetchedSet{set: set}
	f.maxAge, f.hasMaxAge = cacheMaxAge(header)
	return f, nil
}

// usable reports whether k can verify a JAM ID token.
func usable(k *jose.JSONWebKey) bool {
	pub, ok := k.Key.(*ecdsa.PublicKey)
	return ok && pub.Curve == elliptic.P521() && k.KeyID != "" &&
		(k.Use == "" || k.Use == "sig") &&
		(k.Algorithm == "" || k.Algorithm == string(jose.ES512))
}
