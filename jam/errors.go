package jam

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Error is the error every Client method returns, alone or wrapped.
//
// Which kind of failure it is shows through errors.Is with the sentinels of
// this package (ErrBadRequest, ErrNotVerified, ErrKeySetUnavailable, …) and
// with context.Canceled and context.DeadlineExceeded. Its text starts with
// "jam: ", names the operation, the status and the server's message, and
// never holds a token, an email address or a response body.
type Error struct {
	// Op is the operation that failed, e.g. "refresh" or "verify token".
	Op string
	// StatusCode is the HTTP status JAM answered with, or 0 when there was
	// no response (network failure, local verification, a bad argument).
	StatusCode int
	// Message is the "message" of JAM's JSON error body, when it had one,
	// with control characters removed, cut to 200 bytes, and REDACTED in
	// place of the request's tokens and email address and of anything
	// shaped like an email address, a JWT or an opaque token.
	Message string
	// Err is the underlying cause, if any.
	Err error
	// Attempts is how many requests were sent to JAM, retries included;
	// 0 when none was (local verification, a bad argument).
	Attempts int
	// RetryAfter, when not 0, is how long until the call may succeed: the
	// Retry-After of JAM's last answer, a 429 or 503, once the client's
	// own retries are spent; or, for an error of VerifyToken that matches
	// ErrKeySetUnavailable because the token's kid is not in the key set
	// and the refetch rate limit (WithRefetchInterval) refuses to fetch the
	// set again, the time until it allows a refetch. DefaultErrorHandler
	// sends it as Retry-After.
	RetryAfter time.Duration

	kinds             []error // sentinels this error matches, most general first
	earlierMayHaveRun bool    // an earlier attempt may have run, its answer lost
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("jam: ")
	b.WriteString(e.Op)
	for _, k := range e.kinds {
		b.WriteString(": ")
		b.WriteString(strings.TrimPrefix(k.Error(), "jam: "))
	}
	if e.StatusCode != 0 {
		fmt.Fprintf(&b, " (HTTP %d)", e.StatusCode)
	}
	if e.Attempts > 1 {
		fmt.Fprintf(&b, " after %d attempts", e.Attempts)
	}
	if e.RetryAfter > 0 {
		fmt.Fprintf(&b, " (retry after %v)", e.RetryAfter)
	}
	if e.Message != "" {
		fmt.Fprintf(&b, ": %q", e.Message)
	}
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

// Unwrap lets errors.Is and errors.As see the sentinels e matches and its
// cause.
func (e *Error) Unwrap() []error {
	if e.Err == nil {
		return e.kinds
	}
	return append(e.kinds[:len(e.kinds):len(e.kinds)], e.Err)
}

// Sentinels for [errors.Is]. A [*Error] matches each that applies: a 404
// from the key-set endpoint matches both [ErrKeySetUnavailable] and
// [ErrNotFound]; a local verification failure matches [ErrNotVerified] and
// exactly one of the reasons [ErrMalformedToken] … [ErrTokenUse].
var (
	// ErrBadRequest means that JAM answered 400, for example to an invalid
	// email address or to a refresh for an app that does not allow it, or
	// that an argument was empty.
	ErrBadRequest = errors.New("jam: bad request")
	// ErrUnauthorized means that JAM answered 401 to a refresh (the refresh
	// token is invalid or expired) or to a logout (the ID token is
	// invalid), or 404 to a refresh of a deleted refresh token (see
	// [Client.Refresh]).
	ErrUnauthorized = errors.New("jam: unauthorized")
	// ErrNotFound means that JAM answered 404: the app, or the refresh
	// token, is unknown.
	ErrNotFound = errors.New("jam: not found")
	// ErrUnexpectedStatus means that JAM answered a status it does not
	// document for the operation, such as 500 or any redirect (which is
	// never followed), or a success without the expected body.
	ErrUnexpectedStatus = errors.New("jam: unexpected response")

	// ErrNotVerified means that the ID token is not valid.
	// [Client.VerifyToken] adds one of the reasons below;
	// [Client.VerifyRemote] returns it for JAM's 401.
	ErrNotVerified = errors.New("jam: token not verified")
	// ErrKeySetUnavailable means that the token could be neither accepted
	// nor refused: the app's JWK Set could not be fetched or parsed, or
	// the token's kid is not in the set and the refetch rate limit refuses
	// to fetch it again yet, so that the kid may be a key JAM has just
	// published (then [Error.RetryAfter] says when a refetch is allowed).
	// It does not match [ErrNotVerified]: answer 503, not 401, so that a
	// forged kid sent just before a key rotation cannot log out the users
	// of the new key.
	ErrKeySetUnavailable = errors.New("jam: key set unavailable")

	// ErrMalformedToken means that the token is not a JAM ID token: not a
	// compact JWS signed once, base64url not in its canonical form (a last
	// character with unused bits set), too large, a header over 1 KiB, with a
	// member twice, naming a key other than by kid (jwk, jku, x5u, x5c,
	// x5t, x5t#S256) or marked critical, no kid, or claims missing, of the
	// wrong JSON type or given twice.
	ErrMalformedToken = errors.New("jam: malformed token")
	// ErrAlgorithm means that the token is not signed with ES512.
	ErrAlgorithm = errors.New("jam: algorithm not ES512")
	// ErrUnknownKey means that no key in the app's key set has the token's
	// kid: a refetch that began during the call proved it, or a fetch
	// removed that kid from the set. A kid the set lacks whose refetch the
	// rate limit refuses gets [ErrKeySetUnavailable] instead.
	ErrUnknownKey = errors.New("jam: unknown signing key")
	// ErrSignature means that the signature does not match the key.
	ErrSignature = errors.New("jam: invalid signature")
	// ErrExpired means that exp has passed, leeway included.
	ErrExpired = errors.New("jam: token expired")
	// ErrNotYetValid means that nbf or iat is in the future, leeway
	// included.
	ErrNotYetValid = errors.New("jam: token not valid yet")
	// ErrIssuer means that iss is not [Client.Issuer].
	ErrIssuer = errors.New("jam: wrong issuer")
	// ErrAudience means that aud does not contain the app ID.
	ErrAudience = errors.New("jam: wrong audience")
	// ErrTokenUse means that token_use is not "id".
	ErrTokenUse = errors.New("jam: token_use not id")
)

// noAnswer reports whether e is for a request that got no complete answer.
func (e *Error) noAnswer() bool { return e.kinds == nil }

// cause says what went wrong, for a log record: the status, or the cause
// of a request that got no answer.
func (e *Error) cause() string {
	if e.noAnswer() {
		return e.Err.Error()
	}
	return "HTTP " + strconv.Itoa(e.StatusCode)
}

// notVerified is the error for a token that local checks refuse.
func notVerified(reason error, cause error) *Error {
	return &Error{Op: opVerifyToken, Err: cause, kinds: []error{ErrNotVerified, reason}}
}

// HTTPStatus returns the status an app's handler should answer when a call
// it made for a request failed with err, so that a bad token, an outage and
// a wrong configuration each read as what they are:
//
//   - ErrKeySetUnavailable, whatever else err matches: 503, try later;
//   - ErrNoToken, ErrNotVerified, ErrUnauthorized: 401, log in again;
//   - ErrInvalidRequest: 400;
//   - ErrBadRequest from Authenticate or TokensFromURL: 400, the user's
//     input; from another operation, 500: a wrong argument or an app that
//     does not allow refresh is the app's to fix;
//   - ErrNotFound: 500, a wrong app ID or base URL (a Refresh 404 that
//     also matches ErrUnauthorized is 401, above);
//   - JAM answering 429: 429;
//   - ErrUnexpectedStatus, or no answer from JAM: 503;
//   - context.DeadlineExceeded: 504; context.Canceled: 503;
//   - nil: 200; any other error: 500.
//
// DefaultErrorHandler answers with it, and so does package jam/session.
func HTTPStatus(err error) int {
	var e *Error
	switch {
	case err == nil:
		return http.StatusOK
	case errors.Is(err, ErrKeySetUnavailable):
		return http.StatusServiceUnavailable
	case errors.Is(err, ErrNoToken), errors.Is(err, ErrNotVerified), errors.Is(err, ErrUnauthorized):
		return http.StatusUnauthorized
	case errors.Is(err, ErrInvalidRequest):
		return http.StatusBadRequest
	case errors.Is(err, ErrBadRequest):
		if errors.As(err, &e) && (e.Op == opAuthenticate || e.Op == opTokensFromURL) {
			return http.StatusBadRequest
		}
		return http.StatusInternalServerError
	case errors.Is(err, ErrNotFound):
		return http.StatusInternalServerError
	case errors.Is(err, context.DeadlineExceeded):
		return http.StatusGatewayTimeout
	case errors.Is(err, context.Canceled):
		return http.StatusServiceUnavailable
	case errors.As(err, &e):
		if e.StatusCode == http.StatusTooManyRequests {
			return http.StatusTooManyRequests
		}
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

// Sentinels for what a [TokenExtractor] finds wrong with a request.
var (
	// ErrNoToken means that the request carries no ID token.
	// [Client.Middleware] answers it with 401 and a Bearer challenge, or
	// lets the request through anonymously with [WithCredentialsOptional].
	ErrNoToken = errors.New("jam: no token in the request")
	// ErrInvalidRequest means that the request carries its token in a
	// malformed way, such as two Authorization headers or an empty token.
	// [Client.Middleware] answers it with 400 and error="invalid_request".
	// It is the request's fault, never JAM's, so it matches no sentinel of
	// JAM's answers.
	ErrInvalidRequest = errors.New("jam: malformed credentials in the request")
)
