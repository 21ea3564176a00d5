package jamtest

import (
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/go-jam/go-jam/jam"
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
	refreshNotFound bool
	tokenTTL        time.Duration
	now             func() time.Time
	clockSet        bool
	mailer          func(email, link string)
	logger          *slog.Logger
	store           Store
	allowOrigin     func(origin string) bool
	allowedHosts    map[string]bool // names besides IP literals and localhost
}

func newConfig(opts []Option) (*config, error) {
	redirect, _ := url.Parse(DefaultRedirectURL)
	c := &config{
		addr:         "127.0.0.1:0",
		redirectURL:  redirect,
		tokenTTL:     DefaultTokenTTL,
		now:          time.Now,
		logger:       slog.New(slog.NewTextHandler(os.Stderr, nil)),
		allowOrigin:  loopbackOrigin,
		allowedHosts: make(map[string]bool),
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
// It must be a URL jam.WithBaseURL accepts, and fails with its error,
// wrapped, otherwise; a trailing slash is ignored. By default the URL is the
// listener's, on loopback for a listener on every interface.
func WithPublicURL(rawURL string) Option {
	return func(c *config) error {
		// jam's rules, so that every server is one a jam client can use;
		// its issuer is the base URL, normalized, with the app ID added.
		const app = "app"
		client, err := jam.New(app, jam.WithBaseURL(rawURL))
		if err != nil {
			return fmt.Errorf("jamtest: public URL: %w", err)
		}
		c.publicURL = strings.TrimSuffix(client.Issuer(), "/"+app)
		return nil
	}
}

// WithAppID sets the ID of the one app the server knows; the default is a
// random UUID, or the app ID of the stored state (WithStore). Requests for
// any other app ID answer 404. It must be an app ID jam.New accepts, and
// fails with its error otherwise.
func WithAppID(id string) Option {
	return func(c *config) error {
		if _, err := jam.New(id); err != nil {
			return err
		}
		c.appID = id
		return nil
	}
}

// WithRedirectURL sets the app's redirect URL, where a followed magic link
// sends the browser with the tokens added to its query string; the default
// is DefaultRedirectURL. It must be an absolute URL. Server.SetRedirectURL
// changes it later, once the app's own server has a URL.
func WithRedirectURL(rawURL string) Option {
	return func(c *config) error {
		u, err := parseRedirectURL(rawURL)
		if err != nil {
			return err
		}
		c.redirectURL = u
		return nil
	}
}

func parseRedirectURL(rawURL string) (*url.URL, error) {
	u, err := url.Parse(rawURL)
	if err != nil || !u.IsAbs() || u.Opaque != "" {
		return nil, errors.New("jamtest: redirect URL must be an absolute URL")
	}
	return u, nil
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

// WithRefreshNotFound makes refresh answer 404 Not Found, instead of 401
// Unauthorized, for a refresh token that is unknown, deleted or someone
// else's, as JAM may: python-jam documents that refresh fails with "not
// found" when "the appId or refresh token was not found". A jam.Client
// reads such a 404 as jam.ErrUnauthorized once it has fetched the app's
// key set. By default the answer is 401.
func WithRefreshNotFound() Option {
	return func(c *config) error {
		c.refreshNotFound = true
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
// responses that violate openapi.yaml and failures to save the state
// (WithStore).
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
