package es512

import (
	"bytes"
	"crypto/sha512"
	"fmt"
	"math/big"
	"math/rand/v2"
	"testing"

	"filippo.io/nistec"
)

// elements returns field elements that exercise carries and reduction:
// 0, 1 and p − 1 and their neighbours, p and 2^521 in non-canonical form,
// limbs at the top of their loose range, and hash-derived values.
func elements() map[string]element {
	es := map[string]element{}
	for name, x := range map[string]*big.Int{
		"0":       new(big.Int),
		"1":       big.NewInt(1),
		"2":       big.NewInt(2),
		"p-1":     new(big.Int).Sub(fieldP, big.NewInt(1)),
		"p-2":     new(big.Int).Sub(fieldP, big.NewInt(2)),
		"2^520":   new(big.Int).Lsh(big.NewInt(1), 520),
		"2^58":    new(big.Int).Lsh(big.NewInt(1), 58),
		"2^58-1":  big.NewInt(mask58),
		"n":       n,
		"p-n":     pMinusN,
		"b":       elliptic521B(),
		"2^464-1": new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 464), big.NewInt(1)),
	} {
		es[name] = fromBig(x)
	}
	es["p (every limb full)"] = element{mask58, mask58, mask58, mask58, mask58, mask58, mask58, mask58, mask57}
	var loose element
	for i := range loose {
		loose[i] = 1<<58 + 1<<8 - 1 // the loosest limb an element may have
	}
	es["loose"] = loose
	es["loose limb 0"] = element{1<<58 + 1<<7 - 1, mask58, 0, mask58, 0, mask58, 0, mask58, mask57}
	es["loose limb 1"] = element{mask58, 1<<58 + 1<<6 - 1, 0, 0, 0, 0, 0, 0, mask57}
	for i := range 6 {
		h := sha512.Sum512([]byte{byte(i)})
		x := new(big.Int).SetBytes(append(h[:], h[:2]...))
		es[fmt.Sprintf("hash%d", i)] = fromBig(x.Rsh(x, 7).Mod(x, fieldP))
	}
	return es
}

func elliptic521B() *big.Int { b, _ := new(big.Int).SetString(curveBHex, 16); return b }

// curveBHex is P-521's b, from SEC 2, to check curveB against a second
// source.
const curveBHex = "0051953eb9618e1c9a1f929a21a0b68540eea2da725b99b315f3b8b489918ef109e156193951ec7e937b1652c0bd3bb1bf073573df883d2c34f1ef451fd46b503f00"

// value returns e's number, not reduced mod p, from its limbs alone.
func (e *element) value() *big.Int {
	v := new(big.Int)
	for i := len(e) - 1; i >= 0; i-- {
		v.Lsh(v, 58).Add(v, new(big.Int).SetUint64(e[i]))
	}
	return v
}

// checkLoose fails t unless every limb of e is loose.
func checkLoose(t *testing.T, op string, e *element) {
	t.Helper()
	for i, l := range e {
		if l >= 1<<58+1<<8 {
			t.Errorf("%s: limb %d = %#x, above 2^58 + 2^8", op, i, l)
		}
	}
}

// TestFieldOps checks every operation on every pair of elements against
// math/big, and that results stay loose.
func TestFieldOps(t *testing.T) {
	es := elements()
	mod := func(x *big.Int) *big.Int { return x.Mod(x, fieldP) }
	for an, a := range es {
		av := a.value()
		if got, want := new(big.Int).SetBytes(a.bytes()[:]), mod(new(big.Int).Set(av)); got.Cmp(want) != 0 {
			t.Errorf("bytes(%s) = %x, want %x", an, got, want)
		}
		if c := a.canonical(); c.value().Cmp(mod(new(big.Int).Set(av))) != 0 {
			t.Errorf("canonical(%s) = %x, want %x", an, c.value(), mod(new(big.Int).Set(av)))
		}
		for bn, b := range es {
			bv := b.value()
			for _, op := range []struct {
				name string
				f    func(e, a, b *element) *element
				want *big.Int
			}{
				{"+", (*element).add, new(big.Int).Add(av, bv)},
				{"-", (*element).sub, new(big.Int).Sub(av, bv)},
				{"·", (*element).mul, new(big.Int).Mul(av, bv)},
			} {
				var got element
				op.f(&got, &a, &b)
				name := an + " " + op.name + " " + bn
				if mod(got.value()).Cmp(mod(op.want)) != 0 {
					t.Errorf("%s = %x, want %x", name, mod(got.value()), op.want)
				}
				checkLoose(t, name, &got)
			}
			if got, want := a.equal(&b), mod(new(big.Int).Set(av)).Cmp(mod(new(big.Int).Set(bv))) == 0; got != want {
				t.Errorf("%s == %s: %v, want %v", an, bn, got, want)
			}
		}
	}
}

// TestFieldRandom checks add, sub and mul against math/big on random loose
// elements, limbs drawn from the whole loose range, the seed fixed so that
// a failure reproduces.
func TestFieldRandom(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	loose := func() element {
		var e element
		for i := range e {
			switch rng.IntN(4) {
			case 0:
				e[i] = 1<<58 + 1<<8 - 1 - rng.Uint64N(1<<9)
			case 1:
				e[i] = rng.Uint64N(1 << 9)
			default:
				e[i] = rng.Uint64N(1<<58 + 1<<8)
			}
		}
		return e
	}
	mod := func(x *big.Int) *big.Int { return x.Mod(x, fieldP) }
	for range 20000 {
		a, b := loose(), loose()
		av, bv := a.value(), b.value()
		var sum, diff, prod element
		for _, r := range []struct {
			op   string
			got  *element
			want *big.Int
		}{
			{"+", sum.add(&a, &b), new(big.Int).Add(av, bv)},
			{"-", diff.sub(&a, &b), new(big.Int).Sub(av, bv)},
			{"·", prod.mul(&a, &b), new(big.Int).Mul(av, bv)},
		} {
			if got, want := mod(r.got.value()), mod(r.want); got.Cmp(want) != 0 {
				t.Fatalf("%x %s %x = %x, want %x", a, r.op, b, got, want)
			}
			checkLoose(t, r.op, r.got)
		}
	}
}

// TestFieldAliasing checks that a result may be an operand.
func TestFieldAliasing(t *testing.T) {
	es := elements()
	a, b := es["hash0"], es["hash1"]
	for _, op := range []struct {
		name string
		f    func(e, a, b *element) *element
	}{{"add", (*element).add}, {"sub", (*element).sub}, {"mul", (*element).mul}} {
		var want element
		op.f(&want, &a, &b)
		x, y := a, b
		if op.f(&x, &x, &y); x != want {
			t.Errorf("%s into its first operand = %x, want %x", op.name, x, want)
		}
		x, y = a, b
		if op.f(&y, &x, &y); y != want {
			t.Errorf("%s into its second operand = %x, want %x", op.name, y, want)
		}
	}
	var want element
	want.mul(&a, &a)
	if x := a; *x.mul(&x, &x) != want {
		t.Errorf("mul of an element by itself in place = %x, want %x", x, want)
	}
}

// TestCurveConstants checks b and G against SEC 2 and nistec.
func TestCurveConstants(t *testing.T) {
	if want := fromBig(elliptic521B()); !curveB.equal(&want) {
		t.Errorf("curveB = %x, want SEC 2's b", curveB.bytes())
	}
	g := point{generator.x, generator.y, element{1}}
	if got, want := g.encode(), nistec.NewP521Point().SetGenerator().Bytes(); !bytes.Equal(got, want) {
		t.Errorf("generator = %x, want %x", got, want)
	}
}

// TestPointAdd checks add and addAffine against nistec, on the cases where
// incomplete formulas go wrong: doubling, a point and its negation, and
// the point at infinity.
func TestPointAdd(t *testing.T) {
	ng := nistec.NewP521Point().SetGenerator()
	mult := func(k int64) *nistec.P521Point {
		p, err := nistec.NewP521Point().ScalarBaseMult(scalarBytes(big.NewInt(k)))
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	minusG := nistec.NewP521Point().Negate(ng)
	points := map[string]*nistec.P521Point{
		"G": ng, "-G": minusG, "2G": mult(2), "12345G": mult(12345), "(n-1)G": mult(-1),
	}
	g, mg := affineOf(t, ng), affineOf(t, minusG)
	for an, a := range points {
		// a with Z ≠ 1, as the accumulator has it: a + G − G.
		pa := projectiveOf(t, a)
		pa.addAffine(&pa, &g).addAffine(&pa, &mg)
		for bn, b := range points {
			want := nistec.NewP521Point().Add(a, b).Bytes()
			pb := projectiveOf(t, b)
			var got point
			if enc := got.add(&pa, &pb).encode(); !bytes.Equal(enc, want) {
				t.Errorf("add(%s, %s) = %x…, want %x…", an, bn, enc[:min(8, len(enc))], want[:min(8, len(want))])
			}
			ab := affineOf(t, b)
			if enc := got.addAffine(&pa, &ab).encode(); !bytes.Equal(enc, want) {
				t.Errorf("addAffine(%s, %s) = %x…, want %x…", an, bn, enc[:min(8, len(enc))], want[:min(8, len(want))])
			}
		}
		// The point at infinity on either side.
		inf := infinity
		want := a.Bytes()
		pb := projectiveOf(t, a)
		var got point
		if enc := got.add(&inf, &pb).encode(); !bytes.Equal(enc, want) {
			t.Errorf("add(∞, %s) = %x…, want %x…", an, enc[:min(8, len(enc))], want[:8])
		}
		if enc := got.add(&pb, &inf).encode(); !bytes.Equal(enc, want) {
			t.Errorf("add(%s, ∞) = %x…, want %x…", an, enc[:min(8, len(enc))], want[:8])
		}
		ab := affineOf(t, a)
		if enc := got.addAffine(&inf, &ab).encode(); !bytes.Equal(enc, want) {
			t.Errorf("addAffine(∞, %s) = %x…, want %x…", an, enc[:min(8, len(enc))], want[:8])
		}
	}
}

// affineOf returns q, which must not be the point at infinity, as an
// affinePoint.
func affineOf(t testing.TB, q *nistec.P521Point) affinePoint {
	t.Helper()
	enc := q.Bytes()
	if len(enc) != 1+2*scalarLen {
		t.Fatalf("affineOf(the point at infinity)")
	}
	var a affinePoint
	a.x.setBytes((*[scalarLen]byte)(enc[1:]))
	a.y.setBytes((*[scalarLen]byte)(enc[1+scalarLen:]))
	return a
}

// projectiveOf returns q as a point.
func projectiveOf(t testing.TB, q *nistec.P521Point) point {
	t.Helper()
	if q.IsInfinity() == 1 {
		return infinity
	}
	a := affineOf(t, q)
	return point{a.x, a.y, element{1}}
}

// encode returns p in SEC 1's uncompressed form, or 0x00 for the point at
// infinity, as nistec's Bytes does.
func (p *point) encode() []byte {
	if p.z.isZero() {
		return []byte{0}
	}
	a := make([]affinePoint, 1)
	normalize(a, []point{*p})
	return append(append([]byte{4}, a[0].x.bytes()[:]...), a[0].y.bytes()[:]...)
}
