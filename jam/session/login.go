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
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	in := &loginRequest{json: mt == "application/json"}
	switch {
	case r.Method != http.MethodPost:
		w.Header().Set("Allow", http.MethodPost)
		m.refuseLogin(w, r, in, &refusal{status: http.StatusMethodNotAllowed, problem: "Use the login form."})
	case m.cop.Check(r) != nil:
		m.refuseLogin(w, r, in, &refusal{status: http.StatusForbidden, problem: "This request came from another site."})
	default:
		if no := in.read(w, r); no != nil {
			m.refuseLogin(w, r, in, no)
			return
		}
		send, no := m.throttle(r, in.email)
		if no != nil {
			m.refuseLogin(w, r, in, no)
			return
		}
		if send {
			if no := m.authenticate(r, in.email); no != nil {
				m.refuseLogin(w, r, in, no)
				return
			}
		}
		m.sent(w, r, in)
	}
}

// loginRequest is what a login asked for.
type loginRequest struct {
	json        bool   // a script's JSON request, answered in JSON
	email, next string // normalised; a same-origin path or ""
	typed       string // the address as typed, to show again
}

// refusal is why a login sends nothing, and how to say so.
type refusal struct {
	status     int
	problem    string        // for the user
	retryAfter time.Duration // for Retry-After, when positive
	challenge  bool          // the app's challenge must be passed
}

// read reads the request's form or JSON body.
func (in *loginRequest) read(w http.ResponseWriter, r *http.Request) *refusal {
	var body struct {
		Email string `json:"email"`
		Next  string `json:"next"`
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxLoginBody)
	if in.json {
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
			return &refusal{status: http.StatusBadRequest, problem: "The request is not a JSON object with an email."}
		}
	} else {
		if err := r.ParseForm(); err != nil {
			return &refusal{status: http.StatusBadRequest, problem: "The form could not be read; try again."}
		}
		body.Email, body.Next = r.PostForm.Get("email"), r.PostForm.Get("next")
	}
	in.email, in.typed = normalize(body.Email), strings.TrimSpace(body.Email)
	in.next, _ = ReturnPath(body.Next)
	if !validAddress(in.email) {
		return &refusal{status: http.StatusBadRequest, problem: "Enter a valid email address."}
	}
	return nil
}

// throttle counts the login against the limits, client first, and says
// whether to send the email; a throttled address sends none, and is
// answered as if it did.
func (m *Manager) throttle(r *http.Request, email string) (send bool, _ *refusal) {
	unavailable := &refusal{status: http.StatusServiceUnavailable, problem: problemText(http.StatusServiceUnavailable)}
	client, err := m.clientKey(r)
	if err != nil {
		m.log.Warn("login: no client address", "err", err)
		return false, &refusal{status: http.StatusBadRequest, problem: "The request could not be read."}
	}
	res, err := m.limiters[1].Allow(r.Context(), "client:"+client, m.limits.Client)
	switch {
	case err != nil:
		m.log.Error("login: limiter failed", "err", err)
		return false, unavailable
	case !res.Allowed:
		m.log.Info("login: client throttled", "retry_after", res.RetryAfter)
		return false, &refusal{status: http.StatusTooManyRequests, retryAfter: res.RetryAfter,
			problem: fmt.Sprintf("Too many sign-in attempts from your network. Try again in %s.", wait(res.RetryAfter))}
	case m.challenge != nil && m.limits.Client.Burst-res.Remaining > m.challengeAfter && m.challenge(r) != nil:
		return false, &refusal{status: http.StatusForbidden, problem: "Show us that you are a person, then try again.", challenge: true}
	}
	res, err = m.limiters[0].Allow(r.Context(), "address:"+m.addressMAC(email), m.limits.Address)
	switch {
	case err != nil:
		m.log.Error("login: limiter failed", "err", err)
		return false, unavailable
	case !res.Allowed:
		m.log.Info("login: address throttled")
		return false, nil
	}
	res, err = m.limiters[2].Allow(r.Context(), "global", m.limits.Global)
	switch {
	case err != nil:
		m.log.Error("login: limiter failed", "err", err)
		return false, unavailable
	case !res.Allowed:
		m.log.Warn("login: global limit reached", "retry_after", res.RetryAfter)
		return false, &refusal{status: http.StatusTooManyRequests, retryAfter: res.RetryAfter, problem: problemText(http.StatusTooManyRequests)}
	}
	return true, nil
}

// authenticate asks JAM to send the link, and says what went wrong.
func (m *Manager) authenticate(r *http.Request, email string) *refusal {
	err := m.client.Authenticate(r.Context(), email)
	if err == nil {
		return nil
	}
	m.log.Error("login: JAM sent no link", "err", err)
	no := &refusal{status: jam.HTTPStatus(err)}
	no.problem = problemText(no.status)
	switch no.status {
	case http.StatusBadRequest:
		no.problem = "JAM refused that address."
		if e, ok := errors.AsType[*jam.Error](err); ok && e.Message != "" {
			no.problem = e.Message // redacted by jam
		}
	case http.StatusTooManyRequests:
		no.retryAfter = time.Minute // unless JAM said
		if e, ok := errors.AsType[*jam.Error](err); ok && e.RetryAfter > 0 {
			no.retryAfter = e.RetryAfter
		}
	}
	return no
}

// refuseLogin answers a login that sends nothing, in JSON or with the
// login page again.
func (m *Manager) refuseLogin(w http.ResponseWriter, r *http.Request, in *loginRequest, no *refusal) {
	if no.retryAfter > 0 {
		setRetryAfter(w, no.retryAfter)
	}
	if in.json {
		var extra map[string]any
		if no.challenge {
			extra = map[string]any{"challenge": true}
		}
		writeJSON(w, no.status, no.problem, extra)
		return
	}
	m.page(w, r, &Page{Kind: PageLogin, Status: no.status, Problem: no.problem, Email: in.typed, Next: in.next, Challenge: no.challenge})
}

// sent answers a login whose link is on its way, or whose address is
// throttled, and leaves the pending-login cookie.
func (m *Manager) sent(w http.ResponseWriter, r *http.Request, in *loginRequest) {
	p := pending{Address: m.addressMAC(in.email), Started: m.now().Unix(), Next: in.next}
	m.setCookie(w, pendingCookie, m.seal(pendingCookie, p), m.pendingTTL)
	if in.json {
		writeJSON(w, http.StatusAccepted, "Check your email for a sign-in link.", nil)
		return
	}
	m.page(w, r, &Page{Kind: PageSent, Status: http.StatusOK, Email: in.email, Next: in.next})
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
