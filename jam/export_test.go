package jam

import (
	"context"
	"crypto/ecdsa"
	"slices"
	"sync"
	"sync/atomic"
	"time"
	"weak"

	"github.com/go-jam/go-jam/jam/internal/es512"
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

// TablesBreakEven is how many checks with crypto/ecdsa earn a key its
// tables.
const TablesBreakEven = tablesBreakEven

// MaxPrecomputedKeys is how many keys of a set may hold tables at once.
const MaxPrecomputedKeys = maxPrecomputedKeys

// Tables returns a weak pointer to the fast verifier of the key of c's set
// with the given kid, and whether it has one: its tables are built.
func Tables(c *Client, kid string) (weak.Pointer[es512.Verifier], bool) {
	for _, k := range c.keys.state.Load().keys[kid] {
		if v := k.fast.Load(); v != nil {
			return weak.Make(v), true
		}
	}
	return weak.Pointer[es512.Verifier]{}, false
}

// GateTables makes c's builds of tables wait until the returned function
// is called, and counts them in builds.
func GateTables(c *Client, builds *atomic.Int32) (release func()) {
	gate := make(chan struct{})
	c.keys.tables.new = func(pub *ecdsa.PublicKey) (*es512.Verifier, error) {
		builds.Add(1)
		<-gate
		return es512.New(pub)
	}
	return sync.OnceFunc(func() { close(gate) })
}

// AwaitTables waits for the builds of tables in flight to end.
func AwaitTables(c *Client) {
	c.keys.tables.wait(context.Background())
}
