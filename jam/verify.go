package jam

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
	"unsafe"

	jose "github.com/go-jose/go-jose/v4"
	josejson "github.com/go-jose/go-jose/v4/json"
)

// maxTokenSize bounds the ID tokens VerifyToken and VerifyRemote accept. A
// JAM ID token is about 600 bytes.
const maxTokenSize = 8 << 10

var errTooLarge = errors.New("token over 8 KiB")

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
	ID        string   // jti, unique per token
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

// parsedToken is a token whose form was checked but not its signature.
type parsedToken struct {
	jws    *jose.JSONWebSignature
	header Header
	claims claimSet
	raw    []byte // the payload
}

// parseToken checks the form of a token without any key: its size, that it
// is a compact JWS with one ES512 signature, its header, and the JSON types
// of its claims. What it refuses needs no network round trip to refuse.
func parseToken(s string) (*parsedToken, *Error) {
	kid, err := checkForm(s)
	if err != nil {
		return nil, err
	}
	return parseChecked(s, kid)
}

// checkForm makes the checks of parseToken that cost little: the size, the
// compact form and the header, read raw. It returns the kid, so that a
// token of an unknown key is refused before the rest is parsed.
func checkForm(s string) (kid string, _ *Error) {
	if len(s) > maxTokenSize {
		return "", notVerified(ErrMalformedToken, errTooLarge)
	}
	if !compactForm(s) {
		// base64 decoders skip newlines and go-jose re-encodes what it
		// decoded, so without this a token with a newline added verified.
		return "", notVerified(ErrMalformedToken, errors.New("not three base64url segments"))
	}
	return checkHeader(s[:strings.IndexByte(s, '.')])
}

// parseChecked is the rest of parseToken, for a token checkForm passed
// with the kid.
func parseChecked(s, kid string) (*parsedToken, *Error) {
	jws, err := jose.ParseSignedCompact(s, []jose.SignatureAlgorithm{jose.ES512})
	if err != nil {
		// go-jose's parse errors may quote header values; say less.
		return nil, notVerified(ErrMalformedToken, errors.New("not a JWS in compact serialization"))
	}
	h := jws.Signatures[0].Header
	if h.KeyID != kid {
		// The header's raw read matches names in any case; go-jose's
		// exactly.
		return nil, notVerified(ErrMalformedToken, errors.New("kid header not as read"))
	}
	typ, _ := h.ExtraHeaders["typ"].(string)

	p := &parsedToken{
		jws:    jws,
		header: Header{Algorithm: h.Algorithm, KeyID: h.KeyID, Type: typ},
		raw:    jws.UnsafePayloadWithoutVerification(),
	}
	// go-jose's json, as strict as the header's parser: names match
	// exactly, and a name given twice is refused rather than the last one
	// winning.
	if err := josejson.Unmarshal(p.raw, &p.claims); err != nil {
		return nil, notVerified(ErrMalformedToken, errors.New("claims are not a JSON object of the expected types with unique names"))
	}
	if p.claims.Expiry.IsZero() || p.claims.IssuedAt.IsZero() || p.claims.Email == "" {
		return nil, notVerified(ErrMalformedToken, errors.New("exp, iat or email missing"))
	}
	return p, nil
}

// maxHeaderSize bounds the protected header, base64url-encoded; JAM's is
// about 120 bytes. A larger one is refused before it is decoded, so that
// no header costs much to refuse.
const maxHeaderSize = 1 << 10

// protectedHeader is what checkHeader reads of a header: alg, and whether
// any member that names a key other than by kid, or makes the token's
// meaning depend on extensions (crit), is present. Tokens with any of
// them are refused from the raw header, before go-jose parses it: go-jose
// would parse the certificates of an x5c chain, and Header.Certificates
// would verify the chain, at the attacker's expense.
type protectedHeader struct {
	Alg       es512Alg        `json:"alg"`
	Kid       string          `json:"kid"`
	JWK       json.RawMessage `json:"jwk"`
	JKU       json.RawMessage `json:"jku"`
	X5U       json.RawMessage `json:"x5u"`
	X5C       json.RawMessage `json:"x5c"`
	X5T       json.RawMessage `json:"x5t"`
	X5TSHA256 json.RawMessage `json:"x5t#S256"`
	Crit      json.RawMessage `json:"crit"`
}

// es512Alg is whether alg is "ES512", written plainly: a name spelled
// with escapes is refused too. Unlike a string, it costs no allocation.
type es512Alg bool

func (a *es512Alg) UnmarshalJSON(b []byte) error {
	*a = string(b) == `"`+string(jose.ES512)+`"`
	return nil
}

// checkHeader checks the protected header, the first segment of a token
// in compact form: at most maxHeaderSize, a JSON object, none of the
// members protectedHeader names but alg and kid, alg exactly ES512, and a
// kid, which it returns. It decodes
// with encoding/json, which costs less than go-jose's json, and matches
// names in any case: X5C is refused with x5c. go-jose's parse that follows
// refuses a member given twice.
func checkHeader(segment string) (kid string, _ *Error) {
	if len(segment) > maxHeaderSize {
		return "", notVerified(ErrMalformedToken, errors.New("header over 1 KiB"))
	}
	raw, err := base64.RawURLEncoding.DecodeString(segment)
	if err != nil {
		return "", notVerified(ErrMalformedToken, errors.New("header is not base64url"))
	}
	var h protectedHeader
	if err := json.Unmarshal(raw, &h); err != nil {
		return "", notVerified(ErrMalformedToken, errors.New("header is not a JSON object of the expected types"))
	}
	for _, m := range []struct {
		name  string
		value json.RawMessage
	}{{"jwk", h.JWK}, {"jku", h.JKU}, {"x5u", h.X5U}, {"x5c", h.X5C}, {"x5t", h.X5T}, {"x5t#S256", h.X5TSHA256}, {"crit", h.Crit}} {
		if m.value != nil {
			return "", notVerified(ErrMalformedToken, errors.New(m.name+" header"))
		}
	}
	switch {
	case !bool(h.Alg):
		return "", notVerified(ErrAlgorithm, nil)
	case h.Kid == "":
		return "", notVerified(ErrMalformedToken, errors.New("no kid header"))
	}
	return h.Kid, nil
}

// compactForm reports whether s has the form of a JWS in compact
// serialization: three segments of unpadded base64url joined by dots.
func compactForm(s string) bool {
	dots := 0
	for i := range len(s) {
		switch b := s[i]; {
		case 'a' <= b && b <= 'z', 'A' <= b && b <= 'Z', '0' <= b && b <= '9', b == '-', b == '_':
		case b == '.':
			dots++
		default:
			return false
		}
	}
	return dots == 2
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

// VerifyToken verifies a JAM ID token locally and returns its claims. It
// accepts a token only if all of these hold:
//
//   - it is a compact JWS of at most 8 KiB with one ES512 signature; its
//     header is at most 1 KiB, names each member once, names no key but by
//     kid (no jwk, jku, x5u, x5c, x5t, x5t#S256) and has no crit;
//   - a key in the app's JWK Set with the token's kid, an EC P-521 public
//     key, verifies the signature;
//   - iss is Issuer(), aud contains AppID(), token_use is "id";
//   - exp has not passed, and nbf and iat are not in the future, each give or
//     take the leeway (WithLeeway);
//   - email is present.
//
// Otherwise the error matches ErrNotVerified and one reason, such as
// ErrExpired. When the key set cannot be fetched, it matches
// ErrKeySetUnavailable instead: the token is then neither valid nor invalid.
//
// The key set is fetched on the first call and cached. A kid the cache does
// not hold triggers a refetch, within a rate limit (WithRefetchInterval);
// callers share a fetch in flight. While the last fetch failed, such a
// token gets ErrKeySetUnavailable rather than ErrUnknownKey.
//
// Tokens that verified are remembered (WithCacheSize), so verifying the
// same token again costs a hash and a lookup instead of a signature check;
// their times are still checked against the clock on every call, and they
// are forgotten when their key leaves the key set.
func (c *Client) VerifyToken(ctx context.Context, idToken string) (*Token, error) {
	tok, err := c.verifyToken(ctx, idToken)
	if errors.Is(err, ErrNotVerified) {
		c.stats.refused.Add(1)
	}
	return tok, err
}

func (c *Client) verifyToken(ctx context.Context, idToken string) (*Token, error) {
	if len(idToken) > maxTokenSize {
		c.stats.misses.Add(1)
		return nil, notVerified(ErrMalformedToken, errTooLarge)
	}
	now := c.now()
	var sum [sha256.Size]byte
	if c.cache != nil {
		// The token's bytes as they are: converting to []byte would copy
		// them, the largest allocation of a hit. Sum256 only reads them.
		sum = sha256.Sum256(unsafe.Slice(unsafe.StringData(idToken), len(idToken)))
		if e, ok := c.cache.GetIfPresent(sum); ok {
			if c.keys.has(e.token.Header.KeyID, e.key, now) {
				c.stats.cacheHits.Add(sum[0])
				if err := c.checkTimes(&e.token.Claims, now); err != nil {
					c.cache.Invalidate(sum)
					return nil, err
				}
				return e.token.clone(), nil
			}
			c.cache.Invalidate(sum)
		}
	}

	c.stats.misses.Add(1)
	kid, ferr := checkForm(idToken)
	if ferr != nil {
		return nil, ferr
	}
	// The key first: a forged kid is refused before the rest is parsed.
	keys, err := c.keys.lookup(ctx, kid, now)
	if err != nil {
		return nil, err
	}
	p, perr := parseChecked(idToken, kid)
	if perr != nil {
		return nil, perr
	}
	// A set may hold several keys under one kid; any of them will do.
	i := slices.IndexFunc(keys, func(k *key) bool { return p.jws.DetachedVerify(p.raw, k.v) == nil })
	if i < 0 {
		return nil, notVerified(ErrSignature, nil)
	}
	tok := p.token()
	if err := c.checkClaims(&tok.Claims, now); err != nil {
		return nil, err
	}
	if c.cache == nil {
		return tok, nil
	}
	c.cache.Set(sum, cacheEntry{token: tok, key: keys[i]})
	return tok.clone(), nil
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

// cacheEntry is a verified token and the key that verified it.
type cacheEntry struct {
	token *Token
	key   *key
}

// checkClaims checks the claims of a token whose signature is valid.
func (c *Client) checkClaims(cl *Claims, now time.Time) *Error {
	switch {
	case cl.Issuer != c.issuer:
		return notVerified(ErrIssuer, nil)
	case !slices.Contains(cl.Audience, c.appID):
		return notVerified(ErrAudience, nil)
	case cl.TokenUse != "id":
		return notVerified(ErrTokenUse, nil)
	}
	return c.checkTimes(cl, now)
}

// checkTimes checks exp, nbf and iat against now, with the leeway.
func (c *Client) checkTimes(cl *Claims, now time.Time) *Error {
	switch {
	case now.After(cl.Expiry.Add(c.leeway)):
		return notVerified(ErrExpired, nil)
	case now.Add(c.leeway).Before(cl.NotBefore):
		return notVerified(ErrNotYetValid, errors.New("nbf is in the future"))
	case now.Add(c.leeway).Before(cl.IssuedAt):
		return notVerified(ErrNotYetValid, errors.New("iat is in the future"))
	}
	return nil
}
