package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/go-jam/go-jam/cmd/jam/internal/statefile"
	"github.com/go-jam/go-jam/jam/jamtest"
)

// serve runs a JAM server for local development until ctx is done, and
// prints its address, its app ID and every magic link it "emails".
func serve(ctx context.Context, fs *flag.FlagSet, args []string, s *stdio) error {
	addr := fs.String("addr", "127.0.0.1:8787", "TCP address to listen on")
	publicURL := fs.String("public-url", "", "base URL clients reach the server at, if not http://ADDR: http://localhost:8787,\nhttp://jam:8787 for another container, https://proxy.example/jam; iss and magic links use it")
	app := fs.String("app", "", "app ID (default: the state file's, else a random UUID)")
	redirect := fs.String("redirect-url", jamtest.DefaultRedirectURL, "where a followed magic link sends the browser, with the tokens")
	noRefresh := fs.Bool("no-refresh", false, "run an app that does not allow refresh")
	ttl := fs.Duration("token-ttl", jamtest.DefaultTokenTTL, "lifetime of ID tokens")
	state := fs.String("state", "", "keep the app ID, keys and refresh tokens in this file across restarts")
	corsOrigins := repeated(fs, "cors-origin", "an origin whose pages may call the API from a browser, such as http://app.localhost:3000;\nrepeat it for more (default: every loopback origin, on any port)")
	allowHosts := repeated(fs, "allow-host", "a host name to answer requests for, beside IP addresses, localhost, *.localhost and\nthe hosts of --addr and --public-url; repeat it for more. Others are refused (DNS rebinding)")
	grace := fs.Duration("shutdown-timeout", 3*time.Second, "on Ctrl-C or SIGTERM, how long requests in flight may take to finish;\na second signal exits at once")
	if err := parse(fs, args, "jam serve [flags]", 0, 0); err != nil {
		return err
	}
	if *ttl < time.Second {
		return usagef("--token-ttl must be at least 1s")
	}
	if *grace < 0 {
		return usagef("--shutdown-timeout must not be negative")
	}

	// Magic links are printed from request handlers, concurrently.
	out := &lockedWriter{w: s.out}
	opts := []jamtest.Option{
		jamtest.WithAddr(*addr),
		jamtest.WithRedirectURL(*redirect),
		jamtest.WithTokenTTL(*ttl),
		jamtest.WithLogger(slog.New(slog.NewTextHandler(s.errOut, nil))),
		jamtest.WithMailer(func(email, link string) {
			fmt.Fprintf(out, "magic link for %s: %s\n", printable(email), printable(link))
		}),
	}
	if *publicURL != "" {
		opts = append(opts, jamtest.WithPublicURL(*publicURL))
	}
	if *app != "" {
		opts = append(opts, jamtest.WithAppID(*app))
	}
	if *noRefresh {
		opts = append(opts, jamtest.WithRefreshDisabled())
	}
	if *allowHosts != nil {
		opts = append(opts, jamtest.WithAllowedHosts(*allowHosts...))
	}
	if *corsOrigins != nil {
		opts = append(opts, jamtest.WithCORSOrigins(*corsOrigins...))
	}
	if *state != "" {
		file, err := statefile.New(*state)
		if err != nil {
			return err
		}
		opts = append(opts, jamtest.WithStore(file))
	}
	srv, err := jamtest.Start(opts...)
	if opErr, ok := errors.AsType[*net.OpError](err); ok && opErr.Op == "listen" {
		return fmt.Errorf("jam serve: cannot listen on %s: %v; is another server there? Choose another address with --addr", *addr, opErr.Err)
	}
	if err != nil {
		return err
	}
	defer srv.Close()

	refreshMode := "allowed"
	if *noRefresh {
		refreshMode = "disabled"
	}
	// With its trailing slash, the base URL suits every client: JAM's Node
	// SDK needs it, Python's client prefixes it to the app ID, and go-jam
	// ignores it.
	base := srv.URL + "/"
	fmt.Fprintf(out, "jam serve: a JAM server for local development; stop it with Ctrl-C\n"+
		"listening on: %s\n"+
		"base URL:     %s\n"+
		"app ID:       %s\n"+
		"outbox:       %s_jamtest/ (JSON: %s_jamtest/outbox)\n"+
		"redirect URL: %s\n"+
		"refresh:      %s\n"+
		"token TTL:    %v\n"+
		"to use it:    export JAM_BASE_URL=%s JAM_APP_ID=%s\n",
		srv.Addr(), base, srv.AppID, base, base, *redirect, refreshMode, *ttl, base, srv.AppID)

	<-ctx.Done()
	fmt.Fprintf(s.errOut, "jam serve: stopping (at most %v; Ctrl-C again to exit now)\n", *grace)
	shutdown, cancel := context.WithTimeout(context.Background(), *grace)
	defer cancel()
	if err := srv.Shutdown(shutdown); err != nil {
		fmt.Fprintln(s.errOut, "jam serve: requests still in flight were cut short")
	}
	fmt.Fprintln(s.errOut, "jam serve: stopped")
	return nil
}

// repeated defines a flag that may be given several times, and returns
// its values in order; nil when it is not given.
func repeated(fs *flag.FlagSet, name, usage string) *[]string {
	var values []string
	fs.Func(name, usage, func(v string) error {
		values = append(values, v)
		return nil
	})
	return &values
}

// printable returns s as it is if every character of it is graphic, and
// else quoted with Go's escapes: an address may hold control characters or
// U+202E, which a terminal would act on, or show text reversed.
func printable(s string) string {
	q := strconv.QuoteToGraphic(s)
	if q[1:len(q)-1] == s {
		return s
	}
	return q
}

// lockedWriter serializes writes to w.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
