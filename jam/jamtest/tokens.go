package jamtest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/google/uuid"

	"github.com/go-jam/go-jam/generated/jamserver"
)

// maxTokenSize bounds the ID tokens the server parses; its own are about
// 600 bytes.
const maxTokenSize = 8 << 10

// signingKey is the P-521 key that signs the app's ID tokens, with what is
// derived from it once.
type signingKey struct {
	id     string
	priv   *ecdsa.PrivateKey
	signer jose.Signer
	public jamserver.JWK // its entry in the JWK Set
}

func generateKey() (*signingKey, error) {
	priv, err := ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("jamtest: generating a P-521 key: %w", err)
	}
	return newSigningKey(uuid.NewString(), priv)
}

func newSigningKey(kid string, priv *ecdsa.PrivateKey) (*signingKey, error) {
	signer, err := jose.NewSigner(
		jose.SigningKey{Algorithm: jose.ES512, Key: jose.JSONWebKey{Key: priv, KeyID: kid}},
		(&jose.SignerOptions{}).WithType("JWT"),
	)
	if err != nil {
		return nil, fmt.Errorf("jamtest: signer: %w", err)
	}
	// go-jose writes x and y at the curve's full size (66 bytes), as RFC
	// 7518 requires; reuse that rather than encode the point again.
	pub, err := jose.JSONWebKey{Key: &priv.PublicKey, KeyID: kid, Use: "sig", Algorithm: string(jose.ES512)}.MarshalJSON()
	if err != nil {
		return nil, fmt.Errorf("jamtest: public key: %w", err)
	}
	k := &signingKey{id: kid, priv: priv, signer: signer}
	if err := json.Unmarshal(pub, &k.public); err != nil {
		return nil, fmt.Errorf("jamtest: public key: %w", err)
	}
	return k, nil
}

// idClaims are the claims of a JAM ID token, in the order JAM writes them.
// aud is a single string, as in JAM's tokens.
type idClaims struct {
	Email     string `json:"email"`
	Subject   string `json:"sub"`
	Audience  string `json:"aud"`
	Issuer    string `json:"iss"`
	ID        string `json:"jti"`
	TokenUse  string `json:"token_use"`
	IssuedAt  int64  `json:"iat"`
	NotBefore int64  `json:"nbf"`
	Expiry    int64  `json:"exp"`
}

// sign returns an ID token for email, issued at now.
func (k *signingKey) sign(issuer, appID, email string, now time.Time, ttl time.Duration) (string, error) {
	iat := now.Unix()
	payload, err := json.Marshal(idClaims{
		Email:     email,
		Subject:   email,
		Audience:  appID,
		Issuer:    issuer,
		ID:        uuid.NewString(),
		TokenUse:  "id",
		IssuedAt:  iat,
		NotBefore: iat,
		Expiry:    iat + int64(ttl/time.Second),
	})
	if err != nil {
		return "", err
	}
	jws, err := k.signer.Sign(payload)
	if err != nil {
		return "", fmt.Errorf("jamtest: signing: %w", err)
	}
	return jws.CompactSerialize()
}

// errInvalidToken is the one answer for every ID token the server refuses;
// JAM does not say why either.
var errInvalidToken = errors.New("invalid ID token")

// verifyToken checks an ID token the way JAM does: ES512, signed by the key
// of keys its kid names, iss, aud, token_use, and times, with no leeway
// since the server is the clock that issued it. It returns the email
// address.
func verifyToken(raw string, keys []*signingKey, issuer, appID string, now time.Time) (string, error) {
	if raw == "" || len(raw) > maxTokenSize {
		return "", errInvalidToken
	}
	tok, err := jwt.ParseSigned(raw, []jose.SignatureAlgorithm{jose.ES512})
	if err != nil || len(tok.Headers) != 1 {
		return "", errInvalidToken
	}
	i := slices.IndexFunc(keys, func(k *signingKey) bool { return k.id == tok.Headers[0].KeyID })
	if i < 0 {
		return "", errInvalidToken
	}
	k := keys[i]
	var (
		std   jwt.Claims
		extra struct {
			Email    string `json:"email"`
			TokenUse string `json:"token_use"`
		}
	)
	if err := tok.Claims(&k.priv.PublicKey, &std, &extra); err != nil {
		return "", errInvalidToken
	}
	// ValidateWithLeeway skips a missing exp or iat; JAM's tokens have both.
	if std.Expiry == nil || std.IssuedAt == nil || extra.Email == "" || extra.TokenUse != "id" {
		return "", errInvalidToken
	}
	want := jwt.Expected{Issuer: issuer, AnyAudience: jwt.Audience{appID}, Time: now}
	if err := std.ValidateWithLeeway(want, 0); err != nil {
		return "", errInvalidToken
	}
	return extra.Email, nil
}

// randomToken returns 256 random bits, base64url-encoded: refresh tokens
// and magic-link codes.
func randomToken() string {
	b := make([]byte, 32)
	rand.Read(b) // never fails: crypto/rand crashes the program instead
	return base64.RawURLEncoding.EncodeToString(b)
}
