package session

import (
	"context"
	"crypto/sha256"
	"errors"
	"sync"
	"time"
)

// Limit is a token bucket: Burst at once, then one per Every.
type Limit struct {
	Burst int
	Every time.Duration
}

// Result is a Limiter's answer.
type Result struct {
	// Allowed says whether the request may go on; it took a token.
	Allowed bool
	// Remaining is how many more the bucket allows at once now.
	Remaining int
	// RetryAfter is, when not Allowed, how long until one is.
	RetryAfter time.Duration
}

// A Limiter counts logins. It must be safe for concurrent use.
type Limiter interface {
	// Allow takes a token from the bucket of key, which lim describes,
	// if it has one. An error is an outage of the limiter: the login is
	// answered 503, not let through.
	Allow(ctx context.Context, key string, lim Limit) (Result, error)
}

// DefaultMemoryLimiterSize is how many keys each default limiter holds:
// about 3.5 MiB of memory, full (TestLimiterFlood measures it).
const DefaultMemoryLimiterSize = 100_000

// MemoryLimiter is a Limiter in memory, for one process, holding at most
// a fixed number of keys. A key whose bucket is full again is forgotten
// when room is needed, which loses nothing; one whose bucket is not is
// never forgotten before it is full, so that a flood of new keys cannot
// reset anyone's limit by pushing it out. When every key held is in debt,
// a new key is refused (throttled) until one is full again: under such a
// flood, new addresses and clients wait, and memory stays bounded.
type MemoryLimiter struct {
	set expiringSet // key → the time its bucket is full again (GCRA's TAT)
}

// NewMemoryLimiter returns a MemoryLimiter holding at most size keys, on
// the clock now (nil means time.Now). Each key costs about 35 bytes.
func NewMemoryLimiter(size int, now func() time.Time) *MemoryLimiter {
	return &MemoryLimiter{set: newExpiringSet(size, now)}
}

// Allow implements Limiter with the generic cell rate algorithm: a key
// holds one time, when its bucket is full again.
func (l *MemoryLimiter) Allow(_ context.Context, key string, lim Limit) (Result, error) {
	if lim.Burst <= 0 || lim.Every <= 0 {
		return Result{}, errors.New("session: a limit needs a positive Burst and Every")
	}
	s := &l.set
	k := sha256.Sum256([]byte(key))
	every, window := int64(lim.Every), int64(lim.Every)*int64(lim.Burst)
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now().UnixNano()
	full, held := s.m[[16]byte(k[:16])]
	if !held || full < now {
		full = now
	}
	if full+every-now > window {
		return Result{RetryAfter: time.Duration(full + every - window - now)}, nil
	}
	if !held {
		if wait, ok := s.room(now); !ok {
			return Result{RetryAfter: wait}, nil
		}
	}
	full += every
	s.m[[16]byte(k[:16])] = full
	return Result{Allowed: true, Remaining: int((window - (full - now)) / every)}, nil
}

// Len returns how many keys the limiter holds.
func (l *MemoryLimiter) Len() int {
	l.set.mu.Lock()
	defer l.set.mu.Unlock()
	return len(l.set.m)
}

// UsedTokens remembers the ID tokens that logged someone in. It must be
// safe for concurrent use.
type UsedTokens interface {
	// Use records that the token with the ID (jti) logged in, to be
	// remembered until the time given, and reports whether it is the
	// first use. An error refuses the login with 503.
	Use(ctx context.Context, id string, until time.Time) (first bool, err error)
}

// ErrFull is what a MemoryUsedTokens answers when it holds as many IDs as
// it may and none has expired: the login is refused (503) rather than a
// replay let through.
var ErrFull = errors.New("session: used-token store full")

// MemoryUsedTokens is a UsedTokens in memory, for one process. It forgets
// an ID once a replay of its callback would be refused as too old anyway.
type MemoryUsedTokens struct {
	set expiringSet // ID → until
}

// NewMemoryUsedTokens returns a MemoryUsedTokens holding at most size IDs,
// on the clock now (nil means time.Now).
func NewMemoryUsedTokens(size int, now func() time.Time) *MemoryUsedTokens {
	return &MemoryUsedTokens{set: newExpiringSet(size, now)}
}

// Use implements UsedTokens.
func (u *MemoryUsedTokens) Use(_ context.Context, id string, until time.Time) (bool, error) {
	s := &u.set
	k := sha256.Sum256([]byte(id))
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now().UnixNano()
	if t, ok := s.m[[16]byte(k[:16])]; ok && t >= now {
		return false, nil
	}
	if _, ok := s.room(now); !ok {
		return false, ErrFull
	}
	s.m[[16]byte(k[:16])] = until.UnixNano()
	return true, nil
}

// expiringSet maps keys (hashed to 128 bits, so that their length costs
// nothing) to a time after which they may be forgotten.
type expiringSet struct {
	mu    sync.Mutex
	m     map[[16]byte]int64
	size  int
	now   func() time.Time
	sweep int64 // no entry expires before then: sweeping is useless
}

func newExpiringSet(size int, now func() time.Time) expiringSet {
	if now == nil {
		now = time.Now
	}
	return expiringSet{m: make(map[[16]byte]int64), size: max(size, 1), now: now}
}

// room makes room for one more key, forgetting the expired ones if the
// set is full, and reports whether there is room, or else how long until
// there may be. s.mu must be held.
func (s *expiringSet) room(now int64) (time.Duration, bool) {
	if len(s.m) < s.size {
		return 0, true
	}
	if now < s.sweep {
		return time.Duration(s.sweep - now), false
	}
	next := int64(1<<63 - 1)
	for k, t := range s.m {
		if t <= now {
			delete(s.m, k)
		} else {
			next = min(next, t)
		}
	}
	if len(s.m) < s.size {
		return 0, true
	}
	s.sweep = next
	return time.Duration(next - now), false
}
