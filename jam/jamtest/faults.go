package jamtest

import (
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/go-jam/go-jam/jam/internal/contract"
)

// Operation names an operation of openapi.yaml by its operationId.
type Operation string

// The operations of openapi.yaml.
const (
	OpAuthenticate           Operation = "authenticate"
	OpGetJWKS                Operation = "getJWKS"
	OpVerifyToken            Operation = "verifyToken"
	OpRefreshToken           Operation = "refreshToken"
	OpDeleteRefreshToken     Operation = "deleteRefreshToken"
	OpDeleteAllRefreshTokens Operation = "deleteAllRefreshTokens"
)

var operations = []Operation{
	OpAuthenticate, OpGetJWKS, OpVerifyToken, OpRefreshToken,
	OpDeleteRefreshToken, OpDeleteAllRefreshTokens,
}

// A Fault changes how the server answers requests for one operation. It
// is off-contract on purpose, so its answers are not validated, and carry
// the header Jamtest-Fault, set to the operation.
type Fault struct {
	// Delay is how long to wait before answering. The wait ends early,
	// closing the connection unanswered, when the request is cancelled or
	// the server closes.
	Delay time.Duration
	// Status, when not zero, is the status to answer with, instead of
	// handling the request; Body and ContentType are its body and
	// Content-Type (none when empty). When zero, the request is handled
	// as usual after the Delay.
	Status      int
	ContentType string
	Body        []byte
	// Times is how many requests the fault applies to; zero means every
	// request until ClearFaults or another SetFault for the operation.
	Times int
}

// SetFault makes the server answer requests for op as f says, replacing
// any fault op had. Like httptest.NewRequest, it panics on an unknown
// operation or a Status outside 200–599, since either is a mistake in the
// test.
func (s *Server) SetFault(op Operation, f Fault) {
	if !slices.Contains(operations, op) {
		panic(fmt.Sprintf("jamtest: SetFault: unknown operation %q", op))
	}
	if f.Status != 0 && (f.Status < 200 || f.Status > 599) {
		panic(fmt.Sprintf("jamtest: SetFault: status %d outside 200–599", f.Status))
	}
	f.Body = slices.Clone(f.Body)
	s.mu.Lock()
	s.faults[op] = &f
	s.mu.Unlock()
}

// FailKeySet makes the key set unavailable: getJWKS answers 503 with a
// {"message"} body until ClearFaults.
func (s *Server) FailKeySet() {
	s.SetFault(OpGetJWKS, Fault{
		Status:      http.StatusServiceUnavailable,
		ContentType: "application/json",
		Body:        []byte(`{"message":"jamtest: key set unavailable"}` + "\n"),
	})
}

// ClearFaults removes every fault: each operation answers as JAM does.
func (s *Server) ClearFaults() {
	s.mu.Lock()
	clear(s.faults)
	s.mu.Unlock()
}

// Requests returns how many requests for op the server has received,
// whether they were valid, faulted or answered normally.
func (s *Server) Requests(op Operation) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests[op]
}

// admit counts a request for op and returns the fault to apply to it, if
// any, using up one of its Times.
func (s *Server) admit(op Operation) (Fault, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests[op]++
	f := s.faults[op]
	if f == nil {
		return Fault{}, false
	}
	if f.Times > 0 {
		if f.Times--; f.Times == 0 {
			delete(s.faults, op)
		}
	}
	return *f, true
}

// inject applies f to a request for op and reports whether it answered it.
// Its answers carry the header Jamtest-Fault: op, so that a client that
// checks responses against openapi.yaml knows to let them be.
func inject(w http.ResponseWriter, r *http.Request, op Operation, f Fault) bool {
	if f.Delay > 0 {
		t := time.NewTimer(f.Delay)
		defer t.Stop()
		select {
		case <-t.C:
		case <-r.Context().Done():
			// Close the connection without an answer, as a server that
			// went away would; net/http recovers this panic quietly.
			panic(http.ErrAbortHandler)
		}
	}
	if f.Status == 0 {
		return false
	}
	if f.ContentType != "" {
		w.Header().Set("Content-Type", f.ContentType)
	}
	w.Header().Set(contract.FaultHeader, string(op))
	w.WriteHeader(f.Status)
	w.Write(f.Body)
	return true
}
