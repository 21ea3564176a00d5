package es512

import (
	"crypto/elliptic"
	"math/big"
)

// A point is a point of P-521, y² = x³ − 3x + b, in projective
// coordinates: x = X/Z, y = Y/Z, and the point at infinity has Z = 0.
type point struct{ x, y, z element }

// An affinePoint is a point of P-521 other than the point at infinity, by
// its coordinates: a point with Z = 1, in two thirds of the memory.
type affinePoint struct{ x, y element }

// infinity is the point at infinity, (0 : 1 : 0).
var infinity = point{y: element{1}}

// curveB is the curve's b.
var curveB = fromBig(elliptic.P521().Params().B)

// generator is P-521's base point G.
var generator = affinePoint{fromBig(elliptic.P521().Params().Gx), fromBig(elliptic.P521().Params().Gy)}

// fieldP is p = 2^521 − 1.
var fieldP = elliptic.P521().Params().P

// fromBig returns x, which must be in [0, p), as an element.
func fromBig(x *big.Int) element {
	var b [scalarLen]byte
	x.FillBytes(b[:])
	var e element
	e.setBytes(&b)
	return e
}

// add sets q = p1 + p2 with the complete formulas for a = −3 of Renes,
// Costello and Batina, "Complete addition formulas for prime order elliptic
// curves" (https://eprint.iacr.org/2015/1060), algorithm 4: they hold for
// every pair of points, p1 = p2 and the point at infinity included, and q
// may be p1 or p2.
func (q *point) add(p1, p2 *point) *point {
	var t0, t1, t2, t3, t4, x3, y3 element
	t0.mul(&p1.x, &p2.x)
	t1.mul(&p1.y, &p2.y)
	t2.mul(&p1.z, &p2.z)
	t3.add(&p1.x, &p1.y)
	t4.add(&p2.x, &p2.y)
	t3.mul(&t3, &t4)
	t4.add(&t0, &t1)
	t3.sub(&t3, &t4) // X1·Y2 + X2·Y1
	t4.add(&p1.y, &p1.z)
	x3.add(&p2.y, &p2.z)
	t4.mul(&t4, &x3)
	x3.add(&t1, &t2)
	t4.sub(&t4, &x3) // Y1·Z2 + Y2·Z1
	x3.add(&p1.x, &p1.z)
	y3.add(&p2.x, &p2.z)
	x3.mul(&x3, &y3)
	y3.add(&t0, &t2)
	y3.sub(&x3, &y3) // X1·Z2 + X2·Z1
	q.finish(&t0, &t1, &t2, &t3, &t4, &y3)
	return q
}

// addAffine sets q = p1 + p2: add with Z2 = 1 (algorithm 5 of the same
// paper), which saves a multiplication and reads p2 from an affinePoint.
// It is complete too, p2 never being the point at infinity.
func (q *point) addAffine(p1 *point, p2 *affinePoint) *point {
	var t0, t1, t3, t4, y3 element
	t0.mul(&p1.x, &p2.x)
	t1.mul(&p1.y, &p2.y)
	t3.add(&p1.x, &p1.y)
	t4.add(&p2.x, &p2.y)
	t3.mul(&t3, &t4)
	t4.add(&t0, &t1)
	t3.sub(&t3, &t4) // X1·Y2 + X2·Y1
	t4.mul(&p2.y, &p1.z)
	t4.add(&t4, &p1.y) // Y1 + Y2·Z1
	y3.mul(&p2.x, &p1.z)
	y3.add(&y3, &p1.x) // X1 + X2·Z1
	t2 := p1.z         // Z1·Z2
	q.finish(&t0, &t1, &t2, &t3, &t4, &y3)
	return q
}

// finish is the rest of algorithm 4 (steps 19 to 43), shared by add and
// addAffine, from t0 = X1·X2, t1 = Y1·Y2, t2 = Z1·Z2, t3 = X1·Y2 + X2·Y1,
// t4 = Y1·Z2 + Y2·Z1 and y3 = X1·Z2 + X2·Z1. It may change all six.
func (q *point) finish(t0, t1, t2, t3, t4, y3 *element) {
	var x3, z3 element
	z3.mul(&curveB, t2)
	x3.sub(y3, &z3)
	z3.add(&x3, &x3)
	x3.add(&x3, &z3)
	z3.sub(t1, &x3)
	x3.add(t1, &x3)
	y3.mul(&curveB, y3)
	t1.add(t2, t2)
	t2.add(t1, t2)
	y3.sub(y3, t2)
	y3.sub(y3, t0)
	t1.add(y3, y3)
	y3.add(t1, y3)
	t1.add(t0, t0)
	t0.add(t1, t0)
	t0.sub(t0, t2)
	t1.mul(t4, y3)
	t2.mul(t0, y3)
	y3.mul(&x3, &z3)
	y3.add(y3, t2)
	x3.mul(t3, &x3)
	x3.sub(&x3, t1)
	z3.mul(t4, &z3)
	t1.mul(t3, t0)
	z3.add(&z3, t1)
	q.x, q.y, q.z = x3, *y3, z3
}

// normalize sets each out[i] to the affine form of ps[i], with one
// inversion for them all (Montgomery's trick). No point may be the point at
// infinity.
func normalize(out []affinePoint, ps []point) {
	// prefix[i] = Z_0 · … · Z_i
	prefix := make([]element, len(ps))
	prefix[0] = ps[0].z
	for i := 1; i < len(ps); i++ {
		prefix[i].mul(&prefix[i-1], &ps[i].z)
	}
	inv := invert(&prefix[len(ps)-1]) // 1 / (Z_0 · … · Z_last)
	for i := len(ps) - 1; i >= 0; i-- {
		zinv := inv
		if i > 0 {
			zinv.mul(&inv, &prefix[i-1]) // 1 / Z_i
			inv.mul(&inv, &ps[i].z)      // 1 / (Z_0 · … · Z_(i−1))
		}
		out[i].x.mul(&ps[i].x, &zinv)
		out[i].y.mul(&ps[i].y, &zinv)
	}
}

// invert returns 1/e, which must not be 0. It builds tables only, so
// math/big's inversion, slower than a field exponentiation but plainly
// right, is fast enough.
func invert(e *element) element {
	x := new(big.Int).SetBytes(e.bytes()[:])
	return fromBig(x.ModInverse(x, fieldP))
}

// pMinusN is p − n, below 2^259: x(P) mod n is x(P) − n when x(P) ≥ n,
// which only an r below p − n can match.
var pMinusN = new(big.Int).Sub(fieldP, n)

// xModN reports whether p is not the point at infinity and x(p) mod n is r,
// which must be in [1, n−1]. Since p < 2n, x(p) mod n = r means x(p) = r or
// x(p) = r + n < p, and x(p) = X/Z: it compares X with r·Z and does not
// invert Z.
func (p *point) xModN(r *big.Int) bool {
	if p.z.isZero() {
		// X is 0 too, and would match 0·Z: the check matters.
		return false
	}
	var rb [scalarLen]byte
	var re, rz element
	r.FillBytes(rb[:])
	re.setBytes(&rb)
	if rz.mul(&re, &p.z); rz.equal(&p.x) {
		return true
	}
	if r.Cmp(pMinusN) >= 0 {
		return false
	}
	new(big.Int).Add(r, n).FillBytes(rb[:])
	re.setBytes(&rb)
	return rz.mul(&re, &p.z).equal(&p.x)
}
