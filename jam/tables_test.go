package jam_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/go-jam/go-jam/jam"
)

// verifyTimes verifies a token of key n times; with the cache off each
// is a signature check.
func verifyTimes(t *testing.T, client *jam.Client, ks *keyServer, key signingKey, n int) {
	t.Helper()
	token := sign(t, jose.ES512, key.priv, key.kid, claims(ks.URL, testNow), nil)
	for range n {
		if _, err := client.VerifyToken(context.Background(), token); err != nil {
			t.Fatalf("VerifyToken(%s) = %v, want nil", key.kid, err)
		}
	}
}

// hasTables reports whether the key with kid has its tables, once the
// builds in flight have ended.
func hasTables(c *jam.Client, kid string) bool {
	jam.AwaitTables(c)
	_, ok := jam.Tables(c, kid)
	return ok
}

// TestKeysEarnTheirTables checks that a key verifies with crypto/ecdsa
// until it has checked TablesBreakEven signatures, and then gets its
// tables, built once and off the request path.
func TestKeysEarnTheirTables(t *testing.T) {
	key := newSigningKey(t, "key-1")
	for _, tc := range []struct {
		name   string
		opts   []jam.Option
		checks int
		want   bool
	}{
		{"one check short of the break-even", nil, jam.TablesBreakEven - 1, false},
		{"at the break-even", nil, jam.TablesBreakEven, true},
		{"fast verifier off", []jam.Option{jam.WithFastVerifier(false)}, 2 * jam.TablesBreakEven, false},
		{"fast verifier on", []jam.Option{jam.WithFastVerifier(true)}, jam.TablesBreakEven, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ks := newKeyServer(t, key)
			client := ks.client(t, newClock(), append([]jam.Option{jam.WithCacheSize(0)}, tc.opts...)...)
			verifyTimes(t, client, ks, key, tc.checks)
			if got := hasTables(client, key.kid); got != tc.want {
				t.Errorf("tables after %d checks = %v, want %v", tc.checks, got, tc.want)
			}
		})
	}

	t.Run("cache hits do not count", func(t *testing.T) {
		ks := newKeyServer(t, key)
		client := ks.client(t, newClock())
		verifyTimes(t, client, ks, key, 2*jam.TablesBreakEven)
		if hasTables(client, key.kid) {
			t.Errorf("tables after 1 check and %d cache hits = true, want false", 2*jam.TablesBreakEven-1)
		}
	})

	t.Run("built once, verifying with crypto/ecdsa meanwhile", func(t *testing.T) {
		ks := newKeyServer(t, key)
		client := ks.client(t, newClock(), jam.WithCacheSize(0))
		var builds atomic.Int32
		release := jam.GateTables(client, &builds)
		defer release()
		verifyTimes(t, client, ks, key, jam.TablesBreakEven)
		// Past the break-even, from several goroutines, while the build
		// waits at the gate: every check still succeeds, on crypto/ecdsa.
		var wg sync.WaitGroup
		for range 4 {
			wg.Go(func() { verifyTimes(t, client, ks, key, 3) })
		}
		wg.Wait()
		if _, ok := jam.Tables(client, key.kid); ok {
			t.Error("tables before the build ended = true, want false")
		}
		release()
		if !hasTables(client, key.kid) {
			t.Error("tables after the build ended = false, want true")
		}
		verifyTimes(t, client, ks, key, jam.TablesBreakEven)
		if got := builds.Load(); got != 1 {
			t.Errorf("builds of one key's tables = %d, want 1", got)
		}
	})
}

// TestRemovedKeysTablesAreFreed checks that the tables of a key that left
// the set are garbage once the set is replaced, even while the token cache
// holds tokens the key verified.
func TestRemovedKeysTablesAreFreed(t *testing.T) {
	ctx := context.Background()
	for _, size := range []int{0, jam.DefaultCacheSize} {
		t.Run(fmt.Sprintf("cache size %d", size), func(t *testing.T) {
			k1, k2 := newSigningKey(t, "key-1"), newSigningKey(t, "key-2")
			ks := newKeyServer(t, k1)
			client := ks.client(t, newClock(), jam.WithCacheSize(size))
			if err := client.Precompute(ctx); err != nil {
				t.Fatalf("Precompute() = %v, want nil", err)
			}
			tables, ok := jam.Tables(client, k1.kid)
			if !ok {
				t.Fatal("Precompute() built no tables for key-1")
			}
			warmUp(t, client, sign(t, jose.ES512, k1.priv, k1.kid, claims(ks.URL, testNow), nil))

			ks.setKeys(t, k2)
			if _, err := client.JWKS(ctx); err != nil {
				t.Fatalf("JWKS() = %v, want nil", err)
			}
			warmUp(t, client, sign(t, jose.ES512, k2.priv, k2.kid, claims(ks.URL, testNow), nil))
			for i := 0; i < 5 && tables.Value() != nil; i++ {
				runtime.GC()
			}
			if tables.Value() != nil {
				t.Errorf("tables of key-1 after it left the set and 5 GCs: live, want collected (%d tokens cached)", jam.CacheLen(client))
			}
			runtime.KeepAlive(client)
		})
	}

	t.Run("a build that ends after its key left", func(t *testing.T) {
		k1, k2 := newSigningKey(t, "key-1"), newSigningKey(t, "key-2")
		ks := newKeyServer(t, k1)
		client := ks.client(t, newClock(), jam.WithCacheSize(0))
		var builds atomic.Int32
		release := jam.GateTables(client, &builds)
		defer release()
		verifyTimes(t, client, ks, k1, jam.TablesBreakEven)
		ks.setKeys(t, k2)
		if _, err := client.JWKS(ctx); err != nil {
			t.Fatalf("JWKS() = %v, want nil", err)
		}
		release()
		jam.AwaitTables(client)
		// key-1's place is free again: key-2 and three more may have
		// tables.
		k3, k4, k5 := newSigningKey(t, "key-3"), newSigningKey(t, "key-4"), newSigningKey(t, "key-5")
		ks.setKeys(t, k2, k3, k4, k5)
		if _, err := client.JWKS(ctx); err != nil {
			t.Fatalf("JWKS() = %v, want nil", err)
		}
		if err := client.Precompute(ctx); err != nil {
			t.Fatalf("Precompute() = %v, want nil", err)
		}
		for _, k := range []signingKey{k2, k3, k4, k5} {
			if !hasTables(client, k.kid) {
				t.Errorf("tables of %s = false, want true: the place of key-1, which left while building, is free", k.kid)
			}
		}
	})
}

// TestNewestKeyTakesAFreedPlace checks that a key that found every place
// taken gets its tables once a key leaves: the newest key, which signs
// every new token, must not stay on crypto/ecdsa until a restart.
func TestNewestKeyTakesAFreedPlace(t *testing.T) {
	ctx := context.Background()
	var keys []signingKey
	for i := range jam.MaxPrecomputedKeys + 1 {
		keys = append(keys, newSigningKey(t, fmt.Sprint("key-", i)))
	}
	oldest, newest := keys[0], keys[len(keys)-1]
	ks := newKeyServer(t, keys[:jam.MaxPrecomputedKeys]...)
	client := ks.client(t, newClock(), jam.WithCacheSize(0))
	if err := client.Precompute(ctx); err != nil {
		t.Fatalf("Precompute() = %v, want nil", err)
	}

	ks.setKeys(t, keys...)
	if _, err := client.JWKS(ctx); err != nil {
		t.Fatalf("JWKS() = %v, want nil", err)
	}
	verifyTimes(t, client, ks, newest, jam.TablesBreakEven)
	if hasTables(client, newest.kid) {
		t.Fatalf("tables of the newest key with %d keys holding tables = true, want false", jam.MaxPrecomputedKeys)
	}

	ks.setKeys(t, keys[1:]...)
	if _, err := client.JWKS(ctx); err != nil {
		t.Fatalf("JWKS() = %v, want nil", err)
	}
	verifyTimes(t, client, ks, newest, 1)
	for _, k := range keys[1:] {
		if !hasTables(client, k.kid) {
			t.Errorf("tables of %s after %s left = false, want true", k.kid, oldest.kid)
		}
	}
}

// TestPrecompute checks that Precompute fetches the set and builds the
// tables of its keys, and that its errors say why and stop nothing.
func TestPrecompute(t *testing.T) {
	key := newSigningKey(t, "key-1")
	ctx := context.Background()

	for _, tc := range []struct {
		name string
		opts []jam.Option
		want bool
	}{
		{"builds the tables", nil, true},
		{"fast verifier off", []jam.Option{jam.WithFastVerifier(false)}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ks := newKeyServer(t, key)
			client := ks.client(t, newClock(), tc.opts...)
			if err := client.Precompute(ctx); err != nil {
				t.Fatalf("Precompute() = %v, want nil", err)
			}
			if _, got := jam.Tables(client, key.kid); got != tc.want {
				t.Errorf("tables after Precompute() = %v, want %v", got, tc.want)
			}
			verifyTimes(t, client, ks, key, 1)
		})
	}

	t.Run("outage", func(t *testing.T) {
		ks := newKeyServer(t, key)
		ks.respond(http.StatusServiceUnavailable, []byte(`{"message":"down"}`))
		clk := newClock()
		client := ks.client(t, clk, jam.WithRetries(0))
		if err := client.Precompute(ctx); !errors.Is(err, jam.ErrKeySetUnavailable) {
			t.Errorf("Precompute() = %v, want %v", err, jam.ErrKeySetUnavailable)
		}
		// Once JAM is back, past the backoff of a failed cold fetch.
		ks.setKeys(t, key)
		clk.Advance(time.Second)
		verifyTimes(t, client, ks, key, 1)
	})

	t.Run("context ends first", func(t *testing.T) {
		ks := newKeyServer(t, key)
		client := ks.client(t, newClock())
		var builds atomic.Int32
		release := jam.GateTables(client, &builds)
		defer release()
		if err := client.Ready(ctx); err != nil {
			t.Fatalf("Ready() = %v, want nil", err)
		}
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		err := client.Precompute(cctx)
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Precompute(canceled) = %v, want %v", err, context.Canceled)
		}
		if e, ok := errors.AsType[*jam.Error](err); !ok || e.Op != "precompute" {
			t.Errorf("Precompute(canceled) = %#v, want a *jam.Error for op precompute", err)
		}
		// The Client works meanwhile, and the build ends by itself.
		verifyTimes(t, client, ks, key, 1)
		release()
		if !hasTables(client, key.kid) {
			t.Error("tables after the build ended = false, want true")
		}
	})
}
