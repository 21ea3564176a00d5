package jam

import (
	"bytes"
	"crypto/elliptic"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"unsafe"

	jose "github.com/go-jose/go-jose/v4"
	josejson "github.com/go-jose/go-jose/v4/json"
)

// maxTokenSize bounds the ID tokens VerifyToken and VerifyRemote accept. A
// JAM ID token is about 600 bytes.
const maxTokenSize = 8 << 10

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
	// go-jose decodes base64url leniently: without this, other spellings
	// of a token's header or payload verified, each a cache entry and a
	// signature check of its own.
	dot1, dot2 := strings.IndexByte(s, '.'), strings.LastIndexByte(s, '.')
	if !canonical(s[:dot1]) || !canonical(s[dot1+1:dot2]) || !canonical(s[dot2+1:]) {
		return "", notVerified(ErrMalformedToken, errors.New("base64url not in its canonical form"))
	}
	return checkHeader(s[:strings.IndexByte(s, '.')])
}

// parseChecked is the rest of parseToken, for a token checkForm passed
// with the kid. It checks what costs least first: the shape of the
// signature, then the claims, decoded from the token as it is (its
// base64url is canonical, so these are the bytes go-jose decodes too), and
// only then has go-jose parse the whole JWS, so that a token refused for
// its signature's shape or its claims costs no parse.
func parseChecked(s, kid string) (*parsedToken, *Error) {
	_, rest, _ := strings.Cut(s, ".")
	payload, signature, _ := strings.Cut(rest, ".")
	if err := checkSignature(signature); err != nil {
		return nil, err
	}
	// The payload is decoded into a pooled buffer: go-jose decodes its own
	// copy, which the token keeps.
	buf := payloadBuffers.Get().(*[]byte)
	defer payloadBuffers.Put(buf)
	raw, err := base64.RawURLEncoding.AppendDecode((*buf)[:0], unsafe.Slice(unsafe.StringData(payload), len(payload)))
	*buf = raw[:0]
	if err != nil {
		return nil, notVerified(ErrMalformedToken, errors.New("payload is not base64url"))
	}
	p := new(parsedToken)
	// go-jose's json, as strict as the header's parser: names match
	// exactly, and a name given twice is refused rather than the last one
	// winning. The claims copy what they keep of raw.
	if err := josejson.Unmarshal(raw, &p.claims); err != nil {
		return nil, notVerified(ErrMalformedToken, errors.New("claims are not a JSON object of the expected types with unique names"))
	}
	if p.claims.Expiry.IsZero() || p.claims.IssuedAt.IsZero() || p.claims.Email == "" {
		return nil, notVerified(ErrMalformedToken, errors.New("exp, iat or email missing"))
	}

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
	p.jws = jws
	p.raw = jws.UnsafePayloadWithoutVerification()
	p.header = Header{Algorithm: h.Algorithm, KeyID: h.KeyID, Type: typ}
	return p, nil
}

// payloadBuffers holds the buffers parseChecked decodes payloads into,
// each at most maxTokenSize.
var payloadBuffers = sync.Pool{New: func() any { return new([]byte) }}

// es512Half is the size of R and of S in an ES512 signature, R||S
// (RFC 7518, 3.4).
const es512Half = 66

// p521Order is n, the order of P-521's group, big-endian in es512Half
// bytes.
var p521Order = elliptic.P521().Params().N.FillBytes(make([]byte, es512Half))

// checkSignature refuses a signature no key can have made: one that is not
// 132 bytes, or whose R or S is not in [1, n−1]. It costs a decode and two
// comparisons, where the verification it spares costs a parse and more.
func checkSignature(segment string) *Error {
	if len(segment) != base64.RawURLEncoding.EncodedLen(2*es512Half) {
		return notVerified(ErrSignature, errors.New("signature is not 132 bytes"))
	}
	var sig [2 * es512Half]byte
	// Decode only reads the segment: no copy of it is needed.
	if _, err := base64.RawURLEncoding.Decode(sig[:], unsafe.Slice(unsafe.StringData(segment), len(segment))); err != nil {
		return notVerified(ErrMalformedToken, errors.New("signature is not base64url"))
	}
	for _, half := range [2][]byte{sig[:es512Half], sig[es512Half:]} {
		if bytes.Equal(half, make([]byte, es512Half)) || bytes.Compare(half, p521Order) >= 0 {
			return notVerified(ErrSignature, errors.New("r or s of the signature is not in [1, n-1]"))
		}
	}
	return nil
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

// canonical reports whether s, unpadded base64url, is the one encoding of
// the bytes it decodes to (RFC 4648 §3.5): no encoding is one character
// past a multiple of four, and the bits of the last character that encode
// no byte (four when two past, two when three past) are zero. It needs no
// decoding.
func canonical(s string) bool {
	switch len(s) % 4 {
	case 1:
		return false
	case 2:
		return base64URLValue(s[len(s)-1])&0x0f == 0
	case 3:
		return base64URLValue(s[len(s)-1])&0x03 == 0
	}
	return true
}

// base64URLValue is the value b encodes in base64url, which compactForm
// has checked it is in.
func base64URLValue(b byte) byte {
	switch {
	case 'A' <= b && b <= 'Z':
		return b - 'A'
	case 'a' <= b && b <= 'z':
		return b - 'a' + 26
	case '0' <= b && b <= '9':
		return b - '0' + 52
	case b == '-':
		return 62
	}
	return 63
}

var errTooLarge = errors.New("token over 8 KiB")
