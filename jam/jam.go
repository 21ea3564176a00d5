package jam

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
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
	opPrecompute    = "precompute"
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
	// issuerWarnings limits the Warn records of tokens refused for their
	// issuer to one a minute: the mistake shows, the log is not flooded.
	issuerWarnings *rate.Limiter
	wait           func(context.Context, time.Duration) error // between attempts

	// Options applied in New.
	cacheSize       int // 0 for no cache
	refetchInterval time.Duration
	maxAge          time.Duration
	fastVerifier    bool
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

		issuerWarnings: rate.NewLimiter(rate.Every(time.Minute), 1),
		wait:           sleep,

		cacheSize:       DefaultCacheSize,
		refetchInterval: defaultRefetch,
		maxAge:          defaultMaxAge,
		fastVerifier:    true,
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
	// JAM's API never redirects. A client that followed a redirect would
	// send the request, its body and bearer token included, to whatever
	// host the Location names, and take that host's answer, or its keys,
	// for JAM's. A shallow copy, so that the user's client is not changed.
	hc := *c.hc
	hc.CheckRedirect = refuseRedirect
	c.hc = &hc
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
	c.keys = &keySet{
		fetch:        c.fetchKeySet,
		now:          c.now,
		maxAge:       c.maxAge,
		minMaxAge:    min(c.refetchInterval, c.maxAge),
		fetchLimit:   keySetFetchLimit,
		refetchEvery: c.refetchInterval,
		log:          c.log,
		stats:        &c.stats,
		tables:       newTables(c.fastVerifier),
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
