package session

import (
	"net/http"
	"time"

	"github.com/go-jam/go-jam/jam"
)

// Callback is the handler of the app's redirect URL, where JAM's magic
// link sends the browser with the tokens in the query string; route GET
// and POST to it.
//
// A GET with tokens is answered at once with a redirect to the same path
// without them, so that they leave the address bar and the history; they
// travel in a signed cookie for up to ten minutes. The GET that follows
// verifies the ID token and logs in when the pending-login cookie names
// its address, redirecting to the page the login asked for. Otherwise
// (the link opened in another browser, or sent by an attacker to log the
// victim in as themselves) it answers PageConfirm, whose form POSTs back
// here: "yes" logs in, to the landing page; anything else forgets the
// tokens. An ID token issued more than WithCallbackMaxAge before it
// arrived is refused as a replay, with a page saying to ask for a new
// link; so is one WithUsedTokens has seen.
func (m *Manager) Callback(w http.ResponseWriter, r *http.Request) {
	noStore(w)
	// Where the callback is, to come back to: never another site, whatever
	// path a router let through.
	here, ok := ReturnPath(r.URL.EscapedPath())
	if !ok {
		here = "/"
	}
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		q := r.URL.Query()
		if !q.Has("idToken") && !q.Has("refreshToken") {
			m.finish(w, r, here, false)
			return
		}
		tokens, err := jam.TokensFromURL(r.URL)
		if err != nil {
			m.deleteCookie(w, r, callbackCookie)
			m.errorPage(w, r, http.StatusBadRequest, "This sign-in link is not valid. Request a new one.")
			return
		}
		c := callback{IDToken: tokens.IDToken, RefreshToken: tokens.RefreshToken, Received: m.now().Unix()}
		m.setCookie(w, callbackCookie, m.seal(callbackCookie, c), confirmTTL)
		http.Redirect(w, r, here, http.StatusSeeOther)
	case http.MethodPost:
		if err := m.cop.Check(r); err != nil {
			m.errorPage(w, r, http.StatusForbidden, "This request came from another site.")
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, maxLoginBody)
		if r.PostFormValue("confirm") != "yes" {
			m.deleteCookie(w, r, callbackCookie)
			http.Redirect(w, r, m.loginPage, http.StatusSeeOther)
			return
		}
		m.finish(w, r, here, true)
	default:
		w.Header().Set("Allow", "GET, HEAD, POST")
		m.errorPage(w, r, http.StatusMethodNotAllowed, "Follow the link from your email.")
	}
}

// finish logs in with the tokens of the callback cookie, if the pending
// login matches them or the user confirmed.
func (m *Manager) finish(w http.ResponseWriter, r *http.Request, here string, confirmed bool) {
	var c callback
	if !m.open(callbackCookie, m.cookie(r, callbackCookie), &c) {
		m.deleteCookie(w, r, callbackCookie)
		m.errorPage(w, r, http.StatusBadRequest, "There is no sign-in to finish in this browser. Follow the link from your email again, or request a new one.")
		return
	}
	now, received := m.now(), time.Unix(c.Received, 0)
	if now.Sub(received) > confirmTTL {
		m.deleteCookie(w, r, callbackCookie)
		m.errorPage(w, r, http.StatusBadRequest, "This sign-in took too long. Request a new link.")
		return
	}
	tok, err := m.client.VerifyToken(r.Context(), c.IDToken)
	if status := jam.HTTPStatus(err); err != nil {
		if status == http.StatusUnauthorized {
			m.log.Info("callback: ID token refused", "err", err)
			m.deleteCookie(w, r, callbackCookie)
			m.errorPage(w, r, http.StatusBadRequest, "This sign-in link is not valid. Request a new one.")
			return
		}
		// Kept: reloading the page tries again.
		m.log.Error("callback: cannot verify the ID token", "err", err)
		m.errorPage(w, r, status, problemText(status)+" Reload this page to finish signing in.")
		return
	}
	if received.Sub(tok.Claims.IssuedAt) > m.callbackMaxAge {
		m.log.Info("callback: ID token too old: a replay", "age", received.Sub(tok.Claims.IssuedAt))
		m.deleteCookie(w, r, callbackCookie)
		m.errorPage(w, r, http.StatusBadRequest, "This sign-in link has been used already, or is too old. Request a new one.")
		return
	}

	var p pending
	next := m.landingPage
	matched := m.open(pendingCookie, m.cookie(r, pendingCookie), &p) &&
		p.Address == m.addressMAC(tok.Claims.Email) &&
		now.Sub(time.Unix(p.Started, 0)) <= m.pendingTTL &&
		// The token was issued for this login, not an earlier one.
		!tok.Claims.IssuedAt.Before(time.Unix(p.Started, 0).Add(-time.Minute))
	switch {
	case matched:
		if path, ok := ReturnPath(p.Next); ok {
			next = path
		}
	case confirmed && !m.sameBrowserOnly:
	case m.sameBrowserOnly:
		m.deleteCookie(w, r, callbackCookie)
		m.errorPage(w, r, http.StatusBadRequest, "Open the sign-in link in the browser where you asked for it.")
		return
	default:
		m.page(w, r, &Page{Kind: PageConfirm, Status: http.StatusOK, Email: tok.Claims.Email, Action: here})
		return
	}
	if m.used != nil {
		first, err := m.used.Use(r.Context(), tok.Claims.ID, tok.Claims.IssuedAt.Add(m.callbackMaxAge+confirmTTL))
		if err != nil {
			m.log.Error("callback: used-token store failed", "err", err)
			m.errorPage(w, r, http.StatusServiceUnavailable, problemText(http.StatusServiceUnavailable)+" Reload this page to finish signing in.")
			return
		}
		if !first {
			m.log.Info("callback: ID token used already: a replay")
			m.deleteCookie(w, r, callbackCookie)
			m.errorPage(w, r, http.StatusBadRequest, "This sign-in link has been used already, or is too old. Request a new one.")
			return
		}
	}
	m.deleteCookie(w, r, callbackCookie)
	m.deleteCookie(w, r, pendingCookie)
	m.setSession(w, c.IDToken, c.RefreshToken)
	http.Redirect(w, r, next, http.StatusSeeOther)
}
