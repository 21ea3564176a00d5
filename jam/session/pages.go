package session

import (
	"bytes"
	"encoding/json"
	"errors"
	"html/template"
	"mime"
	"net/http"
	"strconv"
	"time"
)

// PageKind says which page a Page is.
type PageKind int

// The pages the handlers answer a browser with.
const (
	// PageSent: the magic link is on its way (or the address is
	// throttled, which must read the same). Email is the address.
	PageSent PageKind = iota + 1
	// PageLogin: the login form again, with the Problem the last attempt
	// had, the Email typed and the Next page; Challenge when the app's
	// challenge (WithChallenge) must be passed.
	PageLogin
	// PageConfirm: a callback not started in this browser. Email is the
	// address the link logs in as; the page must ask the user whether to
	// go on, with a form that POSTs Confirm "yes" or "no" to Action.
	PageConfirm
	// PageError: anything else that went wrong, Problem saying what to do.
	PageError
)

// Page is what a handler answers a browser navigation with. Status is the
// HTTP status to write; the headers (no-store, no-referrer,
// frame-ancestors 'none') are set already.
type Page struct {
	Kind      PageKind
	Status    int
	Email     string
	Problem   string
	Next      string
	Challenge bool
	Action    string
}

// WithPages sets what renders the pages: render writes p.Status and the
// page. Give it the app's templates; the default, DefaultPages, is plain
// HTML. Nil is an error.
func WithPages(render func(w http.ResponseWriter, r *http.Request, p *Page)) Option {
	return func(m *Manager) error {
		if render == nil {
			return errors.New("session: nil page renderer")
		}
		m.render = render
		return nil
	}
}

var defaultPages = template.Must(template.New("page").Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Sign in</title></head><body><main>
{{- if eq .Kind 1}}<h1>Check your email</h1><p id="sent">We sent a sign-in link to <strong>{{.Email}}</strong>.</p>
{{- else if eq .Kind 3}}<h1>Sign in as {{.Email}}?</h1>
<p id="confirm">This sign-in link was not requested in this browser. Continue only if you asked for a link for <strong>{{.Email}}</strong> yourself.</p>
<form method="post" action="{{.Action}}"><button name="confirm" value="yes" id="confirm-yes">Sign in as {{.Email}}</button>
<button name="confirm" value="no" id="confirm-no">Cancel</button></form>
{{- else}}<h1>Sign in</h1>{{with .Problem}}<p id="problem" role="alert">{{.}}</p>{{end}}
{{- if eq .Kind 2}}<form method="post" action=""><input name="email" type="email" value="{{.Email}}" required>
<input type="hidden" name="next" value="{{.Next}}"><button>Email me a link</button></form>{{end}}
{{- end}}
</main></body></html>
`))

// DefaultPages renders every page as plain HTML, with no style and no
// script.
func DefaultPages(w http.ResponseWriter, _ *http.Request, p *Page) {
	var buf bytes.Buffer
	if err := defaultPages.Execute(&buf, p); err != nil {
		http.Error(w, http.StatusText(http.StatusInternalServerError), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(p.Status)
	w.Write(buf.Bytes())
}

// noStore marks a response as private to this request: not cached, not
// framed, and its address (a callback's holds tokens) sent to no one.
func noStore(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Frame-Options", "DENY")
	// Added, not set: every policy a response carries applies, so the
	// app's own stays in force.
	h.Add("Content-Security-Policy", "frame-ancestors 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
}

// page answers with a page.
func (m *Manager) page(w http.ResponseWriter, r *http.Request, p *Page) {
	noStore(w)
	m.render(w, r, p)
}

func (m *Manager) errorPage(w http.ResponseWriter, r *http.Request, status int, problem string) {
	m.page(w, r, &Page{Kind: PageError, Status: status, Problem: problem})
}

// writeJSON answers with a JSON {"message"} body and the extra members.
func writeJSON(w http.ResponseWriter, status int, msg string, extra map[string]any) {
	noStore(w)
	body := map[string]any{"message": msg}
	for k, v := range extra {
		body[k] = v
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(body)
}

// setRetryAfter sets Retry-After in whole seconds, at least one.
func setRetryAfter(w http.ResponseWriter, d time.Duration) {
	secs := int64((d + time.Second - 1) / time.Second)
	w.Header().Set("Retry-After", strconv.FormatInt(max(secs, 1), 10))
}

// navigation reports whether r is a browser's navigation, which a page
// answers, rather than a script's request, which JSON answers: a request
// the browser marks Sec-Fetch-Mode: navigate, or, from a browser that
// sends no such header, a form post.
func navigation(r *http.Request) bool {
	if mode := r.Header.Get("Sec-Fetch-Mode"); mode != "" {
		return mode == "navigate"
	}
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	return r.Method == http.MethodPost && (mt == "application/x-www-form-urlencoded" || mt == "multipart/form-data")
}
