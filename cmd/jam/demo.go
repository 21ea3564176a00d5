package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"time"

	"github.com/go-jam/go-jam/jam"
	"github.com/go-jam/go-jam/jam/jamtest"
)

// demoTimeout bounds the whole demo; it takes well under a second.
const demoTimeout = 30 * time.Second

// demo runs a whole login, step by step, against a JAM server in this
// process, and prints what each step did. It prints no token: a short kid
// and times say enough.
func demo(ctx context.Context, fs *flag.FlagSet, args []string, s *stdio) error {
	email := fs.String("email", "ann@example.com", "the user's email address")
	if err := parse(fs, args, "jam demo [flags]", 0, 0); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, demoTimeout)
	defer cancel()

	srv, err := jamtest.Start(jamtest.WithLogger(slog.New(slog.NewTextHandler(s.errOut, nil))))
	if err != nil {
		return err
	}
	defer srv.Close()
	client := srv.Client()
	fmt.Fprintf(s.out, "JAM test server at %s, app %s\n", srv.URL, srv.AppID)

	var (
		link      string
		tokens    jam.Tokens
		refreshed string
	)
	steps := []struct {
		name string
		do   func() (string, error)
	}{
		{"authenticate", func() (string, error) {
			return "JAM emails " + *email + " a magic link", client.Authenticate(ctx, *email)
		}},
		{"read the magic link", func() (string, error) {
			var ok bool
			if link, ok = srv.MagicLink(*email); !ok {
				return "", errors.New("no link in the test server's outbox")
			}
			return "found in the test server's outbox", nil
		}},
		{"follow the magic link", func() (string, error) {
			to, err := followLink(ctx, link)
			if err != nil {
				return "", err
			}
			if tokens, err = jam.TokensFromURL(to); err != nil {
				return "", err
			}
			if tokens.RefreshToken == "" {
				return "", errors.New("the redirect carries no refresh token")
			}
			return fmt.Sprintf("redirected to %s://%s%s with an ID token and a refresh token", to.Scheme, to.Host, to.Path), nil
		}},
		{"verify locally", func() (string, error) {
			return describeToken(client.VerifyToken(ctx, tokens.IDToken))
		}},
		{"verify remotely", func() (string, error) {
			if _, err := client.VerifyRemote(ctx, tokens.IDToken); err != nil {
				return "", err
			}
			return "JAM accepts the ID token", nil
		}},
		{"refresh", func() (string, error) {
			var err error
			refreshed, err = client.Refresh(ctx, tokens.RefreshToken)
			return "got a new ID token for the refresh token", err
		}},
		{"verify the new token", func() (string, error) {
			return describeToken(client.VerifyToken(ctx, refreshed))
		}},
		{"log out this device", func() (string, error) {
			return "refresh token deleted", client.DeleteRefreshToken(ctx, refreshed, tokens.RefreshToken)
		}},
		{"refresh again fails", func() (string, error) {
			_, err := client.Refresh(ctx, tokens.RefreshToken)
			switch {
			case err == nil:
				return "", errors.New("the deleted refresh token still works")
			case !errors.Is(err, jam.ErrUnauthorized):
				return "", fmt.Errorf("want jam.ErrUnauthorized, got: %w", err)
			}
			return "errors.Is(err, jam.ErrUnauthorized): " + err.Error(), nil
		}},
		{"log out everywhere", func() (string, error) {
			return "all of the user's refresh tokens deleted", client.DeleteAllRefreshTokens(ctx, refreshed)
		}},
		{"keep to openapi.yaml", func() (string, error) {
			if v := srv.Violations(); len(v) > 0 {
				return "", fmt.Errorf("%d responses violated openapi.yaml: %w", len(v), errors.Join(v...))
			}
			return "every request and response matched the contract", nil
		}},
	}

	for i, step := range steps {
		detail, err := step.do()
		if err != nil {
			fmt.Fprintf(s.out, "✗ %2d %s: %v\n", i+1, step.name, err)
			return fmt.Errorf("jam: demo failed at step %d, %s", i+1, step.name)
		}
		fmt.Fprintf(s.out, "✓ %2d %s: %s\n", i+1, step.name, detail)
	}
	fmt.Fprintf(s.out, "all %d steps passed\n", len(steps))
	return nil
}

// followLink GETs a magic link as a browser would, but stops at the
// redirect and returns where it leads.
func followLink(ctx context.Context, link string) (*url.URL, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, link, nil)
	if err != nil {
		return nil, err
	}
	browser := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := browser.Do(req)
	if err != nil {
		if ue, ok := errors.AsType[*url.Error](err); ok {
			err = ue.Err // its text holds the link
		}
		return nil, fmt.Errorf("GET magic link: %w", err)
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusFound {
		return nil, fmt.Errorf("GET magic link: %s, want 302 Found", resp.Status)
	}
	return resp.Location()
}

// describeToken says what a verified token is, without any of it.
func describeToken(tok *jam.Token, err error) (string, error) {
	if err != nil {
		return "", err
	}
	kid := tok.Header.KeyID
	if len(kid) > 8 {
		kid = kid[:8] + "…"
	}
	c := tok.Claims
	return fmt.Sprintf("valid: %s, ES512 key %s, lifetime %v", c.Email, kid, c.Expiry.Sub(c.IssuedAt)), nil
}
