//lint:file-ignore SA1019 Malformed keys can only be built from raw coordinates.

package es512

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha512"
	"errors"
	"math/big"
	"strings"
	"sync"
	"testing"

	"filippo.io/nistec"
	jose "github.com/go-jose/go-jose/v4"
)

var _ jose.OpaqueVerifier = (*Verifier)(nil)

// TestVerifyPayload checks the verdict and error of both kinds of Verifier
// on signatures edited in every way the checks name, and that the verdict
// is crypto/ecdsa's.
func TestVerifyPayload(t *testing.T) {
	k := newSigner(t, "TestVerifyPayload")
	msg := []byte("eyJhbGciOiJFUzUxMiJ9.eyJzdWIiOiJhbm5AZXhhbXBsZS5jb20ifQ")
	sig := k.sign(t, msg)
	r := new(big.Int).SetBytes(sig[:scalarLen])
	s := new(big.Int).SetBytes(sig[scalarLen:])
	one := big.NewInt(1)
	max528 := new(big.Int).Sub(new(big.Int).Lsh(one, 528), one)
	plus := func(x *big.Int, k int64) *big.Int { return new(big.Int).Add(x, big.NewInt(k)) }
	flip := func(i int) []byte {
		b := append([]byte(nil), sig...)
		b[i] ^= 1
		return b
	}

	tests := []struct {
		name string
		msg  []byte
		sig  []byte
		alg  jose.SignatureAlgorithm
		want error
	}{
		{"valid", msg, sig, jose.ES512, nil},
		// ECDSA does not refuse the other of the two valid s; neither does
		// crypto/ecdsa, nor JWS.
		{"valid with n-s", msg, rawSignature(r, new(big.Int).Sub(n, s)), jose.ES512, nil},
		{"other payload", []byte("eyJhbGciOiJFUzUxMiJ9.e30"), sig, jose.ES512, ErrSignature},
		{"empty payload", nil, sig, jose.ES512, ErrSignature},
		{"r edited", msg, flip(scalarLen - 1), jose.ES512, ErrSignature},
		{"s edited", msg, flip(2*scalarLen - 1), jose.ES512, ErrSignature},
		{"r and s swapped", msg, rawSignature(s, r), jose.ES512, ErrSignature},
		{"r = 0", msg, rawSignature(new(big.Int), s), jose.ES512, ErrSignature},
		{"s = 0", msg, rawSignature(r, new(big.Int)), jose.ES512, ErrSignature},
		{"r = n", msg, rawSignature(n, s), jose.ES512, ErrSignature},
		{"s = n", msg, rawSignature(r, n), jose.ES512, ErrSignature},
		{"r = n+r", msg, rawSignature(new(big.Int).Add(n, r), s), jose.ES512, ErrSignature},
		{"s = n+s", msg, rawSignature(r, new(big.Int).Add(n, s)), jose.ES512, ErrSignature},
		{"r = n+1", msg, rawSignature(plus(n, 1), s), jose.ES512, ErrSignature},
		{"s = n+1", msg, rawSignature(r, plus(n, 1)), jose.ES512, ErrSignature},
		{"r = 2^528-1", msg, rawSignature(max528, s), jose.ES512, ErrSignature},
		{"s = 2^528-1", msg, rawSignature(r, max528), jose.ES512, ErrSignature},
		{"r = n-1", msg, rawSignature(plus(n, -1), s), jose.ES512, ErrSignature},
		{"s = 1", msg, rawSignature(r, one), jose.ES512, ErrSignature},
		{"empty", msg, nil, jose.ES512, ErrSignature},
		{"1 byte", msg, []byte{1}, jose.ES512, ErrSignature},
		{"131 bytes", msg, sig[1:], jose.ES512, ErrSignature},
		{"133 bytes", msg, append([]byte{0}, sig...), jose.ES512, ErrSignature},
		{"ES256 length", msg, sig[:64], jose.ES512, ErrSignature},
		{"ES384 length", msg, sig[:96], jose.ES512, ErrSignature},
		{"twice", msg, append(append([]byte(nil), sig...), sig...), jose.ES512, ErrSignature},
		{"ES256", msg, sig, jose.ES256, ErrAlgorithm},
		{"ES384", msg, sig, jose.ES384, ErrAlgorithm},
		{"RS512", msg, sig, jose.RS512, ErrAlgorithm},
		{"PS512", msg, sig, jose.PS512, ErrAlgorithm},
		{"HS512", msg, sig, jose.HS512, ErrAlgorithm},
		{"EdDSA", msg, sig, jose.EdDSA, ErrAlgorithm},
		{"none", msg, sig, "none", ErrAlgorithm},
		{"empty alg", msg, sig, "", ErrAlgorithm},
		{"es512", msg, sig, "es512", ErrAlgorithm},
	}
	verifiers := mustVerifiers(t, k.public())
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for name, v := range verifiers {
				err := v.VerifyPayload(tt.msg, tt.sig, tt.alg)
				if !errors.Is(err, tt.want) || (err == nil) != (tt.want == nil) {
					t.Errorf("%s: VerifyPayload(%q) = %v, want %v", name, tt.name, err, tt.want)
				}
				if err != nil && !strings.HasPrefix(err.Error(), "es512: ") {
					t.Errorf("%s: VerifyPayload(%q) error %q does not start with es512: ", name, tt.name, err)
				}
			}
			if tt.alg == jose.ES512 {
				if got, want := standardVerify(k.public(), tt.msg, tt.sig), tt.want == nil; got != want {
					t.Errorf("crypto/ecdsa accepts %q: %v, want %v", tt.name, got, want)
				}
			}
		})
	}
}

// TestNewRefusesKeys checks that no key other than a point of P-521 gets a
// Verifier, and that none makes a constructor panic.
func TestNewRefusesKeys(t *testing.T) {
	good := newSigner(t, "TestNewRefusesKeys").public()
	p := elliptic.P521().Params().P
	with := func(x, y *big.Int) *ecdsa.PublicKey {
		return &ecdsa.PublicKey{Curve: elliptic.P521(), X: x, Y: y}
	}
	other := func(c elliptic.Curve) *ecdsa.PublicKey {
		priv, err := ecdsa.GenerateKey(c, rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return &priv.PublicKey
	}
	tests := []struct {
		name string
		key  *ecdsa.PublicKey
	}{
		{"nil", nil},
		{"no curve", &ecdsa.PublicKey{X: good.X, Y: good.Y}},
		{"no X", with(nil, good.Y)},
		{"no Y", with(good.X, nil)},
		{"no coordinates", with(nil, nil)},
		{"P-256 key", other(elliptic.P256())},
		{"P-384 key", other(elliptic.P384())},
		{"P-521 parameters as a custom curve", &ecdsa.PublicKey{Curve: elliptic.P521().Params(), X: good.X, Y: good.Y}},
		{"infinity as (0, 0)", with(new(big.Int), new(big.Int))},
		{"off the curve", with(good.X, new(big.Int).Add(good.Y, big.NewInt(1)))},
		{"-y", with(good.X, new(big.Int).Neg(good.Y))},
		{"x negative", with(new(big.Int).Neg(good.X), good.Y)},
		{"x + p", with(new(big.Int).Add(good.X, p), good.Y)},
		{"y + p", with(good.X, new(big.Int).Add(good.Y, p))},
		{"x = p", with(p, good.Y)},
		{"y over 528 bits", with(good.X, new(big.Int).Lsh(big.NewInt(1), 600))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for name, newVerifier := range map[string]func(*ecdsa.PublicKey) (*Verifier, error){"New": New, "NewStandard": NewStandard} {
				v, err := newVerifier(tt.key)
				if !errors.Is(err, ErrInvalidKey) || v != nil {
					t.Errorf("%s(%s) = %v, %v, want nil, %v", name, tt.name, v, err, ErrInvalidKey)
				}
			}
		})
	}
}

// TestZeroVerifier checks that a Verifier no constructor made refuses every
// signature rather than panic.
func TestZeroVerifier(t *testing.T) {
	k := newSigner(t, "TestZeroVerifier")
	msg := []byte("payload")
	sig := k.sign(t, msg)
	for name, v := range map[string]*Verifier{"nil": nil, "zero": {}} {
		if err := v.VerifyPayload(msg, sig, jose.ES512); !errors.Is(err, ErrInvalidKey) {
			t.Errorf("%s: VerifyPayload() = %v, want %v", name, err, ErrInvalidKey)
		}
		if v.Precomputed() {
			t.Errorf("%s: Precomputed() = true, want false", name)
		}
	}
}

// TestNewKeepsItsKey checks that changing the caller's key after New changes
// nothing: the Verifier holds its own copy.
func TestNewKeepsItsKey(t *testing.T) {
	k := newSigner(t, "TestNewKeepsItsKey")
	msg := []byte("payload")
	sig := k.sign(t, msg)
	pub := &ecdsa.PublicKey{Curve: elliptic.P521(), X: new(big.Int).Set(k.public().X), Y: new(big.Int).Set(k.public().Y)}
	verifiers := mustVerifiers(t, pub)
	pub.X.SetInt64(1)
	pub.Y.SetInt64(2)
	for name, v := range verifiers {
		if err := v.VerifyPayload(msg, sig, jose.ES512); err != nil {
			t.Errorf("%s: VerifyPayload() after the key changed = %v, want nil", name, err)
		}
	}
}

// TestPrecomputed checks which Verifier each constructor gives outside FIPS
// 140 mode (TestFIPS covers that mode).
func TestPrecomputed(t *testing.T) {
	for name, v := range mustVerifiers(t, newSigner(t, "TestPrecomputed").public()) {
		if got, want := v.Precomputed(), name == "New"; got != want {
			t.Errorf("%s: Precomputed() = %v, want %v", name, got, want)
		}
	}
}

// curvePoint returns the uncompressed point of P-521 with coordinate x and the
// even y, or false when x is not the coordinate of a point.
func curvePoint(x *big.Int) (*nistec.P521Point, bool) {
	params := elliptic.P521().Params()
	p := params.P
	// y² = x³ − 3x + b
	y2 := new(big.Int).Exp(x, big.NewInt(3), p)
	y2.Sub(y2, new(big.Int).Mul(big.NewInt(3), x))
	y2.Add(y2, params.B).Mod(y2, p)
	y := new(big.Int).ModSqrt(y2, p)
	if y == nil {
		return nil, false
	}
	enc := append([]byte{4}, fixed(x)...)
	q, err := nistec.NewP521Point().SetBytes(append(enc, fixed(y)...))
	return q, err == nil
}

func scalarBytes(k *big.Int) []byte { return new(big.Int).Mod(k, n).FillBytes(make([]byte, scalarLen)) }

func publicKey(t *testing.T, q *nistec.P521Point) *ecdsa.PublicKey {
	t.Helper()
	pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P521(), q.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	return pub
}

// TestReductionModN builds a key and signature for which R = u1·G + u2·Q has
// x(R) ≥ n: the signature is valid with r = x(R) − n, so a verifier must
// reduce x(R) mod n, and must refuse r = x(R), which is out of range.
func TestReductionModN(t *testing.T) {
	// p − n is about 2^260, so such an R is found by walking up from n, not
	// by signing.
	var R *nistec.P521Point
	x := new(big.Int).Add(n, big.NewInt(1))
	for ; ; x.Add(x, big.NewInt(1)) {
		if q, ok := curvePoint(x); ok {
			R = q
			break
		}
	}
	r := new(big.Int).Sub(x, n)
	msg := []byte("x(R) >= n")
	h := sha512.Sum512(msg)
	e := new(big.Int).SetBytes(h[:])
	sh := sha512.Sum512([]byte("s"))
	s := new(big.Int).Mod(new(big.Int).SetBytes(sh[:]), n)
	// R = u1·G + u2·Q with u1 = e/s, u2 = r/s, so Q = (R − u1·G)/u2.
	w := new(big.Int).ModInverse(s, n)
	u1 := new(big.Int).Mul(e, w)
	u2 := new(big.Int).Mul(r, w)
	u1G, err := nistec.NewP521Point().ScalarBaseMult(scalarBytes(u1))
	if err != nil {
		t.Fatal(err)
	}
	q := nistec.NewP521Point().Add(R, nistec.NewP521Point().Negate(u1G))
	if _, err := q.ScalarMult(q, scalarBytes(new(big.Int).ModInverse(new(big.Int).Mod(u2, n), n))); err != nil {
		t.Fatal(err)
	}
	pub := publicKey(t, q)

	tests := []struct {
		name string
		sig  []byte
		want error
	}{
		{"r = x(R) - n", rawSignature(r, s), nil},
		{"r = x(R)", rawSignature(x, s), ErrSignature},
		{"r = x(R) - n + 1", rawSignature(new(big.Int).Add(r, big.NewInt(1)), s), ErrSignature},
	}
	for name, v := range mustVerifiers(t, pub) {
		for _, tt := range tests {
			if err := v.VerifyPayload(msg, tt.sig, jose.ES512); !errors.Is(err, tt.want) || (err == nil) != (tt.want == nil) {
				t.Errorf("%s: VerifyPayload(%q) = %v, want %v", name, tt.name, err, tt.want)
			}
			if got, want := standardVerify(pub, msg, tt.sig), tt.want == nil; got != want {
				t.Errorf("crypto/ecdsa accepts %q: %v, want %v", tt.name, got, want)
			}
		}
	}
}

// TestPointAtInfinity builds keys and signatures for which u1·G + u2·Q is the
// point at infinity, which has no x to compare with r.
func TestPointAtInfinity(t *testing.T) {
	msg := []byte("infinity")
	h := sha512.Sum512(msg)
	e := new(big.Int).SetBytes(h[:])
	r := big.NewInt(12345)
	s := big.NewInt(67890)
	minusOne := new(big.Int).Sub(n, big.NewInt(1))
	tests := []struct {
		name string
		d    *big.Int // the private key
		r    *big.Int
	}{
		// u1 + u2·d = (e + r·d)/s = 0 when d = −e/r.
		{"d = -e/r", new(big.Int).Mod(new(big.Int).Mul(new(big.Int).Neg(e), new(big.Int).ModInverse(r, n)), n), r},
		// Q = −G: u1·G + u2·Q = (e − r)/s·G = ∞ when r = e.
		{"Q = -G, r = e", minusOne, new(big.Int).Mod(e, n)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pub := signerWithD(t, tt.d).public()
			sig := rawSignature(tt.r, s)
			verifiers := mustVerifiers(t, pub)

			// That the construction does reach infinity.
			w := new(big.Int).ModInverse(s, n)
			var u1, u2 [scalarLen]byte
			new(big.Int).Mod(new(big.Int).Mul(e, w), n).FillBytes(u1[:])
			new(big.Int).Mod(new(big.Int).Mul(tt.r, w), n).FillBytes(u2[:])
			sum := infinity
			generatorTable().addMul(&sum, &u1)
			verifiers["New"].q.addMul(&sum, &u2)
			if !sum.z.isZero() {
				t.Fatalf("u1·G + u2·Q has Z = %x…, want the point at infinity", sum.z.bytes()[:8])
			}

			for name, v := range verifiers {
				if err := v.VerifyPayload(msg, sig, jose.ES512); !errors.Is(err, ErrSignature) {
					t.Errorf("%s: VerifyPayload() = %v, want %v", name, err, ErrSignature)
				}
			}
			if standardVerify(pub, msg, sig) {
				t.Errorf("crypto/ecdsa accepts the signature, want refused")
			}
		})
	}
}

// TestSpecialKeys verifies with Q = G and Q = −G, where the G and Q tables
// hold the same points or their negations.
func TestSpecialKeys(t *testing.T) {
	tests := []struct {
		name string
		d    *big.Int
	}{
		{"Q = G", big.NewInt(1)},
		{"Q = -G", new(big.Int).Sub(n, big.NewInt(1))},
		{"Q = 2G", big.NewInt(2)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k := signerWithD(t, tt.d)
			verifiers := mustVerifiers(t, k.public())
			for i := range 4 {
				msg := []byte{byte(i)}
				sig := k.sign(t, msg)
				bad := append([]byte(nil), sig...)
				bad[10] ^= 0x80
				for name, v := range verifiers {
					if err := v.VerifyPayload(msg, sig, jose.ES512); err != nil {
						t.Errorf("%s: VerifyPayload(message %d) = %v, want nil", name, i, err)
					}
					if err := v.VerifyPayload(msg, bad, jose.ES512); !errors.Is(err, ErrSignature) {
						t.Errorf("%s: VerifyPayload(message %d, edited r) = %v, want %v", name, i, err, ErrSignature)
					}
				}
			}
		})
	}
}

// TestGoJOSE verifies through go-jose, the way the key set will: go-jose
// parses the JWS and hands the signing input to the Verifier.
func TestGoJOSE(t *testing.T) {
	k := newSigner(t, "TestGoJOSE")
	sgn, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES512, Key: k.priv}, nil)
	if err != nil {
		t.Fatal(err)
	}
	obj, err := sgn.Sign([]byte(`{"sub":"a"}`))
	if err != nil {
		t.Fatal(err)
	}
	compact, err := obj.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	dot := strings.LastIndexByte(compact, '.')
	tampered := compact[:dot-2] + "fQ" + compact[dot:] // a different payload
	other := mustVerifiers(t, newSigner(t, "TestGoJOSE other").public())["New"]
	v := mustVerifiers(t, k.public())["New"]

	tests := []struct {
		name  string
		token string
		v     *Verifier
		ok    bool
	}{
		{"valid", compact, v, true},
		{"tampered payload", tampered, v, false},
		{"other key", compact, other, false},
	}
	for _, tt := range tests {
		jws, err := jose.ParseSignedCompact(tt.token, []jose.SignatureAlgorithm{jose.ES512})
		if err != nil {
			t.Fatalf("ParseSignedCompact(%s) = %v", tt.name, err)
		}
		payload, err := jws.Verify(tt.v)
		if (err == nil) != tt.ok {
			t.Errorf("Verify(%s) = %v, want ok %v", tt.name, err, tt.ok)
		}
		if tt.ok && string(payload) != `{"sub":"a"}` {
			t.Errorf("Verify(%s) payload = %q, want %q", tt.name, payload, `{"sub":"a"}`)
		}
	}
}

// TestConcurrentVerify verifies from many goroutines at once, with keys
// made concurrently too, for the race detector.
func TestConcurrentVerify(t *testing.T) {
	var wg sync.WaitGroup
	for i := range 4 {
		k := newSigner(t, "TestConcurrentVerify"+string(rune('a'+i)))
		msg := []byte{byte(i)}
		sig := k.sign(t, msg)
		wg.Go(func() {
			v, err := New(k.public())
			if err != nil {
				t.Errorf("New() = %v", err)
				return
			}
			var inner sync.WaitGroup
			for range 3 {
				inner.Go(func() {
					if err := v.VerifyPayload(msg, sig, jose.ES512); err != nil {
						t.Errorf("VerifyPayload() = %v, want nil", err)
					}
				})
			}
			inner.Wait()
		})
	}
	wg.Wait()
}
