package es512

// scalarLen is the length of a big-endian scalar mod n, and of a P-521 field
// element.
const scalarLen = 66

// A table makes k·P, for a fixed point P and any scalar k < 2^521, cost one
// point addition per w-bit window of k and no doubling: it holds every
// multiple a verification can ask for, at the price of memory.
//
// k is recoded into signed digits d_i in (−2^(w−1), 2^(w−1)], k = Σ d_i·2^(w·i),
// so only the positive multiples are stored and a negative digit costs a
// negation (a field subtraction). Window i holds j·2^(w·i)·P for
// j = 1 … 2^(w−1) at points[i·2^(w−1) + j−1], in affine form, so that
// adding one costs a multiplication less. A digit may carry into the
// window above it, hence ⌈522/w⌉ windows for a 521-bit scalar.
//
// Nothing here runs in constant time: a verifier handles only public data
// (the key, the signature, the hash of the signed data).
type table struct {
	w      uint
	points []affinePoint
}

// windows returns how many w-bit signed digits a scalar below 2^521 needs.
func windows(w uint) uint { return (522 + w - 1) / w }

// newTable computes the table of width w for p. w must be in [2, 16].
func newTable(p *affinePoint, w uint) *table {
	half := uint(1) << (w - 1)
	t := &table{w: w, points: make([]affinePoint, windows(w)*half)}
	// One window's points and, last, the next window's base, 2^w times
	// this one's: normalized together, with one inversion.
	row := make([]point, half+1)
	affine := make([]affinePoint, half+1)
	affine[half] = *p
	for i := range windows(w) {
		base := affine[half]
		row[0] = point{base.x, base.y, element{1}}
		for j := uint(1); j < half; j++ {
			row[j].addAffine(&row[j-1], &base)
		}
		row[half].add(&row[half-1], &row[half-1])
		normalize(affine, row)
		copy(t.points[i*half:], affine[:half])
	}
	return t
}

// addMul sets acc = acc + k·P, where P is the table's point and k the
// big-endian scalar, which must be below 2^521 (every scalar mod n is).
func (t *table) addMul(acc *point, k *[scalarLen]byte) {
	half := uint(1) << (t.w - 1)
	carry := uint(0)
	for i := range windows(t.w) {
		d := window(k, i*t.w, t.w) + carry
		carry = 0
		if d > half {
			// The digit is d − 2^w < 0: add −(2^w − d)·2^(w·i)·P and
			// carry 2^(w·(i+1)) into the next window.
			carry = 1
			if d = 1<<t.w - d; d != 0 {
				p := &t.points[i*half+d-1]
				neg := affinePoint{x: p.x}
				neg.y.sub(&element{}, &p.y)
				acc.addAffine(acc, &neg)
			}
		} else if d != 0 {
			acc.addAffine(acc, &t.points[i*half+d-1])
		}
	}
}

// window returns the w bits of k (w ≤ 16) that start at bit off, counting
// from the least significant bit; bits past the top of k read as zero.
func window(k *[scalarLen]byte, off, w uint) uint {
	// The byte that holds bit off and the two above it, most significant
	// first.
	var v uint
	for i := scalarLen - 1 - int(off/8) - 2; i <= scalarLen-1-int(off/8); i++ {
		v <<= 8
		if i >= 0 {
			v |= uint(k[i])
		}
	}
	return v >> (off % 8) & (1<<w - 1)
}
