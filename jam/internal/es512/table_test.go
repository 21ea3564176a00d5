package es512

import (
	"bytes"
	"crypto/sha512"
	"fmt"
	"math/big"
	"testing"

	"filippo.io/nistec"
)

// scalars returns the scalars below 2^521 that exercise the signed-digit
// recoding: the ends of the range, runs of ones that carry through every
// window, and hash-derived ones.
func scalars() map[string]*big.Int {
	one := big.NewInt(1)
	top := new(big.Int).Lsh(one, 521)
	ks := map[string]*big.Int{
		"0":       new(big.Int),
		"1":       one,
		"2":       big.NewInt(2),
		"127":     big.NewInt(127),
		"128":     big.NewInt(128),
		"129":     big.NewInt(129),
		"255":     big.NewInt(255),
		"256":     big.NewInt(256),
		"n-1":     new(big.Int).Sub(n, one),
		"n-2":     new(big.Int).Sub(n, big.NewInt(2)),
		"2^520":   new(big.Int).Lsh(one, 520),
		"2^521-1": new(big.Int).Sub(top, one),
	}
	even, odd := new(big.Int), new(big.Int)
	for i := 0; i < 521; i++ {
		if i%2 == 0 {
			even.SetBit(even, i, 1)
		} else {
			odd.SetBit(odd, i, 1)
		}
	}
	ks["even bits"], ks["odd bits"] = even, odd
	for i := range 8 {
		// 66 bytes of hash, less the 7 bits above 2^521.
		h := sha512.Sum512([]byte{byte(i)})
		k := new(big.Int).SetBytes(append(h[:], h[:2]...))
		ks[fmt.Sprintf("hash%d", i)] = k.Rsh(k, 7)
	}
	return ks
}

// TestTableAddMul checks acc + k·P computed with a table of every width
// against nistec's own scalar multiplication, which doubles and adds.
func TestTableAddMul(t *testing.T) {
	np := nistec.NewP521Point().SetGenerator()
	np.ScalarMult(np, []byte{0x12, 0x34, 0x56, 0x78, 0x9a})
	p := affineOf(t, np)
	acc0 := point{generator.x, generator.y, element{1}}
	type product struct {
		k    [scalarLen]byte
		want []byte // G + k·P
	}
	products := map[string]product{}
	for name, k := range scalars() {
		if k.BitLen() > 521 {
			t.Fatalf("scalar %s has %d bits", name, k.BitLen())
		}
		var pr product
		k.FillBytes(pr.k[:])
		want, err := nistec.NewP521Point().ScalarMult(np, pr.k[:])
		if err != nil {
			t.Fatal(err)
		}
		pr.want = want.Add(want, nistec.NewP521Point().SetGenerator()).Bytes()
		products[name] = pr
	}
	for _, w := range []uint{2, 3, 4, 5, 6, 7, 8, 9, gWidth, qWidth} {
		t.Run(fmt.Sprintf("w=%d", w), func(t *testing.T) {
			t.Parallel()
			tbl := newTable(&p, w)
			for name, pr := range products {
				got := acc0
				tbl.addMul(&got, &pr.k)
				if enc := got.encode(); !bytes.Equal(enc, pr.want) {
					t.Errorf("G + %s·P = %x…, want %x…", name, enc[:8], pr.want[:8])
				}
			}
		})
	}
}

// TestWindow checks the bit extraction the recoding relies on against
// math/big, at every offset the widths use.
func TestWindow(t *testing.T) {
	k := scalars()["hash3"]
	var kb [scalarLen]byte
	k.FillBytes(kb[:])
	for w := uint(1); w <= 16; w++ {
		for off := uint(0); off < 8*scalarLen+8; off++ {
			want := uint(new(big.Int).And(new(big.Int).Rsh(k, off), big.NewInt(1<<w-1)).Uint64())
			if got := window(&kb, off, w); got != want {
				t.Errorf("window(k, %d, %d) = %#x, want %#x", off, w, got, want)
			}
		}
	}
}
