package es512

import "math/bits"

// An element is a number modulo P-521's field prime p = 2^521 − 1, in nine
// limbs of 58 bits, least significant first: Σ l[i]·2^(58·i). The top limb
// holds the last 57 bits, so 2^521 ≡ 1 and 2^522 ≡ 2 (mod p), and reducing
// is folding the bits above 521 back onto the bottom.
//
// Limbs are loose: each is below 2^58 + 2^8, whatever its width, so an
// element may be at or above p. Every method takes and returns loose
// elements; only canonical makes the form unique. The zero value is 0.
//
// The fiat-crypto code behind filippo.io/nistec (and crypto/ecdsa) works in
// the Montgomery domain, which suits any prime; a Mersenne prime needs no
// Montgomery reduction. Nothing here runs in constant time: a verifier
// handles public data.
type element [9]uint64

const (
	mask58 = 1<<58 - 1
	mask57 = 1<<57 - 1
)

// fourP is 4·p, limb by limb, each limb above a loose limb: sub adds it so
// that no limb goes below zero.
var fourP = element{
	4 * mask58, 4 * mask58, 4 * mask58, 4 * mask58,
	4 * mask58, 4 * mask58, 4 * mask58, 4 * mask58, 4 * mask57,
}

// carry propagates each limb's bits above its width into the next, and
// the top limb's onto the bottom one (2^521 ≡ 1). Limbs below 2^63 come out
// loose: limbs 1 to 8 within their widths, limb 0 below 2^58 + 2^7.
func (e *element) carry() *element {
	for i := range 8 {
		e[i+1] += e[i] >> 58
		e[i] &= mask58
	}
	c := e[8] >> 57
	e[8] &= mask57
	e[0] += c
	return e
}

// add sets e = a + b.
func (e *element) add(a, b *element) *element {
	var s element
	for i := range s {
		s[i] = a[i] + b[i]
	}
	return e.carryOnce(&s)
}

// sub sets e = a − b, computed as a + 4p − b.
func (e *element) sub(a, b *element) *element {
	var s element
	for i := range s {
		s[i] = a[i] + fourP[i] - b[i]
	}
	return e.carryOnce(&s)
}

// carryOnce sets e to s, whose limbs are below 2^61, with each limb's bits
// above its width moved to the next limb, all at once rather than one after
// the other: a limb then exceeds its width by at most the 2^4 it received,
// which is loose enough.
func (e *element) carryOnce(s *element) *element {
	e[0] = s[0]&mask58 + s[8]>>57
	for i := 1; i < 8; i++ {
		e[i] = s[i]&mask58 + s[i-1]>>58
	}
	e[8] = s[8]&mask57 + s[7]>>58
	return e
}

// mul sets e = a·b.
//
// Limbs i and j make a product worth 2^(58·(i+j)); when i + j ≥ 9 that is
// 2^(58·(i+j−9))·2^522 ≡ 2·2^(58·(i+j−9)), so it joins column i + j − 9,
// doubled. Column k is then h_k·2^64 + l_k = Σ a_i·b_(k−i) for i ≤ k, plus
// Σ a_i·2b_(k+9−i) for i > k: nine products of loose limbs, one side
// doubled, below 9·2^117.01 < 2^121. The columns are summed apart, so that
// they run in parallel, and carried at the end: a column's carry, worth
// 2^58 of it (2^57 for the top one), fits in 64 bits, and the top one's,
// worth 2^521 ≡ 1, lands on limb 0, whose own carry leaves limb 1 at most
// 2^6 over its width.
//
// It is written out, not looped: the loops cost a third more time.
func (e *element) mul(a, b *element) *element {
	a0, a1, a2, a3, a4, a5, a6, a7, a8 := a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7], a[8]
	b0, b1, b2, b3, b4, b5, b6, b7, b8 := b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8]
	d1, d2, d3, d4, d5, d6, d7, d8 := b1<<1, b2<<1, b3<<1, b4<<1, b5<<1, b6<<1, b7<<1, b8<<1
	h0, l0 := bits.Mul64(a0, b0)
	h0, l0 = mac(h0, l0, a1, d8)
	h0, l0 = mac(h0, l0, a2, d7)
	h0, l0 = mac(h0, l0, a3, d6)
	h0, l0 = mac(h0, l0, a4, d5)
	h0, l0 = mac(h0, l0, a5, d4)
	h0, l0 = mac(h0, l0, a6, d3)
	h0, l0 = mac(h0, l0, a7, d2)
	h0, l0 = mac(h0, l0, a8, d1)
	h1, l1 := bits.Mul64(a0, b1)
	h1, l1 = mac(h1, l1, a1, b0)
	h1, l1 = mac(h1, l1, a2, d8)
	h1, l1 = mac(h1, l1, a3, d7)
	h1, l1 = mac(h1, l1, a4, d6)
	h1, l1 = mac(h1, l1, a5, d5)
	h1, l1 = mac(h1, l1, a6, d4)
	h1, l1 = mac(h1, l1, a7, d3)
	h1, l1 = mac(h1, l1, a8, d2)
	h2, l2 := bits.Mul64(a0, b2)
	h2, l2 = mac(h2, l2, a1, b1)
	h2, l2 = mac(h2, l2, a2, b0)
	h2, l2 = mac(h2, l2, a3, d8)
	h2, l2 = mac(h2, l2, a4, d7)
	h2, l2 = mac(h2, l2, a5, d6)
	h2, l2 = mac(h2, l2, a6, d5)
	h2, l2 = mac(h2, l2, a7, d4)
	h2, l2 = mac(h2, l2, a8, d3)
	h3, l3 := bits.Mul64(a0, b3)
	h3, l3 = mac(h3, l3, a1, b2)
	h3, l3 = mac(h3, l3, a2, b1)
	h3, l3 = mac(h3, l3, a3, b0)
	h3, l3 = mac(h3, l3, a4, d8)
	h3, l3 = mac(h3, l3, a5, d7)
	h3, l3 = mac(h3, l3, a6, d6)
	h3, l3 = mac(h3, l3, a7, d5)
	h3, l3 = mac(h3, l3, a8, d4)
	h4, l4 := bits.Mul64(a0, b4)
	h4, l4 = mac(h4, l4, a1, b3)
	h4, l4 = mac(h4, l4, a2, b2)
	h4, l4 = mac(h4, l4, a3, b1)
	h4, l4 = mac(h4, l4, a4, b0)
	h4, l4 = mac(h4, l4, a5, d8)
	h4, l4 = mac(h4, l4, a6, d7)
	h4, l4 = mac(h4, l4, a7, d6)
	h4, l4 = mac(h4, l4, a8, d5)
	h5, l5 := bits.Mul64(a0, b5)
	h5, l5 = mac(h5, l5, a1, b4)
	h5, l5 = mac(h5, l5, a2, b3)
	h5, l5 = mac(h5, l5, a3, b2)
	h5, l5 = mac(h5, l5, a4, b1)
	h5, l5 = mac(h5, l5, a5, b0)
	h5, l5 = mac(h5, l5, a6, d8)
	h5, l5 = mac(h5, l5, a7, d7)
	h5, l5 = mac(h5, l5, a8, d6)
	h6, l6 := bits.Mul64(a0, b6)
	h6, l6 = mac(h6, l6, a1, b5)
	h6, l6 = mac(h6, l6, a2, b4)
	h6, l6 = mac(h6, l6, a3, b3)
	h6, l6 = mac(h6, l6, a4, b2)
	h6, l6 = mac(h6, l6, a5, b1)
	h6, l6 = mac(h6, l6, a6, b0)
	h6, l6 = mac(h6, l6, a7, d8)
	h6, l6 = mac(h6, l6, a8, d7)
	h7, l7 := bits.Mul64(a0, b7)
	h7, l7 = mac(h7, l7, a1, b6)
	h7, l7 = mac(h7, l7, a2, b5)
	h7, l7 = mac(h7, l7, a3, b4)
	h7, l7 = mac(h7, l7, a4, b3)
	h7, l7 = mac(h7, l7, a5, b2)
	h7, l7 = mac(h7, l7, a6, b1)
	h7, l7 = mac(h7, l7, a7, b0)
	h7, l7 = mac(h7, l7, a8, d8)
	h8, l8 := bits.Mul64(a0, b8)
	h8, l8 = mac(h8, l8, a1, b7)
	h8, l8 = mac(h8, l8, a2, b6)
	h8, l8 = mac(h8, l8, a3, b5)
	h8, l8 = mac(h8, l8, a4, b4)
	h8, l8 = mac(h8, l8, a5, b3)
	h8, l8 = mac(h8, l8, a6, b2)
	h8, l8 = mac(h8, l8, a7, b1)
	h8, l8 = mac(h8, l8, a8, b0)

	var r element
	var c, cc uint64
	l0, cc = bits.Add64(l0, c, 0)
	r[0], c = l0&mask58, l0>>58|(h0+cc)<<6
	l1, cc = bits.Add64(l1, c, 0)
	r[1], c = l1&mask58, l1>>58|(h1+cc)<<6
	l2, cc = bits.Add64(l2, c, 0)
	r[2], c = l2&mask58, l2>>58|(h2+cc)<<6
	l3, cc = bits.Add64(l3, c, 0)
	r[3], c = l3&mask58, l3>>58|(h3+cc)<<6
	l4, cc = bits.Add64(l4, c, 0)
	r[4], c = l4&mask58, l4>>58|(h4+cc)<<6
	l5, cc = bits.Add64(l5, c, 0)
	r[5], c = l5&mask58, l5>>58|(h5+cc)<<6
	l6, cc = bits.Add64(l6, c, 0)
	r[6], c = l6&mask58, l6>>58|(h6+cc)<<6
	l7, cc = bits.Add64(l7, c, 0)
	r[7], c = l7&mask58, l7>>58|(h7+cc)<<6
	l8, cc = bits.Add64(l8, c, 0)
	r[8], c = l8&mask57, l8>>57|(h8+cc)<<7
	r[0] += c
	r[1] += r[0] >> 58
	r[0] &= mask58
	*e = r
	return e
}

// mac returns h·2^64 + l + x·y as its high and low words.
func mac(h, l, x, y uint64) (uint64, uint64) {
	ph, pl := bits.Mul64(x, y)
	l, c := bits.Add64(l, pl, 0)
	return h + ph + c, l
}

// canonical returns e's limbs reduced below p: the unique form, which
// equal compares.
func (e *element) canonical() element {
	// Two carries leave every limb within its width, so the number is at
	// most 2^521 − 1 = p, which is 0.
	c := *e
	c.carry().carry()
	if c == (element{mask58, mask58, mask58, mask58, mask58, mask58, mask58, mask58, mask57}) {
		return element{}
	}
	return c
}

// equal reports whether e and a are the same number mod p.
func (e *element) equal(a *element) bool { return e.canonical() == a.canonical() }

// isZero reports whether e is 0 mod p.
func (e *element) isZero() bool { return e.canonical() == element{} }

// setBytes sets e to the big-endian number b, which must be below 2^521.
func (e *element) setBytes(b *[scalarLen]byte) *element {
	// b as little-endian 64-bit words; a tenth word of 0 lets every limb
	// read the word above its own.
	var w [10]uint64
	for i := range scalarLen {
		w[i/8] |= uint64(b[scalarLen-1-i]) << (8 * (i % 8))
	}
	for i := range e {
		q, s := 58*i/64, 58*i%64
		e[i] = (w[q]>>s | w[q+1]<<(64-s)) & mask58
	}
	return e
}

// bytes returns e mod p, big-endian.
func (e *element) bytes() *[scalarLen]byte {
	c := e.canonical()
	var w [10]uint64
	for i, l := range c {
		q, s := 58*i/64, 58*i%64
		w[q] |= l << s
		w[q+1] |= l >> (64 - s)
	}
	var b [scalarLen]byte
	for i := range scalarLen {
		b[scalarLen-1-i] = byte(w[i/8] >> (8 * (i % 8)))
	}
	return &b
}
