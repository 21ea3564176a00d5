package es512

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"sync"
	"testing"

	jose "github.com/go-jose/go-jose/v4"
)

// wycheproof is the part of a Wycheproof ECDSA P1363 verification file that
// the test reads.
type wycheproof struct {
	Algorithm     string
	NumberOfTests int
	TestGroups    []struct {
		Type      string
		SHA       string
		PublicKey struct {
			Curve        string
			Uncompressed string
		}
		Tests []struct {
			TcID    int
			Comment string
			Flags   []string
			Msg     string
			Sig     string
			Result  string
		}
	}
}

// TestWycheproof runs every case of Wycheproof's ECDSA P-521 / SHA-512 P1363
// vectors (testdata/README.md) through both kinds of Verifier, and checks
// that each verdict is Wycheproof's and crypto/ecdsa's. Wycheproof marks
// "acceptable" the cases a careful implementation may take either way; this
// file has none, and the test would require agreement with crypto/ecdsa for
// them.
func TestWycheproof(t *testing.T) {
	data, err := os.ReadFile("testdata/ecdsa_secp521r1_sha512_p1363_test.json")
	if err != nil {
		t.Fatal(err)
	}
	var vectors wycheproof
	if err := json.Unmarshal(data, &vectors); err != nil {
		t.Fatal(err)
	}
	if vectors.Algorithm != "ECDSA" || vectors.NumberOfTests != 318 {
		t.Fatalf("vectors of %s with %d tests, want ECDSA with 318", vectors.Algorithm, vectors.NumberOfTests)
	}
	var (
		mu  sync.Mutex
		ran = map[string]int{}
	)
	// Groups run in parallel: each builds a table for its key, and most
	// have one case.
	t.Run("groups", func(t *testing.T) {
		for _, g := range vectors.TestGroups {
			t.Run(fmt.Sprintf("tcId %d", g.Tests[0].TcID), func(t *testing.T) {
				t.Parallel()
				if g.Type != "EcdsaP1363Verify" || g.SHA != "SHA-512" || g.PublicKey.Curve != "secp521r1" {
					t.Fatalf("group of %s, %s, %s; want EcdsaP1363Verify, SHA-512, secp521r1", g.Type, g.SHA, g.PublicKey.Curve)
				}
				pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P521(), mustHex(t, g.PublicKey.Uncompressed))
				if err != nil {
					t.Fatalf("key %s: %v", g.PublicKey.Uncompressed, err)
				}
				verifiers := mustVerifiers(t, pub)
				for _, tc := range g.Tests {
					msg, sig := mustHex(t, tc.Msg), mustHex(t, tc.Sig)
					standard := standardVerify(pub, msg, sig)
					for name, v := range verifiers {
						got := v.VerifyPayload(msg, sig, jose.ES512) == nil
						switch tc.Result {
						case "valid", "invalid":
							if want := tc.Result == "valid"; got != want {
								t.Errorf("%s: case %d (%s, %v): verified %v, want %v", name, tc.TcID, tc.Comment, tc.Flags, got, want)
							}
						case "acceptable":
						default:
							t.Fatalf("case %d: result %q", tc.TcID, tc.Result)
						}
						if got != standard {
							t.Errorf("%s: case %d (%s): verified %v, crypto/ecdsa %v", name, tc.TcID, tc.Comment, got, standard)
						}
					}
					mu.Lock()
					ran[tc.Result]++
					mu.Unlock()
				}
			})
		}
	})
	if total := ran["valid"] + ran["invalid"] + ran["acceptable"]; total != vectors.NumberOfTests {
		t.Errorf("ran %d cases (%v), want %d", total, ran, vectors.NumberOfTests)
	}
	t.Logf("cases: %v", ran)
}

func mustHex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
