package es512

import (
	"bytes"
	"crypto/fips140"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"

	jose "github.com/go-jose/go-jose/v4"
)

// TestFIPS runs TestFIPSChild in a process of its own in FIPS 140 mode,
// which only GODEBUG at start-up can turn on.
func TestFIPS(t *testing.T) {
	if os.Getenv("ES512_FIPS_CHILD") != "" {
		t.Skip("in the child")
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^TestFIPSChild$", "-test.v", "-test.count=1")
	godebug := strings.Trim(os.Getenv("GODEBUG")+",fips140=on", ",")
	cmd.Env = append(os.Environ(), "GODEBUG="+godebug, "ES512_FIPS_CHILD=1")
	out, err := cmd.CombinedOutput()
	if err != nil || !bytes.Contains(out, []byte("--- PASS: TestFIPSChild")) {
		t.Fatalf("TestFIPSChild with GODEBUG=%s = %v, want it run and passed; output:\n%s", godebug, err, out)
	}
}

// TestFIPSChild checks that in FIPS 140 mode New gives a Verifier that uses
// crypto/ecdsa, and that it verifies.
func TestFIPSChild(t *testing.T) {
	if os.Getenv("ES512_FIPS_CHILD") == "" {
		t.Skip("run by TestFIPS")
	}
	if !fips140.Enabled() {
		t.Fatal("fips140.Enabled() = false, want true")
	}
	k := newSigner(t, "TestFIPSChild")
	msg := []byte("payload")
	sig := k.sign(t, msg)
	v, err := New(k.public())
	if err != nil {
		t.Fatalf("New() = %v, want a Verifier", err)
	}
	if v.Precomputed() {
		t.Error("Precomputed() = true in FIPS 140 mode, want false")
	}
	if err := v.VerifyPayload(msg, sig, jose.ES512); err != nil {
		t.Errorf("VerifyPayload() = %v, want nil", err)
	}
	if err := v.VerifyPayload([]byte("other"), sig, jose.ES512); !errors.Is(err, ErrSignature) {
		t.Errorf("VerifyPayload(other payload) = %v, want %v", err, ErrSignature)
	}
}
