package main

import (
	"bytes"
	"cmp"
	"embed"
	"encoding/json"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"time"

	"github.com/go-jam/go-jam/jam"
	"github.com/go-jam/go-jam/jam/session"
)

//go:embed templates static
var files embed.FS

var pages = template.Must(template.ParseFS(files, "templates/*.html"))

// app is what the app needs to know beyond its JAM client.
type app struct {
	insecure      bool // plain http on localhost, in development only
	refreshBefore time.Duration
	outboxURL     string           // the in-process JAM's outbox, shown after a login
	now           func() time.Time // nil: time.Now
	log           *slog.Logger     // nil: no logs
}

// newApp returns the handler of every route of the app. The session
// package does the logins, the cookies and the logouts; the app renders
// its pages.
func newApp(client *jam.Client, a *app) http.Handler {
	a.log = cmp.Or(a.log, slog.New(slog.DiscardHandler))
	opts := []session.Option{
		session.WithRefreshBefore(a.refreshBefore),
		session.WithLandingPage("/me"),
		session.WithPages(a.page),
		session.WithClock(a.now),
		session.WithLogger(a.log),
	}
	if a.insecure {
		opts = append(opts, session.WithInsecureCookies())
	}
	sm, err := session.New(client, opts...)
	if err != nil {
		panic(err) // a negative refreshBefore, which run refuses
	}
	static, _ := fs.Sub(files, "static") // cannot fail: the directory is embedded
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", a.loginPage)
	mux.HandleFunc("POST /login", sm.Login)
	mux.HandleFunc("GET /callback", sm.Callback)
	mux.HandleFunc("POST /callback", sm.Callback) // the confirmation of a link opened in another browser
	mux.Handle("GET /me", sm.Require(http.HandlerFunc(a.me)))
	mux.Handle("GET /api/me", sm.Require(http.HandlerFunc(a.apiMe)))
	mux.HandleFunc("POST /logout", sm.Logout)
	mux.HandleFunc("POST /logout-all", sm.LogoutAll)
	mux.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(static)))
	// The pages run the app's own script only, and are never framed.
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "+
			"connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		mux.ServeHTTP(w, r)
	})
}

// loginPage is the form, keeping the page to return to.
func (a *app) loginPage(w http.ResponseWriter, r *http.Request) {
	next, _ := session.ReturnPath(r.URL.Query().Get("next"))
	a.render(w, http.StatusOK, "login.html", &session.Page{Next: next})
}

// templates render the pages of the session package.
var templates = map[session.PageKind]string{
	session.PageSent: "sent.html", session.PageLogin: "login.html", session.PageConfirm: "confirm.html", session.PageError: "error.html",
}

// page renders the pages of the session package with the app's templates.
func (a *app) page(w http.ResponseWriter, _ *http.Request, p *session.Page) {
	type data struct {
		*session.Page
		StatusText, Outbox string
	}
	a.render(w, p.Status, templates[p.Kind], data{p, http.StatusText(p.Status), a.outboxURL})
}

// me greets the user Require let through.
func (a *app) me(w http.ResponseWriter, r *http.Request) {
	s, _ := session.FromContext(r.Context())
	a.render(w, http.StatusOK, "me.html", s.Token.Claims)
}

// apiMe is the JSON API a script of the app's pages calls.
func (a *app) apiMe(w http.ResponseWriter, r *http.Request) {
	s, _ := session.FromContext(r.Context())
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	json.NewEncoder(w).Encode(map[string]string{"email": s.Token.Claims.Email})
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
