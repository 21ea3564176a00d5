// Command webapp is a web app that logs its users in with Just
// Authenticate Me (JAM) through package jam/session: a login form, JAM's
// magic link, a protected page and JSON API, renewal, logout. Copy it.
//
//	go run ./examples/webapp [-addr 127.0.0.1:8080] [-jam-addr 127.0.0.1:8787] [-token-ttl 30m] [-refresh-before 5m]
//
// Unconfigured, it runs its own JAM in process (jamtest), whose outbox
// shows the links it "emails", and, being for development, drops Secure
// and __Host- from its cookies. With JAM_APP_ID (and JAM_BASE_URL) set it
// uses that JAM, with Secure cookies: serve it over HTTPS. It prints
// "name: value" lines (app, jam, app ID, outbox) once it listens. On
// SIGINT or SIGTERM it lets requests finish for up to 3 seconds, then
// closes; a second signal ends it at once. Exit status: 0 after a signal,
// 1 on a failure, 2 on a usage error.
package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/go-jam/go-jam/jam"
	"github.com/go-jam/go-jam/jam/jamtest"
	"github.com/go-jam/go-jam/jam/session"
)

func main() {
	// stop, called after the first signal, gives the next its default
	// effect: the process ends at once.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	os.Exit(run(ctx, stop, os.Args[1:], os.Stdout, os.Stderr))
}

// shutdownTimeout bounds how long requests may finish after a signal.
const shutdownTimeout = 3 * time.Second

// run serves until ctx is done, calls stop, shuts down, and returns the exit status.
func run(ctx context.Context, stop func(), args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("webapp", flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:8080", "TCP address the app listens on")
	jamAddr := fs.String("jam-addr", "127.0.0.1:8787", "TCP address the in-process JAM server listens on")
	ttl := fs.Duration("token-ttl", jamtest.DefaultTokenTTL, "lifetime of the in-process JAM server's ID tokens")
	refreshBefore := fs.Duration("refresh-before", session.DefaultRefreshBefore, "renew an ID token this long before it expires")
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: webapp [flags]\n\nWith JAM_APP_ID (and JAM_BASE_URL) set, the app uses that JAM; else it runs one in process.")
		fs.PrintDefaults()
	}
	usage := func(msg string) int { fmt.Fprintln(stderr, "webapp: "+msg); fs.Usage(); return 2 }
	if err := fs.Parse(args); errors.Is(err, flag.ErrHelp) {
		return 0
	} else if err != nil {
		return 2 // flag has said why
	}
	log, appID, set := slog.New(slog.NewTextHandler(stderr, nil)), os.Getenv(jam.EnvAppID), map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	switch {
	case fs.NArg() > 0:
		return usage("no arguments expected, only flags")
	case *ttl < time.Second:
		return usage("-token-ttl must be at least 1s")
	case *refreshBefore < 0:
		return usage("-refresh-before must not be negative")
	case appID == "" && os.Getenv(jam.EnvBaseURL) != "":
		return usage("JAM_BASE_URL needs JAM_APP_ID")
	case appID != "" && (set["jam-addr"] || set["token-ttl"]):
		return usage("-jam-addr and -token-ttl are for the in-process JAM server; unset JAM_APP_ID to run it")
	}

	// The app listens first: the in-process JAM needs its URL to redirect to.
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		fmt.Fprintln(stderr, "webapp:", err)
		return 1
	}
	defer ln.Close()
	appURL := "http://" + ln.Addr().String()
	cfg := &app{refreshBefore: *refreshBefore, log: log}
	client, jamURL := (*jam.Client)(nil), os.Getenv(jam.EnvBaseURL)
	if appID != "" {
		if client, err = jam.NewFromEnv(); err != nil {
			return usage(err.Error())
		}
		jamURL = cmp.Or(jamURL, jam.DefaultBaseURL)
	} else {
		srv, err := jamtest.Start(jamtest.WithAddr(*jamAddr), jamtest.WithRedirectURL(appURL+"/callback"),
			jamtest.WithTokenTTL(*ttl), jamtest.WithLogger(log))
		if err != nil {
			fmt.Fprintln(stderr, "webapp: in-process JAM server:", err)
			return 1
		}
		defer srv.Close()
		client, appID, jamURL = srv.Client(), srv.AppID, srv.URL+"/"
		cfg.insecure, cfg.outboxURL = true, srv.URL+"/_jamtest/outbox" // JSON: the HTML page leaves jamtest
	}
	server := &http.Server{Handler: newApp(client, cfg), ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
	served := make(chan error, 1)
	go func() { served <- server.Serve(ln) }()

	fmt.Fprintf(stdout, "webapp: a web app with magic-link login; stop it with Ctrl-C\napp:     %s/\njam:     %s\napp ID:  %s\n", appURL, jamURL, appID)
	if cfg.outboxURL != "" {
		fmt.Fprintf(stdout, "outbox:  %s\n", cfg.outboxURL)
	}

	select {
	case err := <-served:
		fmt.Fprintln(stderr, "webapp:", err)
		return 1
	case <-ctx.Done():
	}
	stop()
	fmt.Fprintln(stderr, "webapp: shutting down; a second signal ends it at once")
	shutdown, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if err := server.Shutdown(shutdown); err != nil {
		fmt.Fprintf(stderr, "webapp: requests (or their bodies) still coming after %v: closing their connections\n", shutdownTimeout)
		server.Close()
	}
	fmt.Fprintln(stderr, "webapp: stopped")
	return 0
}
