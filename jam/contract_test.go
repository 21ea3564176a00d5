package jam_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"

	gojam "github.com/go-jam/go-jam"
	"github.com/go-jam/go-jam/jam"
	"github.com/go-jam/go-jam/jam/internal/contract"
)

// TestContractCheckCanFail runs a refresh through the checking transport
// with a copy of openapi.yaml edited so that the client no longer keeps to
// it: the request and the response are both reported. With the real spec,
// nothing is.
func TestContractCheckCanFail(t *testing.T) {
	edit := func(spec, old, new string) string {
		t.Helper()
		if !strings.Contains(spec, old) {
			t.Fatalf("openapi.yaml has no %q to edit", old)
		}
		return strings.Replace(spec, old, new, 1)
	}
	drifted := string(gojam.OpenAPI)
	// The server now wants {"token": …} and answers an expiresIn too.
	drifted = edit(drifted, "required: [refreshToken]\n      properties:\n        refreshToken:", "required: [token]\n      properties:\n        token:")
	drifted = edit(drifted, "RefreshResult:\n      type: object\n      required: [idToken]", "RefreshResult:\n      type: object\n      required: [idToken, expiresIn]")

	for _, tt := range []struct {
		name string
		spec string
		want []string // what the violations report, in order
	}{
		{"openapi.yaml", string(gojam.OpenAPI), nil},
		{"drifted copy", drifted, []string{"request of refreshToken", "response of refreshToken 200"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			spec, err := contract.Load([]byte(tt.spec))
			if err != nil {
				t.Fatalf("Load(%s) = %v", tt.name, err)
			}
			var mu sync.Mutex
			var got []error
			hc := &http.Client{Transport: &contract.Transport{Spec: spec, Report: func(err error) {
				mu.Lock()
				got = append(got, err)
				mu.Unlock()
			}}}
			stub := newStubJAM(t)
			stub.respondAs(http.StatusOK, `{"idToken":"new-token"}`, false)
			client := stub.client(t, jam.WithHTTPClient(hc))

			if _, err := client.Refresh(context.Background(), "refresh-token"); err != nil {
				t.Fatalf("Refresh() = %v", err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("violations = %v, want %d", got, len(tt.want))
			}
			for i, err := range got {
				if !strings.Contains(err.Error(), tt.want[i]) {
					t.Errorf("violation %d = %v, want it about %q", i, err, tt.want[i])
				}
				if strings.Contains(err.Error(), "refresh-token") || strings.Contains(err.Error(), "new-token") {
					t.Errorf("violation %d = %v quotes a token", i, err)
				}
			}
		})
	}

	t.Run("unknown operation", func(t *testing.T) {
		spec, err := contract.Load(gojam.OpenAPI)
		if err != nil {
			t.Fatal(err)
		}
		r, _ := http.NewRequest("GET", "http://jam.example/app/refresh", nil)
		if _, err := spec.Match(r); !errors.Is(err, contract.ErrNoOperation) {
			t.Errorf("Match(GET /app/refresh) = %v, want ErrNoOperation", err)
		}
	})
}
