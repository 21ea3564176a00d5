package jam

import (
	"sync/atomic"
	"time"
)

// Stats are counters of a Client's verifications and key-set fetches since
// it was made, and the state of its key set. Stats is cheap enough to call
// on every scrape of a metrics endpoint; see the example of Client.Stats
// for publishing it with expvar.
type Stats struct {
	Verifications     int64     // VerifyToken calls
	CacheHits         int64     // of those, answered from the token cache
	Refused           int64     // of those, ErrNotVerified
	KeySetFetches     int64     // fetch attempts ended, including failed ones and JWKS()
	KeySetFetchErrors int64     // failed fetch attempts
	Retries           int64     // requests to JAM sent again after a transient failure
	Keys              int       // usable keys held now
	KeySetFetchedAt   time.Time // last successful fetch, zero if none
}

// counters are the counts behind Stats.
type counters struct {
	verifications, cacheHits, refused atomic.Int64
	fetches, fetchErrors, retries     atomic.Int64
}

// Stats returns the Client's counters and the state of its key set.
func (c *Client) Stats() Stats {
	st := c.keys.state.Load()
	return Stats{
		Verifications:     c.stats.verifications.Load(),
		CacheHits:         c.stats.cacheHits.Load(),
		Refused:           c.stats.refused.Load(),
		KeySetFetches:     c.stats.fetches.Load(),
		KeySetFetchErrors: c.stats.fetchErrors.Load(),
		Retries:           c.stats.retries.Load(),
		Keys:              st.count,
		KeySetFetchedAt:   st.fetchedAt,
	}
}
