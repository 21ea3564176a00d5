package main

import (
	"bytes"
	"embed"
	"encoding/json"
	"errors"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/go-jam/go-jam/jam"
)

// defaultRefreshBefore is how long before its expiry an ID token is
// renewed. Renewing while the token is still valid lets an outage of JAM
// shorter than that go unnoticed: the old token serves until a refresh
// succeeds.
const defaultRefreshBefore = 5 * time.Minute

// maxFormSize bounds the body of the login form: an address is at most 254
// bytes.
const maxFormSize = 4 << 10

//go:embed templates static
var files embed.FS

var pages = template.Must(template.ParseFS(files, "templates/*.html"))

// config is what the app needs to know beyond its JAM client.
type config struct {
	// secure marks the cookies Secure, and gives them the __Host- prefix.
	// It is false only for an app served over plain http on loopback, in
	// development: nobody can listen in there, and browsers send Secure
	// cookies over https only (some make an exception for localhost).
	secure bool
	// refreshBefore is how long before its expiry an ID token is renewed.
	refreshBefore time.Duration
	// outboxURL is the page of the in-process JAM server's outbox, shown
	// after a login; empty with a real JAM.
	outboxURL string
	// now tells the time for the expiry check; nil means time.Now. A test
	// gives it the clock of its JAM server and client.
	now func() time.Time
	// log receives what an operator needs, never a token or an address;
	// nil means no logs.
	log *slog.Logger
}

type app struct {
	config
	client *jam.Client
	// The cookie names: the ID token's and the refresh token's.
	idName, refreshName string
}

// newApp returns the handler of every route of the app.
func newApp(client *jam.Client, cfg config) http.Handler {
	if cfg.now == nil {
		cfg.now = time.Now
	}
	if cfg.log == nil {
		cfg.log = slog.New(slog.DiscardHandler)
	}
	a := &app{config: cfg, client: client, idName: "jam_id", refreshName: "jam_refresh"}
	if cfg.secure {
		// Browsers take a __Host- cookie only with Secure, Path=/ and no
		// Domain, so a sibling subdomain cannot plant one.
		a.idName, a.refreshName = "__Host-"+a.idName, "__Host-"+a.refreshName
	}

	// The cookie, as the session middleware renewed it, is where both
	// protected routes find the ID token.
	byCookie := jam.WithTokenExtractor(a.idTokenCookie)
	page := client.Middleware(byCookie, jam.WithErrorHandler(a.pageError))
	api := client.Middleware(byCookie)

	static, _ := fs.Sub(files, "static") // cannot fail: the directory is embedded
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", a.loginPage)
	mux.HandleFunc("POST /login", a.login)
	mux.HandleFunc("GET /callback", a.callback)
	mux.Handle("GET /me", a.session(a.pageError, page(http.HandlerFunc(a.me))))
	mux.Handle("GET /api/me", a.session(jam.DefaultErrorHandler, api(http.HandlerFunc(a.apiMe))))
	mux.Handle("POST /logout", a.session(a.pageError, a.logout(false)))
	mux.Handle("POST /logout-all", a.session(a.pageError, a.logout(true)))
	mux.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(static)))
	// Every form posts to this origin; a post from another site is
	// refused before any handler runs.
	return securityHeaders(http.NewCrossOriginProtection().Handler(mux))
}

// securityHeaders keeps the pages from running anything but the app's own
// script, from being framed, and from sending their address (a callback's
// holds tokens) to other sites.
func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "+
			"connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("X-Content-Type-Options", "nosniff")
		next.ServeHTTP(w, r)
	})
}

func (a *app) loginPage(w http.ResponseWriter, r *http.Request) {
	a.render(w, http.StatusOK, "login.html", loginData{})
}

type loginData struct {
	Email, Problem string
}

// login asks JAM to email a magic link to the address of the form.
func (a *app) login(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxFormSize)
	if err := r.ParseForm(); err != nil {
		a.render(w, http.StatusBadRequest, "login.html", loginData{Problem: "The form could not be read; try again."})
		return
	}
	email := strings.TrimSpace(r.PostForm.Get("email"))
	if email == "" {
		a.render(w, http.StatusBadRequest, "login.html", loginData{Problem: "Enter your email address."})
		return
	}
	err := a.client.Authenticate(r.Context(), email)
	switch {
	case err == nil:
		a.render(w, http.StatusOK, "sent.html", struct{ Email, Outbox string }{email, a.outboxURL})
	case errors.Is(err, jam.ErrBadRequest):
		// JAM's message says what is wrong with the address, and the
		// client has already redacted anything shaped like one.
		problem := "JAM refused that address"
		if e, ok := errors.AsType[*jam.Error](err); ok && e.Message != "" {
			problem = e.Message
		}
		a.render(w, http.StatusBadRequest, "login.html", loginData{Email: email, Problem: problem})
	default:
		a.log.Error("login: JAM did not send the link", "err", err)
		a.errorPage(w, http.StatusServiceUnavailable, "The sign-in link could not be sent. Try again in a moment.")
	}
}

// callback is where JAM's magic link lands, with the tokens in the query
// string. It keeps them in cookies and sends the browser on to /me, so
// that the tokens leave the address bar and the history.
func (a *app) callback(w http.ResponseWriter, r *http.Request) {
	tokens, err := jam.TokensFromURL(r.URL)
	if err == nil {
		// Verified before it is kept: the query string is anyone's to
		// write.
		_, err = a.client.VerifyToken(r.Context(), tokens.IDToken)
	}
	switch {
	case err == nil:
	case errors.Is(err, jam.ErrBadRequest), errors.Is(err, jam.ErrNotVerified):
		a.log.Info("callback: sign-in link refused", "err", err)
		a.errorPage(w, http.StatusBadRequest, "This sign-in link is not valid: it may have expired or been used. Request a new one.")
		return
	default:
		a.log.Error("callback: cannot verify the ID token", "err", err)
		a.errorPage(w, http.StatusServiceUnavailable, "Signing in is unavailable. Follow the link again in a moment.")
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	a.setCookie(w, a.idName, tokens.IDToken, 0)
	if tokens.RefreshToken != "" {
		a.setCookie(w, a.refreshName, tokens.RefreshToken, refreshCookieMaxAge)
	} else {
		a.setCookie(w, a.refreshName, "", -1) // an earlier login's
	}
	http.Redirect(w, r, "/me", http.StatusSeeOther)
}

// me greets the user Middleware let through.
func (a *app) me(w http.ResponseWriter, r *http.Request) {
	tok, _ := jam.TokenFromContext(r.Context())
	a.render(w, http.StatusOK, "me.html", struct {
		Email  string
		Expiry time.Time
	}{tok.Claims.Email, tok.Claims.Expiry.UTC()})
}

// apiMe is the JSON API a script of the app's pages calls.
func (a *app) apiMe(w http.ResponseWriter, r *http.Request) {
	tok, _ := jam.TokenFromContext(r.Context())
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	json.NewEncoder(w).Encode(struct {
		Email string `json:"email"`
	}{tok.Claims.Email})
}

// logout deletes this browser's refresh token at JAM (with all, every
// refresh token of the user), then the cookies. A logout JAM refuses
// (the ID token or refresh token is no longer valid) ends the login here
// all the same; one JAM cannot answer keeps it, so that the user can try
// again while the refresh token may still work.
func (a *app) logout(all bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		idToken, refreshToken := cookieValue(r, a.idName), cookieValue(r, a.refreshName)
		var err error
		switch {
		case idToken == "":
			// Not logged in, or the session middleware has just ended
			// the login.
		case all:
			err = a.client.DeleteAllRefreshTokens(r.Context(), idToken)
		case refreshToken != "":
			err = a.client.DeleteRefreshToken(r.Context(), idToken, refreshToken)
		}
		if err != nil && !refused(err) {
			a.log.Error("logout: JAM did not delete the refresh token", "all", all, "err", err)
			a.errorPage(w, http.StatusServiceUnavailable, "Logging out is unavailable: you are still logged in. Try again in a moment.")
			return
		}
		a.clearCookies(w)
		http.Redirect(w, r, "/", http.StatusSeeOther)
	})
}

// pageError answers a page request without a valid login: the login page
// when there is no login to use, an error page when JAM is unavailable
// (the key set cannot be fetched, a refresh gets no answer), which must
// log nobody out.
func (a *app) pageError(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case errors.Is(err, jam.ErrNoToken), errors.Is(err, jam.ErrNotVerified), errors.Is(err, jam.ErrInvalidRequest):
		http.Redirect(w, r, "/", http.StatusSeeOther)
	default:
		a.errorPage(w, http.StatusServiceUnavailable, "Signing in is unavailable. Reload the page in a moment.")
	}
}

func (a *app) errorPage(w http.ResponseWriter, status int, msg string) {
	a.render(w, status, "error.html", struct {
		Status  string
		Message string
	}{http.StatusText(status), msg})
}

// render executes a page into a buffer first, so that a template error
// answers 500 rather than half a page.
func (a *app) render(w http.ResponseWriter, status int, name string, data any) {
	var buf bytes.Buffer
	if err := pages.ExecuteTemplate(&buf, name, data); err != nil {
		a.log.Error("template failed", "page", name, "err", err)
		http.Error(w, http.StatusText(http.StatusInternalServerError), http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}
