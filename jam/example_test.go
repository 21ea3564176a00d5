package jam_test

import (
	"context"
	"crypto/ecdsa"
	"encoding/json"
	"errors"
	"expvar"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/url"

	"github.com/go-jam/go-jam/jam"
	"github.com/go-jam/go-jam/jam/jamtest"
)

func Example() {
	// A JAM test server stands in for the real service, so that the example
	// runs offline. A program needs only jam.New(appID), or jam.NewFromEnv().
	srv := jamtest.NewServer()
	defer srv.Close()
	ctx := context.Background()

	client, err := jam.New(srv.AppID, jam.WithBaseURL(srv.URL))
	if err != nil {
		log.Fatal(err)
	}
	// The user follows the magic link; the app's redirect URL receives the
	// tokens.
	idToken, _ := srv.IssueTokens("ann@example.com")

	tok, err := client.VerifyToken(ctx, idToken)
	switch {
	case errors.Is(err, jam.ErrNotVerified):
		fmt.Println("401: log in again")
	case err != nil:
		fmt.Println("503: try again later")
	default:
		fmt.Println("hello,", tok.Claims.Email)
	}
	// Output: hello, ann@example.com
}

func ExampleClient_Authenticate() {
	srv := jamtest.NewServer() // stands in for JAM
	defer srv.Close()
	client := srv.Client()
	ctx := context.Background()

	if err := client.Authenticate(ctx, "ann@example.com"); err != nil {
		log.Fatal(err)
	}
	_, sent := srv.MagicLink("ann@example.com")
	fmt.Println("magic link sent:", sent)

	err := client.Authenticate(ctx, "not an address")
	fmt.Println(errors.Is(err, jam.ErrBadRequest), err)
	// Output:
	// magic link sent: true
	// true jam: authenticate: bad request (HTTP 400): "Invalid email address"
}

func ExampleTokensFromURL() {
	// The request JAM's redirect sends the browser to, in the app's
	// callback handler: r.URL.
	u, _ := url.Parse("https://app.example/callback?idToken=eyJhbGciOi.eyJlbWFp.AZqvVWSX&refreshToken=7Jq2xN")

	tokens, err := jam.TokensFromURL(u)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(tokens.IDToken != "", tokens.RefreshToken != "")
	fmt.Println(tokens) // redacted, so that tokens stay out of logs
	// Output:
	// true true
	// {IDToken:REDACTED RefreshToken:REDACTED}
}

func ExampleClient_VerifyRemote() {
	srv := jamtest.NewServer() // stands in for JAM
	defer srv.Close()
	client := srv.Client()
	idToken, _ := srv.IssueTokens("ann@example.com")

	tok, err := client.VerifyRemote(context.Background(), idToken)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(tok.Claims.Email, tok.Claims.TokenUse)
	// Output: ann@example.com id
}

func ExampleClient_Refresh() {
	srv := jamtest.NewServer() // stands in for JAM
	defer srv.Close()
	client := srv.Client()
	ctx := context.Background()
	_, refreshToken := srv.IssueTokens("ann@example.com")

	idToken, err := client.Refresh(ctx, refreshToken)
	if err != nil {
		log.Fatal(err)
	}
	tok, err := client.VerifyToken(ctx, idToken)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(tok.Claims.Email)

	_, err = client.Refresh(ctx, "no-such-refresh-token")
	fmt.Println(errors.Is(err, jam.ErrUnauthorized))
	// Output:
	// ann@example.com
	// true
}

func ExampleClient_DeleteRefreshToken() {
	srv := jamtest.NewServer() // stands in for JAM
	defer srv.Close()
	client := srv.Client()
	ctx := context.Background()
	idToken, refreshToken := srv.IssueTokens("ann@example.com")

	// Log out on this device.
	if err := client.DeleteRefreshToken(ctx, idToken, refreshToken); err != nil {
		log.Fatal(err)
	}
	_, err := client.Refresh(ctx, refreshToken)
	fmt.Println(err)
	// Output: jam: refresh: unauthorized (HTTP 401): "Refresh token was invalid or expired"
}

func ExampleClient_DeleteAllRefreshTokens() {
	srv := jamtest.NewServer() // stands in for JAM
	defer srv.Close()
	client := srv.Client()
	ctx := context.Background()
	idToken, phone := srv.IssueTokens("ann@example.com")
	_, laptop := srv.IssueTokens("ann@example.com")

	// Log out everywhere.
	if err := client.DeleteAllRefreshTokens(ctx, idToken); err != nil {
		log.Fatal(err)
	}
	for _, refreshToken := range []string{phone, laptop} {
		_, err := client.Refresh(ctx, refreshToken)
		fmt.Println(errors.Is(err, jam.ErrUnauthorized))
	}
	// Output:
	// true
	// true
}

func ExampleClient_JWKS() {
	srv := jamtest.NewServer() // stands in for JAM
	defer srv.Close()

	set, err := srv.Client().JWKS(context.Background())
	if err != nil {
		log.Fatal(err)
	}
	for _, k := range set.Keys {
		pub := k.Key.(*ecdsa.PublicKey)
		fmt.Println(pub.Curve.Params().Name, k.Algorithm, k.Use)
	}
	// Output: P-521 ES512 sig
}

func ExampleClient_Middleware() {
	srv := jamtest.NewServer() // stands in for JAM
	defer srv.Close()
	client := srv.Client()

	mux := http.NewServeMux()
	mux.Handle("GET /me", client.Middleware()(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok, _ := jam.TokenFromContext(r.Context())
		fmt.Fprintln(w, "hello,", tok.Claims.Email)
	})))
	api := httptest.NewServer(mux)
	defer api.Close()

	idToken, _ := srv.IssueTokens("ann@example.com")
	for _, auth := range []string{"Bearer " + idToken, ""} {
		req, _ := http.NewRequest("GET", api.URL+"/me", nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			log.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		fmt.Printf("%d %s", resp.StatusCode, body)
	}
	// Output:
	// 200 hello, ann@example.com
	// 401 {"message":"missing bearer token"}
}

// Publishing the counters with expvar, the standard library's metrics
// endpoint (/debug/vars), needs no metrics dependency: a Func is called on
// every scrape, and Stats is cheap enough for that.
func ExampleClient_Stats() {
	srv := jamtest.NewServer() // stands in for JAM
	defer srv.Close()
	client := srv.Client()

	expvar.Publish("jam", expvar.Func(func() any { return client.Stats() }))

	idToken, _ := srv.IssueTokens("ann@example.com")
	for range 3 {
		client.VerifyToken(context.Background(), idToken)
	}
	client.VerifyToken(context.Background(), "not a token")

	// What GET /debug/vars shows under "jam".
	var stats jam.Stats
	if err := json.Unmarshal([]byte(expvar.Get("jam").String()), &stats); err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%d verifications, %d from the cache, %d refused; %d key-set fetch, %d key\n",
		stats.Verifications, stats.CacheHits, stats.Refused, stats.KeySetFetches, stats.Keys)
	// Output: 4 verifications, 2 from the cache, 1 refused; 1 key-set fetch, 1 key
}
