// Command webapp is a web app that logs its users in with Just
// Authenticate Me (JAM): a login form, JAM's magic link, cookies, a
// protected page and JSON API, refresh before expiry, and logout. It is
// the app to copy when adding magic-link login to a Go web app.
//
// From the root of the repository, with no configuration, it runs its own
// JAM server in the same process (jamtest), whose outbox shows the magic
// links it "emails":
//
//	go run ./examples/webapp
//
// With JAM_APP_ID set (and JAM_BASE_URL, if not the JAM service) it uses
// that JAM instead; register the app's /callback as the app's redirect URL
// there.
//
// Flags:
//
//	-addr            where the app listens (default 127.0.0.1:8080; port 0 picks a free one)
//	-jam-addr        where the in-process JAM listens (default 127.0.0.1:8787; port 0 too)
//	-token-ttl       lifetime of the in-process JAM's ID tokens (default 30m, as JAM's)
//	-refresh-before  renew an ID token this long before it expires (default 5m)
//
// Once both listen, it prints their URLs as "name: value" lines on
// standard output (app, jam, app ID, outbox), which a test can read when
// it asked for free ports. Diagnostics go to standard error. The exit
// status is 0 after an interrupt, 1 on a failure, 2 on a usage error.
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
	code := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// shutdownTimeout bounds how long requests in flight may finish after an
// interrupt.
const shutdownTimeout = 5 * time.Second

// run is the program: it serves until ctx is done and returns the exit
// status.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("webapp", flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:8080", "TCP address the app listens on")
	jamAddr := fs.String("jam-addr", "127.0.0.1:8787", "TCP address the in-process JAM server listens on")
	ttl := fs.Duration("token-ttl", jamtest.DefaultTokenTTL, "lifetime of the in-process JAM server's ID tokens")
	refreshBefore := fs.Duration("refresh-before", defaultRefreshBefore, "renew an ID token this long before it expires")
	// flag would print its errors and the usage to one writer: help goes
	// to stdout, mistakes to stderr.
	fs.SetOutput(io.Discard)
	printUsage := func(w io.Writer) {
		fmt.Fprintln(w, "usage: webapp [flags]\n\nWith JAM_APP_ID (and JAM_BASE_URL) set, the app uses that JAM; else it runs one in process.")
		fs.SetOutput(w)
		fs.PrintDefaults()
	}
	usage := func(msg string) int {
		fmt.Fprintln(stderr, "webapp: "+msg)
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
	appID, baseURL := getenv("JAM_APP_ID"), getenv("JAM_BASE_URL")
	switch {
	case fs.NArg() > 0:
		return usage("no arguments expected, only flags")
	case *ttl < time.Second:
		return usage("-token-ttl must be at least 1s")
	case *refreshBefore < 0:
		return usage("-refresh-before must not be negative")
	case appID == "" && baseURL != "":
		return usage("JAM_BASE_URL needs JAM_APP_ID")
	case appID != "" && (isSet(fs, "jam-addr") || isSet(fs, "token-ttl")):
		return usage("-jam-addr and -token-ttl are for the in-process JAM server; unset JAM_APP_ID to run it")
	}

	// The app listens first: the in-process JAM server needs its URL for
	// the redirect of the magic links.
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		fmt.Fprintln(stderr, "webapp:", err)
		return 1
	}
	defer ln.Close()
	appURL := "http://" + dialAddr(ln.Addr())

	var (
		client *jam.Client
		jamURL string
		outbox string
	)
	if appID != "" {
		var opts []jam.Option
		if baseURL != "" {
			opts = append(opts, jam.WithBaseURL(baseURL))
		}
		if client, err = jam.New(appID, opts...); err != nil {
			return usage(err.Error())
		}
		jamURL = baseURL
		if jamURL == "" {
			jamURL = jam.DefaultBaseURL
		}
	} else {
		srv, err := jamtest.Start(
			jamtest.WithAddr(*jamAddr),
			jamtest.WithRedirectURL(appURL+"/callback"),
			jamtest.WithTokenTTL(*ttl),
			jamtest.WithLogger(log),
		)
		if err != nil {
			fmt.Fprintln(stderr, "webapp: in-process JAM server:", err)
			return 1
		}
		defer srv.Close()
		client, appID, jamURL = srv.Client(), srv.AppID, srv.URL+"/"
		outbox = srv.URL + "/_jamtest/"
	}

	// Cookies go over plain http only where nobody can listen in.
	secure := !isLoopback(ln.Addr())
	handler := newApp(client, config{
		secure:        secure,
		refreshBefore: *refreshBefore,
		outboxURL:     outbox,
		log:           log,
	})
	server := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	served := make(chan error, 1)
	go func() { served <- server.Serve(ln) }()

	fmt.Fprintf(stdout, "webapp: a web app with magic-link login; stop it with Ctrl-C\n")
	fmt.Fprintf(stdout, "app:     %s/\n", appURL)
	fmt.Fprintf(stdout, "jam:     %s\n", jamURL)
	fmt.Fprintf(stdout, "app ID:  %s\n", appID)
	if outbox != "" {
		fmt.Fprintf(stdout, "outbox:  %s\n", outbox)
	}
	if secure {
		fmt.Fprintf(stdout, "cookies: Secure, so browse the app over HTTPS (a TLS proxy in front of %s)\n", ln.Addr())
	}

	select {
	case err := <-served:
		fmt.Fprintln(stderr, "webapp:", err)
		return 1
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if err := server.Shutdown(shutdown); err != nil {
		fmt.Fprintln(stderr, "webapp: shutdown:", err)
		return 1
	}
	fmt.Fprintln(stderr, "webapp: stopped")
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

func isLoopback(addr net.Addr) bool {
	tcp, ok := addr.(*net.TCPAddr)
	return ok && tcp.IP.IsLoopback()
}
