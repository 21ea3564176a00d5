package main

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/go-jam/go-jam/jam"
)

// maxStdinToken bounds what is read of standard input for a token "-".
const maxStdinToken = 64 << 10

// defaultBaseURL is the base URL without --base-url and $JAM_BASE_URL. A
// variable so that tests can make it unreachable.
var defaultBaseURL = jam.DefaultBaseURL

// clientFlags are the flags every client command has.
type clientFlags struct {
	app, baseURL string
}

// addClientFlags defines --app and --base-url, whose defaults, from the
// environment, are applied by client: flag's help would show the value of
// the environment as a second default.
func addClientFlags(fs *flag.FlagSet) *clientFlags {
	c := &clientFlags{}
	fs.StringVar(&c.app, "app", "", "app ID (default $JAM_APP_ID)")
	fs.StringVar(&c.baseURL, "base-url", "", "JAM base URL (default $JAM_BASE_URL, else "+defaultBaseURL+")")
	return c
}

// client returns a client for the flags, after opts.
func (c *clientFlags) client(opts ...jam.Option) (*jam.Client, error) {
	if c.app == "" {
		c.app = os.Getenv("JAM_APP_ID")
	}
	if c.baseURL == "" {
		c.baseURL = cmp.Or(os.Getenv("JAM_BASE_URL"), defaultBaseURL)
	}
	if c.app == "" {
		return nil, usagef("--app or $JAM_APP_ID is required")
	}
	client, err := jam.New(c.app, append([]jam.Option{jam.WithBaseURL(c.baseURL)}, opts...)...)
	if err != nil {
		return nil, usagef("%s", strings.TrimPrefix(err.Error(), "jam: "))
	}
	return client, nil
}

// tokenReader hands out token arguments, reading the one that is "-" from
// standard input.
type tokenReader struct {
	in   io.Reader
	used bool
}

func (r *tokenReader) token(arg string) (string, error) {
	if arg != "-" {
		return arg, nil
	}
	if r.used {
		return "", usagef(`only one token can be "-"`)
	}
	r.used = true
	b, err := io.ReadAll(io.LimitReader(r.in, maxStdinToken+1))
	switch {
	case err != nil:
		return "", fmt.Errorf("jam: reading a token from standard input: %w", err)
	case len(b) > maxStdinToken:
		return "", errors.New("jam: the token on standard input is over 64 KiB")
	}
	token := strings.TrimSpace(string(b))
	if token == "" {
		return "", usagef("no token on standard input")
	}
	return token, nil
}

func authenticate(ctx context.Context, fs *flag.FlagSet, args []string, s *stdio) error {
	cf := addClientFlags(fs)
	if err := parse(fs, args, "jam authenticate [flags] EMAIL", 1, 1); err != nil {
		return err
	}
	client, err := cf.client()
	if err != nil {
		return err
	}
	if err := client.Authenticate(ctx, fs.Arg(0)); err != nil {
		return err
	}
	fmt.Fprintf(s.out, "magic link sent to %s\n", fs.Arg(0))
	return nil
}

func verify(ctx context.Context, fs *flag.FlagSet, args []string, s *stdio) error {
	cf := addClientFlags(fs)
	remote := fs.Bool("remote", false, "ask JAM instead of checking against the key set")
	// jam's default, which jam does not export.
	leeway := fs.Duration("leeway", time.Minute, "clock skew allowed on exp, nbf and iat when checking locally")
	if err := parse(fs, args, "jam verify [flags] TOKEN", 1, 1); err != nil {
		return err
	}
	client, err := cf.client(jam.WithLeeway(*leeway))
	if err != nil {
		return err
	}
	token, err := (&tokenReader{in: s.in}).token(fs.Arg(0))
	if err != nil {
		return err
	}
	var tok *jam.Token
	if *remote {
		tok, err = client.VerifyRemote(ctx, token)
	} else {
		tok, err = client.VerifyToken(ctx, token)
	}
	if err != nil {
		return err
	}
	var claims bytes.Buffer
	if err := json.Indent(&claims, []byte(tok.Claims.Raw), "", "  "); err != nil {
		return fmt.Errorf("jam: verify: claims: %w", err)
	}
	claims.WriteByte('\n')
	_, err = claims.WriteTo(s.out)
	return err
}

func refresh(ctx context.Context, fs *flag.FlagSet, args []string, s *stdio) error {
	cf := addClientFlags(fs)
	asJSON := fs.Bool("json", false, `print {"idToken": ...} instead of the bare token`)
	if err := parse(fs, args, "jam refresh [flags] REFRESH_TOKEN", 1, 1); err != nil {
		return err
	}
	client, err := cf.client()
	if err != nil {
		return err
	}
	token, err := (&tokenReader{in: s.in}).token(fs.Arg(0))
	if err != nil {
		return err
	}
	idToken, err := client.Refresh(ctx, token)
	if err != nil {
		return err
	}
	if *asJSON {
		return json.NewEncoder(s.out).Encode(struct {
			IDToken string `json:"idToken"`
		}{idToken})
	}
	_, err = fmt.Fprintln(s.out, idToken)
	return err
}

func logout(ctx context.Context, fs *flag.FlagSet, args []string, s *stdio) error {
	cf := addClientFlags(fs)
	idArg := fs.String("id-token", "", "the user's ID token (required)")
	refreshArg := fs.String("refresh-token", "", "delete this refresh token: log out one device")
	all := fs.Bool("all", false, "delete all the user's refresh tokens: log out everywhere")
	if err := parse(fs, args, "jam logout [flags] --id-token T (--refresh-token R | --all)", 0, 0); err != nil {
		return err
	}
	switch {
	case *idArg == "":
		return usagef("--id-token is required")
	case (*refreshArg == "") == !*all:
		return usagef("give one of --refresh-token and --all")
	}
	client, err := cf.client()
	if err != nil {
		return err
	}
	tokens := &tokenReader{in: s.in}
	idToken, err := tokens.token(*idArg)
	if err != nil {
		return err
	}
	if *all {
		if err := client.DeleteAllRefreshTokens(ctx, idToken); err != nil {
			return err
		}
		_, err = fmt.Fprintln(s.out, "logged out everywhere: all refresh tokens deleted")
		return err
	}
	refreshToken, err := tokens.token(*refreshArg)
	if err != nil {
		return err
	}
	if err := client.DeleteRefreshToken(ctx, idToken, refreshToken); err != nil {
		return err
	}
	_, err = fmt.Fprintln(s.out, "logged out: refresh token deleted")
	return err
}

func jwks(ctx context.Context, fs *flag.FlagSet, args []string, s *stdio) error {
	cf := addClientFlags(fs)
	if err := parse(fs, args, "jam jwks [flags]", 0, 0); err != nil {
		return err
	}
	client, err := cf.client()
	if err != nil {
		return err
	}
	set, err := client.JWKS(ctx)
	if err != nil {
		return err
	}
	b, err := json.MarshalIndent(set, "", "  ")
	if err != nil {
		return fmt.Errorf("jam: jwks: %w", err)
	}
	_, err = fmt.Fprintf(s.out, "%s\n", b)
	return err
}
