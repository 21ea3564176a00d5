package jamtest

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// JAM's browser SDK calls JAM from the page, cross-origin: authenticate and
// refresh with a JSON body, the logouts with a bearer token. Each of those
// is preflighted, so a stand-in for JAM must answer CORS as JAM does.

// corsMaxAge is how long a browser may cache a preflight's answer: short,
// so that a server restarted with other origins is seen soon.
const corsMaxAge = 10 * time.Minute

// corsAllowHeaders are the request headers the API's callers send that are
// not CORS-safelisted. They are listed, because "*" does not cover
// Authorization.
const corsAllowHeaders = "Authorization, Content-Type"

// devPrefix is where the server's own pages and APIs live (magic links,
// the outbox): they are for the developer and the test, never for a page
// of another origin, so they never answer CORS.
const devPrefix = "/_jamtest"

func isDevPath(p string) bool {
	return p == devPrefix || strings.HasPrefix(p, devPrefix+"/")
}

// WithCORSOrigins sets the origins whose pages may call the server's API
// from a browser, as JAM's browser SDK does. Each is scheme://host[:port],
// http or https, with no path, not even "/"; a default port is the same
// as none. With no origins, no page of another origin may call it. "*" is
// refused: a test server answering every page on the web hands its tokens
// to any of them. The default is every loopback origin on any port:
// http(s)://localhost, 127.0.0.1, [::1] and *.localhost. Pages and APIs
// under /_jamtest/ never answer CORS, whatever the option.
func WithCORSOrigins(origins ...string) Option {
	return func(c *config) error {
		allowed := make(map[string]bool, len(origins))
		for _, o := range origins {
			norm, err := normalizeOrigin(o)
			if err != nil {
				return fmt.Errorf("jamtest: CORS origin %q: %w", o, err)
			}
			allowed[norm] = true
		}
		c.allowOrigin = func(origin string) bool {
			norm, err := normalizeOrigin(origin)
			return err == nil && allowed[norm]
		}
		return nil
	}
}

// normalizeOrigin returns the serialization of an origin browsers send:
// scheme and host in lower case, no default port.
func normalizeOrigin(origin string) (string, error) {
	if origin == "*" {
		return "", errors.New(`"*" is not allowed; name the origins`)
	}
	u, err := url.Parse(origin)
	switch {
	case err != nil:
		return "", errors.New("not a URL")
	case u.Scheme != "http" && u.Scheme != "https":
		return "", errors.New("scheme must be http or https")
	case u.Host == "" || u.Opaque != "":
		return "", errors.New("no host")
	case u.User != nil || u.Path != "" || u.RawQuery != "" || u.ForceQuery || u.Fragment != "":
		return "", errors.New("must be scheme://host[:port], with no path, query or fragment")
	}
	host, port := strings.ToLower(u.Hostname()), u.Port()
	if port != "" {
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return "", errors.New("invalid port")
		}
	}
	if (u.Scheme == "http" && port == "80") || (u.Scheme == "https" && port == "443") {
		port = ""
	}
	switch {
	case port != "":
		host = net.JoinHostPort(host, port)
	case strings.Contains(host, ":"):
		host = "[" + host + "]" // IPv6
	}
	return u.Scheme + "://" + host, nil
}

// loopbackOrigin reports whether origin is a page served from this
// machine: the default of WithCORSOrigins.
func loopbackOrigin(origin string) bool {
	norm, err := normalizeOrigin(origin)
	if err != nil {
		return false
	}
	u, _ := url.Parse(norm)
	host := u.Hostname()
	return host == "localhost" || strings.HasSuffix(host, ".localhost") ||
		host == "127.0.0.1" || host == "::1"
}

// cors adds the CORS headers of an answer of the API to w, and answers a
// preflight for a route of mux itself, reporting whether it did. Other
// requests, and preflights for paths of no route, go on to be answered as
// usual, with the headers added.
func (s *Server) cors(w http.ResponseWriter, r *http.Request, mux *http.ServeMux) bool {
	h := w.Header()
	h.Add("Vary", "Origin")
	origin := r.Header.Get("Origin")
	allowed := origin != "" && s.cfg.allowOrigin(origin)
	if allowed {
		h.Set("Access-Control-Allow-Origin", origin)
		h.Set("Access-Control-Expose-Headers", "Retry-After")
	}
	if r.Method != http.MethodOptions || origin == "" || r.Header.Get("Access-Control-Request-Method") == "" {
		return false
	}
	methods := routeMethods(mux, r)
	if len(methods) == 0 {
		return false
	}
	h.Add("Vary", "Access-Control-Request-Method")
	h.Add("Vary", "Access-Control-Request-Headers")
	if !allowed {
		writeError(w, http.StatusForbidden, "jamtest: origin not allowed")
		return true
	}
	h.Set("Access-Control-Allow-Methods", strings.Join(methods, ", "))
	h.Set("Access-Control-Allow-Headers", corsAllowHeaders)
	h.Set("Access-Control-Max-Age", strconv.Itoa(int(corsMaxAge/time.Second)))
	w.WriteHeader(http.StatusNoContent)
	return true
}

// routeMethods returns the methods mux routes r's path for, none for a
// path that is not canonical (answered 404 whatever its method).
func routeMethods(mux *http.ServeMux, r *http.Request) []string {
	if p := r.URL.EscapedPath(); p != cleanPath(p) {
		return nil
	}
	var methods []string
	for _, m := range []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete} {
		probe := &http.Request{Method: m, URL: r.URL, Host: r.Host, Header: http.Header{}}
		if _, pattern := mux.Handler(probe); pattern != "" {
			methods = append(methods, m)
		}
	}
	return methods
}
