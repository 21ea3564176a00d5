package jam

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
)

// Tokens are the tokens JAM's magic-link redirect carries.
//
// They print (fmt, with any verb), log (log/slog) and marshal to JSON as
// REDACTED, so that a struct holding them can be logged whole. Use the
// fields themselves to hand the tokens on, to cookies or a browser.
type Tokens struct {
	IDToken      string
	RefreshToken string // empty when the app does not allow refresh
}

// String returns the tokens redacted.
func (t Tokens) String() string {
	return "{IDToken:" + redacted(t.IDToken) + " RefreshToken:" + redacted(t.RefreshToken) + "}"
}

// Format prints the tokens redacted whatever the verb and flags, so that
// %#v, %x or %d show no more than %v.
func (t Tokens) Format(f fmt.State, _ rune) {
	io.WriteString(f, t.String())
}

// LogValue returns the tokens redacted, for log/slog.
func (t Tokens) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("id_token", redacted(t.IDToken)),
		slog.String("refresh_token", redacted(t.RefreshToken)),
	)
}

// MarshalJSON returns the tokens redacted, for the JSON log handlers that
// marshal the structs they are given.
func (t Tokens) MarshalJSON() ([]byte, error) {
	return json.Marshal(map[string]string{"IDToken": redacted(t.IDToken), "RefreshToken": redacted(t.RefreshToken)})
}

func redacted(s string) string {
	if s == "" {
		return ""
	}
	return "REDACTED"
}

// TokensFromURL reads the tokens from the URL JAM redirects the user to
// after the magic link: the query parameters idToken and, when the app
// allows refresh, refreshToken. The ID token is not verified here.
func TokensFromURL(u *url.URL) (Tokens, error) {
	if u == nil {
		return Tokens{}, emptyArgument(opTokensFromURL, "URL")
	}
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return Tokens{}, &Error{Op: opTokensFromURL, Err: errors.New("query string is not valid"), kinds: []error{ErrBadRequest}}
	}
	id, refresh := q["idToken"], q["refreshToken"]
	switch {
	case len(id) != 1 || id[0] == "":
		return Tokens{}, &Error{Op: opTokensFromURL, Err: errors.New("want exactly one non-empty idToken parameter"), kinds: []error{ErrBadRequest}}
	case len(refresh) > 1:
		return Tokens{}, &Error{Op: opTokensFromURL, Err: errors.New("more than one refreshToken parameter"), kinds: []error{ErrBadRequest}}
	}
	t := Tokens{IDToken: id[0]}
	if len(refresh) == 1 {
		t.RefreshToken = refresh[0]
	}
	return t, nil
}
