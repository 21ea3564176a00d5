package session

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/go-jam/go-jam/jam"
)

// Session is the login a request carries, as Require and Optional put it
// in the request's context.
type Session struct {
	// Token is the verified ID token.
	Token *jam.Token
	// IDToken is the raw ID token, to hand on as a bearer token to a
	// service behind the app. It is a secret: never log it.
	IDToken string
}

// LogValue keeps the token out of logs: it shows only when it expires.
func (s *Session) LogValue() slog.Value {
	if s == nil || s.Token == nil {
		return slog.StringValue("REDACTED")
	}
	return slog.GroupValue(slog.Time("expiry", s.Token.Claims.Expiry), slog.String("id_token", "REDACTED"))
}

type sessionKey struct{}

// FromContext returns the Session Require or Optional found for the
// request whose context ctx is, and whether there is one.
func FromContext(ctx context.Context) (*Session, bool) {
	s, ok := ctx.Value(sessionKey{}).(*Session)
	return s, ok
}

// errNoSession is what a request without a session is refused with.
var errNoSession = fmt.Errorf("session: no session cookie: %w", jam.ErrNoToken)

// Require returns middleware that lets a request through only with a
// session, renewed if need be (see the package doc), in its context for
// FromContext. A browser navigation (Sec-Fetch-Mode: navigate, GET or
// HEAD) without one is redirected to the login page with the page it
// wanted as next; any other request gets jam.DefaultErrorHandler's answer:
// 401 with a JSON body and WWW-Authenticate. An outage is answered 503 and
// ends no session.
func (m *Manager) Require(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, err := m.resume(w, r)
		if err != nil {
			m.refuse(w, r, err)
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), sessionKey{}, s)))
	})
}

// Optional returns middleware that reads, and renews, the session of a
// request, if it has one, into its context for FromContext, and lets every
// request through: one without a session, or whose session just ended,
// anonymously. An outage is answered as Require answers it, since the
// handler cannot tell who the user is.
func (m *Manager) Optional(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, err := m.resume(w, r)
		switch {
		case err == nil:
			r = r.WithContext(context.WithValue(r.Context(), sessionKey{}, s))
		case jam.HTTPStatus(err) != http.StatusUnauthorized:
			m.refuse(w, r, err)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// refuse answers a request that Require cannot let through.
func (m *Manager) refuse(w http.ResponseWriter, r *http.Request, err error) {
	status := jam.HTTPStatus(err)
	nav := (r.Method == http.MethodGet || r.Method == http.MethodHead) && r.Header.Get("Sec-Fetch-Mode") == "navigate"
	switch {
	case !nav:
		jam.DefaultErrorHandler(w, r, err)
	case status == http.StatusUnauthorized:
		noStore(w)
		sep := "?"
		if strings.Contains(m.loginPage, "?") {
			sep = "&"
		}
		http.Redirect(w, r, m.loginPage+sep+"next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
	default:
		m.errorPage(w, r, status, problemText(status))
	}
}

// resume returns the request's session, renewing its ID token through
// JAM when it expires within refreshBefore, has expired, or is missing
// next to a refresh token. Its error matches jam.ErrNoToken when there is
// no session, and is JAM's when the session ended (401: the cookies are
// cleared) or could not be resumed (an outage: they are kept).
func (m *Manager) resume(w http.ResponseWriter, r *http.Request) (*Session, error) {
	idToken, refreshToken, stale := m.sessionCookies(r)
	if stale && refreshToken == "" {
		m.deleteCookie(w, r, idCookie)
	}
	if idToken == "" && refreshToken == "" {
		return nil, errNoSession
	}
	ctx := r.Context()
	var current *Session // serves if JAM cannot renew it
	if idToken != "" {
		tok, err := m.client.VerifyToken(ctx, idToken)
		switch {
		case err == nil && (refreshToken == "" || m.now().Before(tok.Claims.Expiry.Add(-m.refreshBefore))):
			return &Session{Token: tok, IDToken: idToken}, nil
		case err == nil:
			current = &Session{Token: tok, IDToken: idToken}
		case errors.Is(err, jam.ErrNotVerified) && refreshToken != "":
			// Expired, or of a key JAM has dropped: the refresh token
			// says whether the session lives on.
		case errors.Is(err, jam.ErrNotVerified):
			m.log.Info("ID token refused, nothing to renew it: session ended", "err", err)
			m.clearSession(w, r)
			return nil, err
		default:
			m.log.Error("cannot verify the ID token", "err", err)
			return nil, err
		}
	}
	s, err := m.renewals.do(ctx, refreshToken, m.renew)
	switch {
	case err == nil:
		m.setCookie(w, idCookie, s.IDToken+"~"+tag(refreshToken), 0)
		return s, nil
	case jam.HTTPStatus(err) == http.StatusUnauthorized:
		m.log.Info("refresh refused: session ended", "err", err)
		m.clearSession(w, r)
		return nil, err
	case current != nil:
		m.log.Warn("refresh failed; the ID token serves until it expires", "err", err)
		return current, nil
	default:
		m.log.Error("refresh failed", "err", err)
		return nil, err
	}
}

// renew gets a new ID token for the refresh token, and verifies it.
func (m *Manager) renew(ctx context.Context, refreshToken string) (*Session, error) {
	// JAM answers 404 for a deleted refresh token as for an unknown app;
	// jam tells them apart once the key set has loaded.
	if err := m.client.Ready(ctx); err != nil {
		return nil, err
	}
	idToken, err := m.client.Refresh(ctx, refreshToken)
	if err != nil {
		return nil, err
	}
	tok, err := m.client.VerifyToken(ctx, idToken)
	if err != nil {
		return nil, err
	}
	return &Session{Token: tok, IDToken: idToken}, nil
}

// renewalTimeout bounds a renewal that several requests wait for, which
// cannot use the context of any one of them.
const renewalTimeout = 15 * time.Second

// renewals runs one renewal at a time per refresh token in this process:
// the requests of a page whose token expired, arriving together, share
// one refresh at JAM instead of making one each. Each waits within its
// own context.
type renewals struct {
	mu    sync.Mutex
	calls map[[sha256.Size]byte]*renewal
}

type renewal struct {
	done chan struct{}
	s    *Session
	err  error
}

func (rs *renewals) do(ctx context.Context, refreshToken string, renew func(context.Context, string) (*Session, error)) (*Session, error) {
	key := sha256.Sum256([]byte(refreshToken))
	rs.mu.Lock()
	c, running := rs.calls[key]
	if !running {
		if rs.calls == nil {
			rs.calls = make(map[[sha256.Size]byte]*renewal)
		}
		c = &renewal{done: make(chan struct{})}
		rs.calls[key] = c
	}
	rs.mu.Unlock()
	if !running {
		shared, cancel := context.WithTimeout(context.WithoutCancel(ctx), renewalTimeout)
		c.s, c.err = renew(shared, refreshToken)
		cancel()
		rs.mu.Lock()
		delete(rs.calls, key)
		rs.mu.Unlock()
		close(c.done)
	}
	select {
	case <-c.done:
		return c.s, c.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// problemText is what a page says of a failure with the status.
func problemText(status int) string {
	switch status {
	case http.StatusUnauthorized:
		return "You are not signed in, or your sign-in has ended. Sign in again."
	case http.StatusTooManyRequests:
		return "Too many sign-ins right now. Try again in a few minutes."
	case http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return "Signing in is unavailable right now. Try again in a moment."
	}
	return "Something went wrong on our side. Try again later."
}
