package es512

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha512"
	"encoding/asn1"
	"math/big"
	"testing"
)

// A signer holds a P-521 private key and makes deterministic (RFC 6979)
// ES512 signatures, so that a failing case reproduces.
type signer struct {
	priv *ecdsa.PrivateKey
}

// newSigner returns the signer whose private scalar is the hash of seed
// reduced mod n, so that each test's key is the same on every run.
func newSigner(t testing.TB, seed string) signer {
	t.Helper()
	h := sha512.Sum512([]byte(seed))
	return signerWithD(t, new(big.Int).Mod(new(big.Int).SetBytes(h[:]), n))
}

// signerWithD returns the signer whose private scalar is d.
func signerWithD(t testing.TB, d *big.Int) signer {
	t.Helper()
	priv, err := ecdsa.ParseRawPrivateKey(elliptic.P521(), d.FillBytes(make([]byte, scalarLen)))
	if err != nil {
		t.Fatal(err)
	}
	return signer{priv}
}

func (k signer) public() *ecdsa.PublicKey { return &k.priv.PublicKey }

// sign returns the r‖s ES512 signature of msg.
func (k signer) sign(t testing.TB, msg []byte) []byte {
	t.Helper()
	h := sha512.Sum512(msg)
	der, err := k.priv.Sign(nil, h[:], crypto.SHA512)
	if err != nil {
		t.Fatal(err)
	}
	var rs struct{ R, S *big.Int }
	if _, err := asn1.Unmarshal(der, &rs); err != nil {
		t.Fatal(err)
	}
	return rawSignature(rs.R, rs.S)
}

// rawSignature encodes r and s, each in 66 bytes, as JWS ES512 does. Values
// over 66 bytes keep their low 66 bytes.
func rawSignature(r, s *big.Int) []byte {
	sig := make([]byte, 2*scalarLen)
	copy(sig[:scalarLen], fixed(r))
	copy(sig[scalarLen:], fixed(s))
	return sig
}

func fixed(x *big.Int) []byte {
	b := x.Bytes()
	if len(b) >= scalarLen {
		return b[len(b)-scalarLen:]
	}
	return append(make([]byte, scalarLen-len(b)), b...)
}

// standardVerify is crypto/ecdsa's verdict on the r‖s signature sig of msg;
// false when sig does not have 132 bytes, which crypto/ecdsa cannot be asked.
func standardVerify(pub *ecdsa.PublicKey, msg, sig []byte) bool {
	if len(sig) != 2*scalarLen {
		return false
	}
	h := sha512.Sum512(msg)
	r := new(big.Int).SetBytes(sig[:scalarLen])
	s := new(big.Int).SetBytes(sig[scalarLen:])
	return ecdsa.Verify(pub, h[:], r, s)
}

// mustVerifiers returns the precomputed and the standard Verifier of pub.
func mustVerifiers(t testing.TB, pub *ecdsa.PublicKey) map[string]*Verifier {
	t.Helper()
	fast, err := New(pub)
	if err != nil {
		t.Fatalf("New() = %v, want a Verifier", err)
	}
	standard, err := NewStandard(pub)
	if err != nil {
		t.Fatalf("NewStandard() = %v, want a Verifier", err)
	}
	return map[string]*Verifier{"New": fast, "NewStandard": standard}
}
