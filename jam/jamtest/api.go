package jamtest

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/mail"
	"path"
	"strings"

	"github.com/go-jam/go-jam/generated/jamserver"
)

// JAM's messages, where the SDKs tell them.
const (
	msgAppNotFound    = "App not found"
	msgRefreshInvalid = "Refresh token was invalid or expired"
	msgIDTokenInvalid = "ID token is invalid"
)

// handler routes the operations through the code generated from
// openapi.yaml, and the magic links and the outbox, which are not JAM's;
// everything else answers 404 or 405 with a {"message"} body.
func (s *Server) handler() http.Handler {
	mux := http.NewServeMux()
	strict := jamserver.NewStrictHandlerWithOptions(api{s}, []jamserver.StrictMiddlewareFunc{withBearer},
		jamserver.StrictHTTPServerOptions{
			RequestErrorHandlerFunc: func(w http.ResponseWriter, r *http.Request, err error) {
				writeError(w, http.StatusBadRequest, "jamtest: request body is not valid JSON for this operation")
			},
			ResponseErrorHandlerFunc: func(w http.ResponseWriter, r *http.Request, err error) {
				s.cfg.logger.Error("jamtest: handler failed", "err", err)
				writeError(w, http.StatusInternalServerError, "jamtest: internal error")
			},
		})
	jamserver.HandlerWithOptions(strict, jamserver.StdHTTPServerOptions{
		BaseRouter:  mux,
		Middlewares: []jamserver.MiddlewareFunc{s.enforce},
		ErrorHandlerFunc: func(w http.ResponseWriter, r *http.Request, err error) {
			msg := "jamtest: invalid request"
			if e, ok := errors.AsType[*jamserver.InvalidParamFormatError](err); ok {
				msg = "jamtest: invalid path parameter " + e.ParamName
			}
			writeError(w, http.StatusBadRequest, msg)
		},
	})
	mux.HandleFunc("GET "+magicLinkPath+"{code}", s.followMagicLink)
	mux.HandleFunc("GET "+outboxPath, s.getOutbox)
	mux.HandleFunc("DELETE "+outboxPath, s.deleteOutbox)
	mux.HandleFunc("GET "+outboxPagePath+"{$}", s.showOutbox)
	// Else ServeMux would redirect /_jamtest to /_jamtest/.
	mux.HandleFunc("GET "+strings.TrimSuffix(outboxPagePath, "/"), s.showOutbox)

	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Content-Type-Options", "nosniff")
		if !s.cfg.hostAllowed(r.Host) {
			refuseHost(w)
			return
		}
		if !isDevPath(r.URL.Path) && s.cors(w, r, mux) {
			return // a preflight, which is not a request for an operation
		}
		// ServeMux answers a path that is not canonical ("/a/./b", "//a",
		// "/a/b/..") with a redirect to the clean one, whatever the
		// method: a client following it with its bearer token would
		// DELETE …/user/refresh, every refresh token, for a request that
		// named …/user/refresh/. instead. No JAM path is like that.
		if p := r.URL.EscapedPath(); p != cleanPath(p) {
			writeError(w, http.StatusNotFound, "jamtest: "+http.StatusText(http.StatusNotFound))
			return
		}
		if _, pattern := mux.Handler(r); pattern != "" {
			mux.ServeHTTP(w, r)
			return
		}
		// ServeMux's own answer, plain text, to a request no pattern
		// matches: 404, or 405 with Allow.
		h, _ := mux.Handler(r)
		resp := &bufferedResponse{header: make(http.Header)}
		h.ServeHTTP(resp, r)
		code := resp.statusCode()
		if code != http.StatusMethodNotAllowed {
			code = http.StatusNotFound
		}
		if allow := resp.header.Get("Allow"); allow != "" {
			w.Header().Set("Allow", allow)
		}
		writeError(w, code, "jamtest: "+http.StatusText(code))
	})
}

// cleanPath is the path ServeMux would redirect p to: p with "." and ".."
// segments resolved and slashes not doubled, keeping a trailing slash.
func cleanPath(p string) string {
	if p == "" || p[0] != '/' {
		p = "/" + p
	}
	clean := path.Clean(p)
	if strings.HasSuffix(p, "/") && clean != "/" {
		clean += "/"
	}
	return clean
}

// writeError answers with JAM's error body.
func writeError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(jamserver.Error{Message: msg})
}

// bearerKey is the context key of the token of the Authorization header.
type bearerKey struct{}

// withBearer hands the bearer token to the strict handlers, which see no
// headers.
func withBearer(f jamserver.StrictHandlerFunc, _ string) jamserver.StrictHandlerFunc {
	return func(ctx context.Context, w http.ResponseWriter, r *http.Request, req any) (any, error) {
		scheme, token, _ := strings.Cut(r.Header.Get("Authorization"), " ")
		if !strings.EqualFold(scheme, "Bearer") {
			token = ""
		}
		return f(context.WithValue(ctx, bearerKey{}, strings.TrimSpace(token)), w, r, req)
	}
}

// bearerEmail returns the address of the valid ID token the request bears.
func (s *Server) bearerEmail(ctx context.Context) (string, bool) {
	token, _ := ctx.Value(bearerKey{}).(string)
	email, err := s.verifyIDToken(token)
	return email, err == nil
}

// api implements the operations of openapi.yaml through the strict server
// interface generated from it. It is a type of its own so that Server does
// not export the operations as methods.
type api struct{ s *Server }

var _ jamserver.StrictServerInterface = api{}

func (a api) Authenticate(_ context.Context, req jamserver.AuthenticateRequestObject) (jamserver.AuthenticateResponseObject, error) {
	if req.AppId != a.s.AppID {
		return jamserver.Authenticate404JSONResponse{Message: msgAppNotFound}, nil
	}
	if req.Body == nil || !bareAddress(req.Body.Email) {
		return jamserver.Authenticate400JSONResponse{Message: "Invalid email address"}, nil
	}
	a.s.sendMagicLink(req.Body.Email)
	return jamserver.Authenticate200Response{}, nil
}

// bareAddress reports whether s is an email address alone, as net/mail
// reads it: no display name, no angle brackets, no comments.
func bareAddress(s string) bool {
	addr, err := mail.ParseAddress(s)
	return err == nil && addr.Name == "" && addr.Address == s && len(s) <= 254
}

func (a api) GetJWKS(_ context.Context, req jamserver.GetJWKSRequestObject) (jamserver.GetJWKSResponseObject, error) {
	if req.AppId != a.s.AppID {
		return jamserver.GetJWKS404JSONResponse{Message: msgAppNotFound}, nil
	}
	keys := a.s.publishedKeys()
	set := jamserver.GetJWKS200JSONResponse{Keys: make([]jamserver.JWK, len(keys))}
	for i, k := range keys {
		set.Keys[i] = k.public
	}
	return set, nil
}

func (a api) VerifyToken(_ context.Context, req jamserver.VerifyTokenRequestObject) (jamserver.VerifyTokenResponseObject, error) {
	if req.AppId != a.s.AppID {
		return jamserver.VerifyToken404JSONResponse{Message: msgAppNotFound}, nil
	}
	if req.Body == nil || req.Body.IdToken == "" {
		return jamserver.VerifyToken400JSONResponse{Message: "idToken is required"}, nil
	}
	if _, err := a.s.verifyIDToken(req.Body.IdToken); err != nil {
		return jamserver.VerifyToken401JSONResponse{Message: msgIDTokenInvalid}, nil
	}
	return jamserver.VerifyToken200Response{}, nil
}

func (a api) RefreshToken(_ context.Context, req jamserver.RefreshTokenRequestObject) (jamserver.RefreshTokenResponseObject, error) {
	switch {
	case req.AppId != a.s.AppID:
		return jamserver.RefreshToken404JSONResponse{Message: msgAppNotFound}, nil
	case a.s.cfg.refreshDisabled:
		return jamserver.RefreshToken400JSONResponse{Message: "This app does not allow refresh"}, nil
	case req.Body == nil || req.Body.RefreshToken == "":
		return jamserver.RefreshToken400JSONResponse{Message: "refreshToken is required"}, nil
	}
	a.s.mu.Lock()
	email, ok := a.s.refresh[req.Body.RefreshToken]
	a.s.mu.Unlock()
	if !ok {
		return jamserver.RefreshToken401JSONResponse{Message: msgRefreshInvalid}, nil
	}
	idToken, err := a.s.signIDToken(email)
	if err != nil {
		return nil, err
	}
	return jamserver.RefreshToken200JSONResponse{IdToken: idToken}, nil
}

func (a api) DeleteRefreshToken(ctx context.Context, req jamserver.DeleteRefreshTokenRequestObject) (jamserver.DeleteRefreshTokenResponseObject, error) {
	if req.AppId != a.s.AppID {
		return jamserver.DeleteRefreshToken404JSONResponse{Message: msgAppNotFound}, nil
	}
	email, ok := a.s.bearerEmail(ctx)
	if !ok {
		return jamserver.DeleteRefreshToken401JSONResponse{Message: msgIDTokenInvalid}, nil
	}
	a.s.mu.Lock()
	// Someone else's refresh token is as good as unknown: saying more
	// would confirm that it exists.
	owned := a.s.refresh[req.RefreshToken] == email
	if owned {
		delete(a.s.refresh, req.RefreshToken)
	}
	a.s.mu.Unlock()
	if !owned {
		return jamserver.DeleteRefreshToken404JSONResponse{Message: "Refresh token not found"}, nil
	}
	if err := a.s.save(); err != nil {
		return nil, err
	}
	return jamserver.DeleteRefreshToken204Response{}, nil
}

func (a api) DeleteAllRefreshTokens(ctx context.Context, req jamserver.DeleteAllRefreshTokensRequestObject) (jamserver.DeleteAllRefreshTokensResponseObject, error) {
	if req.AppId != a.s.AppID {
		return jamserver.DeleteAllRefreshTokens404JSONResponse{Message: msgAppNotFound}, nil
	}
	email, ok := a.s.bearerEmail(ctx)
	if !ok {
		return jamserver.DeleteAllRefreshTokens401JSONResponse{Message: msgIDTokenInvalid}, nil
	}
	a.s.mu.Lock()
	n := len(a.s.refresh)
	for token, owner := range a.s.refresh {
		if owner == email {
			delete(a.s.refresh, token)
		}
	}
	changed := len(a.s.refresh) != n
	a.s.mu.Unlock()
	if changed {
		if err := a.s.save(); err != nil {
			return nil, err
		}
	}
	return jamserver.DeleteAllRefreshTokens204Response{}, nil
}

// followMagicLink is where a magic link leads: a redirect to the app with
// the tokens of a new login.
func (s *Server) followMagicLink(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		// A HEAD, from a link checker say, must not spend the link.
		w.Header().Set("Allow", http.MethodGet)
		w.WriteHeader(http.StatusMethodNotAllowed)
		return
	}
	email, ok := s.useMagicLink(r.PathValue("code"))
	if !ok {
		writeError(w, http.StatusNotFound, "jamtest: this magic link is unknown, used or expired")
		return
	}
	idToken, refreshToken, err := s.issue(email)
	if err != nil {
		s.cfg.logger.Error("jamtest: magic link failed", "err", err)
		writeError(w, http.StatusInternalServerError, "jamtest: internal error")
		return
	}
	u := *s.cfg.redirectURL
	q := u.Query()
	q.Set("idToken", idToken)
	if refreshToken != "" {
		q.Set("refreshToken", refreshToken)
	}
	u.RawQuery = q.Encode()
	h := w.Header()
	h.Set("Location", u.String())
	h.Set("Cache-Control", "no-store")
	h.Set("Referrer-Policy", "no-referrer")
	w.WriteHeader(http.StatusFound)
}
