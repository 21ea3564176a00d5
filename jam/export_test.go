package jam

// CacheLen returns how many verified tokens c remembers.
func CacheLen(c *Client) int {
	if c.cache == nil {
		return 0
	}
	return c.cache.Len()
}
