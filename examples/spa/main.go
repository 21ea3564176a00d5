// Command spa serves a single-page app that logs its users in with Just
// Authenticate Me (JAM) the way JAM's browser SDK does: the page itself
// calls JAM, across origins, to send the magic link, to refresh the ID
// token and to log out, reads the tokens from its own address after JAM's
// redirect, and calls the app's Go API with the ID token as a Bearer
// token, which jam.Middleware verifies. It is the example to copy when the
// browser, not the Go server, holds the login; examples/webapp is the one
// where the server does, in cookies.
//
// From the root of the repository, with no configuration, it runs its own
// JAM server in the same process (jamtest), on another port, so that the
// browser calls it across origins as it calls the real JAM; its outbox
// shows the magic links it "emails":
//
//	go run ./examples/spa
//
// With JAM_APP_ID set (and JAM_BASE_URL, if not the JAM service) it uses
// that JAM instead (jam.NewFromEnv); register the app's URL, with its
// trailing slash, as the app's redirect URL there.
//
// Flags:
//
//	-addr              where the app listens (default 127.0.0.1:8080; port 0 picks a free one)
//	-jam-addr          where the in-process JAM listens (default 127.0.0.1:8787; port 0 too)
//	-token-ttl         lifetime of the in-process JAM's ID tokens (default 30m, as JAM's)
//	-shutdown-timeout  how long requests in flight may finish after an interrupt (default 5s)
//
// Once both listen, it prints their URLs as "name: value" lines on
// standard output (app, jam, app ID, outbox), which a test can read when
// it asked for free ports. Diagnostics go to standard error. An interrupt
// (Ctrl-C, SIGTERM) stops it gracefully; a second one, at once. The exit
// status is 0 after a graceful stop, 1 on a failure or a shutdown that
// ran out of time, 2 on a usage error.
package main

import (
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
	"strconv"
	"syscall"
	"time"

	"github.com/go-jam/go-jam/jam"
	"github.com/go-jam/go-jam/jam/jamtest"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, stop, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

const (
	// defaultShutdownTimeout bounds how long requests in flight may finish
	// after an interrupt.
	defaultShutdownTimeout = 5 * time.Second
	// readyTimeout bounds the wait for JAM's key set at start-up.
	readyTimeout = 5 * time.Second
)

// run is the program: it serves until ctx is done, then calls stop, which
// lets the next signal end the process at once, and shuts down. It reads
// JAM_APP_ID and JAM_BASE_URL from the environment, and returns the exit
// status.
func run(ctx context.Context, stop func(), args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("spa", flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:8080", "TCP address the app listens on")
	jamAddr := fs.String("jam-addr", "127.0.0.1:8787", "TCP address the in-process JAM server listens on")
	ttl := fs.Duration("token-ttl", jamtest.DefaultTokenTTL, "lifetime of the in-process JAM server's ID tokens")
	shutdownTimeout := fs.Duration("shutdown-timeout", defaultShutdownTimeout, "how long requests in flight may finish after an interrupt")
	// flag would print its errors and the usage to one writer: help goes
	// to stdout, mistakes to stderr.
	fs.SetOutput(io.Discard)
	printUsage := func(w io.Writer) {
		fmt.Fprintln(w, "usage: spa [flags]\n\nWith JAM_APP_ID (and JAM_BASE_URL) set, the app uses that JAM; else it runs one in process.")
		fs.SetOutput(w)
		fs.PrintDefaults()
	}
	usage := func(msg string) int {
		fmt.Fprintln(stderr, "spa: "+msg)
		printUsage(stderr)
		return 2
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			printUsage(stdout)
			return 0
		}
		return usage(err.Error())
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))
	appID, baseURL := os.Getenv(jam.EnvAppID), os.Getenv(jam.EnvBaseURL)
	switch {
	case fs.NArg() > 0:
		return usage("no arguments expected, only flags")
	case *ttl < time.Second:
		return usage("-token-ttl must be at least 1s")
	case *shutdownTimeout <= 0:
		return usage("-shutdown-timeout must be positive")
	case appID == "" && baseURL != "":
		return usage(jam.EnvBaseURL + " needs " + jam.EnvAppID)
	case appID != "" && (isSet(fs, "jam-addr") || isSet(fs, "token-ttl")):
		return usage("-jam-addr and -token-ttl are for the in-process JAM server; unset " + jam.EnvAppID + " to run it")
	}

	// The app listens first: the in-process JAM server needs its URL for
	// the redirect of the magic links.
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		fmt.Fprintln(stderr, "spa:", err)
		return 1
	}
	defer ln.Close()
	appURL := "http://" + dialAddr(ln.Addr())

	cfg := config{log: log}
	var client *jam.Client
	if appID != "" {
		if client, err = jam.NewFromEnv(); err != nil {
			return usage(err.Error())
		}
		cfg.jamURL, cfg.appID = baseURL, client.AppID()
		if cfg.jamURL == "" {
			cfg.jamURL = jam.DefaultBaseURL
		}
	} else {
		// The page, on loopback, may call it: jamtest answers CORS for
		// loopback origins unless WithCORSOrigins says otherwise.
		srv, err := jamtest.Start(
			jamtest.WithAddr(*jamAddr),
			// The page reads the tokens from its own address.
			jamtest.WithRedirectURL(appURL+"/"),
			jamtest.WithTokenTTL(*ttl),
			jamtest.WithLogger(log),
		)
		if err != nil {
			fmt.Fprintln(stderr, "spa: in-process JAM server:", err)
			return 1
		}
		defer srv.Close()
		client = srv.Client()
		cfg.jamURL, cfg.appID, cfg.outboxURL = srv.URL, srv.AppID, srv.URL+"/_jamtest/"
	}
	if cfg.jamURL[len(cfg.jamURL)-1] != '/' {
		cfg.jamURL += "/"
	}
	handler, err := newApp(client, cfg)
	if err != nil {
		return usage(err.Error())
	}

	// The first API request need not wait for the key set; a JAM that
	// cannot give it now stops nothing, and the API answers 503 until it
	// can.
	readyCtx, cancel := context.WithTimeout(ctx, readyTimeout)
	if err := client.Ready(readyCtx); err != nil {
		log.Warn("JAM's key set is unavailable for now", "err", err)
	}
	cancel()

	server := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	served := make(chan error, 1)
	go func() { served <- server.Serve(ln) }()

	fmt.Fprintf(stdout, "spa: a single-page app with magic-link login; stop it with Ctrl-C\n")
	fmt.Fprintf(stdout, "app:     %s/\n", appURL)
	fmt.Fprintf(stdout, "jam:     %s\n", cfg.jamURL)
	fmt.Fprintf(stdout, "app ID:  %s\n", cfg.appID)
	if cfg.outboxURL != "" {
		fmt.Fprintf(stdout, "outbox:  %s\n", cfg.outboxURL)
	}

	select {
	case err := <-served:
		fmt.Fprintln(stderr, "spa:", err)
		return 1
	case <-ctx.Done():
	}
	stop()
	fmt.Fprintf(stderr, "spa: stopping within %v; interrupt again to stop at once\n", *shutdownTimeout)
	shutdown, cancel := context.WithTimeout(context.Background(), *shutdownTimeout)
	defer cancel()
	if err := server.Shutdown(shutdown); err != nil {
		server.Close()
		fmt.Fprintf(stderr, "spa: requests still in flight after %v, cut off: %v\n", *shutdownTimeout, err)
		return 1
	}
	fmt.Fprintln(stderr, "spa: stopped")
	return 0
}

// isSet reports whether the flag was given on the command line.
func isSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

// dialAddr is where a browser reaches a listener: loopback for one on
// every interface, whose address ("[::]:8080") is not one to dial.
func dialAddr(addr net.Addr) string {
	if tcp, ok := addr.(*net.TCPAddr); ok && tcp.IP.IsUnspecified() {
		return net.JoinHostPort("127.0.0.1", strconv.Itoa(tcp.Port))
	}
	return addr.String()
}
