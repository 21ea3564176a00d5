// Package contracttest gives tests an HTTP client that checks its traffic
// against openapi.yaml. It is a package of its own, imported only by tests,
// so that package testing is never linked into a program.
package contracttest

import (
	"net/http"
	"sync"
	"testing"
	"time"

	gojam "github.com/go-jam/go-jam"
	"github.com/go-jam/go-jam/jam/internal/contract"
)

// Load the embedded openapi.yaml once for every checked client.
var loadOpenAPI = sync.OnceValues(func() (*contract.Spec, error) { return contract.Load(gojam.OpenAPI) })

// CheckedClient returns an HTTP client for tests that checks every request
// it sends and every response it gets against openapi.yaml, and fails tb,
// when it ends, for each violation. Responses marked with contract.FaultHeader are
// off-contract on purpose and pass unchecked.
func CheckedClient(tb testing.TB) *http.Client {
	tb.Helper()
	spec, err := loadOpenAPI()
	if err != nil {
		tb.Fatal(err)
	}
	var mu sync.Mutex
	var violations []error
	tb.Cleanup(func() {
		mu.Lock()
		defer mu.Unlock()
		for _, err := range violations {
			tb.Errorf("openapi.yaml violated: %v", err)
		}
	})
	return &http.Client{
		Timeout: 10 * time.Second,
		Transport: &contract.Transport{Spec: spec, Report: func(err error) {
			mu.Lock()
			violations = append(violations, err)
			mu.Unlock()
		}},
	}
}
