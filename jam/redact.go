package jam

import (
	"encoding/json"
	"net/url"
	"regexp"
	"strings"
	"unicode"
)

// secretLike matches what may be an email address, a JWT or an opaque
// token, so that a server message echoing one is redacted even when it is
// not the request's: a message is for people, and a long run of base64url
// with a digit in it is a token or an ID, seldom a word.
var secretLike = regexp.MustCompile(`[^\s"'<>(),;:]+(?:@|%40)[^\s"'<>(),;:]+|eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_.-]*|[A-Za-z0-9_-]{20,}`)

func redactSecretLike(s string) string {
	return secretLike.ReplaceAllStringFunc(s, func(m string) string {
		if strings.ContainsRune(m, '@') || strings.Contains(m, "%40") || strings.HasPrefix(m, "eyJ") || strings.ContainsAny(m, "0123456789") {
			return "REDACTED"
		}
		return m
	})
}

// serverMessage returns the message of a JSON error body, made safe to
// print: secrets redacted, no control characters, at most 200 bytes.
func serverMessage(body []byte, secrets []string) string {
	var e struct {
		Message string `json:"message"`
	}
	if json.Unmarshal(body, &e) != nil {
		return ""
	}
	msg := e.Message
	for _, s := range secrets {
		// Replacing a short value would garble the message and hide
		// nothing: real tokens are long.
		if len(s) < 8 {
			continue
		}
		// JAM may echo a secret as the request's path or query had it.
		for _, form := range []string{url.PathEscape(s), url.QueryEscape(s), s} {
			msg = strings.ReplaceAll(msg, form, "REDACTED")
		}
	}
	msg = redactSecretLike(msg)
	msg = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, msg)
	if len(msg) > 200 {
		msg = strings.ToValidUTF8(msg[:200], "") + "…"
	}
	return msg
}
