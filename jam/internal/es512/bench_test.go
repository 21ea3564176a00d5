package es512

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/sha512"
	"fmt"
	"math/big"
	"runtime"
	"testing"
	"time"
	"unsafe"

	jose "github.com/go-jose/go-jose/v4"
)

// benchMessage is the size of a JAM ID token's signing input.
var benchMessage = bytes.Repeat([]byte("eyJhbGciOiJFUzUxMiJ9."), 28)

// BenchmarkVerify alternates, iteration by iteration, a precomputed
// Verifier's VerifyPayload with a bare ecdsa.Verify of the same signature
// (its hash computed beforehand), and reports the ratio of their times
// (pairClock). ns/op is for the pair.
func BenchmarkVerify(b *testing.B) {
	k := newSigner(b, "BenchmarkVerify")
	sig := k.sign(b, benchMessage)
	v, err := New(k.public())
	if err != nil {
		b.Fatal(err)
	}
	h := sha512.Sum512(benchMessage)
	r := new(big.Int).SetBytes(sig[:scalarLen])
	s := new(big.Int).SetBytes(sig[scalarLen:])
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var c pairClock
	for b.Loop() {
		c.time(0, func() {
			if err := v.VerifyPayload(benchMessage, sig, jose.ES512); err != nil {
				b.Fatal(err)
			}
		})
		c.time(1, func() {
			if !ecdsa.Verify(k.public(), h[:], r, s) {
				b.Fatal("ecdsa.Verify refused the signature")
			}
		})
	}
	c.report(b, "es512", "ecdsa")
}

// pairClock times two operations run alternately, iteration by iteration,
// so that the machine's drift over a run weighs on both alike. Its ratio is
// of thread CPU time where the system has that clock, since on a shared
// machine the longer operation is likelier to lose its core to another
// process; wall-ratio is of wall-clock time.
type pairClock struct {
	wall, cpu [2]time.Duration
	noCPU     bool
}

// time runs f as operation i (0 or 1) and adds up its time.
func (c *pairClock) time(i int, f func()) {
	c0, ok := threadCPU()
	t0 := time.Now()
	f()
	c.wall[i] += time.Since(t0)
	c1, _ := threadCPU()
	c.cpu[i] += c1 - c0
	c.noCPU = c.noCPU || !ok
}

func (c *pairClock) report(b *testing.B, a, z string) {
	n := float64(b.N)
	b.ReportMetric(float64(c.wall[0])/float64(c.wall[1]), "wall-ratio")
	if c.noCPU {
		b.ReportMetric(float64(c.wall[0])/float64(c.wall[1]), "ratio")
		return
	}
	b.ReportMetric(float64(c.cpu[0])/float64(c.cpu[1]), "ratio")
	b.ReportMetric(float64(c.cpu[0].Nanoseconds())/n, a+"-cpu-ns/op")
	b.ReportMetric(float64(c.cpu[1].Nanoseconds())/n, z+"-cpu-ns/op")
}

// BenchmarkVerifyPayload measures each kind of Verifier alone, for its
// allocations.
func BenchmarkVerifyPayload(b *testing.B) {
	k := newSigner(b, "BenchmarkVerifyPayload")
	sig := k.sign(b, benchMessage)
	for name, v := range mustVerifiers(b, k.public()) {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if err := v.VerifyPayload(benchMessage, sig, jose.ES512); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkNew measures the cost of a key's table: B/op is its memory.
func BenchmarkNew(b *testing.B) {
	pub := newSigner(b, "BenchmarkNew").public()
	generatorTable()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := New(pub); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkGeneratorTable measures the cost of the shared table for G,
// which the first New pays: B/op is its memory.
func BenchmarkGeneratorTable(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		newTable(&generator, gWidth)
	}
}

// BenchmarkWidths is how gWidth and qWidth were chosen: for tables of
// widths G and Q it reports u1·G + u2·Q (with the comparison of x with r)
// against a bare ecdsa.Verify, interleaved, and the memory and build time
// of one Q table. It verifies 64 signatures in turn, as a busy process sees
// new tokens, so the tables are read where the CPU's caches may not hold
// them. It builds tables of up to 7 MiB, so -short skips it.
func BenchmarkWidths(b *testing.B) {
	if testing.Short() {
		b.Skip("builds a dozen tables")
	}
	k := newSigner(b, "BenchmarkWidths")
	type signature struct {
		h      [64]byte
		r, s   *big.Int
		u1, u2 [scalarLen]byte
	}
	sigs := make([]signature, 64)
	for i := range sigs {
		msg := fmt.Appendf(benchMessage, "%d", i)
		sig := k.sign(b, msg)
		sg := &sigs[i]
		sg.h = sha512.Sum512(msg)
		sg.r = new(big.Int).SetBytes(sig[:scalarLen])
		sg.s = new(big.Int).SetBytes(sig[scalarLen:])
		w := new(big.Int).ModInverse(sg.s, n)
		new(big.Int).Mod(new(big.Int).Mul(new(big.Int).SetBytes(sg.h[:]), w), n).FillBytes(sg.u1[:])
		new(big.Int).Mod(new(big.Int).Mul(sg.r, w), n).FillBytes(sg.u2[:])
	}
	enc := must(k.public().Bytes())
	var q affinePoint
	q.x.setBytes((*[scalarLen]byte)(enc[1:]))
	q.y.setBytes((*[scalarLen]byte)(enc[1+scalarLen:]))

	for _, widths := range [][2]uint{{4, 4}, {6, 6}, {8, 6}, {8, 8}, {9, 8}, {10, 7}, {10, 8}, {10, 9}, {11, 8}, {11, 9}} {
		wg, wq := widths[0], widths[1]
		b.Run(fmt.Sprintf("G=%d/Q=%d", wg, wq), func(b *testing.B) {
			gt := newTable(&generator, wg)
			t0 := time.Now()
			qt := newTable(&q, wq)
			build := time.Since(t0)
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			var c pairClock
			i := 0
			for b.Loop() {
				sg := &sigs[i%len(sigs)]
				i++
				var ok bool
				c.time(0, func() {
					p := infinity
					gt.addMul(&p, &sg.u1)
					qt.addMul(&p, &sg.u2)
					ok = p.xModN(sg.r)
				})
				if !ok {
					b.Fatal("x(u1·G + u2·Q) mod n ≠ r")
				}
				c.time(1, func() {
					if !ecdsa.Verify(k.public(), sg.h[:], sg.r, sg.s) {
						b.Fatal("ecdsa.Verify refused the signature")
					}
				})
			}
			c.report(b, "tables", "ecdsa")
			b.ReportMetric(float64(uintptr(len(qt.points))*pointBytes)/(1<<20), "Q-MiB")
			b.ReportMetric(float64(build.Microseconds())/1000, "Q-build-ms")
		})
	}
}

// pointBytes is the memory of one table entry: an affinePoint.
const pointBytes = unsafe.Sizeof(affinePoint{})

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
