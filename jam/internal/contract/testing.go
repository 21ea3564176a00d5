package contract

import (
	"net/http"
	"sync"
	"testing"
	"time"

	gojam "github.com/go-jam/go-jam"
)

// Load the embedded openapi.yaml once for every checked client.
var loadOpenAPI = sync.OnceValues(func() (*Spec, error) { return Load(gojam.OpenAPI) })

// CheckedClient returns an HTTP client for tests that checks every request
// it sends and every response it gets against openapi.yaml, and fails tb,
// when it ends, for each violation. Responses marked with FaultHeader are
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
		Transport: &Transport{Spec: spec, Report: func(err error) {
			mu.Lock()
			violations = append(violations, err)
			mu.Unlock()
		}},
	}
}
