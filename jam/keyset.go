package jam

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"golang.org/x/time/rate"
)

// keySet caches the app's signing keys by kid. It fetches them on first
// use; again, in the background, once they are older than their max age;
// and, within a rate limit, when a token names a kid it does not hold.
type keySet struct {
	fetch           func(context.Context) (*fetchedSet, error)
	now             func() time.Time
	maxAge          time.Duration // the longest the keys are used without a refetch
	refetch         *rate.Limiter // the refetches after the first
	refetchInterval time.Duration // the shortest max age a response can set
	log             *slog.Logger
	stats           *counters

	// mu guards flight and orders the writes of state, so that a caller
	// deciding under it whether to join or start a fetch sees the state
	// the last fetch stored.
	mu     sync.Mutex
	flight *flight // the fetch in progress, nil between fetches
	// state is read without a lock and replaced whole, under mu, by run.
	state atomic.Pointer[keyState]
}

// A flight is one fetch of the key set, which every caller that needs one
// while it runs shares. Unlike singleflight's, joining one and deciding
// whether to start one happen under one lock, so that a caller the rate
// limit would refuse still joins the fetch in progress.
//
// join creates it under keySet.mu and sets keySet.flight; run, alone, writes
// set and err, stores the new keyState and clears keySet.flight under
// keySet.mu, and then closes done. Waiters read set and err only after done
// is closed, so they need no lock.
type flight struct {
	done chan struct{} // closed by run once set, err and the state are written
	set  *jose.JSONWebKeySet
	err  error
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

// keySetFetchLimit bounds a key-set fetch, which runs on behalf of every
// caller waiting and so cannot use one caller's context.
const keySetFetchLimit = 10 * time.Second

// failureBackoff is how long after a failed fetch a Client with no keys
// yet refuses to fetch again, returning that failure instead.
const failureBackoff = time.Second

// lookup returns the keys with the given kid, fetching the set if it holds
// none and may fetch. It counts the verifications it answers
// ErrKeySetUnavailable, and the refetches the rate limit refuses.
func (s *keySet) lookup(ctx context.Context, kid string, now time.Time) ([]*key, error) {
	keys, limited, err := s.find(ctx, kid, now)
	switch {
	case limited:
		s.stats.refetchesLimited.Add(1)
	case err != nil && errors.Is(err, ErrKeySetUnavailable):
		s.stats.unavailable.Add(1)
	}
	return keys, err
}

// find is lookup; limited says that the rate limit refused a refetch for
// the kid.
func (s *keySet) find(ctx context.Context, kid string, now time.Time) (_ []*key, limited bool, _ error) {
	st := s.state.Load()
	if keys := st.keys[kid]; keys != nil {
		s.refreshIfStale(st, now)
		return keys, false, nil
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
				return nil, false, err
			}
		}
		st = s.state.Load()
		switch keys := st.keys[kid]; {
		case keys != nil:
			return keys, false, nil
		case f == nil && st.lastErr != nil:
			// No fetch was allowed and the last one failed, so the kid may
			// be a new key JAM could not tell: an outage, not a bad token.
			return nil, false, st.lastErr
		case f == nil:
			s.log.Debug("unknown kid; refetch refused by the rate limit", "kid", kid)
			limited = true
		case !started:
			continue
		}
		break
	}
	return nil, limited, notVerified(ErrUnknownKey, nil)
}

// holds reports whether k is still one of the keys for kid, for a token
// the cache holds.
func (st *keyState) holds(kid string, k *key) bool {
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
	return min(max(f.maxAge, s.refetchInterval), s.maxAge)
}
