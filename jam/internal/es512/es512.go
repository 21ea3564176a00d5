// Package es512 verifies ES512 signatures (ECDSA over P-521 with SHA-512, the
// signature being the 132-byte r‖s of RFC 7518) about ten times faster than
// crypto/ecdsa, for keys that verify many signatures.
//
// crypto/ecdsa computes u1·G + u2·Q with a precomputed table for the generator
// G but 521 doublings and constant-time table scans for the public key Q,
// because it cannot know Q will be used again. A JWKS key verifies millions of
// tokens, and verification handles only public data, so [New] precomputes the
// multiples of Q a verification can need (1.2 MiB per key) and shares one
// wider table for G (3.7 MiB, built by the first New). A verification is then
// 119 point additions, with no doubling and no inversion: x(R) = X/Z is
// compared with r as X = r·Z.
//
// The field and point arithmetic is this package's own (field.go, point.go),
// tested against math/big, filippo.io/nistec, crypto/ecdsa and Wycheproof's
// vectors. The standard library's, which nistec exports, is fiat-crypto's
// Montgomery code for any prime: it does not use P-521's prime being
// 2^521 − 1, and keeps the coordinates that avoid the inversion to itself.
// Scalars mod n use math/big. In FIPS 140 mode every Verifier uses
// crypto/ecdsa.
//
// Errors match [ErrInvalidKey], [ErrAlgorithm] or [ErrSignature] with
// errors.Is; their text never holds key, signature or payload bytes.
package es512

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/fips140"
	"crypto/sha512"
	"errors"
	"math/big"
	"sync"

	jose "github.com/go-jose/go-jose/v4"
)

// Table widths in bits, chosen with BenchmarkWidths. A table of width w
// costs ⌈522/w⌉ additions per verification and holds ⌈522/w⌉·2^(w−1)
// points of 144 bytes: one more bit saves a few additions and doubles the
// memory and the time to build it. The G table is paid for once per
// process, so it is the wider.
const (
	gWidth = 10 // 53 windows × 512 points: 3.7 MiB, once per process
	qWidth = 8  // 66 windows × 128 points: 1.2 MiB per key
)

var (
	// ErrInvalidKey means the key given to [New] or [NewStandard] is not a
	// point of P-521 other than the point at infinity.
	ErrInvalidKey = errors.New("es512: not a valid P-521 public key")
	// ErrAlgorithm means VerifyPayload was asked to verify an algorithm other
	// than ES512.
	ErrAlgorithm = errors.New("es512: algorithm is not ES512")
	// ErrSignature means the signature is malformed or does not verify.
	ErrSignature = errors.New("es512: signature does not verify")
)

// Reasons, made once so that refusing a signature allocates nothing.
var (
	errLength = &reasonError{ErrSignature, "not 132 bytes"}
	errRange  = &reasonError{ErrSignature, "r or s not in [1, n-1]"}
	errNoKey  = &reasonError{ErrInvalidKey, "Verifier not made by New or NewStandard"}
)

type reasonError struct {
	err    error
	reason string
}

func (e *reasonError) Error() string { return e.err.Error() + ": " + e.reason }
func (e *reasonError) Unwrap() error { return e.err }

// n is the order of P-521's base point.
var n = elliptic.P521().Params().N

// generatorTable is built on first use and shared by every Verifier.
var generatorTable = sync.OnceValue(func() *table { return newTable(&generator, gWidth) })

// A Verifier verifies ES512 signatures made with one P-521 key. It implements
// jose.OpaqueVerifier, so go-jose still parses the JWS and builds the signing
// input: pass it to (jose.JSONWebSignature).Verify or DetachedVerify. A
// Verifier is safe for concurrent use.
type Verifier struct {
	pub *ecdsa.PublicKey
	q   *table // nil: verify with crypto/ecdsa
}

// New returns a Verifier for pub that precomputes a table of multiples of
// pub: 1.2 MiB that live as long as the Verifier, built in the time of about
// 8 crypto/ecdsa verifications (12 ms on the machine of BENCHMARKS.md). The
// first New also builds the table of multiples of the generator that every
// Verifier shares: 3.7 MiB for the life of the process, built in about
// 40 ms. In FIPS 140 mode New returns the Verifier of [NewStandard].
//
// The error matches [ErrInvalidKey] unless pub is a point of P-521 other than
// the point at infinity.
func New(pub *ecdsa.PublicKey) (*Verifier, error) {
	v, enc, err := newStandard(pub)
	if err != nil || fips140.Enabled() {
		return v, err
	}
	// enc is 0x04‖X‖Y, each coordinate below p.
	var q affinePoint
	q.x.setBytes((*[scalarLen]byte)(enc[1:]))
	q.y.setBytes((*[scalarLen]byte)(enc[1+scalarLen:]))
	generatorTable()
	v.q = newTable(&q, qWidth)
	return v, nil
}

// NewStandard returns a Verifier for pub that makes the same checks as
// [New]'s but verifies with crypto/ecdsa, with no table: for keys past the
// number a caller is willing to spend memory on.
func NewStandard(pub *ecdsa.PublicKey) (*Verifier, error) {
	v, _, err := newStandard(pub)
	return v, err
}

// newStandard checks pub with crypto/ecdsa alone, so that FIPS 140 mode
// uses nothing else, and returns its Verifier and uncompressed encoding.
func newStandard(pub *ecdsa.PublicKey) (*Verifier, []byte, error) {
	//lint:ignore SA1019 Bytes would panic on a missing coordinate.
	if pub == nil || pub.Curve != elliptic.P521() || pub.X == nil || pub.Y == nil {
		return nil, nil, ErrInvalidKey
	}
	// Bytes refuses negative and over-long coordinates and points off the
	// curve, the point at infinity among them.
	enc, err := pub.Bytes()
	if err != nil {
		return nil, nil, ErrInvalidKey
	}
	// A copy, so that a caller changing pub's big.Ints cannot change the
	// key behind a table.
	key, err := ecdsa.ParseUncompressedPublicKey(elliptic.P521(), enc)
	if err != nil {
		return nil, nil, ErrInvalidKey
	}
	return &Verifier{pub: key}, enc, nil
}

// Precomputed reports whether v verifies with precomputed tables rather than
// with crypto/ecdsa.
func (v *Verifier) Precomputed() bool { return v != nil && v.q != nil }

// VerifyPayload reports whether signature is a valid ES512 signature of
// payload (for a JWS, the signing input) made with v's key. It implements
// jose.OpaqueVerifier; the error matches [ErrAlgorithm] or [ErrSignature], or
// [ErrInvalidKey] for a Verifier that New or NewStandard did not make.
func (v *Verifier) VerifyPayload(payload, signature []byte, alg jose.SignatureAlgorithm) error {
	if v == nil || v.pub == nil {
		return errNoKey
	}
	if alg != jose.ES512 {
		return ErrAlgorithm
	}
	if len(signature) != 2*scalarLen {
		return errLength
	}
	var r, s big.Int
	r.SetBytes(signature[:scalarLen])
	s.SetBytes(signature[scalarLen:])
	if r.Sign() == 0 || r.Cmp(n) >= 0 || s.Sign() == 0 || s.Cmp(n) >= 0 {
		return errRange
	}
	h := sha512.Sum512(payload)
	if v.q == nil {
		if !ecdsa.Verify(v.pub, h[:], &r, &s) {
			return ErrSignature
		}
		return nil
	}
	if !v.verify(h[:], &r, &s) {
		return ErrSignature
	}
	return nil
}

// verify is SEC 1, Version 2.0, section 4.1.4, with r and s already checked
// to be in [1, n−1].
func (v *Verifier) verify(hash []byte, r, s *big.Int) bool {
	// The hash is 512 bits, shorter than n: it is e as it is.
	var e, w big.Int
	e.SetBytes(hash)
	w.ModInverse(s, n)
	var u1, u2 [scalarLen]byte
	e.Mul(&e, &w).Mod(&e, n).FillBytes(u1[:])
	w.Mul(r, &w).Mod(&w, n).FillBytes(u2[:])

	p := infinity
	generatorTable().addMul(&p, &u1)
	v.q.addMul(&p, &u2)
	return p.xModN(r)
}
