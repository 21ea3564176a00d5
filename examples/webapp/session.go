package main

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/go-jam/go-jam/jam"
)

// refreshCookieMaxAge keeps a login across browser restarts for 30 days,
// in seconds. JAM decides how long the refresh token itself works; when it
// stops, the refresh is refused and the user is logged out.
const refreshCookieMaxAge = 30 * 24 * 60 * 60

// Both cookies are HttpOnly (no script reads a token), SameSite=Lax (no
// other site's POST or fetch carries them) and Path=/. The refresh token
// is not scoped to a narrower path because any request may need it: the
// session middleware renews an expiring ID token on every route, pages and
// API alike, and the logouts need both tokens.

// errNoLogin is what the cookie extractor says of a request without an ID
// token; Middleware answers it as a missing token.
var errNoLogin = fmt.Errorf("webapp: no ID token cookie: %w", jam.ErrNoToken)

// idTokenCookie is the TokenExtractor of the protected routes.
func (a *app) idTokenCookie(r *http.Request) (string, error) {
	if v := cookieValue(r, a.idName); v != "" {
		return v, nil
	}
	return "", errNoLogin
}

// session renews the login of the request's cookies before next runs. An
// ID token that expires within refreshBefore, has expired, or is missing
// next to a refresh token is replaced through Refresh, cookie included; a
// login JAM no longer accepts is ended and its cookies cleared. next then
// sees the request as the browser sends it from now on. When JAM cannot be
// reached and no valid ID token is left, onError answers the request and
// the user stays logged in for the next one.
//
// The expiry is read only from a verified token: an unverified one could
// claim anything, and is never taken for the user.
func (a *app) session(onError func(http.ResponseWriter, *http.Request, error), next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		idToken, refreshToken := cookieValue(r, a.idName), cookieValue(r, a.refreshName)
		if idToken == "" && refreshToken == "" {
			next.ServeHTTP(w, r)
			return
		}
		stillValid := false
		if idToken != "" {
			tok, err := a.client.VerifyToken(r.Context(), idToken)
			switch {
			case err == nil && (refreshToken == "" || a.now().Before(tok.Claims.Expiry.Add(-a.refreshBefore))):
				next.ServeHTTP(w, r)
				return
			case err == nil:
				stillValid = true
			case errors.Is(err, jam.ErrExpired) && refreshToken != "":
			case errors.Is(err, jam.ErrNotVerified):
				// Forged, another app's, or expired with nothing to
				// renew it: no refresh makes it the user's.
				a.log.Info("ID token refused: logging out", "err", err)
				a.endSession(w, r, next)
				return
			default: // the key set is unavailable
				a.log.Error("cannot verify the ID token", "err", err)
				onError(w, r, err)
				return
			}
		}
		newIDToken, err := a.client.Refresh(r.Context(), refreshToken)
		switch {
		case err == nil:
			a.setCookie(w, a.idName, newIDToken, 0)
			next.ServeHTTP(w, withCookies(r, map[string]string{a.idName: newIDToken}))
		case refused(err):
			a.log.Info("refresh refused: logging out", "err", err)
			a.endSession(w, r, next)
		case stillValid:
			a.log.Warn("refresh failed; the ID token serves until it expires", "err", err)
			next.ServeHTTP(w, r)
		default:
			a.log.Error("refresh failed", "err", err)
			onError(w, r, err)
		}
	})
}

// refused reports whether JAM answered a refresh or a logout with a final
// no: the token is invalid, expired or deleted, or refresh is off for the
// app. Anything else (5xx, no answer) is an outage, which ends no login.
func refused(err error) bool {
	return errors.Is(err, jam.ErrUnauthorized) || errors.Is(err, jam.ErrBadRequest) || errors.Is(err, jam.ErrNotFound)
}

// endSession clears the login's cookies and runs next as if the browser
// had sent none.
func (a *app) endSession(w http.ResponseWriter, r *http.Request, next http.Handler) {
	a.clearCookies(w)
	next.ServeHTTP(w, withCookies(r, map[string]string{a.idName: "", a.refreshName: ""}))
}

func (a *app) setCookie(w http.ResponseWriter, name, value string, maxAge int) {
	http.SetCookie(w, &http.Cookie{
		Name:     name,
		Value:    value,
		Path:     "/",
		MaxAge:   maxAge, // 0: until the browser closes; negative: delete
		HttpOnly: true,
		Secure:   a.secure,
		SameSite: http.SameSiteLaxMode,
	})
}

func (a *app) clearCookies(w http.ResponseWriter) {
	a.setCookie(w, a.idName, "", -1)
	a.setCookie(w, a.refreshName, "", -1)
}

// cookieValue returns the value of the request's cookie with the name, or
// "" if there is none.
func cookieValue(r *http.Request, name string) string {
	c, err := r.Cookie(name)
	if err != nil {
		return ""
	}
	return c.Value
}

// withCookies returns a copy of r whose cookies with the names of set have
// the values of set instead, "" removing one.
func withCookies(r *http.Request, set map[string]string) *http.Request {
	r = r.Clone(r.Context())
	cookies := r.Cookies()
	r.Header.Del("Cookie")
	for _, c := range cookies {
		if _, replaced := set[c.Name]; !replaced {
			r.AddCookie(c)
		}
	}
	for name, value := range set {
		if value != "" {
			r.AddCookie(&http.Cookie{Name: name, Value: value})
		}
	}
	return r
}
