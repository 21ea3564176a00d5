package jam_test

import (
	"bytes"
	"context"
	"crypto/fips140"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/go-jam/go-jam/jam"
)

// TestFIPS runs TestFIPSChild in a process of its own in FIPS 140 mode,
// which only GODEBUG at start-up can turn on.
func TestFIPS(t *testing.T) {
	if os.Getenv("JAM_FIPS_CHILD") != "" {
		t.Skip("in the child")
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^TestFIPSChild$", "-test.v", "-test.count=1")
	godebug := strings.Trim(os.Getenv("GODEBUG")+",fips140=on", ",")
	cmd.Env = append(os.Environ(), "GODEBUG="+godebug, "JAM_FIPS_CHILD=1")
	out, err := cmd.CombinedOutput()
	if err != nil || !bytes.Contains(out, []byte("--- PASS: TestFIPSChild")) {
		t.Fatalf("TestFIPSChild with GODEBUG=%s = %v, want it run and passed; output:\n%s", godebug, err, out)
	}
}

// TestFIPSChild checks that in FIPS 140 mode no key gets tables, whether
// it earns them or Precompute asks for them: crypto/ecdsa alone verifies.
func TestFIPSChild(t *testing.T) {
	if os.Getenv("JAM_FIPS_CHILD") == "" {
		t.Skip("run by TestFIPS")
	}
	if !fips140.Enabled() {
		t.Fatal("fips140.Enabled() = false, want true")
	}
	key := newSigningKey(t, "key-1")
	ks := newKeyServer(t, key)
	client := ks.client(t, newClock(), jam.WithCacheSize(0))
	if err := client.Precompute(context.Background()); err != nil {
		t.Fatalf("Precompute() = %v, want nil", err)
	}
	verifyTimes(t, client, ks, key, jam.TablesBreakEven)
	if hasTables(client, key.kid) {
		t.Errorf("tables after Precompute and %d checks in FIPS 140 mode = true, want false", jam.TablesBreakEven)
	}
}
