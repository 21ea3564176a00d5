package jam

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"
)

const opReadToken = "read token"

// A TokenExtractor finds the ID token of a request. It returns an error
// matching ErrNoToken when the request has none, and one matching
// ErrInvalidRequest when the request is malformed.
type TokenExtractor func(r *http.Request) (string, error)

// A MiddlewareOption configures Middleware.
type MiddlewareOption func(*middleware)

// WithTokenExtractor sets where Middleware finds the token; the default is
// BearerToken. Nil means the default.
func WithTokenExtractor(extract TokenExtractor) MiddlewareOption {
	return func(m *middleware) {
		if extract != nil {
			m.extract = extract
		}
	}
}

// WithErrorHandler sets what Middleware answers when a request is refused;
// err is what the extractor or VerifyToken returned. The default,
// DefaultErrorHandler, answers with JSON {"message"} bodies and RFC 6750
// headers. Nil means the default.
func WithErrorHandler(h func(w http.ResponseWriter, r *http.Request, err error)) MiddlewareOption {
	return func(m *middleware) {
		if h != nil {
			m.onError = h
		}
	}
}

// WithCredentialsOptional lets requests without a token through to the
// handler, with no Token in their context. A request with a token that
// does not verify is still refused.
func WithCredentialsOptional() MiddlewareOption {
	return func(m *middleware) { m.optional = true }
}

type middleware struct {
	c        *Client
	next     http.Handler
	extract  TokenExtractor
	onError  func(http.ResponseWriter, *http.Request, error)
	optional bool
}

// Middleware returns net/http middleware that lets a request through to the
// next handler only when it carries a valid ID token, and puts the verified
// Token in the request's context for TokenFromContext. It suits
// http.ServeMux and routers with chi-style Use(...) chains alike.
//
// By default the token is read from the Authorization header with the
// Bearer scheme, and refusals are answered by DefaultErrorHandler: 401 for
// a missing or invalid token, 400 for a malformed header, 503 when the key
// set is unavailable, so that an outage does not look like a logout.
func (c *Client) Middleware(opts ...MiddlewareOption) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		m := &middleware{c: c, next: next, extract: BearerToken, onError: DefaultErrorHandler}
		for _, opt := range opts {
			if opt != nil {
				opt(m)
			}
		}
		return m
	}
}

func (m *middleware) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	raw, err := m.extract(r)
	if err != nil {
		if m.optional && errors.Is(err, ErrNoToken) {
			m.next.ServeHTTP(w, r)
			return
		}
		m.onError(w, r, err)
		return
	}
	tok, err := m.c.VerifyToken(r.Context(), raw)
	if err != nil {
		m.onError(w, r, err)
		return
	}
	m.next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), tokenKey{}, tok)))
}

type tokenKey struct{}

// TokenFromContext returns the Token Middleware verified for the request
// whose context ctx is.
func TokenFromContext(ctx context.Context) (*Token, bool) {
	tok, ok := ctx.Value(tokenKey{}).(*Token)
	return tok, ok
}

// BearerToken reads the token from the request's one Authorization header,
// "Bearer <token>" (the scheme in any case, one space). No header, or
// another scheme, matches ErrNoToken; two headers, an empty token, or one
// with characters RFC 6750 does not allow, match ErrInvalidRequest.
func BearerToken(r *http.Request) (string, error) {
	values := r.Header.Values("Authorization")
	if len(values) == 0 {
		return "", noToken()
	}
	if len(values) > 1 {
		return "", malformedAuthorization("more than one Authorization header")
	}
	scheme, token, _ := strings.Cut(values[0], " ")
	if !strings.EqualFold(scheme, "Bearer") {
		return "", noToken()
	}
	if !isToken68(token) {
		return "", malformedAuthorization("Authorization is not Bearer and one token")
	}
	return token, nil
}

func noToken() *Error {
	return &Error{Op: opReadToken, kinds: []error{ErrNoToken}}
}

func malformedAuthorization(why string) *Error {
	return &Error{Op: opReadToken, Err: errors.New(why), kinds: []error{ErrInvalidRequest}}
}

// isToken68 reports whether s is an RFC 6750 b64token: 1*( ALPHA / DIGIT /
// "-" / "." / "_" / "~" / "+" / "/" ) *"=".
func isToken68(s string) bool {
	body := strings.TrimRight(s, "=")
	if body == "" {
		return false
	}
	for i := range len(body) {
		switch b := body[i]; {
		case 'a' <= b && b <= 'z', 'A' <= b && b <= 'Z', '0' <= b && b <= '9':
		case b == '-', b == '.', b == '_', b == '~', b == '+', b == '/':
		default:
			return false
		}
	}
	return true
}

// DefaultErrorHandler answers a refused request with the status
// [HTTPStatus] gives for err, a JSON {"message"} body and, for a missing or
// invalid token or a malformed request, an RFC 6750 WWW-Authenticate
// challenge: Bearer realm="jam" for [ErrNoToken], with error="invalid_token"
// for [ErrNotVerified] and error="invalid_request" for [ErrInvalidRequest].
// When err is a [*Error] with a RetryAfter, such as a token whose kid the
// key set lacks while the refetch rate limit holds, it sets Retry-After to
// it, in whole seconds rounded up. It never echoes the token.
func DefaultErrorHandler(w http.ResponseWriter, r *http.Request, err error) {
	const realm = `Bearer realm="jam"`
	status := HTTPStatus(err)
	msg := "authentication is unavailable, try again later"
	switch {
	case status == http.StatusServiceUnavailable:
	case errors.Is(err, ErrNoToken):
		msg = "missing bearer token"
		w.Header().Set("WWW-Authenticate", realm)
	case errors.Is(err, ErrInvalidRequest):
		msg = "malformed credentials"
		w.Header().Set("WWW-Authenticate", realm+`, error="invalid_request"`)
	case status == http.StatusUnauthorized:
		msg = "invalid token"
		w.Header().Set("WWW-Authenticate", realm+`, error="invalid_token"`)
	default:
		msg = http.StatusText(status)
	}
	if e, ok := errors.AsType[*Error](err); ok && e.RetryAfter > 0 {
		// In whole seconds, rounded up, so that a retry comes no sooner.
		w.Header().Set("Retry-After", strconv.FormatInt(int64((e.RetryAfter+time.Second-1)/time.Second), 10))
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]string{"message": msg})
}
