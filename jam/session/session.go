// Package session logs users of a server-rendered web app, or of a
// backend-for-frontend, in and out with Just Authenticate Me (JAM) magic
// links, around one *jam.Client:
//
//	sm, err := session.New(client)
//	mux.HandleFunc("POST /login", sm.Login)        // form or JSON: email, next
//	mux.HandleFunc("/callback", sm.Callback)        // JAM's redirect URL
//	mux.HandleFunc("POST /logout", sm.Logout)       // this browser
//	mux.HandleFunc("POST /logout-all", sm.LogoutAll) // every device
//	mux.Handle("GET /me", sm.Require(me))           // session.FromContext(r.Context())
//
// # Where the session lives
//
// In the browser: two HttpOnly, SameSite=Lax cookies hold the ID token and
// the refresh token, __Host- prefixed and Secure unless
// WithInsecureCookies. The server keeps nothing, apart from the optional
// stores (a Limiter, a UsedTokens), so any number of replicas serve the
// same sessions with no shared store: that is how an app scales out. Give
// the replicas one key (WithKey) so that a login started on one finishes
// on another without a confirmation.
//
// # Renewal
//
// Require and Optional renew an ID token within WithRefreshBefore of its
// expiry, or past it, through JAM's refresh inside the request: the handler
// sees the new token, and the response sets its cookie once. Requests of
// one browser renewing at once all succeed, since JAM's refresh keeps the
// refresh token, and share one refresh at JAM within a process. A refresh JAM refuses ends the session; an outage does
// not: the old token serves while it is valid, else the request is
// answered 503 and the cookies are kept. The ID token cookie names the
// refresh token it belongs to, so a renewal answered after a logout in the
// same browser, or after a login as someone else, brings nothing back.
//
// # Login
//
// Login asks JAM to email a magic link, throttled per address, per client
// and in all (WithLimits), and leaves a short-lived, signed "pending login"
// cookie that records, as a keyed MAC, the address asked for and the page
// to return to. Callback takes JAM's redirect: it moves the tokens from the
// address bar into a short-lived cookie at once, with a redirect, then logs
// in when the token's address is the pending one. A link opened in another
// browser, or forged to log the victim in as the attacker (login CSRF),
// gets a page that shows the address and asks the user to confirm with a
// same-origin POST; WithSameBrowserOnly refuses it instead. A callback
// whose ID token was issued more than WithCallbackMaxAge ago is refused as
// a replay; WithUsedTokens makes any replay impossible.
//
// The pending-login and callback cookies are signed with HMAC-SHA256 under
// the Manager's key (WithKey), so nobody without it can forge or alter
// one; the pending cookie holds a keyed MAC of the address, not the
// address. An attacker can get a genuine pending cookie for their own
// address, in their own browser, but cannot put it in a victim's: the
// cookies are __Host- and HttpOnly, and Login takes only same-origin
// requests. A victim's pending cookie, were it stolen, matches only tokens
// for the victim's address, which only the victim's mailbox receives.
//
// The callback's query string holds a refresh token: a proxy or load
// balancer that logs query strings logs it. Turn such logging off for the
// callback's path.
//
// # Errors
//
// Handlers answer what jam.HTTPStatus says of JAM's errors: 401 for a
// login to do again, 503 for an outage, 429 when JAM throttles, 500 for a
// wrong configuration. A browser navigation gets a page (WithPages), other
// requests JSON {"message"} bodies and, for 401, the WWW-Authenticate of
// jam.DefaultErrorHandler. No log line, page or error text holds a token,
// an email address or a cookie's value.
package session

import (
	"crypto/rand"
	"errors"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"time"

	"github.com/go-jam/go-jam/jam"
)

// Defaults of the options.
const (
	// DefaultRefreshBefore is how long before its expiry an ID token is
	// renewed unless WithRefreshBefore says otherwise.
	DefaultRefreshBefore = 5 * time.Minute
	// DefaultRefreshCookieMaxAge is how long the browser keeps the
	// refresh token unless WithRefreshCookieMaxAge says otherwise.
	DefaultRefreshCookieMaxAge = 30 * 24 * time.Hour
	// DefaultCallbackMaxAge is how old an ID token may be when it reaches
	// the callback unless WithCallbackMaxAge says otherwise.
	DefaultCallbackMaxAge = 3 * time.Minute
	// DefaultPendingTTL is how long a started login waits for its link
	// unless WithPendingTTL says otherwise.
	DefaultPendingTTL = 15 * time.Minute
	// confirmTTL is how long a callback waits for the user's confirmation.
	confirmTTL = 10 * time.Minute
)

// Manager runs the sessions of one app. It is safe for concurrent use.
type Manager struct {
	client *jam.Client
	now    func() time.Time
	log    *slog.Logger
	key    []byte

	insecure            bool
	refreshBefore       time.Duration
	refreshCookieMaxAge time.Duration
	callbackMaxAge      time.Duration
	pendingTTL          time.Duration
	sameBrowserOnly     bool
	clearOnOutage       bool
	loginPage           string
	landingPage         string
	render              func(http.ResponseWriter, *http.Request, *Page)
	cop                 *http.CrossOriginProtection
	used                UsedTokens

	limits         Limits
	limiters       [3]Limiter // address, client, global
	clientAddr     func(*http.Request) (netip.Addr, error)
	challengeAfter int
	challenge      func(*http.Request) error

	renewals renewals
}

// An Option configures a Manager in New.
type Option func(*Manager) error

// New returns a Manager for the app of client. Invalid options make it
// return an error.
func New(client *jam.Client, opts ...Option) (*Manager, error) {
	if client == nil {
		return nil, errors.New("session: nil jam.Client")
	}
	m := &Manager{
		client:              client,
		now:                 time.Now,
		log:                 slog.New(slog.DiscardHandler),
		refreshBefore:       DefaultRefreshBefore,
		refreshCookieMaxAge: DefaultRefreshCookieMaxAge,
		callbackMaxAge:      DefaultCallbackMaxAge,
		pendingTTL:          DefaultPendingTTL,
		loginPage:           "/",
		landingPage:         "/",
		render:              DefaultPages,
		cop:                 http.NewCrossOriginProtection(),
		limits:              DefaultLimits,
		clientAddr:          RemoteAddr,
	}
	for _, opt := range opts {
		if opt == nil {
			continue
		}
		if err := opt(m); err != nil {
			return nil, err
		}
	}
	if m.key == nil {
		m.key = make([]byte, 32)
		rand.Read(m.key) // never fails: crypto/rand crashes the program instead
	}
	for i, l := range m.limiters {
		if l == nil {
			m.limiters[i] = NewMemoryLimiter(DefaultMemoryLimiterSize, m.now)
		}
	}
	return m, nil
}

// WithClock sets the function that tells the time, for tests; the default,
// and nil, mean time.Now. Give the jam.Client the same (jam.WithClock).
func WithClock(now func() time.Time) Option {
	return func(m *Manager) error {
		if now != nil {
			m.now = now
		}
		return nil
	}
}

// WithLogger sets where the Manager logs what an operator needs: outages,
// refused refreshes, throttling, replays. Nothing logged holds a token, an
// email address or a cookie's value. The default, and nil, mean no logs.
func WithLogger(l *slog.Logger) Option {
	return func(m *Manager) error {
		if l != nil {
			m.log = l.WithGroup("session")
		}
		return nil
	}
}

// WithKey sets the key that signs the pending-login and callback cookies
// and keys the MACs of addresses (in the pending cookie and the limiter's
// keys); it must be at least 32 bytes of secret randomness. The default is
// a key generated per process: a login started before a restart, or on
// another replica, then asks the user to confirm instead of logging in at
// once, and a shared Limiter counts each address once per replica. Give
// every replica the same key; rotating it has the same effect as a
// restart.
func WithKey(key []byte) Option {
	return func(m *Manager) error {
		if len(key) < 32 {
			return errors.New("session: key shorter than 32 bytes")
		}
		m.key = append([]byte(nil), key...)
		return nil
	}
}

// WithInsecureCookies drops Secure and the __Host- prefix from the
// cookies, for local development over http://localhost, where browsers
// differ (Chromium takes Secure cookies there but not __Host- ones; Safari
// takes neither). A production app MUST NOT use it: its cookies would be
// sent over plain HTTP, and a sibling subdomain could set them. The
// default is Secure cookies named __Host-jam_id, __Host-jam_refresh,
// __Host-jam_pending and __Host-jam_callback; without it they lose the
// prefix. Whether the request came over TLS is never guessed.
func WithInsecureCookies() Option {
	return func(m *Manager) error {
		m.insecure = true
		return nil
	}
}

// WithRefreshBefore sets how long before its expiry an ID token is
// renewed; the default is DefaultRefreshBefore. Renewing while the token
// is valid lets an outage of JAM shorter than that go unnoticed. Zero
// renews only expired tokens; negative is an error.
func WithRefreshBefore(d time.Duration) Option {
	return func(m *Manager) error {
		if d < 0 {
			return errors.New("session: negative refresh margin")
		}
		m.refreshBefore = d
		return nil
	}
}

// WithRefreshCookieMaxAge sets how long the browser keeps the refresh
// token, and so the login, across restarts; the default is
// DefaultRefreshCookieMaxAge, 30 days. JAM decides how long the refresh
// token works: when JAM refuses it, the session ends sooner. Zero makes it
// a browser-session cookie, gone when the browser closes (as the ID token
// cookie always is); negative is an error.
func WithRefreshCookieMaxAge(d time.Duration) Option {
	return func(m *Manager) error {
		if d < 0 {
			return errors.New("session: negative refresh cookie max age")
		}
		m.refreshCookieMaxAge = d
		return nil
	}
}

// WithCallbackMaxAge sets how old an ID token may be when it reaches the
// callback; the default is DefaultCallbackMaxAge. JAM issues the token
// when the user follows the link and redirects at once, so an older one is
// a replayed callback URL (from a history, a log, a proxy). Clock skew
// between JAM and the app counts against it. It must be positive.
func WithCallbackMaxAge(d time.Duration) Option {
	return func(m *Manager) error {
		if d <= 0 {
			return errors.New("session: callback max age must be positive")
		}
		m.callbackMaxAge = d
		return nil
	}
}

// WithPendingTTL sets how long a started login waits for its magic link to
// be followed in the same browser; the default is DefaultPendingTTL, as
// long as JAM's links work. Later, the callback asks for a confirmation.
// It must be positive.
func WithPendingTTL(d time.Duration) Option {
	return func(m *Manager) error {
		if d <= 0 {
			return errors.New("session: pending TTL must be positive")
		}
		m.pendingTTL = d
		return nil
	}
}

// WithSameBrowserOnly refuses a callback that does not finish a login
// started in the same browser, instead of asking the user to confirm it.
// It closes login CSRF without relying on the user to read the address,
// at the price of links opened in another browser (a phone's mail app)
// not working.
func WithSameBrowserOnly() Option {
	return func(m *Manager) error {
		m.sameBrowserOnly = true
		return nil
	}
}

// WithClearOnLogoutOutage makes Logout and LogoutAll clear the cookies
// even when JAM cannot be reached to delete the refresh token, and answer
// 503 saying so: the browser is logged out, but the refresh token stays
// valid at JAM until it expires. Use it where the browser is shared (a
// kiosk, a library), where leaving a login behind is the greater risk. By
// default an outage keeps the cookies and answers 503, "still logged in,
// try again": the user is told the truth, and can retry until the refresh
// token is dead at JAM, which matters if it has leaked.
func WithClearOnLogoutOutage() Option {
	return func(m *Manager) error {
		m.clearOnOutage = true
		return nil
	}
}

// WithLoginPage sets the path of the app's login page, where Require sends
// a browser navigation without a session (adding next) and where the
// logouts lead; the default is "/". It must be a same-origin path.
func WithLoginPage(path string) Option {
	return func(m *Manager) error {
		p, ok := ReturnPath(path)
		if !ok {
			return errors.New("session: login page must be a same-origin path")
		}
		m.loginPage = p
		return nil
	}
}

// WithLandingPage sets where a login leads when it has no next page; the
// default is "/". It must be a same-origin path.
func WithLandingPage(path string) Option {
	return func(m *Manager) error {
		p, ok := ReturnPath(path)
		if !ok {
			return errors.New("session: landing page must be a same-origin path")
		}
		m.landingPage = p
		return nil
	}
}

// WithCrossOriginProtection sets the protection of the POST handlers
// (Login, the callback's confirmation, Logout, LogoutAll) against
// cross-site requests; the default is http.NewCrossOriginProtection(). Use
// one with trusted origins added when a frontend on another origin posts
// to them. Nil is an error.
func WithCrossOriginProtection(p *http.CrossOriginProtection) Option {
	return func(m *Manager) error {
		if p == nil {
			return errors.New("session: nil CrossOriginProtection")
		}
		m.cop = p
		return nil
	}
}

// WithUsedTokens sets a store of the IDs of the ID tokens that logged
// someone in, so that a callback logs in once at most; by default there is
// none, and a replay within WithCallbackMaxAge in another browser gets the
// confirmation page. NewMemoryUsedTokens suits one process; several
// replicas need a shared store.
func WithUsedTokens(u UsedTokens) Option {
	return func(m *Manager) error {
		m.used = u
		return nil
	}
}

// isPath reports whether u has no scheme, host or user: a path of this
// origin, at most with a query and a fragment.
func isPath(u *url.URL) bool {
	return u.Scheme == "" && u.Host == "" && u.Opaque == "" && u.User == nil
}
