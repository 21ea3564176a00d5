package jamtest

import (
	"encoding/json"
	"html/template"
	"net/http"
	"slices"
	"time"
)

// OutboxSize is how many messages a Server keeps in its outbox: the
// newest. Each message beyond it drops the oldest, so that a long-running
// jam serve does not grow without limit.
const OutboxSize = 1000

// outboxPath is where the outbox is served as JSON; outboxPagePath serves
// it as a page for people.
const (
	outboxPath     = "/_jamtest/outbox"
	outboxPagePath = "/_jamtest/"
)

// Message is a magic link the server "emailed".
type Message struct {
	// Email is the address, exactly as Authenticate was given it.
	Email string `json:"email"`
	// Link is the magic link.
	Link string `json:"link"`
	// SentAt is when it was sent, by the server's clock, in UTC.
	SentAt time.Time `json:"sentAt"`
}

// Outbox returns the messages the server has "emailed", newest first: at
// most OutboxSize, since the server started or ClearOutbox was called.
// GET URL + "/_jamtest/outbox" returns the same as JSON, and
// URL + "/_jamtest/" shows them on a page.
func (s *Server) Outbox() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	msgs := slices.Clone(s.outbox)
	slices.Reverse(msgs)
	return msgs
}

// ClearOutbox empties the outbox, as DELETE URL + "/_jamtest/outbox" does.
// The links sent can still be followed until they expire.
func (s *Server) ClearOutbox() {
	s.mu.Lock()
	s.outbox = nil
	s.mu.Unlock()
}

// MagicLink returns the link of the newest message in the outbox to the
// address, exactly as Authenticate was given it, and whether there is
// one. The link may have been used or have expired since.
func (s *Server) MagicLink(email string) (link string, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, m := range slices.Backward(s.outbox) {
		if m.Email == email {
			return m.Link, true
		}
	}
	return "", false
}

// post adds a message to the outbox, dropping the oldest beyond
// OutboxSize. s.mu must be held.
func (s *Server) post(m Message) {
	if len(s.outbox) >= OutboxSize {
		s.outbox = slices.Delete(s.outbox, 0, len(s.outbox)-OutboxSize+1)
	}
	s.outbox = append(s.outbox, m)
}

// getOutbox answers {"messages": [...]}, newest first; ?email=ADDR keeps
// the messages to that address.
func (s *Server) getOutbox(w http.ResponseWriter, r *http.Request) {
	msgs := s.Outbox()
	if q := r.URL.Query(); q.Has("email") {
		email := q.Get("email")
		msgs = slices.DeleteFunc(msgs, func(m Message) bool { return m.Email != email })
	}
	if msgs == nil {
		msgs = []Message{} // [], not null
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store") // the links log people in
	json.NewEncoder(w).Encode(struct {
		Messages []Message `json:"messages"`
	}{msgs})
}

func (s *Server) deleteOutbox(w http.ResponseWriter, _ *http.Request) {
	s.ClearOutbox()
	w.WriteHeader(http.StatusNoContent)
}

// outboxRefresh is how often the outbox page reloads itself.
const outboxRefresh = 2 * time.Second

// outboxPage is the outbox for people. html/template escapes what it
// shows; an address is user input.
var outboxPage = template.Must(template.New("outbox").Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="refresh" content="{{.Refresh}}">
<title>jamtest outbox</title>
<style>body{font-family:system-ui,sans-serif;margin:2em}th,td{padding:.3em 1em .3em 0;text-align:left}</style>
</head>
<body>
<h1>Outbox of app {{.AppID}}</h1>
<p>The magic links this JAM test server "emailed", newest first, the last {{.Size}} at most.
This page reloads every {{.Refresh}} seconds. The same as JSON: <a href="{{.JSON}}">{{.JSON}}</a>.</p>
{{if .Messages -}}
<table>
<thead><tr><th>sent</th><th>to</th><th>magic link</th></tr></thead>
<tbody>
{{range .Messages -}}
<tr><td><time datetime="{{.SentAt.Format "2006-01-02T15:04:05Z07:00"}}">{{.SentAt.Format "2006-01-02 15:04:05"}}</time></td><td>{{.Email}}</td><td><a href="{{.Link}}">{{.Link}}</a></td></tr>
{{end -}}
</tbody>
</table>
{{- else -}}
<p>No messages yet.</p>
{{- end}}
</body>
</html>
`))

func (s *Server) showOutbox(w http.ResponseWriter, _ *http.Request) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	// Should escaping ever fail, nothing on the page can run.
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
	h.Set("Referrer-Policy", "no-referrer")
	err := outboxPage.Execute(w, struct {
		AppID, JSON   string
		Refresh, Size int
		Messages      []Message
	}{s.AppID, s.URL + outboxPath, int(outboxRefresh / time.Second), OutboxSize, s.Outbox()})
	if err != nil {
		s.cfg.logger.Error("jamtest: outbox page", "err", err)
	}
}
