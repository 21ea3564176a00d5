package jam

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// cacheMaxAge reads the max age of a response from its Cache-Control
// header: max-age, or zero for no-store and no-cache. ok is false when it
// says neither. Of two max-age directives the first counts (RFC 9111
// §4.2.1), so that one appended by a proxy cannot lengthen it.
func cacheMaxAge(h http.Header) (d time.Duration, ok bool) {
	seen := false
	for _, field := range h.Values("Cache-Control") {
		for directive := range strings.SplitSeq(field, ",") {
			name, value, _ := strings.Cut(strings.TrimSpace(directive), "=")
			switch strings.ToLower(name) {
			case "no-store", "no-cache":
				return 0, true
			case "max-age":
				if seen {
					continue
				}
				seen = true
				secs, err := strconv.ParseUint(strings.Trim(value, `"`), 10, 32)
				if err == nil {
					d, ok = time.Duration(secs)*time.Second, true
				}
			}
		}
	}
	return d, ok
}

// JWKS fetches the app's JWK Set now, or joins a fetch already in flight,
// replaces the cached keys with it and returns the keys VerifyToken can
// use: EC P-521 public keys with a kid, for signing (no use, or "sig") with
// ES512 (no alg, or "ES512"). Other keys, and keys that hold private parts,
// are left out.
//
// VerifyToken refetches the set by itself once it is older than its max
// age (WithKeySetMaxAge); call JWKS to make a key JAM removed stop
// verifying at once.
//
// The set is go-jose's type, the one type from outside the standard library
// in this package's API: the standard library has no JWK Set, go-jose v4
// is the library that verifies the tokens, and the keys are meant to be
// inspected or served again in the form Go's JOSE libraries read. So
// go-jam's major version moves only if this method ever changes to a later
// go-jose major version.
func (c *Client) JWKS(ctx context.Context) (*jose.JSONWebKeySet, error) {
	f, _ := c.keys.join(ctx, nil)
	set, err := f.wait(ctx)
	if err != nil {
		return nil, err
	}
	// Callers that shared the fetch each get a slice of their own.
	return &jose.JSONWebKeySet{Keys: slices.Clone(set.Keys)}, nil
}

// Ready fetches the app's key set unless the Client holds it already,
// waiting no longer than ctx allows, and returns nil once the Client holds
// keys. Call it during start-up with a bounded context, so that the first
// request does not wait for the fetch, and from a readiness probe. Its
// error, which matches ErrKeySetUnavailable, is for logs and probes: a
// Client that is not ready still works, and fetches the set on the first
// verification, so an outage of JAM at start-up MUST NOT stop a process.
//
// Ready does not build the tables of the fast verifier (WithFastVerifier):
// keys earn them by verifying, so that a process that verifies little
// starts as fast as one using crypto/ecdsa alone. Where start-up time is
// free and the first requests are not, call Precompute instead.
func (c *Client) Ready(ctx context.Context) error {
	if c.keys.state.Load().keys != nil {
		return nil
	}
	_, err := c.JWKS(ctx)
	return err
}

// Precompute does what Ready does, and then builds the tables of the fast
// verifier (WithFastVerifier) for the keys of the set that have none, up
// to 4, without waiting for them to earn them, and waits for the builds
// as long as ctx allows. It costs 60–100 ms of CPU and 4.9 MiB the first
// time in a process, 12 ms and 1.2 MiB per key after; with the fast
// verifier off, or in FIPS 140 mode, it is Ready.
//
// Call it where start-up is not on a request's path: before a Kubernetes
// readiness probe first answers (call Precompute once at start-up, and
// Ready from the probe), or in the init of an AWS Lambda function with
// provisioned concurrency. Where start-up delays the first request, as in
// a Lambda function's cold start on demand, call Ready: the keys earn
// their tables if the process verifies enough to repay them.
//
// Its error matches ErrKeySetUnavailable when the set could not be
// fetched, and context.DeadlineExceeded or context.Canceled when ctx ended
// first; the builds then go on in the background and end by themselves.
// Either way the Client works, so the error MUST NOT stop a process.
func (c *Client) Precompute(ctx context.Context) error {
	if err := c.Ready(ctx); err != nil {
		return err
	}
	if err := c.keys.tables.precompute(ctx, c.keys.state.Load().keys); err != nil {
		return &Error{Op: opPrecompute, Err: err}
	}
	return nil
}

// fetchKeySet GETs the app's JWK Set and keeps the keys that can verify
// JAM's tokens. The set is decoded key by key, so that one key go-jose
// cannot parse (a new key type, an invalid point) does not hide the others.
func (c *Client) fetchKeySet(ctx context.Context) (*fetchedSet, error) {
	body, header, err := c.call(ctx, request{
		op: opFetchKeySet,
		send: func(ctx context.Context) (*http.Response, error) {
			return c.api.GetJWKS(ctx, c.appID)
		},
	})
	if err != nil {
		// Whatever JAM answered, the keys are unavailable; the status's own
		// sentinel (ErrNotFound for an unknown app, …) still matches.
		e := err.(*Error)
		e.kinds = append([]error{ErrKeySetUnavailable}, e.kinds...)
		return nil, e
	}
	var raw struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(body, &raw); err != nil || raw.Keys == nil {
		return nil, &Error{Op: opFetchKeySet, StatusCode: http.StatusOK, Err: errors.New("response is not a JWK Set"), kinds: []error{ErrKeySetUnavailable, ErrUnexpectedStatus}}
	}
	set := &jose.JSONWebKeySet{Keys: make([]jose.JSONWebKey, 0, len(raw.Keys))}
	for _, r := range raw.Keys {
		var k jose.JSONWebKey
		if k.UnmarshalJSON(r) != nil || !usable(&k) {
			continue
		}
		set.Keys = append(set.Keys, k)
	}
	if len(set.Keys) == 0 {
		// A set no token can verify against is a broken deployment, not a
		// reason to refuse every user: keep the keys held, answer 503.
		return nil, &Error{Op: opFetchKeySet, StatusCode: http.StatusOK, Err: errors.New("no usable key in the JWK Set"), kinds: []error{ErrKeySetUnavailable, ErrUnexpectedStatus}}
	}
	f := &fetchedSet{set: set}
	f.maxAge, f.hasMaxAge = cacheMaxAge(header)
	return f, nil
}

// usable reports whether k can verify a JAM ID token.
func usable(k *jose.JSONWebKey) bool {
	pub, ok := k.Key.(*ecdsa.PublicKey)
	return ok && pub.Curve == elliptic.P521() && k.KeyID != "" &&
		(k.Use == "" || k.Use == "sig") &&
		(k.Algorithm == "" || k.Algorithm == string(jose.ES512))
}
