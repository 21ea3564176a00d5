// Command jam is a command-line client for Just Authenticate Me (JAM), and
// a JAM server for local development and demonstrations.
//
// Usage:
//
//	jam demo                      run a whole login against an in-process JAM
//	jam serve [flags]             run a JAM server for local development
//	jam authenticate EMAIL        email a magic link
//	jam verify [--remote] [--leeway D] TOKEN
//	                              verify an ID token, print its claims as JSON
//	jam refresh TOKEN             print a new ID token for a refresh token
//	jam logout --id-token T (--refresh-token R | --all)
//	jam jwks                      print the app's JWK Set
//
// The client commands take --app and --base-url, which default to the
// environment variables JAM_APP_ID and JAM_BASE_URL, and the base URL to
// the JAM service. A TOKEN of "-" is read from standard input, to keep it
// out of the shell's history; a TOKEN that starts with "-" (refresh tokens
// may) follows "--".
//
// Results, and the help jam -h and jam COMMAND -h ask for, go to standard
// output; diagnostics to standard error. The exit status is 0 on success,
// 1 on failure and 2 on a usage error.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/go-jam/go-jam/jam"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	// Once the first signal has cancelled ctx, the default handling comes
	// back, so that a second one ends a slow shutdown at once.
	context.AfterFunc(ctx, stop)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

const usage = `usage: jam COMMAND [flags] [arguments]

Commands:
  demo          run a whole login against an in-process JAM server
  serve         run a JAM server for local development
  authenticate  email a magic link: jam authenticate EMAIL
  verify        verify an ID token and print its claims: jam verify [--remote] [--leeway D] TOKEN
  refresh       print a new ID token: jam refresh TOKEN
  logout        delete refresh tokens: jam logout --id-token T (--refresh-token R | --all)
  jwks          print the app's JWK Set
  help          print this help

The client commands take --app and --base-url, defaulting to $JAM_APP_ID
and $JAM_BASE_URL (else ` + jam.DefaultBaseURL + `).
A TOKEN of "-" is read from standard input; one that starts with "-"
follows "--": jam refresh -- TOKEN.
Run "jam COMMAND -h" for the flags of a command.
`

// A command is one subcommand: it defines its flags on fs, parses args
// with them and does its work.
type command func(ctx context.Context, fs *flag.FlagSet, args []string, s *stdio) error

type stdio struct {
	in          io.Reader
	out, errOut io.Writer
}

var commands = map[string]command{
	"demo":         demo,
	"serve":        serve,
	"authenticate": authenticate,
	"verify":       verify,
	"refresh":      refresh,
	"logout":       logout,
	"jwks":         jwks,
}

// run is the whole program but for the process: it returns the exit status.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	name := args[0]
	switch name {
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	}
	cmd, ok := commands[name]
	if !ok {
		fmt.Fprintf(stderr, "jam: unknown command %q\n\n%s", name, usage)
		return 2
	}

	fs := flag.NewFlagSet("jam "+name, flag.ContinueOnError)
	// flag would print its errors and the usage itself, to one writer;
	// run prints them instead: help to stdout, mistakes to stderr.
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	err := cmd(ctx, fs, args[1:], &stdio{in: stdin, out: stdout, errOut: stderr})
	var ue usageError
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		fs.SetOutput(stdout)
		fs.Usage()
		return 0
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "jam %s: %s\n", name, ue.msg)
		fs.SetOutput(stderr)
		fs.Usage()
		return 2
	default:
		msg := err.Error()
		if !strings.HasPrefix(msg, "jam") {
			msg = "jam: " + msg
		}
		fmt.Fprintln(stderr, msg)
		if h := hint(fs, err); h != "" {
			fmt.Fprintln(stderr, "jam: hint: "+h)
		}
		return 1
	}
}

// unreachable reports whether err is a failure to connect, a DNS failure
// included.
// hint says what a user can do about the failure err of a client command,
// for the mistakes new users make; "" when there is nothing to say.
func hint(fs *flag.FlagSet, err error) string {
	base := ""
	if f := fs.Lookup("base-url"); f != nil {
		base = strings.TrimRight(f.Value.String(), "/")
	}
	switch {
	case base == "":
	case unreachable(err) && base == defaultBaseURL:
		return defaultBaseURL + " is the JAM service; for jam serve or another JAM, set JAM_BASE_URL or --base-url"
	case unreachable(err):
		return "nothing answers at " + base + "; is jam serve running there? Set JAM_BASE_URL or --base-url to the address it prints"
	case errors.Is(err, jam.ErrIssuer):
		return "a token's iss is the base URL it was issued at, a slash and the app ID, and localhost is not 127.0.0.1: " +
			"use the base URL the token names (JAM_BASE_URL or --base-url). JAM itself does not compare iss with your base URL, so verify --remote accepts the token"
	}
	return ""
}

// unreachable reports whether err is a failure to connect to JAM.
func unreachable(err error) bool {
	var opErr *net.OpError
	return errors.As(err, &opErr) && opErr.Op == "dial"
}

// flagProblem is flag's message for err, unless a word of it is too long
// to be a flag of jam's: flag quotes what it did not understand, and that
// may be a token that starts with "-".
func flagProblem(err error) string {
	for _, word := range strings.Fields(err.Error()) {
		if len(word) > 32 {
			return "a flag or value not understood (not shown: it may be a token; put a token starting with - after --)"
		}
	}
	return err.Error()
}

// usageError is a mistake in how jam was called: exit status 2.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error {
	return usageError{fmt.Sprintf(format, args...)}
}

// parse parses the flags of a command, which takes minArgs to maxArgs
// arguments after them.
func parse(fs *flag.FlagSet, args []string, synopsis string, minArgs, maxArgs int) error {
	usage := func() {
		fmt.Fprintf(fs.Output(), "usage: %s\n", synopsis)
		fs.PrintDefaults()
	}
	err := fs.Parse(args)
	fs.Usage = usage // for run, after Parse, which calls it on every error
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{flagProblem(err)}
	}
	switch n := fs.NArg(); {
	case n < minArgs:
		return usagef("missing argument")
	case n > maxArgs:
		// Not quoted: a stray argument may be a token.
		return usagef("too many arguments")
	}
	return nil
}
