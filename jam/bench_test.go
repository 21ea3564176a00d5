package jam_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/sha512"
	"fmt"
	"math/big"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/go-jam/go-jam/jam"
)

// BenchmarkVerifyToken compares, on one token in one run, the bare P-521
// signature check (the floor), VerifyToken with the cache off (cold), and
// a cache hit (warm). BENCHMARKS.md records the ratios.
func BenchmarkVerifyToken(b *testing.B) {
	key := newSigningKey(b, "key-1")
	ks := newKeyServer(b, key)
	token := sign(b, jose.ES512, key.priv, key.kid, claims(ks.URL, testNow), nil)
	ctx := context.Background()

	b.Run("floor", func(b *testing.B) {
		i := strings.LastIndexByte(token, '.')
		sig := mustDecode(b, token[i+1:])
		r, s := new(big.Int).SetBytes(sig[:66]), new(big.Int).SetBytes(sig[66:])
		input := []byte(token[:i])
		b.ReportAllocs()
		for b.Loop() {
			h := sha512.Sum512(input)
			if !ecdsa.Verify(&key.priv.PublicKey, h[:], r, s) {
				b.Fatal("signature does not verify")
			}
		}
	})
	for _, bc := range []struct {
		name string
		size int
	}{{"cold", 0}, {"warm", jam.DefaultCacheSize}} {
		b.Run(bc.name, func(b *testing.B) {
			client := ks.client(b, newClock(), jam.WithCacheSize(bc.size))
			// A busy process's key, which has earned its tables.
			if err := client.Precompute(ctx); err != nil {
				b.Fatal(err)
			}
			if _, err := client.VerifyToken(ctx, token); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := client.VerifyToken(ctx, token); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkVerifyRatios measures the floor, a cold and a warm verification
// of one token in turn, iteration by iteration, and reports their ratios:
// interleaving them cancels the drift of a shared machine, which moves
// separate benchmarks by more than the 5% the cold path is allowed.
func BenchmarkVerifyRatios(b *testing.B) {
	key := newSigningKey(b, "key-1")
	ks := newKeyServer(b, key)
	token := sign(b, jose.ES512, key.priv, key.kid, claims(ks.URL, testNow), nil)
	ctx := context.Background()
	i := strings.LastIndexByte(token, '.')
	sig := mustDecode(b, token[i+1:])
	r, s := new(big.Int).SetBytes(sig[:66]), new(big.Int).SetBytes(sig[66:])
	input := []byte(token[:i])
	cold := ks.client(b, newClock(), jam.WithCacheSize(0))
	warm := ks.client(b, newClock())
	for _, c := range []*jam.Client{cold, warm} {
		// A busy process's key, which has earned its tables.
		if err := c.Precompute(ctx); err != nil {
			b.Fatal(err)
		}
		if _, err := c.VerifyToken(ctx, token); err != nil {
			b.Fatal(err)
		}
	}

	const hits = 100 // per iteration, so that the clock's cost is small beside them
	var floorT, coldT, warmT time.Duration
	for b.Loop() {
		t0 := time.Now()
		h := sha512.Sum512(input)
		ok := ecdsa.Verify(&key.priv.PublicKey, h[:], r, s)
		t1 := time.Now()
		_, err := cold.VerifyToken(ctx, token)
		t2 := time.Now()
		for range hits {
			if _, err := warm.VerifyToken(ctx, token); err != nil {
				b.Fatal(err)
			}
		}
		t3 := time.Now()
		if !ok || err != nil {
			b.Fatal("verification failed", err)
		}
		floorT += t1.Sub(t0)
		coldT += t2.Sub(t1)
		warmT += t3.Sub(t2)
	}
	b.ReportMetric(float64(coldT)/float64(floorT), "cold/floor")
	b.ReportMetric(float64(coldT)/(float64(warmT)/hits), "cold/warm")
}

// BenchmarkRefusals measures what refusing each token of the attack corpus
// costs, as the ratio x-cold to a cold verification of a valid token (the
// cache off). Each iteration verifies the valid token once and refuses the
// attack 10 times, as a flood of it would come, and the two are timed in
// turns, so that the machine's drift falls on both alike. The bounds
// (docs/security-model.md): a refusal that needs no signature check costs at most
// 1/20 of a cold verification, and no refusal more than one.
func BenchmarkRefusals(b *testing.B) {
	const flood = 10
	c := attackCorpus(b)
	ctx := context.Background()
	cold := c.ks.client(b, newClock(), jam.WithCacheSize(0))
	// A busy process's key, which has earned its tables.
	for _, client := range []*jam.Client{cold, c.client} {
		if err := client.Precompute(ctx); err != nil {
			b.Fatal(err)
		}
	}
	for _, a := range c.attacks {
		b.Run(a.name, func(b *testing.B) {
			var coldT, refusalT time.Duration
			for b.Loop() {
				t0 := time.Now()
				_, err := cold.VerifyToken(ctx, c.valid)
				t1 := time.Now()
				for range flood {
					if _, refused := c.client.VerifyToken(ctx, a.token); refused == nil {
						b.Fatalf("VerifyToken(%s) = nil error, want a refusal", a.name)
					}
				}
				t2 := time.Now()
				if err != nil {
					b.Fatalf("VerifyToken(valid) = %v", err)
				}
				coldT += t1.Sub(t0)
				refusalT += t2.Sub(t1)
			}
			b.ReportMetric(float64(refusalT)/flood/float64(coldT), "x-cold")
		})
	}
}

// discard is the cheapest ResponseWriter, so that the middleware benchmark
// measures the middleware.
type discard struct{ h http.Header }

func (d *discard) Header() http.Header         { return d.h }
func (d *discard) Write(b []byte) (int, error) { return len(b), nil }
func (d *discard) WriteHeader(int)             {}

// BenchmarkMiddleware measures a request through Middleware on a cache hit
// against the bare handler: the difference is the middleware's overhead.
func BenchmarkMiddleware(b *testing.B) {
	key := newSigningKey(b, "key-1")
	ks := newKeyServer(b, key)
	client := ks.client(b, newClock())
	token := sign(b, jose.ES512, key.priv, key.kid, claims(ks.URL, testNow), nil)

	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNoContent)
	})
	for _, bc := range []struct {
		name string
		h    http.Handler
	}{{"bare", handler}, {"hit", client.Middleware()(handler)}} {
		b.Run(bc.name, func(b *testing.B) {
			r, err := http.NewRequest("GET", "http://api.example/me", nil)
			if err != nil {
				b.Fatal(err)
			}
			r.Header.Set("Authorization", "Bearer "+token)
			w := &discard{h: http.Header{}}
			bc.h.ServeHTTP(w, r) // warm the cache
			b.ReportAllocs()
			for b.Loop() {
				bc.h.ServeHTTP(w, r)
			}
		})
	}
}

// BenchmarkCacheMemory fills a cache of DefaultCacheSize with distinct
// tokens and reports the heap it holds. With -short it fills 500 entries
// and reports the same per-entry figure, so CI runs it in a second.
func BenchmarkCacheMemory(b *testing.B) {
	n := jam.DefaultCacheSize
	if testing.Short() {
		n = 500
	}
	key := newSigningKey(b, "key-1")
	ks := newKeyServer(b, key)
	tokens := signMany(b, ks.URL, key, n)

	for b.Loop() {
		b.StopTimer()
		client := ks.client(b, newClock())
		if _, err := client.JWKS(context.Background()); err != nil {
			b.Fatal(err)
		}
		before := heapInUse()
		b.StartTimer()
		var vg sync.WaitGroup
		for w := range runtime.GOMAXPROCS(0) {
			vg.Go(func() {
				for i := w; i < n; i += runtime.GOMAXPROCS(0) {
					if _, err := client.VerifyToken(context.Background(), tokens[i]); err != nil {
						b.Error(err)
						return
					}
				}
			})
		}
		vg.Wait()
		b.StopTimer()
		held := heapInUse() - before
		if got := jam.CacheLen(client); got != n {
			b.Fatalf("CacheLen() = %d, want %d", got, n)
		}
		b.ReportMetric(float64(held)/float64(n), "B/entry")
		b.ReportMetric(float64(held)/float64(n)*float64(jam.DefaultCacheSize)/(1<<20), "MiB/full-default-cache")
		runtime.KeepAlive(client)
		b.StartTimer()
	}
}

// signMany returns n distinct valid tokens of key, signed on every core.
func signMany(b *testing.B, baseURL string, key signingKey, n int) []string {
	tokens := make([]string, n)
	var wg sync.WaitGroup
	for w := range runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			for i := w; i < n; i += runtime.GOMAXPROCS(0) {
				c := claims(baseURL, testNow)
				c["jti"] = fmt.Sprintf("%08d-f036-4e42-bf39-477fa3a18f6d", i)
				tokens[i] = sign(b, jose.ES512, key.priv, key.kid, c, nil)
			}
		})
	}
	wg.Wait()
	return tokens
}

func heapInUse() int64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapAlloc)
}

// BenchmarkCacheHitScaling measures how cache hits scale with cores: in
// turns of 20 ms, one goroutine on one core (GOMAXPROCS 1) and then one
// goroutine per core make hits over 10,000 cached tokens, and the ratio of
// their throughputs is reported as x-cores/1 (2 at best on 2 cores). Taking turns cancels the drift of a
// shared machine, which moves separate -cpu runs by more than the
// difference measured. Each iteration is one pair of turns.
func BenchmarkCacheHitScaling(b *testing.B) {
	key := newSigningKey(b, "key-1")
	ks := newKeyServer(b, key)
	// A clock without clock's mutex, which the cores would queue on.
	client := ks.client(b, newClock(), jam.WithClock(func() time.Time { return testNow }))
	// A full default cache, as a busy server has: the size of the live
	// heap sets how often the garbage collector runs, which hits' copies
	// keep busy.
	n := jam.DefaultCacheSize
	if testing.Short() {
		n = 500
	}
	tokens := signMany(b, ks.URL, key, n)
	for _, tok := range tokens {
		if _, err := client.VerifyToken(context.Background(), tok); err != nil {
			b.Fatal(err)
		}
	}
	// hits makes hits from n goroutines for d and returns how many.
	hits := func(n int, d time.Duration) int64 {
		var total atomic.Int64
		deadline := time.Now().Add(d)
		var wg sync.WaitGroup
		for g := range n {
			wg.Go(func() {
				count := int64(0)
				for i := g * 7919; time.Now().Before(deadline); i++ {
					if _, err := client.VerifyToken(context.Background(), tokens[i%len(tokens)]); err != nil {
						b.Error(err)
						return
					}
					count++
				}
				total.Add(count)
			})
		}
		wg.Wait()
		return total.Load()
	}
	cores := runtime.GOMAXPROCS(0)
	defer runtime.GOMAXPROCS(cores)
	var one, many int64
	for b.Loop() {
		// One core for the one goroutine, as -cpu 1 would give it: else
		// the garbage collector would work for it on another.
		runtime.GOMAXPROCS(1)
		one += hits(1, 20*time.Millisecond)
		runtime.GOMAXPROCS(cores)
		many += hits(cores, 20*time.Millisecond)
	}
	b.ReportMetric(float64(many)/float64(one), fmt.Sprintf("x-%dcores/1", cores))
	b.ReportMetric(float64(one)/(float64(b.N)*0.020), "hits/s-1core")
}
