package jam_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the tests if a goroutine outlives them: no fetch, request
// or connection of the client may be left running after any test, failure
// paths and timeouts included.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
