package jam

import (
	"bytes"
	"errors"
	"math"
	"slices"
	"strconv"
	"time"

	josejson "github.com/go-jose/go-jose/v4/json"
)

// Token is a JAM ID token whose signature and claims were checked.
type Token struct {
	Header Header
	Claims Claims
}

// Header is the JOSE header of an ID token.
type Header struct {
	Algorithm string // always "ES512" in a verified token
	KeyID     string // the kid of the key that signed the token
	Type      string // "JWT", when the token says
}

// Claims are the claims of a JAM ID token.
type Claims struct {
	Email     string   // the user's email address
	Subject   string   // sub; JAM sets it to the email address too
	Issuer    string   // iss; Client.Issuer()
	Audience  []string // aud; holds the app ID
	ID        string   // jti, unique per token: key a denylist or replay check on it, not on the token's string (see VerifyToken)
	TokenUse  string   // token_use; always "id"
	IssuedAt  time.Time
	NotBefore time.Time // zero when the token has no nbf
	Expiry    time.Time

	// Raw is the whole claim set as the token carries it, JSON, for claims
	// this struct does not name. A string, so that every caller can share
	// it: json.Unmarshal([]byte(Raw), &v) reads it.
	Raw string
}

// claimSet is the JSON form of the claims. Decoded with go-jose's json,
// names match exactly and a name given twice is refused.
type claimSet struct {
	Email     string      `json:"email"`
	Subject   string      `json:"sub"`
	Issuer    string      `json:"iss"`
	Audience  audience    `json:"aud"`
	ID        string      `json:"jti"`
	TokenUse  string      `json:"token_use"`
	IssuedAt  numericDate `json:"iat"`
	NotBefore numericDate `json:"nbf"`
	Expiry    numericDate `json:"exp"`
}

// audience is aud: one string, or an array of them (RFC 7519, 4.1.3).
type audience []string

func (a *audience) UnmarshalJSON(b []byte) error {
	if len(b) < 2 || b[0] != '"' {
		return josejson.Unmarshal(b, (*[]string)(a))
	}
	// The decoder has checked that b is a JSON string; with no escape in
	// it, its text is its value.
	if !bytes.ContainsRune(b, '\\') {
		*a = audience{string(b[1 : len(b)-1])}
		return nil
	}
	var s string
	if err := josejson.Unmarshal(b, &s); err != nil {
		return err
	}
	*a = audience{s}
	return nil
}

// numericDate is a NumericDate (RFC 7519, 2): seconds since 1970, perhaps
// with a fraction. The zero value is a missing claim.
type numericDate struct{ time.Time }

// maxNumericDate bounds the dates a token may carry, about the year 36812:
// a larger number is no date, and would overflow a time.Time.
const maxNumericDate = 1 << 40

func (d *numericDate) UnmarshalJSON(b []byte) error {
	// The decoder has checked that b is a JSON value; ParseFloat takes
	// its numbers and refuses the rest.
	f, err := strconv.ParseFloat(string(b), 64)
	if err != nil || f < 0 || f > maxNumericDate {
		return errors.New("not a NumericDate")
	}
	sec, frac := math.Modf(f)
	d.Time = time.Unix(int64(sec), int64(frac*1e9)).UTC()
	return nil
}

// token returns the Token for p; only call it once p is verified.
func (p *parsedToken) token() *Token {
	c := &p.claims
	t := &Token{
		Header: p.header,
		Claims: Claims{
			Email:     c.Email,
			Subject:   c.Subject,
			Issuer:    c.Issuer,
			Audience:  []string(c.Audience),
			ID:        c.ID,
			TokenUse:  c.TokenUse,
			IssuedAt:  c.IssuedAt.Time,
			NotBefore: c.NotBefore.Time,
			Expiry:    c.Expiry.Time,
			Raw:       string(p.raw),
		},
	}
	return t
}

// clone returns a copy of t that shares nothing a caller can change with
// it, so that no caller's changes reach the cache, or another caller. A JAM
// token has one audience, which the copy holds in the same allocation as
// the Token.
func (t *Token) clone() *Token {
	c := &struct {
		Token
		aud [1]string
	}{Token: *t}
	if len(t.Claims.Audience) == 1 {
		c.aud[0] = t.Claims.Audience[0]
		c.Claims.Audience = c.aud[:]
	} else {
		c.Claims.Audience = slices.Clone(t.Claims.Audience)
	}
	return &c.Token
}
