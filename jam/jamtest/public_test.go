package jamtest_test

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"testing"

	"github.com/go-jam/go-jam/jam"
	"github.com/go-jam/go-jam/jam/jamtest"
)

// behindProxy starts a server reached only through a reverse proxy that
// serves it below /jam, and returns it and the proxy's URL.
func behindProxy(t *testing.T, opts ...jamtest.Option) (*jamtest.Server, string) {
	t.Helper()
	// The proxy's address must be known before the server starts, and the
	// server's before the proxy's handler is set.
	proxy := httptest.NewUnstartedServer(nil)
	proxyURL := "http://" + proxy.Listener.Addr().String()
	srv := newServer(t, append(opts, jamtest.WithPublicURL(proxyURL+"/jam/"))...)
	target := &url.URL{Scheme: "http", Host: srv.Addr().String()}
	proxy.Config.Handler = http.StripPrefix("/jam", &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) { r.SetURL(target) },
	})
	proxy.Start()
	t.Cleanup(proxy.Close)
	return srv, proxyURL
}

// TestPublicURL runs the whole flow through a reverse proxy that serves
// the server below a path prefix, with the client pointed at the proxy.
func TestPublicURL(t *testing.T) {
	ctx := t.Context()
	srv, proxyURL := behindProxy(t)
	base := proxyURL + "/jam"
	if srv.URL != base {
		t.Fatalf("URL = %q, want the public URL %q without its trailing slash", srv.URL, base)
	}
	// Not checked(t): the contract's paths do not have the proxy's prefix.
	client, err := jam.New(srv.AppID, jam.WithBaseURL(base))
	if err != nil {
		t.Fatal(err)
	}

	if err := client.Authenticate(ctx, ann); err != nil {
		t.Fatalf("Authenticate through the proxy = %v", err)
	}
	link, ok := srv.MagicLink(ann)
	if !ok || !strings.HasPrefix(link, base+"/_jamtest/magic/") {
		t.Fatalf("MagicLink(%q) = %v; want a link below %s/_jamtest/magic/", ann, ok, base)
	}
	if box := getOutbox(t, base+"/_jamtest/outbox?email="+url.QueryEscape(ann)); len(box) != 1 || box[0].Link != link {
		t.Errorf("GET outbox through the proxy = %v, want the one link %s sent", box, ann)
	}
	status, location := follow(t, link)
	if status != http.StatusFound {
		t.Fatalf("GET magic link through the proxy = %d, want 302", status)
	}
	u, err := url.Parse(location)
	if err != nil {
		t.Fatal(err)
	}
	tokens, err := jam.TokensFromURL(u)
	if err != nil {
		t.Fatal(err)
	}

	tok, err := client.VerifyToken(ctx, tokens.IDToken)
	if err != nil {
		t.Fatalf("VerifyToken(token of the public URL) = %v, want nil", err)
	}
	if want := base + "/" + srv.AppID; tok.Claims.Issuer != want || client.Issuer() != want {
		t.Errorf("iss = %q, client.Issuer() = %q; want %q", tok.Claims.Issuer, client.Issuer(), want)
	}
	if _, err := client.VerifyRemote(ctx, tokens.IDToken); err != nil {
		t.Errorf("VerifyRemote through the proxy = %v, want nil", err)
	}
	idToken, err := client.Refresh(ctx, tokens.RefreshToken)
	if err != nil {
		t.Fatalf("Refresh through the proxy = %v", err)
	}
	if err := client.DeleteRefreshToken(ctx, idToken, tokens.RefreshToken); err != nil {
		t.Errorf("DeleteRefreshToken through the proxy = %v, want nil", err)
	}
	if err := client.DeleteAllRefreshTokens(ctx, idToken); err != nil {
		t.Errorf("DeleteAllRefreshTokens through the proxy = %v, want nil", err)
	}

	// Reached at the address it listens on, the server's tokens name
	// another issuer: the failure WithPublicURL exists for.
	direct, err := jam.New(srv.AppID, jam.WithBaseURL("http://"+srv.Addr().String()))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := direct.VerifyToken(ctx, idToken); !errors.Is(err, jam.ErrIssuer) {
		t.Errorf("VerifyToken at the listen address = %v, want ErrIssuer", err)
	}
}

// TestPublicURLOnEveryInterface: a server listening on every interface
// still signs the public URL, not a loopback one.
func TestPublicURLOnEveryInterface(t *testing.T) {
	srv := newServer(t, jamtest.WithAddr("0.0.0.0:0"), jamtest.WithPublicURL("http://jam:8787"))
	idToken, _ := srv.IssueTokens(ann)
	claims := payload(t, idToken)
	if want := "http://jam:8787/" + srv.AppID; claims["iss"] != want || srv.URL != "http://jam:8787" {
		t.Errorf("iss = %v, URL = %q; want %q and http://jam:8787", claims["iss"], srv.URL, want)
	}
}

// TestValidationIsJams checks that jamtest accepts the app IDs and base
// URLs jam.New does, and no others: a server must be one a jam client can
// use.
func TestValidationIsJams(t *testing.T) {
	urls := []string{
		"", "localhost:8787", "jam:8787/x", "/jam", "ftp://jam", "http://", "http://user:pw@jam",
		"http://jam/?a=b", "http://jam/?", "http://jam/#top", "http://jam/%zz",
		"http://jam:8787", "https://proxy.example/jam/", "HTTP://JAM",
	}
	for _, raw := range urls {
		_, want := jam.New("app", jam.WithBaseURL(raw))
		srv, err := jamtest.Start(jamtest.WithPublicURL(raw))
		if err == nil {
			srv.Close()
		}
		if (err == nil) != (want == nil) {
			t.Errorf("Start(WithPublicURL(%q)) = %v, want %v, as jam.WithBaseURL", raw, err, want)
		}
	}
	if srv := newServer(t, jamtest.WithPublicURL("https://proxy.example/jam/")); srv.URL != "https://proxy.example/jam" {
		t.Errorf("URL = %q, want https://proxy.example/jam", srv.URL)
	}

	for _, id := range []string{"", ".", "..", "my-app", "b19a21b4-ad9d-4fd7-88c1-1b68b825c671"} {
		_, want := jam.New(id)
		srv, err := jamtest.Start(jamtest.WithAppID(id))
		if err == nil {
			srv.Close()
		}
		if (err == nil) != (want == nil) {
			t.Errorf("Start(WithAppID(%q)) = %v, want %v, as jam.New", id, err, want)
		}
	}
}
