// Package jam is a client for Just Authenticate Me (JAM), a magic-link
// authentication service.
//
// A Client starts logins (Client.Authenticate), verifies the ES512 ID tokens
// users send on every request locally against the app's JWK Set
// (Client.VerifyToken), refreshes them (Client.Refresh) and logs users out
// (Client.DeleteRefreshToken, Client.DeleteAllRefreshTokens). New makes one
// for an app ID, NewFromEnv from the JAM_APP_ID and JAM_BASE_URL that jam
// serve prints. The key set is fetched on first use (or by Client.Ready at
// start-up) and cached; it is refetched in the background once older than
// its max age, and, within a rate limit, when a token names a key the cache
// does not hold. A Client starts no goroutine while idle and needs no Close.
//
// Client.Middleware protects an http.Handler: it verifies the Bearer token
// of each request and hands the handler its Token (TokenFromContext).
// Package github.com/go-jam/go-jam/jam/session logs users of a web app in
// with a magic link and keeps their session in cookies; package
// github.com/go-jam/go-jam/jam/jamtest runs a JAM server for tests, as
// net/http/httptest does for HTTP. The repository's examples/ directory
// holds apps to copy: a server-rendered web app, a single-page app and an
// API Gateway authorizer.
//
// # Errors
//
// Every error a Client returns is, or wraps, a *Error, which says which
// operation failed, JAM's HTTP status and JAM's message. Match the kind of
// failure with errors.Is and the sentinels: ErrBadRequest, ErrUnauthorized,
// ErrNotFound, ErrUnexpectedStatus for JAM's answers; ErrNotVerified, with
// one reason such as ErrExpired or ErrSignature, for a token that is not
// valid; ErrKeySetUnavailable when the key set could not be had, so that the
// token is neither valid nor invalid. HTTPStatus turns any of them into the
// status an HTTP handler answers: 401 for ErrNotVerified, 503 for
// ErrKeySetUnavailable, and so on. A cancelled or expired context matches
// context.Canceled or context.DeadlineExceeded.
//
// No error text or log record holds a token, an email address or a response
// body.
package jam
