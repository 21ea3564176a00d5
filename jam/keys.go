package jam

import (
	"context"
	"crypto/ecdsa"
	"crypto/fips140"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/go-jam/go-jam/jam/internal/es512"
	jose "github.com/go-jose/go-jose/v4"
)

// maxPrecomputedKeys is how many keys of the set may hold the tables of
// the fast ES512 verifier at once (es512.New: 1.2 MiB each, beside 3.7 MiB
// shared by all, built once); the others verify with crypto/ecdsa. JAM's
// sets hold one key, two during a rotation.
const maxPrecomputedKeys = 4

// tablesBreakEven is how many signature checks a key makes with
// crypto/ecdsa before it earns its tables. Building them the first time in
// a process (the generator's table and the key's) costs as much as about
// 32 crypto/ecdsa verifications on the machine of BENCHMARKS.md (38–44 ms
// and 12 ms, against 1.6 ms); a later key's, 8. Each check with tables
// saves 0.9 of one. Both costs are P-521 arithmetic, so the ratio moves
// little between machines, and a count needs no clock. Renting until the
// rent paid equals the price, as in the ski-rental problem, spends at most
// about twice what knowing the future would: 32 / 0.9 ≈ 36. A busy process
// then has its tables by its 80th token or so (bench/coldstart.sh), well
// before its 250th. A later key, whose tables cost a quarter as much, waits
// as long, for one rule: at most 28 checks too many, once per rotation.
const tablesBreakEven = 36

// A key is a signing key of the set and its verifiers.
type key struct {
	pub *ecdsa.PublicKey
	std *es512.Verifier // crypto/ecdsa, while the key has no tables

	// fast verifies with tables once the key has earned them and until it
	// leaves the set: the token cache may hold a key for long after, but
	// not its 1.2 MiB.
	fast   atomic.Pointer[es512.Verifier]
	checks atomic.Int64 // signature checks with std

	// Guarded by tables.mu.
	building bool // a build of its tables is running or has ended
	removed  bool // the key has left the set
}

// tables hands out the tables of the fast verifier to at most
// maxPrecomputedKeys keys of a set at a time, each once it has earned
// them, and builds them off the request path, one goroutine per key that
// ends with the build.
type tables struct {
	off bool                                            // WithFastVerifier(false), or FIPS 140 mode
	new func(*ecdsa.PublicKey) (*es512.Verifier, error) // es512.New; tests gate it

	mu   sync.Mutex
	held int // keys in the set that hold tables or are building them
	// running are the builds in flight, each closed when it ends. (A
	// sync.WaitGroup would not do: a build may start while Precompute
	// waits for others to end.)
	running []chan struct{}
}

// newTables returns the tables of a Client, off if fast is false or in
// FIPS 140 mode, where crypto/ecdsa alone may verify.
func newTables(fast bool) *tables {
	return &tables{off: !fast || fips140.Enabled(), new: es512.New}
}

// verifier returns the verifier to check a signature with k now, and
// counts a check with crypto/ecdsa toward k's tables.
func (t *tables) verifier(k *key) *es512.Verifier {
	if v := k.fast.Load(); v != nil {
		return v
	}
	if k.checks.Add(1) >= tablesBreakEven && !t.off {
		t.build(k)
	}
	return k.std
}

// build starts building k's tables unless k has started already, has left
// the set, or the set's keys hold all the tables they may; in that case a
// later check retries, and finds the place of a key that left.
func (t *tables) build(k *key) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if k.building || k.removed || t.held >= maxPrecomputedKeys {
		return
	}
	k.building = true
	t.held++
	done := make(chan struct{})
	t.running = append(t.running, done)
	go func() {
		// go-jose has checked that the key is a point of P-521, and so
		// has usable: this cannot fail. If it did, k would stay on
		// crypto/ecdsa, which would refuse the key just the same, and
		// give its place up.
		v, err := t.new(k.pub)
		t.mu.Lock()
		defer t.mu.Unlock()
		switch {
		case k.removed: // remove gave its place up
		case err != nil:
			t.held--
		default:
			k.fast.Store(v)
		}
		t.running = slices.DeleteFunc(t.running, func(c chan struct{}) bool { return c == done })
		close(done)
	}()
}

// wait waits for the builds in flight to end, as long as ctx allows.
func (t *tables) wait(ctx context.Context) error {
	t.mu.Lock()
	running := slices.Clone(t.running)
	t.mu.Unlock()
	for _, done := range running {
		select {
		case <-done:
		case <-ctx.Done():
			// The builds go on, and end by themselves.
			return ctx.Err()
		}
	}
	return nil
}

// remove drops the tables of keys that have left the set, and their
// places.
func (t *tables) remove(gone []*key) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, k := range gone {
		if k.building && !k.removed {
			t.held--
		}
		k.removed = true
		k.fast.Store(nil)
	}
}

// precompute builds the tables of the keys in keys that have none, as
// many as may hold them, whatever their checks, and waits for them as
// long as ctx allows.
func (t *tables) precompute(ctx context.Context, keys map[string][]*key) error {
	if t.off {
		return nil
	}
	for _, ks := range keys {
		for _, k := range ks {
			t.build(k)
		}
	}
	return t.wait(ctx)
}

// verifiers returns the keys of set by kid. A key held already is kept,
// with its pointer, its checks and its tables, so that the tokens it
// verified stay in the token cache; a new key starts on crypto/ecdsa; a
// key no longer in the set loses its tables. It runs in the fetch, which
// is alone.
func (s *keySet) verifiers(set *jose.JSONWebKeySet) map[string][]*key {
	old := s.state.Load().keys
	keys := make(map[string][]*key, len(set.Keys))
	for _, jwk := range set.Keys {
		pub := jwk.Key.(*ecdsa.PublicKey)
		if i := slices.IndexFunc(old[jwk.KeyID], func(o *key) bool { return o.pub.Equal(pub) }); i >= 0 {
			keys[jwk.KeyID] = append(keys[jwk.KeyID], old[jwk.KeyID][i])
			continue
		}
		// go-jose has checked that the key is a point of P-521, and so
		// has usable, so this cannot fail; if it did, the nil Verifier
		// would refuse every signature.
		std, _ := es512.NewStandard(pub)
		keys[jwk.KeyID] = append(keys[jwk.KeyID], &key{pub: pub, std: std})
	}
	var gone []*key
	for kid, ks := range old {
		for _, k := range ks {
			if !slices.Contains(keys[kid], k) {
				gone = append(gone, k)
			}
		}
	}
	s.tables.remove(gone)
	return keys
}
