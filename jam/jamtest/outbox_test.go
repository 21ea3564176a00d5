package jamtest_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/html"

	"github.com/go-jam/go-jam/jam/jamtest"
)

// quirky is a valid address whose characters HTML must escape.
const quirky = "o'hara&co+{x}@example.com"

// TestOutbox checks the Go API and the JSON of the outbox: its exact
// shape, the order, the filter, and emptying it.
func TestOutbox(t *testing.T) {
	ctx := t.Context()
	clk := newClock()
	srv := newServer(t, jamtest.WithClock(clk.Now))
	client := srv.Client(checked(t))
	if got := srv.Outbox(); len(got) != 0 {
		t.Errorf("Outbox() of a new server = %v, want none", got)
	}
	if got := getOutbox(t, srv.URL+"/_jamtest/outbox"); len(got) != 0 {
		t.Errorf("GET outbox of a new server = %v, want []", got)
	}

	sent := map[string]time.Time{}
	for _, email := range []string{ann, bob, ann} {
		if err := client.Authenticate(ctx, email); err != nil {
			t.Fatal(err)
		}
		sent[email] = clk.Now() // the latest per address
		clk.Advance(time.Second)
	}
	annLink, _ := srv.MagicLink(ann)
	bobLink, _ := srv.MagicLink(bob)

	box := srv.Outbox()
	if len(box) != 3 || box[0].Email != ann || box[1].Email != bob || box[2].Email != ann {
		t.Fatalf("Outbox() = %v, want ann, bob, ann: newest first", box)
	}
	if box[0].Link != annLink || box[1].Link != bobLink || box[2].Link == annLink {
		t.Errorf("Outbox() links = %q, want ann's newest, bob's, and ann's first", []string{box[0].Link, box[1].Link, box[2].Link})
	}
	if !box[0].SentAt.Equal(sent[ann]) || !box[1].SentAt.Equal(sent[bob]) || box[0].SentAt.Location() != time.UTC {
		t.Errorf("Outbox() times = %v, %v; want %v, %v in UTC", box[0].SentAt, box[1].SentAt, sent[ann], sent[bob])
	}

	tests := []struct {
		query string
		want  []jamtest.Message
	}{
		{"", box},
		{"?email=" + url.QueryEscape(bob), box[1:2]},
		{"?email=" + url.QueryEscape(ann), []jamtest.Message{box[0], box[2]}},
		{"?email=nobody@example.com", nil},
		{"?email=", nil},
	}
	for _, tt := range tests {
		got := getOutbox(t, srv.URL+"/_jamtest/outbox"+tt.query)
		if !slices.EqualFunc(got, tt.want, func(a, b jamtest.Message) bool {
			return a.Email == b.Email && a.Link == b.Link && a.SentAt.Equal(b.SentAt)
		}) {
			t.Errorf("GET outbox%s = %v, want %v", tt.query, got, tt.want)
		}
	}

	req, _ := http.NewRequestWithContext(ctx, http.MethodDelete, srv.URL+"/_jamtest/outbox", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Errorf("DELETE outbox = %d, want 204", resp.StatusCode)
	}
	if got := getOutbox(t, srv.URL+"/_jamtest/outbox"); len(got) != 0 || len(srv.Outbox()) != 0 {
		t.Errorf("outbox after DELETE = %v, want empty", got)
	}
	if _, ok := srv.MagicLink(ann); ok {
		t.Error("MagicLink after DELETE outbox = _, true, want false")
	}
	// Emptying the outbox does not take back the links sent.
	if status, _ := follow(t, annLink); status != http.StatusFound {
		t.Errorf("GET a link sent before DELETE outbox = %d, want 302", status)
	}

	srv.ClearOutbox() // the Go API for the same
	if err := client.Authenticate(ctx, ann); err != nil {
		t.Fatal(err)
	}
	srv.ClearOutbox()
	if got := srv.Outbox(); len(got) != 0 {
		t.Errorf("Outbox() after ClearOutbox = %v, want none", got)
	}

	resp, err = http.Post(srv.URL+"/_jamtest/outbox", "application/json", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	assertErrorBody(t, resp, http.StatusMethodNotAllowed)
}

// getOutbox GETs the outbox as JSON and checks its exact shape.
func getOutbox(t *testing.T, rawURL string) []jamtest.Message {
	t.Helper()
	resp, err := http.Get(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("GET outbox = %d %s, want 200 application/json", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	var raw map[string][]map[string]string
	if err := json.Unmarshal(body, &raw); err != nil {
		t.Fatalf("GET outbox = %s: %v, want {\"messages\": [objects of strings]}", body, err)
	}
	msgs, ok := raw["messages"]
	if len(raw) != 1 || !ok || msgs == nil {
		t.Fatalf("GET outbox = %s, want {\"messages\": [...]} alone", body)
	}
	out := []jamtest.Message{}
	for _, m := range msgs {
		if len(m) != 3 {
			t.Errorf("message %v, want email, link and sentAt alone", m)
		}
		sentAt, err := time.Parse(time.RFC3339, m["sentAt"])
		if err != nil {
			t.Errorf("sentAt %q is not RFC 3339: %v", m["sentAt"], err)
		}
		out = append(out, jamtest.Message{Email: m["email"], Link: m["link"], SentAt: sentAt})
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// TestOutboxPage GETs the outbox page, parses its HTML, and finds every
// message with its address shown as sent and its link clickable.
func TestOutboxPage(t *testing.T) {
	srv := newServer(t)
	client := srv.Client(checked(t))
	page := parsePage(t, srv.URL+"/_jamtest/")
	if rows := page.rows(); len(rows) != 0 {
		t.Errorf("page of an empty outbox has %d rows, want none", len(rows))
	}
	if !strings.Contains(page.text, "No messages yet") {
		t.Error("page of an empty outbox does not say so")
	}

	for _, email := range []string{ann, quirky} {
		if err := client.Authenticate(t.Context(), email); err != nil {
			t.Fatalf("Authenticate(%q) = %v", email, err)
		}
	}
	for _, path := range []string{"/_jamtest/", "/_jamtest"} {
		page := parsePage(t, srv.URL+path)
		if page.refresh == "" {
			t.Errorf("GET %s has no <meta http-equiv=refresh>", path)
		}
		rows := page.rows()
		box := srv.Outbox()
		if len(rows) != len(box) {
			t.Fatalf("GET %s has %d rows, want %d", path, len(rows), len(box))
		}
		for i, m := range box {
			if rows[i].email != m.Email || rows[i].href != m.Link || rows[i].linkText != m.Link {
				t.Errorf("GET %s row %d = %+v, want %q and a link to %q", path, i, rows[i], m.Email, m.Link)
			}
		}
		// The parse gave the address back; the source must hold it
		// escaped, not as it is.
		if strings.Contains(page.source, quirky) || !strings.Contains(page.source, "o&#39;hara&amp;co") {
			t.Errorf("GET %s does not escape %q", path, quirky)
		}
	}
}

type parsedPage struct {
	source, text, refresh string
	doc                   *html.Node
}

type pageRow struct{ email, href, linkText string }

// parsePage GETs an HTML page and parses it.
func parsePage(t *testing.T, rawURL string) *parsedPage {
	t.Helper()
	resp, err := http.Get(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/html; charset=utf-8" {
		t.Fatalf("GET %s = %d %s, want 200 text/html", rawURL, resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") {
		t.Errorf("Content-Security-Policy = %q, want no scripts", csp)
	}
	doc, err := html.Parse(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("html.Parse = %v", err)
	}
	p := &parsedPage{source: string(body), doc: doc}
	var text strings.Builder
	for n := range doc.Descendants() {
		switch {
		case n.Type == html.TextNode:
			text.WriteString(n.Data)
		case n.Type == html.ElementNode && n.Data == "meta" && attr(n, "http-equiv") == "refresh":
			p.refresh = attr(n, "content")
		case n.Type == html.ElementNode && n.Data == "script":
			t.Errorf("GET %s has a <script> element", rawURL)
		}
	}
	p.text = text.String()
	return p
}

// rows returns the table rows of the page's body: the messages.
func (p *parsedPage) rows() []pageRow {
	var rows []pageRow
	for n := range p.doc.Descendants() {
		if n.Type != html.ElementNode || n.Data != "tr" || n.Parent.Data != "tbody" {
			continue
		}
		var cells []*html.Node
		for c := range n.ChildNodes() {
			if c.Type == html.ElementNode && c.Data == "td" {
				cells = append(cells, c)
			}
		}
		if len(cells) != 3 {
			rows = append(rows, pageRow{})
			continue
		}
		r := pageRow{email: textOf(cells[1])}
		for a := range cells[2].Descendants() {
			if a.Type == html.ElementNode && a.Data == "a" {
				r.href, r.linkText = attr(a, "href"), textOf(a)
			}
		}
		rows = append(rows, r)
	}
	return rows
}

func attr(n *html.Node, key string) string {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val
		}
	}
	return ""
}

func textOf(n *html.Node) string {
	var b strings.Builder
	for d := range n.Descendants() {
		if d.Type == html.TextNode {
			b.WriteString(d.Data)
		}
	}
	return b.String()
}
