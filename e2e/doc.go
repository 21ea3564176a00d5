// Package e2e tests the example apps in a real browser. For the web app,
// examples/webapp, headless Chromium, driven by chromedp, logs in through
// the app's form and JAM's magic link, back to the page it asked for, uses
// the app, opens a link in a second browser context and confirms it
// there, lets the ID tokens expire, logs out (once just after expiry),
// and meets the login throttle. It tests the single-page app,
// examples/spa, too: its page calls JAM across origins as JAM's browser
// SDK does (login, the API, refresh, logout, logout everywhere), and any
// error in the browser's console, CORS above all, fails the test
// (go test -run Spa; -spa-png FILE writes its screenshot).
//
// It is a module of its own, so that the library's go.mod gains none of
// chromedp. It needs Chromium: the CHROMIUM environment variable, or
// chromium on PATH (Debian's chromium package). Without one the test is
// skipped, unless CI=true, where it fails.
//
//	cd e2e && go test -count=1 ./...
//
// (-count=1 because go test cannot see that the app, built from the main
// module, changed, and would replay a cached result.)
//
// On a failure it saves a screenshot of each step in its artifact
// directory: keep them with go test -artifacts [-outputdir DIR]. The
// README's screenshot of /me is made by the same test:
//
//	cd e2e && go test -count=1 -args -me-png ../docs/webapp-me.png
package e2e
