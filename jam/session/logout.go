package session

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/go-jam/go-jam/jam"
)

// jamLeeway is how long before its expiry an ID token is renewed for a
// logout: JAM checks exp with no leeway, and clocks differ.
const jamLeeway = time.Minute

// Logout logs the browser out: it deletes the browser's refresh token at
// JAM, then the cookies. An ID token that JAM would refuse (expired, or
// about to) is renewed first, and one JAM refuses is renewed and the
// delete tried again, so that the refresh token is dead at JAM when the
// user is told they are logged out; a refresh JAM refuses means it is
// dead already. A browser's form post is redirected to the login page;
// a script's request gets 204. It answers only POST, from this origin.
//
// When JAM cannot be reached, the cookies are kept and the answer is 503,
// "still logged in, try again", unless WithClearOnLogoutOutage.
func (m *Manager) Logout(w http.ResponseWriter, r *http.Request) { m.logout(w, r, false) }

// LogoutAll logs the user out everywhere: it deletes every refresh token
// of the user at JAM, then this browser's cookies; other browsers keep
// their ID tokens until they expire (at most JAM's token lifetime), then
// fail to renew them. Otherwise it is Logout.
func (m *Manager) LogoutAll(w http.ResponseWriter, r *http.Request) { m.logout(w, r, true) }

func (m *Manager) logout(w http.ResponseWriter, r *http.Request, all bool) {
	nav := navigation(r)
	answer := func(status int, msg string) {
		if nav {
			m.errorPage(w, r, status, msg)
		} else {
			writeJSON(w, status, msg, nil)
		}
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		answer(http.StatusMethodNotAllowed, "Use the logout button.")
		return
	}
	if err := m.cop.Check(r); err != nil {
		answer(http.StatusForbidden, "This request came from another site.")
		return
	}
	idToken, refreshToken, _ := m.sessionCookies(r)
	if err := m.endAtJAM(r.Context(), idToken, refreshToken, all); err != nil {
		status := jam.HTTPStatus(err)
		if status == http.StatusUnauthorized {
			status = http.StatusServiceUnavailable // JAM refused a fresh token: not the user's doing
		}
		m.log.Error("logout: JAM did not delete the refresh token", "all", all, "err", err)
		if m.clearOnOutage {
			m.clearSession(w, r)
			answer(status, "You are logged out of this browser, but your sign-in could not be ended everywhere. It ends when it expires.")
			return
		}
		answer(status, "Logging out failed: you are still logged in. Try again in a moment.")
		return
	}
	// Nothing of a login is left: a pending one started here ends too.
	m.clearSession(w, r)
	m.deleteCookie(w, r, pendingCookie)
	m.deleteCookie(w, r, callbackCookie)
	if nav {
		noStore(w)
		http.Redirect(w, r, m.loginPage, http.StatusSeeOther)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusNoContent)
}

// endAtJAM deletes the refresh token (with all, every refresh token of
// the user) at JAM, and returns nil once it is dead there.
func (m *Manager) endAtJAM(ctx context.Context, idToken, refreshToken string, all bool) error {
	if refreshToken == "" && (!all || idToken == "") {
		return nil // nothing at JAM keeps this browser logged in
	}
	del := func(idToken string) error {
		if all {
			return m.client.DeleteAllRefreshTokens(ctx, idToken)
		}
		err := m.client.DeleteRefreshToken(ctx, idToken, refreshToken)
		if errors.Is(err, jam.ErrNotFound) {
			return nil // deleted already; the ID token proved the app exists
		}
		return err
	}
	if idToken != "" {
		tok, err := m.client.VerifyToken(ctx, idToken)
		switch {
		case err == nil && m.now().Add(jamLeeway).Before(tok.Claims.Expiry):
			err = del(idToken)
			if !errors.Is(err, jam.ErrUnauthorized) {
				return err
			}
			// JAM refused the ID token: renew it and try again.
		case err != nil && !errors.Is(err, jam.ErrNotVerified):
			return err // the key set is unavailable
		}
	}
	if refreshToken == "" {
		return nil // no valid ID token, and nothing to renew it: JAM holds nothing usable
	}
	s, err := m.renew(ctx, refreshToken)
	switch {
	case jam.HTTPStatus(err) == http.StatusUnauthorized:
		return nil // JAM refused the refresh token: it is dead already
	case err != nil:
		return err
	}
	return del(s.IDToken)
}
