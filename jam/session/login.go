package session

import (
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net"
	"net/http"
	"net/mail"
	"net/netip"
	"strings"
	"time"

	"github.com/go-jam/go-jam/jam"
)

// maxLoginBody bounds a login's body: an address is at most 254 bytes.
const maxLoginBody = 8 << 10

// Limits are the login throttles. Each is a token bucket: Burst emails at
// once, then one per Every.
type Limits struct {
	// Address limits the emails to one address, normalised (trimmed,
	// lower-cased, so Ann@X.com is ann@x.com). A throttled address is
	// answered exactly as a sent email, so that nobody learns whether an
	// address was throttled; the email is just not sent.
	Address Limit
	// Client limits the logins one client starts, whatever the address:
	// by IPv4 address, or IPv6 /64 (WithClientAddress says where the
	// address comes from). A throttled client gets 429 with Retry-After.
	Client Limit
	// Global limits the emails of the whole process, to keep within
	// JAM's quota; over it, logins get 429 with Retry-After.
	Global Limit
}

// DefaultLimits are the limits unless WithLimits: 5 emails to an address
// at once then one every 10 minutes; 20 logins from a client at once then
// one every 30 seconds; 100 emails in all at once then one a second.
//
// Anyone can keep an address throttled by asking for its links now and
// then (one every 10 minutes, by default), and its owner then gets no
// link for as long: the price of not letting anyone send an address
// unlimited email. What an app can do about it: add a challenge past a
// threshold (WithChallenge), so that each request costs the attacker
// something; lower Client, so that keeping many addresses throttled takes
// many clients; keep sessions long (WithRefreshCookieMaxAge), so that a
// signed-in user rarely needs a link; or plug in a Limiter that counts an
// address per client as well as in all, with a looser overall limit, so
// that one client cannot throttle an address for everyone.
var DefaultLimits = Limits{
	Address: Limit{Burst: 5, Every: 10 * time.Minute},
	Client:  Limit{Burst: 20, Every: 30 * time.Second},
	Global:  Limit{Burst: 100, Every: time.Second},
}

// WithLimits sets the login throttles; the default is DefaultLimits. Each
// Limit needs a positive Burst and Every.
func WithLimits(l Limits) Option {
	return func(m *Manager) error {
		for _, lim := range []Limit{l.Address, l.Client, l.Global} {
			if lim.Burst <= 0 || lim.Every <= 0 {
				return errors.New("session: a limit needs a positive Burst and Every")
			}
		}
		m.limits = l
		return nil
	}
}

// WithLimiter sets where the throttles count, for all three kinds: keys
// start "address:", "client:" or "global". The default is one
// NewMemoryLimiter per kind, per process; an app with several replicas
// plugs in a shared one (and sets WithKey, so that the replicas' address
// keys agree). Nil is an error.
func WithLimiter(l Limiter) Option {
	return func(m *Manager) error {
		if l == nil {
			return errors.New("session: nil Limiter")
		}
		m.limiters = [3]Limiter{l, l, l}
		return nil
	}
}

// WithClientAddress sets how a login's client is told: by the address of
// the request's connection (RemoteAddr, the default) or, behind a proxy
// the app trusts, by the header that proxy sets (ForwardedBy). Nil is an
// error.
func WithClientAddress(addr func(*http.Request) (netip.Addr, error)) Option {
	return func(m *Manager) error {
		if addr == nil {
			return errors.New("session: nil client address function")
		}
		m.clientAddr = addr
		return nil
	}
}

// clientKey is the limiter's key for the request's client: its IPv4
// address, or its IPv6 /64, which one subscriber usually holds whole.
func (m *Manager) clientKey(r *http.Request) (string, error) {
	a, err := m.clientAddr(r)
	if err != nil {
		return "", err
	}
	if a = a.Unmap(); a.Is6() {
		p, _ := a.Prefix(64) // cannot fail for an IPv6 address
		return p.String(), nil
	}
	return a.String(), nil
}

// RemoteAddr returns the address of the request's connection: the
// client's, unless a proxy stands in between.
func RemoteAddr(r *http.Request) (netip.Addr, error) {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		host, _, serr := net.SplitHostPort(r.RemoteAddr)
		a, perr := netip.ParseAddr(host)
		if serr != nil || perr != nil {
			return netip.Addr{}, fmt.Errorf("session: no client address in %q", r.RemoteAddr)
		}
		return a, nil
	}
	return ap.Addr(), nil
}

// ForwardedBy returns a client-address function for an app behind a proxy
// it trusts, which puts the client's address in the header (such as
// "X-Real-IP", or "X-Forwarded-For", to which it appends): it takes the
// last address of the header's last line, the one that proxy wrote. A
// request without it is refused. Use it only when every request comes
// through that proxy: anyone else can write the header.
func ForwardedBy(header string) func(*http.Request) (netip.Addr, error) {
	return func(r *http.Request) (netip.Addr, error) {
		values := r.Header.Values(header)
		if len(values) == 0 {
			return netip.Addr{}, fmt.Errorf("session: no %s header", header)
		}
		last := values[len(values)-1]
		if i := strings.LastIndexByte(last, ','); i >= 0 {
			last = last[i+1:]
		}
		a, err := netip.ParseAddr(strings.TrimSpace(last))
		if err != nil {
			return netip.Addr{}, fmt.Errorf("session: %s holds no address", header)
		}
		return a, nil
	}
}

// WithChallenge makes a client that has started more than after logins
// within its limit's window pass check as well, a CAPTCHA or a proof of
// work the app verifies from the request's form; a login that fails it is
// answered 403 with PageLogin (or JSON) marked Challenge, for the app to
// show the challenge. By default there is none. Negative after, or a nil
// check, is an error.
func WithChallenge(after int, check func(*http.Request) error) Option {
	return func(m *Manager) error {
		if after < 0 || check == nil {
			return errors.New("session: challenge needs a non-negative threshold and a check")
		}
		m.challengeAfter, m.challenge = after, check
		return nil
	}
}

// Login starts a login: it asks JAM to email a magic link to the address
// in the request, a POST with a form or a JSON object with email and,
// optionally, next, the same-origin path to return to afterwards. A
// browser's form gets PageSent, or PageLogin with the problem; a script's
// JSON request gets 202 or an error, in JSON {"message"}. Throttling is as
// Limits says. It refuses cross-origin requests (WithCrossOriginProtection).
func (m *Manager) Login(w http.ResponseWriter, r *http.Request) {
	isJSON := false
	if ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); ct == "application/json" {
		isJSON = true
	}
	fail := func(status int, problem string, email, next string, challenge bool) {
		if isJSON {
			var extra map[string]any
			if challenge {
				extra = map[string]any{"challenge": true}
			}
			writeJSON(w, status, problem, extra)
			return
		}
		m.page(w, r, &Page{Kind: PageLogin, Status: status, Problem: problem, Email: email, Next: next, Challenge: challenge})
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		fail(http.StatusMethodNotAllowed, "Use the login form.", "", "", false)
		return
	}
	if err := m.cop.Check(r); err != nil {
		fail(http.StatusForbidden, "This request came from another site.", "", "", false)
		return
	}
	var in struct {
		Email string `json:"email"`
		Next  string `json:"next"`
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxLoginBody)
	if isJSON {
		if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
			fail(http.StatusBadRequest, "The request is not a JSON object with an email.", "", "", false)
			return
		}
	} else {
		if err := r.ParseForm(); err != nil {
			fail(http.StatusBadRequest, "The form could not be read; try again.", "", "", false)
			return
		}
		in.Email, in.Next = r.PostForm.Get("email"), r.PostForm.Get("next")
	}
	email := normalize(in.Email)
	next, _ := ReturnPath(in.Next)
	if !validAddress(email) {
		fail(http.StatusBadRequest, "Enter a valid email address.", strings.TrimSpace(in.Email), next, false)
		return
	}

	client, err := m.clientKey(r)
	if err != nil {
		m.log.Warn("login: no client address", "err", err)
		fail(http.StatusBadRequest, "The request could not be read.", email, next, false)
		return
	}
	res, err := m.limiters[1].Allow(r.Context(), "client:"+client, m.limits.Client)
	if err != nil {
		m.log.Error("login: limiter failed", "err", err)
		fail(http.StatusServiceUnavailable, problemText(http.StatusServiceUnavailable), email, next, false)
		return
	}
	if !res.Allowed {
		m.log.Info("login: client throttled", "retry_after", res.RetryAfter)
		setRetryAfter(w, res.RetryAfter)
		fail(http.StatusTooManyRequests, fmt.Sprintf("Too many sign-in attempts from your network. Try again in %s.", wait(res.RetryAfter)), email, next, false)
		return
	}
	if m.challenge != nil && m.limits.Client.Burst-res.Remaining > m.challengeAfter {
		if err := m.challenge(r); err != nil {
			fail(http.StatusForbidden, "Show us that you are a person, then try again.", email, next, true)
			return
		}
	}

	addr := m.addressMAC(email)
	res, err = m.limiters[0].Allow(r.Context(), "address:"+addr, m.limits.Address)
	switch {
	case err != nil:
		m.log.Error("login: limiter failed", "err", err)
		fail(http.StatusServiceUnavailable, problemText(http.StatusServiceUnavailable), email, next, false)
		return
	case !res.Allowed:
		// The same answer as a sent email: nobody learns that the
		// address is throttled.
		m.log.Info("login: address throttled")
		m.sent(w, r, isJSON, email, addr, next)
		return
	}
	if res, err = m.limiters[2].Allow(r.Context(), "global", m.limits.Global); err != nil || !res.Allowed {
		m.log.Warn("login: global limit reached", "err", err)
		setRetryAfter(w, max(res.RetryAfter, time.Second))
		fail(http.StatusTooManyRequests, problemText(http.StatusTooManyRequests), email, next, false)
		return
	}
	if err := m.client.Authenticate(r.Context(), email); err != nil {
		status := jam.HTTPStatus(err)
		problem := problemText(status)
		switch status {
		case http.StatusBadRequest:
			problem = "JAM refused that address."
			if e, ok := errors.AsType[*jam.Error](err); ok && e.Message != "" {
				problem = e.Message // redacted by jam
			}
		case http.StatusTooManyRequests:
			setRetryAfter(w, time.Minute)
		}
		m.log.Error("login: JAM sent no link", "err", err)
		fail(status, problem, email, next, false)
		return
	}
	m.sent(w, r, isJSON, email, addr, next)
}

// sent answers a login whose link is on its way, or whose address is
// throttled, and leaves the pending-login cookie.
func (m *Manager) sent(w http.ResponseWriter, r *http.Request, isJSON bool, email, addr, next string) {
	p := pending{Address: addr, Started: m.now().Unix(), Next: next}
	m.setCookie(w, pendingCookie, m.seal(pendingCookie, p), m.pendingTTL)
	if isJSON {
		writeJSON(w, http.StatusAccepted, "Check your email for a sign-in link.", nil)
		return
	}
	m.page(w, r, &Page{Kind: PageSent, Status: http.StatusOK, Email: email, Next: next})
}

// validAddress reports whether s is an email address alone.
func validAddress(s string) bool {
	a, err := mail.ParseAddress(s)
	return err == nil && a.Name == "" && a.Address == s && len(s) <= 254
}

// wait says a duration to a person.
func wait(d time.Duration) string {
	if d <= time.Minute {
		return "a minute"
	}
	return fmt.Sprintf("%d minutes", int((d+time.Minute-1)/time.Minute))
}
