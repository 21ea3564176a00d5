package es512

import (
	"errors"
	"math/big"
	"testing"

	jose "github.com/go-jose/go-jose/v4"
)

// Ways FuzzVerify edits a valid signature before verifying it.
const (
	editNone  = iota // the valid signature of the fuzzed message
	editXOR          // edit XORed into the signature, wrapping around
	editR            // r replaced by edit
	editS            // s replaced by edit
	editAddR         // r plus or minus edit
	editAddS         // s plus or minus edit
	editWhole        // the signature replaced by edit, of any length
	edits
)

// FuzzVerify is differential: it signs the fuzzed message (so the hash is
// fuzzed too), edits the signature as mode says, and requires the
// precomputed Verifier's verdict to be crypto/ecdsa's, and a valid signature
// to verify.
func FuzzVerify(f *testing.F) {
	k := newSigner(f, "FuzzVerify")
	v, err := New(k.public())
	if err != nil {
		f.Fatal(err)
	}
	nBytes := n.Bytes()
	max528 := make([]byte, scalarLen)
	for i := range max528 {
		max528[i] = 0xff
	}
	for mode := range uint8(edits) {
		f.Add([]byte("eyJhbGciOiJFUzUxMiJ9.e30"), mode, []byte{1})
		f.Add([]byte{}, mode, nBytes)
		f.Add([]byte("payload"), mode, max528)
		f.Add([]byte("payload"), mode, []byte{})
	}
	f.Add([]byte("payload"), uint8(editAddS), append([]byte{1}, nBytes...)) // |s − n| = n − s
	f.Add([]byte("payload"), uint8(editAddS), append([]byte{0}, nBytes...)) // s + n
	f.Add([]byte("payload"), uint8(editAddR), append([]byte{0}, nBytes...)) // r + n
	f.Fuzz(func(t *testing.T, msg []byte, mode uint8, edit []byte) {
		sig := k.sign(t, msg)
		r := new(big.Int).SetBytes(sig[:scalarLen])
		s := new(big.Int).SetBytes(sig[scalarLen:])
		switch mode % edits {
		case editXOR:
			for i, b := range edit {
				sig[i%len(sig)] ^= b
			}
		case editR:
			sig = rawSignature(new(big.Int).SetBytes(edit), s)
		case editS:
			sig = rawSignature(r, new(big.Int).SetBytes(edit))
		case editAddR:
			sig = rawSignature(r.Add(r, signed(edit)), s)
		case editAddS:
			sig = rawSignature(r, s.Add(s, signed(edit)))
		case editWhole:
			sig = edit
		}
		want := standardVerify(k.public(), msg, sig)
		err := v.VerifyPayload(msg, sig, jose.ES512)
		if got := err == nil; got != want {
			t.Fatalf("VerifyPayload(%x, %x) = %v; crypto/ecdsa verifies: %v", msg, sig, err, want)
		}
		if mode%edits == editNone && err != nil {
			t.Fatalf("VerifyPayload(%x, its own signature) = %v, want nil", msg, err)
		}
		if err != nil && !errors.Is(err, ErrSignature) {
			t.Fatalf("VerifyPayload(%x, %x) = %v, want %v", msg, sig, err, ErrSignature)
		}
	})
}

// signed reads b as a sign byte (odd: negative) followed by a magnitude.
func signed(b []byte) *big.Int {
	if len(b) == 0 {
		return new(big.Int)
	}
	x := new(big.Int).SetBytes(b[1:])
	if b[0]&1 == 1 {
		x.Neg(x)
	}
	return x
}
