package jamtest_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"

	"github.com/go-jam/go-jam/jam"
	"github.com/go-jam/go-jam/jam/jamtest"
)

// The five lines of a test of code that verifies JAM ID tokens.
func Example() {
	ctx := context.Background()

	srv := jamtest.NewServer()
	defer srv.Close()
	client := srv.Client()
	idToken, _ := srv.IssueTokens("ann@example.com")
	tok, err := client.VerifyToken(ctx, idToken)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(tok.Claims.Email)
	// Output: ann@example.com
}

// A whole login: the magic link, the redirect, the tokens in its URL.
func ExampleServer_MagicLink() {
	ctx := context.Background()
	srv := jamtest.NewServer(jamtest.WithRedirectURL("https://app.example/welcome"))
	defer srv.Close()
	client := srv.Client()

	if err := client.Authenticate(ctx, "ann@example.com"); err != nil {
		fmt.Println(err)
		return
	}
	link, _ := srv.MagicLink("ann@example.com")

	// The user's browser follows the link; stop at the redirect.
	browser := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := browser.Get(link)
	if err != nil {
		fmt.Println(err)
		return
	}
	resp.Body.Close()
	location, _ := url.Parse(resp.Header.Get("Location"))
	tokens, _ := jam.TokensFromURL(location)

	tok, err := client.VerifyToken(ctx, tokens.IDToken)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(resp.StatusCode, location.Host+location.Path)
	fmt.Println(tok.Claims.Email, tokens.RefreshToken != "")
	// Output:
	// 302 app.example/welcome
	// ann@example.com true
}

// A key set that cannot be fetched is an outage, not a bad token: answer
// 503, not 401.
func ExampleServer_FailKeySet() {
	srv := jamtest.NewServer()
	defer srv.Close()
	client := srv.Client()
	idToken, _ := srv.IssueTokens("ann@example.com")

	srv.FailKeySet()
	_, err := client.VerifyToken(context.Background(), idToken)
	fmt.Println(errors.Is(err, jam.ErrKeySetUnavailable), errors.Is(err, jam.ErrNotVerified))
	// Output: true false
}

// An HTML error page from a proxy in front of JAM.
func ExampleServer_SetFault() {
	srv := jamtest.NewServer()
	defer srv.Close()
	client := srv.Client()
	_, refreshToken := srv.IssueTokens("ann@example.com")

	// A gateway's HTML 502, once: the client retries it by itself.
	srv.SetFault(jamtest.OpRefreshToken, jamtest.Fault{
		Status:      http.StatusBadGateway,
		ContentType: "text/html",
		Body:        []byte("<h1>502 Bad Gateway</h1>"),
		Times:       1,
	})
	_, err := client.Refresh(context.Background(), refreshToken)
	fmt.Println(err, srv.Requests(jamtest.OpRefreshToken))

	// A 500 is not transient: it reaches the caller.
	srv.SetFault(jamtest.OpRefreshToken, jamtest.Fault{Status: http.StatusInternalServerError, Times: 1})
	_, err = client.Refresh(context.Background(), refreshToken)
	fmt.Println(errors.Is(err, jam.ErrUnexpectedStatus), srv.Requests(jamtest.OpRefreshToken))
	// Output:
	// <nil> 2
	// true 3
}

// Tokens from before a key rotation stop verifying once the client has
// seen the new key set.
func ExampleServer_RotateKey() {
	ctx := context.Background()
	srv := jamtest.NewServer()
	defer srv.Close()
	client := srv.Client()
	oldToken, _ := srv.IssueTokens("ann@example.com")

	srv.RotateKey()
	newToken, _ := srv.IssueTokens("ann@example.com")
	_, err := client.VerifyToken(ctx, newToken)
	fmt.Println(err)
	_, err = client.VerifyToken(ctx, oldToken)
	fmt.Println(errors.Is(err, jam.ErrUnknownKey))
	// Output:
	// <nil>
	// true
}

// A rotation with an overlap: tokens of the old key verify until it is
// removed, and are refused from then on.
func ExampleServer_PublishKey() {
	ctx := context.Background()
	srv := jamtest.NewServer()
	defer srv.Close()
	client := srv.Client()
	oldKey := srv.KeyIDs()[0]
	oldToken, _ := srv.IssueTokens("ann@example.com")

	srv.PublishKey()
	_, err := client.VerifyRemote(ctx, oldToken)
	fmt.Println(err)

	if err := srv.RemoveKey(oldKey); err != nil {
		fmt.Println(err)
		return
	}
	_, err = client.VerifyRemote(ctx, oldToken)
	fmt.Println(errors.Is(err, jam.ErrNotVerified))
	// Output:
	// <nil>
	// true
}

// The app's URL exists only once its server has started, after JAM's:
// point the magic links at its callback then.
func ExampleServer_SetRedirectURL() {
	ctx := context.Background()
	srv := jamtest.NewServer()
	defer srv.Close()
	app := httptest.NewServer(http.NotFoundHandler()) // the app under test
	defer app.Close()
	if err := srv.SetRedirectURL(app.URL + "/callback"); err != nil {
		fmt.Println(err)
		return
	}

	if err := srv.Client().Authenticate(ctx, "ann@example.com"); err != nil {
		fmt.Println(err)
		return
	}
	link, _ := srv.MagicLink("ann@example.com")
	browser := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := browser.Get(link)
	if err != nil {
		fmt.Println(err)
		return
	}
	resp.Body.Close()
	location, _ := url.Parse(resp.Header.Get("Location"))
	fmt.Println(location.Scheme+"://"+location.Host == app.URL, location.Path)
	// Output: true /callback
}
