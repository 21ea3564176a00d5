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
)

// keySet caches the app's signing keys by kid. It fetches them on first
// use; again, in the background, once they are older than their max age;
// and, within a rate limit, when a token names a kid it does not hold.
type keySet struct {
	// Set by New, then only read.
	fetch     func(context.Context) (*fetchedSet, error)
	now       func() time.Time
	maxAge    time.Duration // the longest the keys are used without a refetch
	minMaxAge time.Duration // the shortest max age a response can set
	// fetchLimit bounds one fetch, and all the waits of one call for
	// fetches together: keySetFetchLimit, but in tests.
	fetchLimit time.Duration
	// refetchEvery is the rate limit of the refetches for unknown kids and
	// of the refreshes: one a refetchEvery, and none counted before the
	// first; 0 for no limit. Its state is keyState.refetchedAt.
	refetchEvery time.Duration
	log          *slog.Logger
	stats        *counters
	tables       *tables // of the fast verifier, for the keys that earn them

	// mu guards flight and serializes the writes of state, so that a
	// caller deciding under it whether to join or start a fetch sees the
	// last state stored, and a write, a copy of the state changed, loses
	// none other.
	mu sync.Mutex
	// flight is the fetch in progress, nil between fetches: non-nil from
	// when join sets it, under mu, until run clears it, under mu, having
	// stored the fetch's state. So at most one fetch runs at a time.
	flight *flight
	// state is read without a lock, as a cache hit does, and replaced
	// whole, under mu: by run's store when a fetch ends, and by
	// takeRefetch when join starts a fetch the rate limit counts.
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
// never changed, so that readers need no lock. keys is nil until a fetch
// succeeds, and never again after; lastErr and failedAt are of the last
// fetch if it failed, and reset by one that succeeds; the rest carry over.
type keyState struct {
	keys        map[string][]*key // by kid; nil until a fetch succeeded
	count       int               // keys held
	fetchedAt   time.Time         // of the last successful fetch
	maxAge      time.Duration     // of the keys fetched then
	lastErr     error             // of the last fetch; nil if it succeeded
	failedAt    time.Time         // when the last failed fetch ended
	removed     []string          // kids the last fetch that removed any removed
	refetchedAt time.Time         // when the last refetch the rate limit counts began; zero before the first
}

// Times are read on the clock of WithClock, which may have no monotonic
// reading (a custom clock, time.Now().UTC()) and step back. A wait
// measured on it counts a time before its start as the wait over, so that
// a step back an hour does not stop the fetches for an hour.

// passed reports whether d has passed since t, or the clock has stepped
// back to before t.
func passed(now, t time.Time, d time.Duration) bool {
	e := now.Sub(t)
	return e < 0 || e >= d
}

// stale reports whether the keys are older than their max age.
func (st *keyState) stale(now time.Time) bool { return passed(now, st.fetchedAt, st.maxAge) }

// refetchAllowed reports whether the rate limit allows a refetch, one
// every interval, now.
func (st *keyState) refetchAllowed(now time.Time, every time.Duration) bool {
	return every == 0 || st.refetchedAt.IsZero() || passed(now, st.refetchedAt, every)
}

// fetchedSet is a key set as fetched, with the max age its response's
// Cache-Control gave, if any.
type fetchedSet struct {
	set       *jose.JSONWebKeySet
	maxAge    time.Duration
	hasMaxAge bool
}

// keySetFetchLimit bounds a key-set fetch, which runs on behalf of every
// caller waiting and so cannot use one caller's context, and the waits of
// one verification for fetches together.
const keySetFetchLimit = 10 * time.Second

// failureBackoff is how long after a failed fetch a Client with no keys
// yet refuses to fetch again, returning that failure instead.
const failureBackoff = time.Second

// lookup returns the keys with the given kid: those held, or else those
// a fetch brings. Of a kid no fetch brings, it answers ErrUnknownKey only
// when a fetch that began during the call proved it unknown, or a fetch
// removed it from the set; when the rate limit refuses the refetch, the
// kid may be a key JAM has just published, and the answer is "unavailable,
// try again once a refetch is allowed", at once.
func (s *keySet) lookup(ctx context.Context, kid string, now time.Time) ([]*key, error) {
	st := s.state.Load()
	if keys := st.keys[kid]; keys != nil {
		s.refreshIfStale(st, now)
		return keys, nil
	}
	f, started := s.join(ctx, s.mayFetchFor(kid))
	if f == nil {
		return s.refused(kid)
	}
	// The waits of this call together take no longer than one fetch may:
	// waiting for a fetch joined, then for one more, must not double it.
	ctx, cancel := context.WithTimeout(ctx, s.fetchLimit)
	defer cancel()
	if !started {
		// That fetch was in flight when this call came, and may have
		// begun before JAM published the key: one more may follow.
		if keys, err := s.keysAfter(ctx, f, kid); keys != nil || err != nil {
			return keys, err
		}
		if f, _ = s.join(ctx, s.mayFetchFor(kid)); f == nil {
			return s.refused(kid)
		}
	}
	// A fetch that began during this call proves unknown what it lacks.
	if keys, err := s.keysAfter(ctx, f, kid); keys != nil || err != nil {
		return keys, err
	}
	return nil, notVerified(ErrUnknownKey, nil)
}

// mayFetchFor is join's condition for a fetch on behalf of a token with
// kid, one the set lacks.
func (s *keySet) mayFetchFor(kid string) func(*keyState, time.Time) bool {
	return func(st *keyState, now time.Time) bool {
		switch {
		case st.keys[kid] != nil: // a fetch that just ended brought it
			return false
		case st.keys == nil:
			// Cold and JAM just failed: answer as it did rather than ask
			// again for every request of an outage.
			return st.lastErr == nil || passed(now, st.failedAt, failureBackoff)
		}
		return s.takeRefetch(st, now)
	}
}

// takeRefetch reports whether the rate limit allows a refetch now, and if
// so counts it. The caller holds s.mu.
func (s *keySet) takeRefetch(st *keyState, now time.Time) bool {
	if !st.refetchAllowed(now, s.refetchEvery) {
		return false
	}
	next := *st
	next.refetchedAt = now
	s.state.Store(&next)
	return true
}

// keysAfter waits for f and returns the keys with kid the set holds then,
// if any, or the error of f, or of ctx ending first, counted: the token is
// then neither valid nor invalid.
func (s *keySet) keysAfter(ctx context.Context, f *flight, kid string) ([]*key, error) {
	if _, err := f.wait(ctx); err != nil {
		s.stats.unavailable.Add(1)
		return nil, err
	}
	return s.state.Load().keys[kid], nil
}

// refused answers for a token with kid when join allowed no fetch.
func (s *keySet) refused(kid string) ([]*key, error) {
	st := s.state.Load()
	switch {
	case st.keys[kid] != nil:
		// A fetch that ended after this call came brought it.
		return st.keys[kid], nil
	case slices.Contains(st.removed, kid):
		// JAM removed it: not a key it may have just published.
		return nil, notVerified(ErrUnknownKey, nil)
	case st.lastErr != nil:
		// The last fetch failed, so the kid may be a new key JAM could
		// not tell: an outage, not a bad token.
		s.stats.unavailable.Add(1)
		return nil, st.lastErr
	}
	// A forged kid, or the key JAM has just published: no telling which
	// until the next refetch, and no waiting for it, since the caller's
	// context may have no deadline. Not a refusal of the token, which
	// would log its user out, and not an outage.
	s.stats.refetchesLimited.Add(1)
	s.log.Debug("unknown kid; refetch refused by the rate limit", "kid", kid)
	// The clock read again, as join did, after the state it decided on.
	wait := s.refetchEvery - s.now().Sub(st.refetchedAt)
	return nil, &Error{Op: opVerifyToken, Err: errRefetchLimited, RetryAfter: min(max(wait, time.Millisecond), s.refetchEvery), kinds: []error{ErrKeySetUnavailable}}
}

var errRefetchLimited = errors.New("kid not in the key set, and its refetch refused by the rate limit")

// holds reports whether k is still one of the keys for kid, for a token
// the cache holds.
func (st *keyState) holds(kid string, k *key) bool {
	return slices.Contains(st.keys[kid], k)
}

// refreshIfStale starts a refetch of keys older than their max age, if the
// rate limit allows, and returns without waiting for it: the keys held
// serve until it succeeds, and after it fails. It is on the path of every
// cache hit, so it takes no lock until the state, read atomically, says
// that a refresh may start: after a refresh failed, the hits until the
// next may be tried do not queue on s.mu.
func (s *keySet) refreshIfStale(st *keyState, now time.Time) {
	if !st.stale(now) || !st.refetchAllowed(now, s.refetchEvery) {
		return
	}
	s.join(context.Background(), func(st *keyState, now time.Time) bool {
		return st.stale(now) && s.takeRefetch(st, now)
	})
}

// join returns the fetch in flight, or else starts one if may, given the
// current state and time, allows it, and says whether it started it; nil
// means neither. A nil may always allows. The time is read under s.mu, so
// that the times the rate limit compares are in order: a caller's own,
// read before it waited for the lock, may be older than the last refetch.
func (s *keySet) join(ctx context.Context, may func(*keyState, time.Time) bool) (f *flight, started bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.flight == nil && (may == nil || may(s.state.Load(), s.now())) {
		s.flight = &flight{done: make(chan struct{})}
		started = true
		go s.run(context.WithoutCancel(ctx), s.flight)
	}
	return s.flight, started
}

// run fetches the key set for f. It runs on behalf of every caller
// waiting, so it is bounded by keySetFetchLimit, not by their contexts.
func (s *keySet) run(ctx context.Context, f *flight) {
	ctx, cancel := context.WithTimeout(ctx, s.fetchLimit)
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

	next := &keyState{keys: keys, fetchedAt: now, maxAge: s.maxAgeOf(f), removed: old.removed, refetchedAt: old.refetchedAt}
	var added, removed, gone []string
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
		if keys[kid] == nil {
			gone = append(gone, kid)
		}
	}
	if gone != nil {
		next.removed = gone
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
	return min(max(f.maxAge, s.minMaxAge), s.maxAge)
}
