package jamtest

import (
	"sync"
	"time"
)

// A Clock is a clock a test sets and advances, safe for concurrent use.
// Give its Now to WithClock and to jam.WithClock, so that the server and
// the client agree on the time and a test can let a token expire, or a
// magic link lapse, without waiting:
//
//	clk := jamtest.NewClock(time.Now())
//	srv := jamtest.NewServer(jamtest.WithClock(clk.Now))
//	client := srv.Client(jam.WithClock(clk.Now))
//	clk.Advance(jamtest.DefaultTokenTTL + 2*time.Minute)
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// NewClock returns a Clock that reads t until it is advanced or set.
func NewClock(t time.Time) *Clock { return &Clock{now: t} }

// Now returns the Clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the Clock d forward, or back if d is negative.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// Set sets the Clock to t.
func (c *Clock) Set(t time.Time) {
	c.mu.Lock()
	c.now = t
	c.mu.Unlock()
}
