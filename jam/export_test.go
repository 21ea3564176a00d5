package jam

import (
	"context"
	"slices"
	"sync"
	"time"
)

// CacheLen returns how many verified tokens c remembers.
func CacheLen(c *Client) int {
	if c.cache == nil {
		return 0
	}
	return c.cache.EstimatedSize()
}

// AwaitKeySet waits for the key-set fetch in flight, if there is one, such
// as a refresh VerifyToken started in the background and did not wait for.
// A call that started one has done so by the time it returns.
func AwaitKeySet(c *Client) {
	c.keys.mu.Lock()
	f := c.keys.flight
	c.keys.mu.Unlock()
	if f != nil {
		<-f.done
	}
}

// RecordWaits makes c record the waits between its attempts instead of
// sleeping through them, and returns a function that reports them.
func RecordWaits(c *Client) func() []time.Duration {
	var mu sync.Mutex
	var waits []time.Duration
	c.wait = func(ctx context.Context, d time.Duration) error {
		mu.Lock()
		waits = append(waits, d)
		mu.Unlock()
		return ctx.Err()
	}
	return func() []time.Duration {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(waits)
	}
}
