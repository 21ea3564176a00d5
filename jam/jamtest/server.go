// Package jamtest runs a Just Authenticate Me (JAM) server for tests. It is
// to JAM what net/http/httptest is to HTTP, and go-oidc's oidctest to
// OpenID Connect:
//
//	srv := jamtest.NewServer()
//	defer srv.Close()
//	client := srv.Client()
//	idToken, _ := srv.IssueTokens("ann@example.com")
//	tok, err := client.VerifyToken(ctx, idToken)
//
// A Server implements every operation of openapi.yaml, the contract the jam
// client is generated from, the way JAM does: real ES512 ID tokens signed
// with a P-521 key and published in a JWK Set, one-time magic links,
// refresh tokens, and JAM's statuses and {"message"} bodies for every
// failure, so that each error of package jam can be met in a test.
//
// # Magic links
//
// Authenticate puts a one-time magic link in an in-memory outbox instead of
// emailing it. MagicLink and Outbox read it, WithMailer sees each as it is
// sent, and so can a browser test of an app, over HTTP, the way Mailpit's
// API shows mail:
//
//	GET    URL/_jamtest/outbox[?email=ADDR]  {"messages": [{"email", "link", "sentAt"}, ...]}, newest first
//	DELETE URL/_jamtest/outbox               empties it (204)
//	GET    URL/_jamtest/                     a page listing them, reloading itself
//
// The outbox keeps the newest OutboxSize messages. The link is
//
//	URL + "/_jamtest/magic/" + code
//
// and a GET on it answers 302 Found to the app's redirect URL
// (DefaultRedirectURL unless WithRedirectURL) with the query parameters
// idToken and, unless WithRefreshDisabled, refreshToken added. A link works
// once, for MagicLinkTTL by the server's clock; after that, or for a code
// never sent, it answers 404 and issues nothing. IssueTokens skips the
// email altogether.
//
// # The contract
//
// Every request is validated against openapi.yaml before it is handled; one
// that violates it is answered 400 {"message"}. Every response is validated
// before it is sent; one that violates it is a bug in this package, so it is
// logged (WithLogger), recorded (Violations) and replaced by a 500
// {"message": "jamtest: response violates openapi.yaml: …"} that makes the
// test fail. Paths and methods of no operation answer 404 and 405 with a
// {"message"} body too.
//
// # Browsers
//
// JAM's browser SDK calls JAM from the app's pages, cross-origin, and so
// can a browser test of an app: the server answers CORS as JAM does. A
// preflight for any operation is answered 204 with the route's methods
// and "Authorization, Content-Type" as allowed headers, and is neither
// counted by Requests nor checked against openapi.yaml. Every answer of
// the API, errors and faults included, carries Access-Control-Allow-Origin
// for an allowed origin (WithCORSOrigins; by default, pages on loopback),
// and lets the page read Retry-After. Credentials are never allowed. The
// magic links and the outbox under /_jamtest/ never answer CORS.
//
// # Faults
//
// SetFault makes an operation answer as failing infrastructure does: a
// connection reset, an API Gateway error (GatewayError), a proxy's HTML
// page (HTMLError), a 429 or 503 with Retry-After (Throttled), or any
// status, body and headers, slowly if asked. A fault applies to every
// request, to the next Times, or at a seeded random Rate, and OneOf mixes
// several. A faulted request is not handled, unless AfterHandling: then it
// runs and only its answer is lost. FailKeySet is the common case.
// Requests counts the requests for each operation and Handled those that
// ran, so a test can assert that the key set was fetched once, or that no
// magic link was sent twice.
//
// # Keys
//
// The JWK Set starts with one P-521 key, which signs every token.
// PublishKey adds a new signing key and keeps the old ones published, as an
// issuer rotating its keys does; RemoveKey revokes one; RotateKey does both
// at once. The server verifies a token with the key its kid names.
//
// # Restarts
//
// A Server keeps its state in memory, unless WithStateFile names a file
// that keeps its app ID, keys and refresh tokens across restarts, as jam
// serve --state does.
//
// A Server is safe for concurrent use.
package jamtest

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/go-jam/go-jam/jam"
	"github.com/go-jam/go-jam/jam/internal/contract"
)

// magicLinkPath is where magic links point. It has three segments like
// /{appId}/user/refresh but a literal second segment of its own, so it
// cannot collide with an operation of openapi.yaml.
const magicLinkPath = "/_jamtest/magic/"

// Server is a JAM server for one app, listening on a local port.
type Server struct {
	// URL is the base URL clients use, with no trailing slash: the one
	// WithPublicURL set, else the listener's, for example
	// http://127.0.0.1:50123. The iss claim of the ID tokens is URL + "/"
	// + AppID, and the magic links are below it.
	URL string
	// AppID is the ID of the one app the server knows.
	AppID string

	cfg      *config
	contract *contract.Spec
	issuer   string
	http     *httptest.Server
	stop     context.CancelFunc // cancels every request in flight
	closing  sync.Once
	saving   sync.Mutex // orders writes of the state file

	mu         sync.Mutex
	keys       []*signingKey     // the JWK Set, signing key first; replaced, never changed in place
	refresh    map[string]string // refresh token → email address
	links      map[string]magicLink
	outbox     []Message // oldest first, at most OutboxSize
	faults     map[Operation]*Fault
	requests   map[Operation]int
	handled    map[Operation]int
	violations []error
}

type magicLink struct {
	email   string
	expires time.Time
}

// NewServer starts a Server on a free port of 127.0.0.1 (see WithAddr).
// Like httptest.NewServer, it panics if an option is invalid or it cannot
// listen or read its state file; programs call Start instead. The caller
// must Close it.
func NewServer(opts ...Option) *Server {
	s, err := Start(opts...)
	if err != nil {
		panic(err)
	}
	return s
}

// Start is NewServer for programs, such as jam serve: it returns an error
// instead of panicking.
func Start(opts ...Option) (*Server, error) {
	cfg, err := newConfig(opts)
	if err != nil {
		return nil, err
	}
	contract, err := loadContract()
	if err != nil {
		return nil, err
	}
	s := &Server{
		AppID:    cfg.appID,
		cfg:      cfg,
		contract: contract,
		refresh:  make(map[string]string),
		links:    make(map[string]magicLink),
		faults:   make(map[Operation]*Fault),
		requests: make(map[Operation]int),
		handled:  make(map[Operation]int),
	}
	if cfg.stateFile != "" {
		if err := s.load(); err != nil {
			return nil, err
		}
	}
	if s.AppID == "" {
		s.AppID = uuid.NewString()
	}
	if len(s.keys) == 0 {
		k, err := generateKey()
		if err != nil {
			return nil, err
		}
		s.keys = []*signingKey{k}
	}

	ln, err := net.Listen("tcp", cfg.addr)
	if err != nil {
		return nil, fmt.Errorf("jamtest: listen: %w", err)
	}
	s.URL = cfg.publicURL
	if s.URL == "" {
		s.URL = "http://" + dialAddr(ln.Addr())
	}
	s.issuer = s.URL + "/" + s.AppID
	// Saving at once writes the key of a fresh start, and finds an
	// unwritable state file now rather than at the first login.
	if err := s.save(); err != nil {
		ln.Close()
		return nil, err
	}

	// httptest.Server, because its Close waits for every connection to
	// end, so that nothing outlives it; cancelling the base context of
	// the requests ends those that wait on a Fault's Delay.
	ctx, cancel := context.WithCancel(context.Background())
	s.stop = cancel
	s.http = &httptest.Server{
		Listener: ln,
		Config: &http.Server{
			Handler:           s.handler(),
			BaseContext:       func(net.Listener) context.Context { return ctx },
			ReadHeaderTimeout: 10 * time.Second,
			ErrorLog:          slog.NewLogLogger(cfg.logger.Handler(), slog.LevelWarn),
		},
	}
	s.http.Start()
	return s, nil
}

// dialAddr is where a client reaches a listener: loopback for a listener
// on every interface, whose address ("[::]:8787") is not one to dial.
func dialAddr(addr net.Addr) string {
	if tcp, ok := addr.(*net.TCPAddr); ok && tcp.IP.IsUnspecified() {
		return net.JoinHostPort("127.0.0.1", strconv.Itoa(tcp.Port))
	}
	return addr.String()
}

// Addr returns the address the server listens on. Unless WithPublicURL
// was used, URL is built from it.
func (s *Server) Addr() net.Addr { return s.http.Listener.Addr() }

// Close shuts the server down: requests in flight are cancelled, their
// connections closed, and Close returns once their handlers have returned,
// even for a client that holds a request body open. Magic links and,
// without a state file, tokens are lost.
func (s *Server) Close() {
	s.closing.Do(func() {
		s.stop()
		// httptest's Close waits for active connections, and a handler
		// reading a body a client never finishes would wait for good.
		s.http.CloseClientConnections()
		s.http.Close()
	})
}

// Shutdown shuts the server down gracefully: it stops accepting
// connections and lets the requests in flight finish until ctx is done,
// then closes as Close does. It returns ctx's error if it had to cut
// requests short, as http.Server.Shutdown does.
func (s *Server) Shutdown(ctx context.Context) error {
	err := s.http.Config.Shutdown(ctx)
	s.Close()
	return err
}

// Client returns a jam client for the server's app, with opts applied
// after the base URL (URL, so with WithPublicURL that URL must lead here
// from this process), a plain http.Client and, if WithClock was used, the
// server's clock. It panics if an option is invalid.
func (s *Server) Client(opts ...jam.Option) *jam.Client {
	base := []jam.Option{
		jam.WithBaseURL(s.URL),
		// The default transport, whose idle connections Close closes.
		jam.WithHTTPClient(&http.Client{Timeout: 10 * time.Second}),
	}
	if s.cfg.clockSet {
		base = append(base, jam.WithClock(s.cfg.now))
	}
	c, err := jam.New(s.AppID, append(base, opts...)...)
	if err != nil {
		panic(err)
	}
	return c
}

// IssueTokens returns the tokens following a magic link for the address
// would give, without the email: an ID token and a refresh token, or ""
// for the refresh token when refresh is disabled. The address is not
// checked, so that a test can make tokens for any subject.
func (s *Server) IssueTokens(email string) (idToken, refreshToken string) {
	idToken, refreshToken, err := s.issue(email)
	switch {
	case idToken == "":
		panic(err) // signing with a valid key fails only if crypto/rand does
	case err != nil:
		s.logSaveError(err)
	}
	return idToken, refreshToken
}

// Violations returns the responses of the server that violated openapi.yaml
// so far, oldest first. Each was also logged and answered 500 instead.
// Faults are off-contract on purpose and are not checked.
func (s *Server) Violations() []error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]error(nil), s.violations...)
}

// issue makes the tokens of a login: an ID token and, when refresh is
// allowed, a refresh token. An error saving the state file is returned
// with the tokens, which work until the server stops.
func (s *Server) issue(email string) (idToken, refreshToken string, err error) {
	if idToken, err = s.signIDToken(email); err != nil {
		return "", "", err
	}
	if s.cfg.refreshDisabled {
		return idToken, "", nil
	}
	refreshToken = randomToken()
	s.mu.Lock()
	s.refresh[refreshToken] = email
	s.mu.Unlock()
	return idToken, refreshToken, s.save()
}

func (s *Server) signIDToken(email string) (string, error) {
	return s.publishedKeys()[0].sign(s.issuer, s.AppID, email, s.cfg.now(), s.cfg.tokenTTL)
}

// verifyIDToken returns the email address of a valid ID token of the app.
func (s *Server) verifyIDToken(raw string) (string, error) {
	return verifyToken(raw, s.publishedKeys(), s.issuer, s.AppID, s.cfg.now())
}

// sendMagicLink puts a new magic link for email in the outbox.
func (s *Server) sendMagicLink(email string) {
	code := randomToken()
	link := s.URL + magicLinkPath + code
	now := s.cfg.now()
	s.mu.Lock()
	for c, l := range s.links {
		if !now.Before(l.expires) {
			delete(s.links, c)
		}
	}
	s.links[code] = magicLink{email: email, expires: now.Add(MagicLinkTTL)}
	s.post(Message{Email: email, Link: link, SentAt: now.UTC()})
	s.mu.Unlock()
	if s.cfg.mailer != nil {
		s.cfg.mailer(email, link)
	}
}

// useMagicLink spends the link with the code and returns its address; ok
// is false for a link that is unknown, used or expired.
func (s *Server) useMagicLink(code string) (email string, ok bool) {
	now := s.cfg.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	l, ok := s.links[code]
	delete(s.links, code)
	if !ok || !now.Before(l.expires) {
		return "", false
	}
	return l.email, true
}
