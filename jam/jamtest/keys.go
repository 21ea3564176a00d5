package jamtest

import (
	"errors"
	"slices"
)

// Errors of RemoveKey.
var (
	// ErrKeyNotFound: no key in the JWK Set has the kid.
	ErrKeyNotFound = errors.New("jamtest: no published key has this kid")
	// ErrSigningKey: the key is the one that signs new tokens; PublishKey
	// another first.
	ErrSigningKey = errors.New("jamtest: the signing key cannot be removed")
)

// PublishKey adds a new P-521 key to the JWK Set and makes it sign every ID
// token from now on, and returns its kid. Every key published before stays
// in the set, so tokens they signed keep verifying: a rotation with an
// overlap, as real issuers do. A client meets the new kid on the next token
// it verifies and refetches the set.
func (s *Server) PublishKey() (kid string) {
	k := mustGenerateKey()
	s.mu.Lock()
	s.keys = slices.Concat([]*signingKey{k}, s.keys)
	s.mu.Unlock()
	s.saveOrLog()
	return k.id
}

// RemoveKey revokes the key with the kid: it leaves the JWK Set, and the
// tokens it signed stop verifying here at once (remote verification, the
// bearer token of a logout) and in a client once it refetches the set. It
// returns ErrSigningKey for the key that signs new tokens (PublishKey
// another first) and ErrKeyNotFound for a kid not in the set.
func (s *Server) RemoveKey(kid string) error {
	s.mu.Lock()
	i := slices.IndexFunc(s.keys, func(k *signingKey) bool { return k.id == kid })
	switch {
	case i < 0:
		s.mu.Unlock()
		return ErrKeyNotFound
	case i == 0:
		s.mu.Unlock()
		return ErrSigningKey
	}
	s.keys = slices.Concat(s.keys[:i], s.keys[i+1:])
	s.mu.Unlock()
	s.saveOrLog()
	return nil
}

// RotateKey is PublishKey followed by RemoveKey of every older key, in one
// step: the new key signs every ID token from now on and is the only one
// in the JWK Set, so tokens signed before no longer verify, here or, once
// they refetch the set, in clients.
func (s *Server) RotateKey() {
	k := mustGenerateKey()
	s.mu.Lock()
	s.keys = []*signingKey{k}
	s.mu.Unlock()
	s.saveOrLog()
}

// KeyIDs returns the kids of the keys in the JWK Set, newest first, which
// puts the signing key first. The JWK Set lists them in the same order.
func (s *Server) KeyIDs() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	ids := make([]string, len(s.keys))
	for i, k := range s.keys {
		ids[i] = k.id
	}
	return ids
}

// publishedKeys returns the keys of the JWK Set, signing key first. The
// slice is never changed in place, only replaced, so it can be read after
// mu is released.
func (s *Server) publishedKeys() []*signingKey {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.keys
}

func mustGenerateKey() *signingKey {
	k, err := generateKey()
	if err != nil {
		panic(err) // crypto/rand failed; nothing can work
	}
	return k
}
