package jam

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

// FuzzErrorBody: whatever status and body JAM answers with, call does not
// panic; a 2xx gives the body back, anything else an *Error with the
// status, one sentinel, and a message that is short, printable and free of
// the request's secret.
func FuzzErrorBody(f *testing.F) {
	f.Add(400, []byte(`{"message":"Invalid email"}`))
	f.Add(401, []byte(`{"message":"Refresh token was invalid or expired"}`))
	f.Add(404, []byte(`{"message":"App not fo`))
	f.Add(502, []byte(`<html><body>502 Bad Gateway</body></html>`))
	f.Add(200, []byte(`{"idToken":"x"}`))
	f.Add(500, []byte(`{"message":"token r3fr3sh-t0k3n-s3cr3t leaked, ann@example.com"}`))
	const secret = "r3fr3sh-t0k3n-s3cr3t"

	f.Fuzz(func(t *testing.T, status int, body []byte) {
		if status < 100 || status > 999 {
			return
		}
		send := func(context.Context) (*http.Response, error) {
			return &http.Response{StatusCode: status, Header: http.Header{}, Body: io.NopCloser(bytes.NewReader(body))}, nil
		}
		got, _, e := roundTrip(context.Background(), request{op: opRefresh, send: send, secrets: []string{secret}})
		if status >= 200 && status < 300 && len(body) <= maxBodySize {
			if e != nil || !bytes.Equal(got, body) {
				t.Fatalf("roundTrip(%d) = %q, %v; want the body", status, got, e)
			}
			return
		}
		if e == nil || e.StatusCode != status {
			t.Fatalf("roundTrip(%d) = %v, want a *Error with the status", status, e)
		}
		var err error = e
		n := 0
		for _, s := range []error{ErrBadRequest, ErrUnauthorized, ErrNotFound, ErrUnexpectedStatus} {
			if errors.Is(err, s) {
				n++
			}
		}
		if n != 1 {
			t.Fatalf("roundTrip(%d) = %v matches %d sentinels, want 1", status, err, n)
		}
		m := e.Message
		if len(m) > 200+len("…") || !utf8.ValidString(m) || strings.ContainsFunc(m, unicode.IsControl) {
			t.Fatalf("roundTrip(%d) Message = %q, want at most 200 printable bytes", status, m)
		}
		if strings.Contains(err.Error(), secret) || strings.Contains(err.Error(), "ann@example.com") {
			t.Fatalf("roundTrip(%d) error %q holds a secret", status, err)
		}
	})
}
