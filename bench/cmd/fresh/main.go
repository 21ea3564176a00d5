// Command fresh verifies JAM ID tokens in a process of its own, so that
// what a fresh process pays before its first verified token, and while its
// first hundreds of tokens come in, can be measured. coldstart_test.go's
// TestFreshProcesses runs it, many times, against a jamtest server, taking
// turns between implementations; run it through bench/coldstart.sh.
//
//	fresh -impl go-jam -base URL -app ID -tokens FILE [-n 300 -from 250 -to 300]
//
// It verifies the first n tokens of FILE (one a line) in order and prints
// one JSON object to stdout: the wall-clock and CPU time from the first line
// of main to the first verified token, key-set fetch included; the mean
// time of a verification in blocks of 50 tokens; and, when the tokens
// from … to are verified, the time of a bare crypto/ecdsa verification
// (SHA-512 and ecdsa.Verify, the floor) of each of them, measured in turns
// with the implementation's, by the wall clock and by the CPU time of the
// verifying thread, so that their ratio holds on a busy machine.
//
// The implementations: go-jam (defaults), go-jam-precompute (Precompute
// before the first token, as go-jam built its tables before), go-jam-ecdsa
// (WithFastVerifier(false)) and go-oidc (RemoteKeySet, the same checks as
// bench's go-oidc handler).
package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math/big"
	"net/http"
	"os"
	"runtime"
	"strings"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	jose "github.com/go-jose/go-jose/v4"

	"github.com/go-jam/go-jam/jam"
)

// blockSize is how many tokens each mean of Result.Blocks is over.
const blockSize = 50

// Result is what one process prints.
type Result struct {
	Impl             string    `json:"impl"`
	FirstWallMS      float64   `json:"first_wall_ms"`       // first line of main to the first verified token
	FirstCPUMS       float64   `json:"first_cpu_ms"`        // CPU time of the process in that interval
	TotalWallMS      float64   `json:"total_wall_ms"`       // first line of main to the n-th token
	TotalCPUMS       float64   `json:"total_cpu_ms"`        // CPU time of the process in that interval
	Blocks           []float64 `json:"blocks_ms"`           // mean ms a verification, by block of 50 tokens
	WindowMS         float64   `json:"window_ms"`           // the implementation's time for tokens from … to
	WindowFloorMS    float64   `json:"window_floor_ms"`     // the floor's time for the same tokens
	WindowCPUMS      float64   `json:"window_cpu_ms"`       // the same by the CPU time of main's thread (Linux)
	WindowFloorCPUMS float64   `json:"window_floor_cpu_ms"` // the floor's, the same way
	HeapMiB          float64   `json:"heap_mib"`            // live heap after the n-th token and a GC
}

func main() {
	start, startCPU := time.Now(), cpuTime()
	// One thread for main's goroutine, so that its CPU time is the
	// verifications' (a build of tables runs on another).
	runtime.LockOSThread()
	impl := flag.String("impl", "go-jam", "go-jam, go-jam-precompute, go-jam-ecdsa or go-oidc")
	base := flag.String("base", "", "base URL of the JAM server")
	app := flag.String("app", "", "app ID")
	file := flag.String("tokens", "", "file of ID tokens, one a line")
	n := flag.Int("n", 1, "tokens to verify")
	from := flag.Int("from", 0, "first token (counting from 1) to measure against the floor; 0 for none")
	to := flag.Int("to", 0, "last token to measure against the floor")
	flag.Parse()
	if *base == "" || *app == "" || *file == "" || *n < 1 {
		flag.Usage()
		os.Exit(2)
	}
	if err := run(start, startCPU, *impl, *base, *app, *file, *n, *from, *to); err != nil {
		fmt.Fprintln(os.Stderr, "fresh:", err)
		os.Exit(1)
	}
}

func run(start time.Time, startCPU time.Duration, impl, base, app, file string, n, from, to int) error {
	ctx := context.Background()
	raw, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	tokens := strings.Fields(string(raw))
	if len(tokens) < n {
		return fmt.Errorf("%s holds %d tokens, want %d", file, len(tokens), n)
	}
	verify, err := verifier(ctx, impl, base, app)
	if err != nil {
		return err
	}

	res := Result{Impl: impl}
	var floorKey *ecdsa.PublicKey
	var block time.Duration
	for i, token := range tokens[:n] {
		k := i + 1
		if k == from {
			// Outside the measured verifications: the floor needs the key.
			if floorKey, err = fetchKey(base, app); err != nil {
				return err
			}
		}
		t0, c0 := time.Now(), threadCPU()
		if err := verify(ctx, token); err != nil {
			return fmt.Errorf("token %d: %w", k, err)
		}
		d, c := time.Since(t0), threadCPU()-c0
		if k == 1 {
			res.FirstWallMS, res.FirstCPUMS = ms(time.Since(start)), ms(cpuTime()-startCPU)
		}
		block += d
		if k%blockSize == 0 || k == n {
			res.Blocks = append(res.Blocks, ms(block)/float64((k-1)%blockSize+1))
			block = 0
		}
		if from > 0 && k >= from && k <= to {
			t1, c1 := time.Now(), threadCPU()
			if err := floor(floorKey, token); err != nil {
				return err
			}
			res.WindowFloorMS += ms(time.Since(t1))
			res.WindowFloorCPUMS += ms(threadCPU() - c1)
			res.WindowMS += ms(d)
			res.WindowCPUMS += ms(c)
		}
	}
	res.TotalWallMS, res.TotalCPUMS = ms(time.Since(start)), ms(cpuTime()-startCPU)
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	res.HeapMiB = float64(m.HeapAlloc) / (1 << 20)
	// The verifier, its client, key set and tables, live until now.
	runtime.KeepAlive(verify)
	return json.NewEncoder(os.Stdout).Encode(res)
}

// verifier returns impl's verification of a token, ready as a server would
// have it at the first line of its handler.
func verifier(ctx context.Context, impl, base, app string) (func(context.Context, string) error, error) {
	switch impl {
	case "go-jam", "go-jam-precompute", "go-jam-ecdsa":
		c, err := jam.New(app, jam.WithBaseURL(base), jam.WithFastVerifier(impl != "go-jam-ecdsa"))
		if err != nil {
			return nil, err
		}
		if impl == "go-jam-precompute" {
			if err := c.Precompute(ctx); err != nil {
				return nil, err
			}
		}
		return func(ctx context.Context, token string) error {
			_, err := c.VerifyToken(ctx, token)
			return err
		}, nil
	case "go-oidc":
		issuer := strings.TrimRight(base, "/") + "/" + app
		v := oidc.NewVerifier(issuer, oidc.NewRemoteKeySet(ctx, issuer+"/.well-known/jwks.json"), &oidc.Config{
			ClientID:             app,
			SupportedSigningAlgs: []string{oidc.ES512},
		})
		return func(ctx context.Context, token string) error {
			idToken, err := v.Verify(ctx, token)
			if err != nil {
				return err
			}
			var claims struct {
				Email    string `json:"email"`
				TokenUse string `json:"token_use"`
			}
			if err := idToken.Claims(&claims); err != nil {
				return err
			}
			if claims.TokenUse != "id" || claims.Email == "" {
				return errors.New("not a JAM ID token")
			}
			return nil
		}, nil
	}
	return nil, fmt.Errorf("unknown -impl %q", impl)
}

// fetchKey returns the first key of the app's JWK Set, which jamtest signs
// with.
func fetchKey(base, app string) (*ecdsa.PublicKey, error) {
	resp, err := http.Get(strings.TrimRight(base, "/") + "/" + app + "/.well-known/jwks.json")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var set jose.JSONWebKeySet
	if err := json.NewDecoder(resp.Body).Decode(&set); err != nil {
		return nil, err
	}
	if len(set.Keys) == 0 {
		return nil, errors.New("empty JWK Set")
	}
	pub, ok := set.Keys[0].Key.(*ecdsa.PublicKey)
	if !ok {
		return nil, errors.New("the first key is not an EC key")
	}
	return pub, nil
}

// floor is the bare signature check of an ES512 token: SHA-512 of the
// signing input and ecdsa.Verify.
func floor(pub *ecdsa.PublicKey, token string) error {
	i := strings.LastIndexByte(token, '.')
	sig, err := base64.RawURLEncoding.DecodeString(token[i+1:])
	if err != nil || len(sig) != 132 {
		return errors.New("floor: malformed signature")
	}
	h := sha512.Sum512([]byte(token[:i]))
	if !ecdsa.Verify(pub, h[:], new(big.Int).SetBytes(sig[:66]), new(big.Int).SetBytes(sig[66:])) {
		return errors.New("floor: signature does not verify")
	}
	return nil
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
