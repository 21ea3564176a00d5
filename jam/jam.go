// Package jam is a client for Just Authenticate Me (JAM), a magic-link
// authentication service.
//
// A Client starts logins (Authenticate), verifies the ES512 ID tokens users
// send on every request locally against the app's JWK Set (VerifyToken),
// refreshes them (Refresh) and logs users out (DeleteRefreshToken,
// DeleteAllRefreshTokens). The key set is fetched on first use and cached;
// it is refetched in the background once older than its max age, and,
// within a rate limit, when a token names a key the cache does not hold. A
// Client starts no goroutine while idle and needs no Close.
//
// # Errors
//
// Every error a Client returns is, or wraps, a *Error, which says which
// operation failed, JAM's HTTP status and JAM's message. Match the kind of
// failure with errors.Is and the sentinels: ErrBadRequest, ErrUnauthorized,
// ErrNotFound, ErrUnexpectedStatus for JAM's answers; ErrNotVerified, with
// one reason such as ErrExpired or ErrSignature, for a token that is not
// valid; ErrKeySetUnavailable when the key set could not be had. An HTTP
// handler answers 401 for ErrNotVerified and 503 for ErrKeySetUnavailable.
// A cancelled or expired context matches context.Canceled or
// context.DeadlineExceeded.
//
// No error text holds a token, an email address or a response body.
package jam

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/maypok86/otter/v2"
	"golang.org/x/time/rate"

	"github.com/go-jam/go-jam/generated/jamclient"
)

// DefaultBaseURL is the address of the JAM service.
const DefaultBaseURL = "https://api.justauthenticate.me"

// Operation names, as Error.Op reports them.
const (
	opAuthenticate  = "authenticate"
	opFetchKeySet   = "fetch key set"
	opVerifyToken   = "verify token"
	opVerifyRemote  = "verify remote"
	opRefresh       = "refresh"
	opDeleteRefresh = "delete refresh token"
	opDeleteAll     = "delete all refresh tokens"
	opTokensFromURL = "read redirect URL"
)

// Defaults of the options, and the bound on a key-set fetch, which runs on
// behalf of every caller waiting and so cannot use one caller's context.
const (
	defaultTimeout   = 10 * time.Second
	defaultLeeway    = time.Minute
	defaultRefetch   = 10 * time.Second
	defaultMaxAge    = time.Hour
	keySetFetchLimit = 10 * time.Second
)

// Client talks to JAM on behalf of one app. It is safe for concurrent use;
// create one per app and share it, so that its key-set cache is shared too.
type Client struct {
	appID   string
	baseURL string // without a trailing slash
	issuer  string
	hc      *http.Client
	api     *jamclient.Client
	leeway  time.Duration
	now     func() time.Time
	keys    *keySet
	cache   *otter.Cache[[sha256.Size]byte, cacheEntry] // nil when off
	log     *slog.Logger
	stats   counters
	retries int
	wait    func(context.Context, time.Duration) error // between attempts

	// Options applied in New.
	cacheSize       int // 0 for no cache
	refetchInterval time.Duration
	maxAge          time.Duration
}

// An Option configures a Client in New.
type Option func(*Client) error

// WithBaseURL sets the address of the JAM service; the default is
// DefaultBaseURL. It must be an absolute http or https URL; a trailing slash
// is ignored. Point it at a jamtest.Server, or a proxy, in tests.
func WithBaseURL(rawURL string) Option {
	return func(c *Client) error {
		u, err := url.Parse(rawURL)
		if err != nil {
			return fmt.Errorf("jam: base URL: %w", err)
		}
		if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
			return errors.New("jam: base URL must be an absolute http(s) URL without user info, query or fragment")
		}
		c.baseURL = strings.TrimRight(u.String(), "/")
		return nil
	}
}

// WithHTTPClient sets the HTTP client for every call to JAM, key-set
// fetches included. The default is a client with a 10-second timeout; nil
// means the default.
func WithHTTPClient(hc *http.Client) Option {
	return func(c *Client) error {
		if hc != nil {
			c.hc = hc
		}
		return nil
	}
}

// WithLeeway sets the clock skew allowed when checking exp, nbf and iat;
// the default is one minute. It must not be negative.
func WithLeeway(d time.Duration) Option {
	return func(c *Client) error {
		if d < 0 {
			return errors.New("jam: negative leeway")
		}
		c.leeway = d
		return nil
	}
}

// WithClock sets the function that tells the time, for tests; the default,
// and nil, mean time.Now.
func WithClock(now func() time.Time) Option {
	return func(c *Client) error {
		if now != nil {
			c.now = now
		}
		return nil
	}
}

// WithRefetchInterval bounds the key-set fetches that tokens naming a kid
// the Client does not hold can cause: one per interval on average, from a
// token bucket that holds one; the default is 10 seconds. A flood of forged
// tokens then costs JAM at most 6 fetches a minute, and a key JAM publishes
// verifies within one interval even during such a flood. The first fetch
// is not counted, so a key rotated right after start-up verifies at once.
// Zero removes the bound, which a production Client MUST NOT do; negative
// is an error.
func WithRefetchInterval(d time.Duration) Option {
	return func(c *Client) error {
		if d < 0 {
			return errors.New("jam: negative refetch interval")
		}
		c.refetchInterval = d
		return nil
	}
}

// WithRetries sets how many times a call to JAM is retried after a
// transient failure; the default is 2, and 0 turns retries off. Only what
// a repeat cannot harm is retried: the key-set fetch, VerifyRemote,
// Refresh and the logouts on a failed connection and on 429, 502, 503 and
// 504; Authenticate, which sends an email, only when the request never
// left (no connection could be made) or JAM refused it with a Retry-After
// (429, 503). Waits grow exponentially with full jitter, honour
// Retry-After, and add up to at most 2 seconds a call, within the caller's
// context; a Retry-After longer than that ends the call at once. A key-set
// fetch that many verifications wait on is retried once for all of them.
// Negative is an error.
func WithRetries(n int) Option {
	return func(c *Client) error {
		if n < 0 {
			return errors.New("jam: negative retries")
		}
		c.retries = n
		return nil
	}
}

// WithKeySetMaxAge sets how long the key set is used before a verification
// refetches it; the default is one hour. The refetch runs in the
// background, so no request waits for it: the keys held keep serving until
// it succeeds, and after it fails, when it is retried within the refetch
// rate limit (WithRefetchInterval). A key JAM has removed stops verifying,
// and the tokens it verified leave the cache, once the refetch succeeds:
// within one max age and one fetch. A Cache-Control max-age on JAM's
// response shortens it for that set, but not below the refetch interval.
// It must be positive.
func WithKeySetMaxAge(d time.Duration) Option {
	return func(c *Client) error {
		if d <= 0 {
			return errors.New("jam: key-set max age must be positive")
		}
		c.maxAge = d
		return nil
	}
}

// WithIssuer sets the iss claim VerifyToken expects; the default is the
// base URL, a slash and the app ID, which is JAM's issuer when the Client
// talks to JAM directly. Set it when the base URL is a proxy or carries a
// path prefix that JAM does not know of.
func WithIssuer(iss string) Option {
	return func(c *Client) error {
		if iss == "" {
			return errors.New("jam: empty issuer")
		}
		c.issuer = iss
		return nil
	}
}

// WithLogger sets where the Client logs the life of its key set, with its
// attributes grouped under "jam": each fetch (Debug: key count, duration),
// each failed fetch (Warn: the status or cause), keys added or removed
// (Info: their kids), and a refetch for an unknown kid that the rate limit
// refused (Debug). Nothing logged holds a token, an email address or a
// response body. The default, and nil, mean no logs.
func WithLogger(l *slog.Logger) Option {
	return func(c *Client) error {
		if l != nil {
			c.log = l.WithGroup("jam")
		}
		return nil
	}
}

// DefaultCacheSize is how many verified tokens a Client remembers unless
// WithCacheSize says otherwise. Full, such a cache holds about 10 MiB
// (BENCHMARKS.md).
const DefaultCacheSize = 10_000

// WithCacheSize sets how many verified tokens VerifyToken remembers, those
// least likely to be used again forgotten first (otter's W-TinyLFU, which
// serves concurrent hits without a shared lock); the default is
// DefaultCacheSize.
// Zero turns the cache off: every call then checks the signature. Negative
// is an error.
func WithCacheSize(n int) Option {
	return func(c *Client) error {
		if n < 0 {
			return errors.New("jam: negative cache size")
		}
		c.cacheSize = n
		return nil
	}
}

// New returns a Client for the app with the given ID. It does no I/O: the
// key set is fetched on the first verification.
func New(appID string, opts ...Option) (*Client, error) {
	switch appID {
	case "", ".", "..":
		// Dot segments would be resolved away in every request's path.
		return nil, errors.New("jam: app ID must be a non-empty path segment")
	}
	c := &Client{
		appID:   appID,
		baseURL: DefaultBaseURL,
		hc:      &http.Client{Timeout: defaultTimeout},
		leeway:  defaultLeeway,
		now:     time.Now,

		log:     slog.New(slog.DiscardHandler),
		retries: defaultRetries,
		wait:    sleep,

		cacheSize:       DefaultCacheSize,
		refetchInterval: defaultRefetch,
		maxAge:          defaultMaxAge,
	}
	for _, opt := range opts {
		if opt == nil {
			continue
		}
		if err := opt(c); err != nil {
			return nil, err
		}
	}
	if c.issuer == "" {
		c.issuer = c.baseURL + "/" + appID
	}
	api, err := jamclient.NewClient(c.baseURL+"/", jamclient.WithHTTPClient(c.hc))
	if err != nil {
		return nil, fmt.Errorf("jam: %w", err)
	}
	c.api = api
	if c.cacheSize > 0 {
		c.cache = otter.Must(&otter.Options[[sha256.Size]byte, cacheEntry]{
			MaximumSize: c.cacheSize,
			// Maintenance runs on the goroutine that reads or writes,
			// so that a Client starts none of its own. Nothing here
			// calls the cache from under its locks.
			Executor: func(fn func()) { fn() },
		})
	}
	refetch := rate.Inf
	if c.refetchInterval > 0 {
		refetch = rate.Every(c.refetchInterval)
	}
	c.keys = &keySet{
		fetch:   c.fetchKeySet,
		now:     c.now,
		maxAge:  c.maxAge,
		refetch: rate.NewLimiter(refetch, 1),
		minAge:  min(c.refetchInterval, c.maxAge),
		log:     c.log,
		stats:   &c.stats,
	}
	c.keys.state.Store(&keyState{})
	return c, nil
}

// Environment variables NewFromEnv reads, as jam serve prints them.
const (
	EnvAppID   = "JAM_APP_ID"
	EnvBaseURL = "JAM_BASE_URL"
)

// NewFromEnv returns a Client for the app whose ID is in the environment
// variable JAM_APP_ID, at the base URL in JAM_BASE_URL when that is set
// (jam serve prints both), with opts applied after them. An unset
// JAM_APP_ID is an error, so that a missing configuration fails at start-up
// rather than as a 503 on every request.
func NewFromEnv(opts ...Option) (*Client, error) {
	appID := os.Getenv(EnvAppID)
	if appID == "" {
		return nil, errors.New("jam: " + EnvAppID + " is not set")
	}
	if base := os.Getenv(EnvBaseURL); base != "" {
		opts = append([]Option{WithBaseURL(base)}, opts...)
	}
	return New(appID, opts...)
}

// AppID returns the ID of the app the Client works for.
func (c *Client) AppID() string { return c.appID }

// Issuer returns the iss claim VerifyToken expects of the app's ID tokens:
// WithIssuer's, or else the base URL, a slash and the app ID.
func (c *Client) Issuer() string { return c.issuer }

// Authenticate asks JAM to email the user a magic link. Following it takes
// the user to the app's redirect URL, where TokensFromURL reads the tokens.
// An invalid address matches ErrBadRequest; an unknown app ErrNotFound.
func (c *Client) Authenticate(ctx context.Context, email string) error {
	if email == "" {
		return emptyArgument(opAuthenticate, "email address")
	}
	_, _, err := c.call(ctx, request{
		op: opAuthenticate,
		send: func(ctx context.Context) (*http.Response, error) {
			return c.api.Authenticate(ctx, c.appID, jamclient.AuthenticateRequest{Email: email})
		},
		secrets: []string{email},
		// Each attempt that JAM runs sends an email.
		once: true,
	})
	return err
}

// VerifyRemote asks JAM whether idToken is valid, and returns its claims
// when it is. A token JAM refuses matches ErrNotVerified. VerifyToken gives
// the same answer without a round trip; use VerifyRemote where the key set
// cannot be fetched, or to double-check.
func (c *Client) VerifyRemote(ctx context.Context, idToken string) (*Token, error) {
	tok, err := parseToken(idToken)
	if err != nil {
		err.Op = opVerifyRemote
		return nil, err
	}
	_, _, cerr := c.call(ctx, request{
		op: opVerifyRemote,
		send: func(ctx context.Context) (*http.Response, error) {
			return c.api.VerifyToken(ctx, c.appID, jamclient.VerifyRequest{IdToken: idToken})
		},
		secrets: []string{idToken},
	})
	if cerr != nil {
		return nil, cerr
	}
	return tok.token(), nil
}

// Refresh returns a new ID token for a refresh token. An invalid, expired or
// deleted refresh token matches ErrUnauthorized; an app that does not allow
// refresh ErrBadRequest; an unknown app ErrNotFound. JAM answers 404 for a
// deleted refresh token as well as for an unknown app: once the app's key
// set has been fetched, which proves the app exists, such a 404 matches
// ErrUnauthorized too; before, ErrNotFound alone, so that a wrong app ID or
// proxy path never reads as every user's logout.
func (c *Client) Refresh(ctx context.Context, refreshToken string) (string, error) {
	if refreshToken == "" {
		return "", emptyArgument(opRefresh, "refresh token")
	}
	body, _, err := c.call(ctx, request{
		op: opRefresh,
		send: func(ctx context.Context) (*http.Response, error) {
			return c.api.RefreshToken(ctx, c.appID, jamclient.RefreshRequest{RefreshToken: refreshToken})
		},
		secrets: []string{refreshToken},
	})
	if e, ok := errors.AsType[*Error](err); ok && e.StatusCode == http.StatusNotFound && c.keys.state.Load().keys != nil {
		// JAM answers 404 for a deleted refresh token too. Once the key
		// set has loaded, the app exists, so the token is what is gone.
		e.kinds = append(e.kinds, ErrUnauthorized)
	}
	if err != nil {
		return "", err
	}
	var res jamclient.RefreshResult
	if err := json.Unmarshal(body, &res); err != nil || res.IdToken == "" {
		return "", &Error{Op: opRefresh, StatusCode: http.StatusOK, Err: errors.New("no idToken in the response"), kinds: []error{ErrUnexpectedStatus}}
	}
	return res.IdToken, nil
}

// DeleteRefreshToken logs the user out on one device by deleting one of
// their refresh tokens; idToken is the user's current ID token. An invalid
// ID token matches ErrUnauthorized; an unknown refresh token ErrNotFound,
// unless a retry meets it after an earlier attempt whose answer was lost:
// that attempt deleted the token, and the logout succeeded.
func (c *Client) DeleteRefreshToken(ctx context.Context, idToken, refreshToken string) error {
	// An empty refresh token would turn the path into the one that deletes
	// every refresh token, and a dot segment would be resolved away.
	switch refreshToken {
	case "", ".", "..":
		return &Error{Op: opDeleteRefresh, Err: errors.New("refresh token is not a path segment"), kinds: []error{ErrBadRequest}}
	}
	if idToken == "" {
		return emptyArgument(opDeleteRefresh, "ID token")
	}
	_, _, err := c.call(ctx, request{
		op: opDeleteRefresh,
		send: func(ctx context.Context) (*http.Response, error) {
			return c.api.DeleteRefreshToken(ctx, c.appID, refreshToken, bearer(idToken))
		},
		secrets: []string{idToken, refreshToken},
	})
	if e, ok := errors.AsType[*Error](err); ok && e.StatusCode == http.StatusNotFound && e.earlierMayHaveRun {
		// An earlier attempt deleted the token; only its answer was lost.
		return nil
	}
	return err
}

// DeleteAllRefreshTokens logs the user out everywhere by deleting all their
// refresh tokens; idToken is the user's current ID token. An invalid ID
// token matches ErrUnauthorized.
func (c *Client) DeleteAllRefreshTokens(ctx context.Context, idToken string) error {
	if idToken == "" {
		return emptyArgument(opDeleteAll, "ID token")
	}
	_, _, err := c.call(ctx, request{
		op: opDeleteAll,
		send: func(ctx context.Context) (*http.Response, error) {
			return c.api.DeleteAllRefreshTokens(ctx, c.appID, bearer(idToken))
		},
		secrets: []string{idToken},
	})
	return err
}

// bearer sets the Authorization header; the spec's bearerAuth scheme
// generates nothing that would.
func bearer(idToken string) jamclient.RequestEditorFn {
	return func(_ context.Context, req *http.Request) error {
		req.Header.Set("Authorization", "Bearer "+idToken)
		return nil
	}
}

func emptyArgument(op, what string) *Error {
	return &Error{Op: op, Err: errors.New("empty " + what), kinds: []error{ErrBadRequest}}
}

// Tokens are the tokens JAM's magic-link redirect carries.
//
// They print (fmt, with any verb), log (log/slog) and marshal to JSON as
// REDACTED, so that a struct holding them can be logged whole. Use the
// fields themselves to hand the tokens on, to cookies or a browser.
type Tokens struct {
	IDToken      string
	RefreshToken string // empty when the app does not allow refresh
}

// String returns the tokens redacted.
func (t Tokens) String() string {
	return "{IDToken:" + redacted(t.IDToken) + " RefreshToken:" + redacted(t.RefreshToken) + "}"
}

// Format prints the tokens redacted whatever the verb and flags, so that
// %#v, %x or %d show no more than %v.
func (t Tokens) Format(f fmt.State, _ rune) {
	io.WriteString(f, t.String())
}

// LogValue returns the tokens redacted, for log/slog.
func (t Tokens) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("id_token", redacted(t.IDToken)),
		slog.String("refresh_token", redacted(t.RefreshToken)),
	)
}

// MarshalJSON returns the tokens redacted, for the JSON log handlers that
// marshal the structs they are given.
func (t Tokens) MarshalJSON() ([]byte, error) {
	return json.Marshal(map[string]string{"IDToken": redacted(t.IDToken), "RefreshToken": redacted(t.RefreshToken)})
}

func redacted(s string) string {
	if s == "" {
		return ""
	}
	return "REDACTED"
}

// TokensFromURL reads the tokens from the URL JAM redirects the user to
// after the magic link: the query parameters idToken and, when the app
// allows refresh, refreshToken. The ID token is not verified here.
func TokensFromURL(u *url.URL) (Tokens, error) {
	if u == nil {
		return Tokens{}, emptyArgument(opTokensFromURL, "URL")
	}
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return Tokens{}, &Error{Op: opTokensFromURL, Err: errors.New("query string is not valid"), kinds: []error{ErrBadRequest}}
	}
	id, refresh := q["idToken"], q["refreshToken"]
	switch {
	case len(id) != 1 || id[0] == "":
		return Tokens{}, &Error{Op: opTokensFromURL, Err: errors.New("want exactly one non-empty idToken parameter"), kinds: []error{ErrBadRequest}}
	case len(refresh) > 1:
		return Tokens{}, &Error{Op: opTokensFromURL, Err: errors.New("more than one refreshToken parameter"), kinds: []error{ErrBadRequest}}
	}
	t := Tokens{IDToken: id[0]}
	if len(refresh) == 1 {
		t.RefreshToken = refresh[0]
	}
	return t, nil
}
