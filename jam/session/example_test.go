package session_test

import (
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"

	"github.com/go-jam/go-jam/jam/jamtest"
	"github.com/go-jam/go-jam/jam/session"
)

// An app with magic-link login: the routes, then a login through them as
// a browser makes it, against a jamtest server.
func Example() {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	appURL := "http://" + ln.Addr().String()
	jamSrv := jamtest.NewServer(jamtest.WithRedirectURL(appURL + "/callback"))
	defer jamSrv.Close()

	// The app: a dozen lines.
	sm, err := session.New(jamSrv.Client(),
		session.WithInsecureCookies(), // plain http on loopback, for the example only
		session.WithLandingPage("/me"))
	if err != nil {
		log.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /login", sm.Login)
	mux.HandleFunc("/callback", sm.Callback)
	mux.HandleFunc("POST /logout", sm.Logout)
	mux.Handle("GET /me", sm.Require(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, _ := session.FromContext(r.Context())
		fmt.Fprintf(w, "Hello, %s", s.Token.Claims.Email)
	})))
	app := &httptest.Server{Listener: ln, Config: &http.Server{Handler: mux}}
	app.Start()
	defer app.Close()

	// A browser: the form, the magic link, the callback, the page.
	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar}
	form := func(path string, v url.Values) *http.Request {
		req, _ := http.NewRequest(http.MethodPost, appURL+path, strings.NewReader(v.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Sec-Fetch-Site", "same-origin")
		return req
	}
	res, _ := browser.Do(form("/login", url.Values{"email": {"ann@example.com"}, "next": {"/me"}}))
	res.Body.Close()
	fmt.Println("login:", res.Status)

	link, _ := jamSrv.MagicLink("ann@example.com")
	res, _ = browser.Get(link) // JAM → /callback → /callback → /me
	page, _ := io.ReadAll(res.Body)
	res.Body.Close()
	fmt.Println(res.Request.URL.Path+":", string(page))

	res, _ = browser.Do(form("/logout", nil))
	res.Body.Close()
	res, _ = browser.Get(appURL + "/me")
	res.Body.Close()
	fmt.Println("after logout:", res.Status)
	// Output:
	// login: 200 OK
	// /me: Hello, ann@example.com
	// after logout: 401 Unauthorized
}

// ReturnPath keeps a return-to page on the app's own site.
func ExampleReturnPath() {
	for _, next := range []string{"/orders?id=7", "//evil.example/", "/\t/evil.example", "https://evil.example/"} {
		p, ok := session.ReturnPath(next)
		fmt.Printf("%q %v\n", p, ok)
	}
	// Output:
	// "/orders?id=7" true
	// "" false
	// "" false
	// "" false
}
