package jam_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/go-jam/go-jam/jam"
)

// whoami answers with the email of the request's verified token, or
// "anonymous".
var whoami = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	if tok, ok := jam.TokenFromContext(r.Context()); ok {
		fmt.Fprint(w, tok.Claims.Email)
		return
	}
	fmt.Fprint(w, "anonymous")
})

func TestMiddleware(t *testing.T) {
	key := newSigningKey(t, "key-1")
	ks := newKeyServer(t, key)
	client := ks.client(t, newClock())
	c := claims(ks.URL, testNow)
	valid := sign(t, jose.ES512, key.priv, key.kid, c, nil)
	expired := sign(t, jose.ES512, key.priv, key.kid, claimsWith(ks.URL, map[string]any{"exp": testNow.Add(-time.Hour).Unix()}), nil)
	otherApp := sign(t, jose.ES512, key.priv, key.kid, claimsWith(ks.URL, map[string]any{"aud": "other-app"}), nil)

	const (
		challenge      = `Bearer realm="jam"`
		invalidToken   = `Bearer realm="jam", error="invalid_token"`
		invalidRequest = `Bearer realm="jam", error="invalid_request"`
	)
	tests := []struct {
		name      string
		header    []string // Authorization values
		status    int
		challenge string
		body      string // the handler's answer, for 200
	}{
		{"valid", []string{"Bearer " + valid}, 200, "", testEmail},
		{"scheme in lower case", []string{"bearer " + valid}, 200, "", testEmail},
		{"missing header", nil, 401, challenge, ""},
		{"wrong scheme", []string{"Basic YWxhZGRpbjpvcGVuc2VzYW1l"}, 401, challenge, ""},
		{"two headers", []string{"Bearer " + valid, "Bearer " + valid}, 400, invalidRequest, ""},
		{"empty token", []string{"Bearer "}, 400, invalidRequest, ""},
		{"scheme only", []string{"Bearer"}, 400, invalidRequest, ""},
		{"two spaces", []string{"Bearer  " + valid}, 400, invalidRequest, ""},
		{"trailing text", []string{"Bearer " + valid + " extra"}, 400, invalidRequest, ""},
		{"malformed", []string{"Bearer not-a-jwt"}, 401, invalidToken, ""},
		{"expired", []string{"Bearer " + expired}, 401, invalidToken, ""},
		{"wrong audience", []string{"Bearer " + otherApp}, 401, invalidToken, ""},
	}
	handler := client.Middleware()(whoami)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/me", nil)
			for _, v := range tt.header {
				r.Header.Add("Authorization", v)
			}
			w := httptest.NewRecorder()
			handler.ServeHTTP(w, r)

			if w.Code != tt.status {
				t.Fatalf("status = %d, want %d (body %q)", w.Code, tt.status, w.Body)
			}
			if got := w.Header().Get("WWW-Authenticate"); got != tt.challenge {
				t.Errorf("WWW-Authenticate = %q, want %q", got, tt.challenge)
			}
			if tt.status == 200 {
				if w.Body.String() != tt.body {
					t.Errorf("handler saw %q, want %q", w.Body, tt.body)
				}
				return
			}
			assertJSONMessage(t, w)
			for _, v := range tt.header {
				if _, tok, _ := strings.Cut(v, " "); len(tok) > 8 && strings.Contains(w.Body.String(), tok) {
					t.Errorf("body %q echoes the token", w.Body)
				}
			}
		})
	}
}

func assertJSONMessage(t *testing.T, w *httptest.ResponseRecorder) {
	t.Helper()
	if ct := w.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q, want application/json", ct)
	}
	var body struct{ Message string }
	if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil || body.Message == "" {
		t.Errorf("body = %q, want a JSON {\"message\"}", w.Body)
	}
}

// TestMiddlewareOutage: whatever the key-set endpoint answers, the
// middleware answers 503, never the 400 or 401 of a bad request.
func TestMiddlewareOutage(t *testing.T) {
	key := newSigningKey(t, "key-1")
	for _, status := range []int{400, 401, 404, 500, 502} {
		t.Run(fmt.Sprint(status), func(t *testing.T) {
			ks := newKeyServer(t, key)
			ks.respond(status, []byte(`{"message":"no"}`))
			client := ks.client(t, newClock())
			valid := sign(t, jose.ES512, key.priv, key.kid, claims(ks.URL, testNow), nil)

			r := httptest.NewRequest("GET", "/me", nil)
			r.Header.Set("Authorization", "Bearer "+valid)
			w := httptest.NewRecorder()
			client.Middleware()(whoami).ServeHTTP(w, r)

			if w.Code != http.StatusServiceUnavailable {
				t.Errorf("status when the key set is answered %d = %d, want 503", status, w.Code)
			}
			if got := w.Header().Get("WWW-Authenticate"); got != "" {
				t.Errorf("WWW-Authenticate = %q during an outage, want none: the token is not at fault", got)
			}
			assertJSONMessage(t, w)
		})
	}
}

func TestMiddlewareOptions(t *testing.T) {
	key := newSigningKey(t, "key-1")
	ks := newKeyServer(t, key)
	client := ks.client(t, newClock())
	valid := sign(t, jose.ES512, key.priv, key.kid, claims(ks.URL, testNow), nil)

	fromCookie := jam.WithTokenExtractor(func(r *http.Request) (string, error) {
		c, err := r.Cookie("id_token")
		if err != nil {
			return "", jam.ErrNoToken
		}
		return c.Value, nil
	})
	var handled error
	teapot := jam.WithErrorHandler(func(w http.ResponseWriter, r *http.Request, err error) {
		handled = err
		w.WriteHeader(http.StatusTeapot)
	})

	tests := []struct {
		name    string
		opts    []jam.MiddlewareOption
		cookie  string
		bearer  string
		status  int
		body    string
		wantErr error // what the error handler got
	}{
		{"cookie", []jam.MiddlewareOption{fromCookie}, valid, "", 200, testEmail, nil},
		{"cookie missing", []jam.MiddlewareOption{fromCookie}, "", valid, 401, "", nil},
		{"error handler, missing", []jam.MiddlewareOption{teapot}, "", "", 418, "", jam.ErrNoToken},
		{"error handler, invalid", []jam.MiddlewareOption{teapot}, "", "x.y.z", 418, "", jam.ErrMalformedToken},
		{"error handler, malformed header", []jam.MiddlewareOption{teapot}, "", " ", 418, "", jam.ErrInvalidRequest},
		{"optional, anonymous", []jam.MiddlewareOption{jam.WithCredentialsOptional()}, "", "", 200, "anonymous", nil},
		{"optional, valid", []jam.MiddlewareOption{jam.WithCredentialsOptional()}, "", valid, 200, testEmail, nil},
		{"optional, invalid", []jam.MiddlewareOption{jam.WithCredentialsOptional()}, "", "x.y.z", 401, "", nil},
		{"optional, malformed header", []jam.MiddlewareOption{jam.WithCredentialsOptional()}, "", " ", 400, "", nil},
		{"nil options", []jam.MiddlewareOption{nil, jam.WithTokenExtractor(nil), jam.WithErrorHandler(nil)}, "", valid, 200, testEmail, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			handled = nil
			r := httptest.NewRequest("GET", "/me", nil)
			if tt.cookie != "" {
				r.AddCookie(&http.Cookie{Name: "id_token", Value: tt.cookie})
			}
			if tt.bearer != "" {
				r.Header.Set("Authorization", "Bearer "+tt.bearer)
			}
			w := httptest.NewRecorder()
			client.Middleware(tt.opts...)(whoami).ServeHTTP(w, r)
			if w.Code != tt.status {
				t.Fatalf("status = %d, want %d", w.Code, tt.status)
			}
			if tt.status == 200 && w.Body.String() != tt.body {
				t.Errorf("handler saw %q, want %q", w.Body, tt.body)
			}
			if tt.wantErr != nil && !errors.Is(handled, tt.wantErr) {
				t.Errorf("error handler got %v, want %v", handled, tt.wantErr)
			}
			if errors.Is(handled, jam.ErrBadRequest) {
				t.Errorf("error handler got %v, which matches JAM's ErrBadRequest: the request's fault is not JAM's answer", handled)
			}
		})
	}
}

// TestMiddlewareWithServeMux runs the middleware over real HTTP, around a
// ServeMux, and around a handler behind chi-style Use(...) chaining.
func TestMiddlewareWithServeMux(t *testing.T) {
	key := newSigningKey(t, "key-1")
	ks := newKeyServer(t, key)
	client := ks.client(t, newClock())
	valid := sign(t, jose.ES512, key.priv, key.kid, claims(ks.URL, testNow), nil)

	mux := http.NewServeMux()
	mux.Handle("GET /me", client.Middleware()(whoami))
	mux.HandleFunc("GET /health", func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "ok") })

	chain := []func(http.Handler) http.Handler{client.Middleware()}
	var chained http.Handler = whoami
	for i := len(chain) - 1; i >= 0; i-- {
		chained = chain[i](chained)
	}
	mux.Handle("GET /chained", chained)

	srv := httptest.NewServer(mux)
	defer srv.Close()

	get := func(path, token string) (int, string) {
		req, _ := http.NewRequest("GET", srv.URL+path, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, string(b)
	}
	for _, path := range []string{"/me", "/chained"} {
		if code, body := get(path, valid); code != 200 || body != testEmail {
			t.Errorf("GET %s with a valid token = %d %q, want 200 %q", path, code, body, testEmail)
		}
		if code, _ := get(path, ""); code != 401 {
			t.Errorf("GET %s without a token = %d, want 401", path, code)
		}
	}
	if code, body := get("/health", ""); code != 200 || body != "ok" {
		t.Errorf("GET /health = %d %q, want the unprotected route untouched", code, body)
	}
}
