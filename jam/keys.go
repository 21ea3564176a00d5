package jam

import (
	"crypto/ecdsa"
	"slices"

	"github.com/go-jam/go-jam/jam/internal/es512"
	jose "github.com/go-jose/go-jose/v4"
)

// maxPrecomputedKeys is how many keys of the set get the tables of the
// fast ES512 verifier (es512.New: 2.1 MiB each, built in about 40 ms when
// the key enters the set, beside 6.8 MiB shared by all, built once); keys
// past it verify with crypto/ecdsa. JAM's sets hold one key, two during a
// rotation.
const maxPrecomputedKeys = 4

// A key is a signing key of the set and its verifier.
type key struct {
	pub *ecdsa.PublicKey
	v   *es512.Verifier
}

// verifiers returns the keys of set by kid, each with its verifier. A key
// held already keeps its verifier, and its pointer, so that the tokens it
// verified stay in the token cache. It runs in the fetch, which is alone.
func (s *keySet) verifiers(set *jose.JSONWebKeySet) map[string][]*key {
	old := s.state.Load().keys
	keys := make(map[string][]*key, len(set.Keys))
	var fresh []*key
	precomputed := 0
	for _, jwk := range set.Keys {
		pub := jwk.Key.(*ecdsa.PublicKey)
		i := slices.IndexFunc(old[jwk.KeyID], func(o *key) bool { return o.pub.Equal(pub) })
		if i >= 0 {
			k := old[jwk.KeyID][i]
			keys[jwk.KeyID] = append(keys[jwk.KeyID], k)
			if k.v.Precomputed() {
				precomputed++
			}
			continue
		}
		k := &key{pub: pub}
		keys[jwk.KeyID] = append(keys[jwk.KeyID], k)
		fresh = append(fresh, k)
	}
	for _, k := range fresh {
		newVerifier := es512.NewStandard
		if precomputed < maxPrecomputedKeys {
			newVerifier = es512.New
		}
		// go-jose has checked that the key is a point of P-521, and so has
		// usable, so this cannot fail; if it did, crypto/ecdsa would refuse
		// the key just the same.
		k.v, _ = newVerifier(k.pub)
		if k.v.Precomputed() {
			precomputed++
		}
	}
	return keys
}
