package jamtest

import (
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
)

// WithAllowedHosts adds host names the server answers requests for, beside
// those it always answers: IP literals, localhost and its subdomains
// (*.localhost), and the hosts of the listen address (WithAddr) and of
// WithPublicURL. A request naming any other host in its Host header gets
// 403 and a {"message"} saying how to allow it. The check defends against
// DNS rebinding: a web page whose name an attacker points at 127.0.0.1
// could otherwise read the outbox, and its working magic links, through
// the browser of a developer running the server. Names match in any case;
// a name is a host without a port.
func WithAllowedHosts(names ...string) Option {
	return func(c *config) error {
		for _, n := range names {
			c.allowedHosts[canonicalHost(n)] = true
		}
		return nil
	}
}

// allowHosts adds the hosts of the listen address and the public URL to
// those WithAllowedHosts gave.
func (c *config) allowHosts() {
	if host, _, err := net.SplitHostPort(c.addr); err == nil {
		c.allowedHosts[canonicalHost(host)] = true
	}
	if u, err := url.Parse(c.publicURL); err == nil && u.Host != "" {
		c.allowedHosts[canonicalHost(u.Hostname())] = true
	}
}

// hostAllowed reports whether the server answers requests whose Host
// header is host.
func (c *config) hostAllowed(host string) bool {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = canonicalHost(host)
	if _, err := netip.ParseAddr(strings.Trim(host, "[]")); err == nil || host == "" {
		// No name to rebind: a page at an IP address is that address's
		// origin. HTTP/1.0 requests may have no Host at all.
		return true
	}
	return host == "localhost" || strings.HasSuffix(host, ".localhost") || c.allowedHosts[host]
}

// canonicalHost is a host name in lower case without a final dot.
func canonicalHost(h string) string {
	return strings.TrimSuffix(strings.ToLower(h), ".")
}

// refuseHost answers a request for a host the server does not serve.
func refuseHost(w http.ResponseWriter) {
	writeError(w, http.StatusForbidden, "jamtest: this server does not answer for the host name in the request, "+
		"a defence against DNS rebinding; use 127.0.0.1 or localhost, or allow the name with jamtest.WithAllowedHosts "+
		"(jam serve --allow-host)")
}
