package jamtest_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/go-jam/go-jam/jam"
	"github.com/go-jam/go-jam/jam/jamtest"
)

// A gateway that times out after JAM ran: the magic link was sent, yet the
// client saw an error. Handled tells this apart from a request that never
// reached JAM.
func ExampleFault_afterHandling() {
	srv := jamtest.NewServer()
	defer srv.Close()
	client := srv.Client()

	timeout := jamtest.GatewayError(http.StatusGatewayTimeout)
	timeout.AfterHandling = true
	srv.SetFault(jamtest.OpAuthenticate, timeout)
	err := client.Authenticate(context.Background(), "ann@example.com")
	_, sent := srv.MagicLink("ann@example.com")
	fmt.Println(errors.Is(err, jam.ErrUnexpectedStatus), sent)
	fmt.Println(srv.Requests(jamtest.OpAuthenticate), srv.Handled(jamtest.OpAuthenticate))
	// Output:
	// true true
	// 1 1
}

// One request in four fails, at random but the same way in every run with
// the same seed, as a gateway in front of serverless functions fails.
func ExampleFault_oneOf() {
	srv := jamtest.NewServer()
	defer srv.Close()
	srv.SetFault(jamtest.OpGetJWKS, jamtest.Fault{
		Rate: 0.25,
		Seed: 4,
		OneOf: []jamtest.Fault{
			jamtest.GatewayError(http.StatusBadGateway),
			jamtest.HTMLError(http.StatusGatewayTimeout),
			jamtest.Throttled(http.StatusServiceUnavailable, time.Second),
		},
	})
	var statuses []int
	for range 12 {
		resp, err := http.Get(srv.URL + "/" + srv.AppID + "/.well-known/jwks.json")
		if err != nil {
			fmt.Println(err)
			return
		}
		resp.Body.Close()
		statuses = append(statuses, resp.StatusCode)
	}
	fmt.Println(statuses)
	// Output: [200 200 200 200 200 503 200 200 200 502 200 200]
}
