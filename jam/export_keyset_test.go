package jam

import "time"

// SetKeySetFetchLimit sets how long c waits, in all, for key-set fetches
// in one call, and how long one fetch may run, in place of
// keySetFetchLimit.
func SetKeySetFetchLimit(c *Client, d time.Duration) { c.keys.fetchLimit = d }

// LockKeySet takes the lock of c's key set, as a fetch that is storing its
// result would, and returns the function that releases it.
func LockKeySet(c *Client) (unlock func()) {
	c.keys.mu.Lock()
	return c.keys.mu.Unlock
}
