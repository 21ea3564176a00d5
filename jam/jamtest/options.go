package jamtest

import (
	"errors"
	"log/slog"
	"net/url"
	"os"
	"strings"
	"time"
)

// DefaultRedirectURL is where a followed magic link sends the browser unless
// WithRedirectURL says otherwise. It is the example of openapi.yaml, on the
// reserved .example domain, so that tokens in its query string never reach a
// real host.
const DefaultRedirectURL = "https://app.example/callback"

// DefaultTokenTTL is the lifetime of the ID tokens a Server issues unless
// WithTokenTTL says otherwise; it is what JAM's tokens show.
const DefaultTokenTTL = 30 * time.Minute

// MagicLinkTTL is how long a magic link can be followed after it is
// "emailed", by the server's clock.
const MagicLinkTTL = 15 * time.Minute

// An Option configures a Server in NewServer or Start.
type Option func(*config) error

type config struct {
	addr            string
	publicURL       string
	appID           string
	redirectURL     *url.URL
	refreshDisabled bool
	tokenTTL        time.Duration
	now             func() time.Time
	clockSet        bool
	mailer          func(email, link string)
	logger          *slog.Logger
	stateFile       string
	allowOrigin     func(origin string) bool
	allowedHosts    map[string]bool // names besides IP literals and localhost
}

func newConfig(opts []Option) (*config, error) {
	redirect, _ := url.Parse(DefaultRedirectURL)
	c := &config{
		addr:        "127.0.0.1:0",
		redirectURL: redirect,
		tokenTTL:    DefaultTokenTTL,
		now:         time.Now,
		logger:      slog.New(slog.NewTextHandler(os.Stderr, nil)),
		allowOrigin: loopbackOrigin,
	}
	for _, opt := range opts {
		if opt == nil {
			continue
		}
		if err := opt(c); err != nil {
			return nil, err
		}
	}
	c.allowHosts()
	return c, nil
}

// WithAddr sets the TCP address the server listens on; the default is
// "127.0.0.1:0", a free port on the loopback interface. Clients must use
// Server.URL as their base URL exactly, because the iss claim of the ID
// tokens is built from it; see WithPublicURL when they reach the server
// by another name.
func WithAddr(addr string) Option {
	return func(c *config) error {
		if addr == "" {
			return errors.New("jamtest: empty listen address")
		}
		c.addr = addr
		return nil
	}
}

// WithPublicURL sets the base URL clients reach the server at, when it is
// not the address the server listens on: another host name
// ("http://localhost:8787"), a container's name ("http://jam:8787"), or a
// reverse proxy, with the path prefix it strips
// ("https://proxy.example/jam"). Server.URL is then this URL, and so are
// the iss claim of the ID tokens (URL + "/" + app ID) and the magic links.
// It must be an absolute http or https URL without user info, query or
// fragment; a trailing slash is ignored. By default the URL is the
// listener's, on loopback for a listener on every interface.
func WithPublicURL(rawURL string) Option {
	return func(c *config) error {
		u, err := url.Parse(rawURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
			u.User != nil || u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || u.Opaque != "" {
			return errors.New("jamtest: public URL must be an absolute http(s) URL without user info, query or fragment")
		}
		c.publicURL = strings.TrimRight(u.String(), "/")
		return nil
	}
}

// WithAppID sets the ID of the one app the server knows; the default is a
// random UUID, or the app ID in the state file (WithStateFile). Requests for
// any other app ID answer 404.
func WithAppID(id string) Option {
	return func(c *config) error {
		// "." and ".." cannot be a path segment: URL resolution removes them.
		if id == "" || id == "." || id == ".." {
			return errors.New("jamtest: app ID must be a non-empty path segment")
		}
		c.appID = id
		return nil
	}
}

// WithRedirectURL sets the app's redirect URL, where a followed magic link
// sends the browser with the tokens added to its query string; the default
// is DefaultRedirectURL. It must be an absolute URL.
func WithRedirectURL(rawURL string) Option {
	return func(c *config) error {
		u, err := url.Parse(rawURL)
		if err != nil || !u.IsAbs() || u.Opaque != "" {
			return errors.New("jamtest: redirect URL must be an absolute URL")
		}
		c.redirectURL = u
		return nil
	}
}

// WithRefreshDisabled makes the app one that does not allow refresh: the
// magic-link redirect carries no refresh token and refresh answers 400. By
// default refresh is allowed.
func WithRefreshDisabled() Option {
	return func(c *config) error {
		c.refreshDisabled = true
		return nil
	}
}

// WithTokenTTL sets the lifetime of ID tokens; the default is
// DefaultTokenTTL. It must be at least a second, the resolution of exp.
func WithTokenTTL(d time.Duration) Option {
	return func(c *config) error {
		if d < time.Second {
			return errors.New("jamtest: token TTL must be at least one second")
		}
		c.tokenTTL = d
		return nil
	}
}

// WithClock sets the function that tells the server the time: the iat, nbf
// and exp of the tokens it issues, token checks and magic-link expiry follow
// it. Server.Client passes it on to the clients it makes. The default, and
// nil, mean time.Now.
func WithClock(now func() time.Time) Option {
	return func(c *config) error {
		if now != nil {
			c.now = now
			c.clockSet = true
		}
		return nil
	}
}

// WithMailer sets a function called with every magic link the server
// "emails", after Server.MagicLink can return it; jam serve prints them. It
// is called from request handlers, concurrently, and must not block for
// long. The default, and nil, mean no function.
func WithMailer(send func(email, link string)) Option {
	return func(c *config) error {
		c.mailer = send
		return nil
	}
}

// WithLogger sets where the server reports what a test should not ignore:
// responses that violate openapi.yaml and failures to save the state file.
// The default, and nil, mean a text logger on standard error. Nothing logged
// holds a token or an email address.
func WithLogger(l *slog.Logger) Option {
	return func(c *config) error {
		if l != nil {
			c.logger = l
		}
		return nil
	}
}

// WithStateFile keeps the server's app ID, the keys of its JWK Set and its
// refresh tokens in the file at path, so that a server started again on it accepts the
// tokens issued before. A missing file is a fresh start; a file that cannot
// be read or parsed makes Start fail and is left as it is. The file is
// written, mode 0600 because it holds private keys, at start and after
// every change of keys or refresh tokens, atomically; files written by
// older versions of this package are read too. Magic links are not
// kept. Only one server may use a file at a time. By default the server
// keeps nothing.
func WithStateFile(path string) Option {
	return func(c *config) error {
		if path == "" {
			return errors.New("jamtest: empty state file path")
		}
		c.stateFile = path
		return nil
	}
}
