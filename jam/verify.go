package jam

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"slices"
	"time"
	"unsafe"
)

// VerifyToken verifies a JAM ID token locally and returns its claims. It
// accepts a token only if all of these hold:
//
//   - it is a compact JWS of at most 8 KiB with one ES512 signature, each
//     part in canonical base64url (RFC 4648 §3.5: unused bits zero); its
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
// callers share a fetch in flight. Such a token gets ErrUnknownKey only
// when a refetch that began during the call proved its kid unknown, or the
// kid is one a fetch removed from the set. When the rate limit refuses the
// refetch, the kid may be a key JAM has just published, so the token gets
// ErrKeySetUnavailable, at once, with Error.RetryAfter the time until a
// refetch is allowed (Middleware answers 503 and Retry-After); so does it
// while the last fetch failed.
//
// Tokens that verified are remembered (WithCacheSize), so verifying the
// same token again costs a hash and a lookup instead of a signature check;
// their times are still checked against the clock on every call, and they
// are forgotten when their key leaves the key set.
//
// A token's string is not a unique name: ECDSA lets anyone turn a
// signature (r, s) into (r, n−s), which verifies too. Key a denylist or a
// replay check on the jti claim (Claims.ID), never on the string.
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
			st := c.keys.state.Load()
			c.keys.refreshIfStale(st, now)
			if st.holds(e.token.Header.KeyID, e.key) {
				c.stats.cacheHits.Inc(sum[0])
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
	i := slices.IndexFunc(keys, func(k *key) bool { return p.jws.DetachedVerify(p.raw, c.keys.tables.verifier(k)) == nil })
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

// cacheEntry is a verified token and the key that verified it. An entry
// may outlive its key's place in the set until the token is seen again or
// evicted; the key then holds no tables (tables.remove), only its public
// key, so that what the cache keeps alive stays small.
type cacheEntry struct {
	token *Token
	key   *key
}

// maxIssuerShown bounds how much of a wrong iss an error or log shows.
const maxIssuerShown = 200

// checkClaims checks the claims of a token whose signature is valid.
func (c *Client) checkClaims(cl *Claims, now time.Time) *Error {
	switch {
	case cl.Issuer != c.issuer:
		// A signature of the app's key with another iss is a configuration
		// mistake (localhost for 127.0.0.1, a proxy's prefix), not an
		// attack: say what each side holds. The iss is signed by JAM, and
		// is no secret; %q escapes what a terminal would act on.
		found := cl.Issuer
		if len(found) > maxIssuerShown {
			found = found[:maxIssuerShown] + "…"
		}
		if c.issuerWarnings.AllowN(now, 1) {
			c.log.Warn("token refused: its issuer is not the one expected; see WithIssuer and WithBaseURL", "iss", found, "want", c.issuer)
		}
		return notVerified(ErrIssuer, fmt.Errorf("iss is %q, want %q", found, c.issuer))
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
