// Package bench measures go-jam against the libraries a Go backend would
// otherwise verify JAM's ID tokens with (coreos/go-oidc, lestrrat-go/jwx,
// golang-jwt), against the bare P-521 signature check they all pay, and
// Refresh against a bare net/http round trip. It is a module of its own so
// that go-jam's go.mod gains none of the peers as dependencies.
//
// Everything is in the tests and benchmarks; run.sh runs them and prints
// the tables. The package itself holds nothing.
package bench
