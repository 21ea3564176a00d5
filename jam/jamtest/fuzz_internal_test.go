package jamtest

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// FuzzHandler sends the server's handler arbitrary requests: it must not
// panic, must answer every failure with JAM's {"message"} body, must never
// break openapi.yaml (no 500, no violation), must not redirect but from a
// magic link, and must not echo the bearer token.
func FuzzHandler(f *testing.F) {
	srv, err := Start(WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(srv.Close)
	h := srv.handler()
	idToken, refreshToken := srv.IssueTokens("ann@example.com")
	app := "/" + srv.AppID

	methods := []string{"GET", "POST", "DELETE", "PUT", "HEAD", "OPTIONS"}
	f.Add(uint8(1), app+"/authenticate", "", `{"email":"ann@example.com"}`)
	f.Add(uint8(1), app+"/authenticate", "", `{"email":"Ann <ann@example.com>"}`)
	f.Add(uint8(0), app+"/.well-known/jwks.json", "", "")
	f.Add(uint8(1), app+"/verify", "", `{"idToken":"`+idToken+`"}`)
	f.Add(uint8(1), app+"/refresh", "", `{"refreshToken":"`+refreshToken+`"}`)
	f.Add(uint8(2), app+"/user/refresh/"+refreshToken, "Bearer "+idToken, "")
	f.Add(uint8(2), app+"/user/refresh", "Bearer "+idToken, "")
	f.Add(uint8(2), app+"/user/refresh/a%2Fb%20c%25", "Bearer x", "")
	f.Add(uint8(0), "/_jamtest/magic/nope", "", "")
	f.Add(uint8(0), "/_jamtest/outbox?email=ann@example.com", "", "")
	f.Add(uint8(2), "/_jamtest/outbox", "", "")
	f.Add(uint8(0), "/_jamtest/", "", "")
	f.Add(uint8(0), "/_jamtest", "", "")
	f.Add(uint8(1), "/other-app/refresh", "", `{"refreshToken":1}`)
	f.Add(uint8(2), app+"/user/refresh/.", "Bearer "+idToken, "")
	f.Add(uint8(1), "/"+app+"/authenticate", "", `{"email":"ann@example.com"}`)

	f.Fuzz(func(t *testing.T, method uint8, target, auth, body string) {
		r, err := http.NewRequest(methods[int(method)%len(methods)], "http://jam.example"+target, strings.NewReader(body))
		if err != nil || r.URL.Path == "" {
			return
		}
		if auth != "" {
			r.Header.Set("Authorization", auth)
		}
		r.Header.Set("Content-Type", "application/json")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)

		if w.Code >= 500 {
			t.Fatalf("%s %s = %d %s, want no server error", r.Method, target, w.Code, w.Body)
		}
		if w.Code >= 300 && w.Code < 400 && !(w.Code == http.StatusFound && strings.HasPrefix(r.URL.Path, magicLinkPath)) {
			t.Fatalf("%s %s = %d to %q, want no redirect", r.Method, target, w.Code, w.Header().Get("Location"))
		}
		if v := srv.Violations(); len(v) > 0 {
			t.Fatalf("%s %s broke openapi.yaml: %v", r.Method, target, v)
		}
		if w.Code >= 400 && r.Method != "HEAD" {
			var e struct{ Message string }
			if json.Unmarshal(w.Body.Bytes(), &e) != nil || e.Message == "" {
				t.Fatalf("%s %s = %d %q, want a {\"message\"} body", r.Method, target, w.Code, w.Body)
			}
		}
		if _, tok, _ := strings.Cut(auth, " "); len(tok) > 16 && strings.Contains(w.Body.String(), tok) {
			t.Fatalf("%s %s echoes the bearer token", r.Method, target)
		}
	})
}
