package jam

import (
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Defaults of the options.
const (
	defaultTimeout = 10 * time.Second
	defaultLeeway  = time.Minute
	defaultRefetch = 10 * time.Second
	defaultMaxAge  = time.Hour
)

// An Option configures a Client in New. Options are applied in order, so a
// later one wins; one given a value it cannot use makes New return an
// error. (Middleware's options take every value, nil meaning the default,
// so they return none.)
type Option func(*Client) error

// WithBaseURL sets the address of the JAM service; the default is
// DefaultBaseURL. It must be an absolute http or https URL; a trailing slash
// is ignored. Point it at a jamtest.Server, or a proxy, in tests.
func WithBaseURL(rawURL string) Option {
	return func(c *Client) error {
		if !strings.Contains(rawURL, "://") {
			// 127.0.0.1:8787 does not parse and localhost:8787 parses
			// with the scheme "localhost": one message for both.
			return errors.New("jam: base URL must start with http:// or https://, as in http://127.0.0.1:8787")
		}
		u, err := url.Parse(rawURL)
		if err != nil {
			// Not wrapped: url.Error quotes the URL, which may hold a
			// password.
			return errors.New("jam: base URL is not a valid URL")
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
//
// Redirects are never followed, whatever hc's CheckRedirect says: JAM's API
// never redirects, and following one would send the request, refresh
// token, email address or bearer token included, to the host it names, and
// take that host's answer, or its keys, for JAM's. A redirect is an error
// matching ErrUnexpectedStatus, with its status in Error.StatusCode. The
// Client uses a copy of hc with CheckRedirect set; hc itself is not
// changed, and its Transport, Jar and Timeout serve as they are.
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
// verifies within one interval even during such a flood; until then its
// tokens get ErrKeySetUnavailable with a RetryAfter (503 and Retry-After
// from Middleware), never ErrNotVerified. The first fetch is not counted,
// so a key rotated right after start-up verifies at once.
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
// response (the first, if it has two) shortens it for that set, but not
// below the refetch interval.
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

// WithLogger sets where the Client logs, with its attributes grouped under
// "jam": each key-set fetch (Debug: key count, duration), each failed fetch
// (Warn: the status or cause, duration, keys kept), keys added or removed
// (Info: their kids), a refetch for an unknown kid that the rate limit
// refused (Debug), each retry of a call to JAM (Debug: operation, attempt,
// cause, wait), and tokens refused for their issuer (Warn, at most once a
// minute: the issuer found and the one expected). Nothing logged holds a
// token, an email address or a response body. The default, and nil, mean
// no logs.
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

// WithFastVerifier turns the fast ES512 verifier on or off; it is on by
// default. Off, every signature is checked with crypto/ecdsa, as FIPS 140
// mode always does.
//
// On, a key of the set verifies with crypto/ecdsa until it has checked 36
// signatures the token cache did not answer, enough for tables to pay for
// themselves; then a goroutine builds its tables, once, off the request
// path, and its checks from then on take about a tenth of the time. A
// process that verifies little so never pays for them. The tables cost
// 1.2 MiB per key, for at most 4 keys of the set, freed when the key
// leaves the set, and 3.7 MiB once per process; building them takes about
// 12 ms of CPU per key and 40–80 ms once per process (BENCHMARKS.md).
// Client.Precompute builds them at once, during start-up.
func WithFastVerifier(on bool) Option {
	return func(c *Client) error {
		c.fastVerifier = on
		return nil
	}
}
