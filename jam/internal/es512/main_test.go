package es512

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the tests if a goroutine outlives them; the package starts
// none, and the concurrent tests must wait for theirs.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
