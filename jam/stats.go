package jam

import (
	"sync/atomic"
	"time"
)

// Stats are counters of a Client's verifications and key-set fetches since
// it was made, and the state of its key set. Stats is cheap enough to call
// on every scrape of a metrics endpoint; see the example of Client.Stats
// for publishing it with expvar.
//
// Each verification that fails counts once, under Refused, Unavailable or
// RefetchesLimited, so Verifications − Refused − Unavailable −
// RefetchesLimited succeeded. Alert on Unavailable, which JAM's outages
// raise; RefetchesLimited, which forged kids raise too, cannot trip it.
type Stats struct {
	Verifications     int64     // VerifyToken calls
	CacheHits         int64     // of those, answered from the token cache
	Refused           int64     // of those, ErrNotVerified
	Unavailable       int64     // of those, ErrKeySetUnavailable: the key set could not be fetched; alert on it
	RefetchesLimited  int64     // of those, ErrKeySetUnavailable: a kid the set lacks, its refetch refused by the rate limit
	KeySetFetches     int64     // fetch attempts ended, including failed ones and JWKS()
	KeySetFetchErrors int64     // failed fetch attempts
	Retries           int64     // requests to JAM sent again after a transient failure
	Keys              int       // usable keys held now
	KeySetFetchedAt   time.Time // last successful fetch, zero if none
}

// counters are the counts behind Stats. A cache hit adds to one counter
// only, and that one striped: hits on several cores at once would queue on
// one cache line otherwise. Verifications are the hits and the misses.
type counters struct {
	cacheHits                     stripedCounter
	misses, refused               atomic.Int64
	unavailable, refetchesLimited atomic.Int64
	fetches, fetchErrors, retries atomic.Int64
}

// A stripedCounter is a counter that every core adds to at once: an add
// goes to one of its stripes, each on a cache line of its own, and Load
// sums them.
type stripedCounter [32]struct {
	n atomic.Int64
	_ [56]byte // the rest of a 64-byte cache line
}

// Inc adds one to the count, in the stripe that stripe, any well-spread
// byte such as one of a hash, picks.
func (c *stripedCounter) Inc(stripe byte) { c[int(stripe)%len(c)].n.Add(1) }

// Load returns the count: the sum of the stripes.

func (c *stripedCounter) Load() int64 {
	var sum int64
	for i := range c {
		sum += c[i].n.Load()
	}
	return sum
}

// Stats returns the Client's counters and the state of its key set.
func (c *Client) Stats() Stats {
	st := c.keys.state.Load()
	hits := c.stats.cacheHits.Load()
	return Stats{
		Verifications:     hits + c.stats.misses.Load(),
		CacheHits:         hits,
		Refused:           c.stats.refused.Load(),
		Unavailable:       c.stats.unavailable.Load(),
		RefetchesLimited:  c.stats.refetchesLimited.Load(),
		KeySetFetches:     c.stats.fetches.Load(),
		KeySetFetchErrors: c.stats.fetchErrors.Load(),
		Retries:           c.stats.retries.Load(),
		Keys:              st.count,
		KeySetFetchedAt:   st.fetchedAt,
	}
}
