package main

import (
	"embed"
	"encoding/json"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"

	"github.com/go-jam/go-jam/jam"
)

// The page and its script: everything the browser runs is in static/, and
// no build step stands between it and the browser.
//
//go:embed static
var files embed.FS

// config is what the app tells its page, and what it needs besides its JAM
// client.
type config struct {
	// jamURL is the base URL of the JAM the page calls, with a trailing
	// slash: the page appends the app ID and the operation.
	jamURL string
	appID  string
	// outboxURL is the page of the in-process JAM server's outbox, which
	// the page links to after sending a magic link; empty with a real JAM.
	outboxURL string
	// log receives what an operator needs, never a token or an address;
	// nil means no logs.
	log *slog.Logger
}

// pageConfig is the body of GET /config.json, which the page reads before
// anything else.
type pageConfig struct {
	JAMURL    string `json:"jamURL"`
	AppID     string `json:"appID"`
	OutboxURL string `json:"outboxURL,omitempty"`
}

type app struct {
	config
	client *jam.Client
}

// newApp returns the handler of every route: the page, its configuration,
// and the API the page calls with the user's ID token.
func newApp(client *jam.Client, cfg config) (http.Handler, error) {
	if cfg.log == nil {
		cfg.log = slog.New(slog.DiscardHandler)
	}
	csp, err := contentSecurityPolicy(cfg.jamURL)
	if err != nil {
		return nil, err
	}
	a := &app{config: cfg, client: client}
	static, _ := fs.Sub(files, "static") // cannot fail: the directory is embedded
	api := client.Middleware(jam.WithErrorHandler(a.refused))

	mux := http.NewServeMux()
	mux.Handle("GET /", http.FileServerFS(static))
	mux.HandleFunc("GET /config.json", a.pageConfig)
	mux.Handle("GET /api/me", api(http.HandlerFunc(a.apiMe)))
	return securityHeaders(csp, mux), nil
}

// contentSecurityPolicy lets the page run only its own script, connect only
// to its own origin and to JAM's, and be framed by nobody: a script that
// got into the page could still read the tokens, but could neither load
// more code nor send them anywhere else.
func contentSecurityPolicy(jamURL string) (string, error) {
	u, err := url.Parse(jamURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("JAM base URL %q is not an absolute http or https URL", jamURL)
	}
	jamOrigin := u.Scheme + "://" + u.Host
	return "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; " +
		"connect-src 'self' " + jamOrigin + "; form-action 'none'; frame-ancestors 'none'; base-uri 'none'; " +
		"require-trusted-types-for 'script'; trusted-types 'none'", nil
}

// securityHeaders sets the policy on every answer. The page's address
// holds the tokens when JAM's redirect lands on it: no-referrer keeps them
// from other sites, and no-store from the browser's cache. For the same
// reason the app logs no requests: an access log would hold them too.
func securityHeaders(csp string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", csp)
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Cache-Control", "no-store")
		next.ServeHTTP(w, r)
	})
}

func (a *app) pageConfig(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, pageConfig{JAMURL: a.jamURL, AppID: a.appID, OutboxURL: a.outboxURL})
}

// apiMe is the API the page calls: Middleware has verified the ID token of
// its Authorization header.
func (a *app) apiMe(w http.ResponseWriter, r *http.Request) {
	tok, _ := jam.TokenFromContext(r.Context())
	writeJSON(w, struct {
		Email string `json:"email"`
	}{tok.Claims.Email})
}

// refused answers an API request Middleware refused, as
// DefaultErrorHandler does, and logs the refusals an operator must see:
// those that are JAM's fault, not the caller's. The error's text holds no
// token and no address.
func (a *app) refused(w http.ResponseWriter, r *http.Request, err error) {
	if status := jam.HTTPStatus(err); status >= http.StatusInternalServerError {
		a.log.Warn("api: cannot check the ID token", "path", r.URL.Path, "status", status, "err", err)
	}
	jam.DefaultErrorHandler(w, r, err)
}

func writeJSON(w http.ResponseWriter, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		http.Error(w, http.StatusText(http.StatusInternalServerError), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(body)
}
