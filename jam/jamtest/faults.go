package jamtest

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/go-jam/go-jam/jam/internal/contract"
)

// Operation names an operation of openapi.yaml by its operationId.
type Operation string

// The operations of openapi.yaml; the values are their operationIds.
const (
	OpAuthenticate Operation = "authenticate"
	OpGetJWKS      Operation = "getJWKS"
	// OpVerifyRemote is the remote verification of an ID token, which
	// jam.Client.VerifyRemote calls (operationId verifyToken).
	OpVerifyRemote           Operation = "verifyToken"
	OpRefreshToken           Operation = "refreshToken"
	OpDeleteRefreshToken     Operation = "deleteRefreshToken"
	OpDeleteAllRefreshTokens Operation = "deleteAllRefreshTokens"
)

var operations = []Operation{
	OpAuthenticate, OpGetJWKS, OpVerifyRemote, OpRefreshToken,
	OpDeleteRefreshToken, OpDeleteAllRefreshTokens,
}

// A Fault changes how the server answers requests for one operation. It
// is off-contract on purpose, so its answers are not validated, and carry
// the header Jamtest-Fault, set to the operation. A reset has no answer.
//
// By default a faulted request is never handled: nothing happens on the
// server (no magic link is sent, no refresh token deleted), as when a
// gateway or load balancer fails before the request reaches JAM. With
// AfterHandling the request is handled first and the fault replaces its
// answer, as when JAM ran but its answer was lost on the way back; a
// client cannot tell the two apart, and Server.Handled can.
type Fault struct {
	// Delay is how long to wait before answering, after handling with
	// AfterHandling. The wait ends early, closing the connection
	// unanswered, when the request is cancelled or the server closes.
	Delay time.Duration
	// Status, when not zero, is the status to answer with instead of the
	// handler's; Body and ContentType are its body and Content-Type (none
	// when empty), and Header holds more header fields, such as
	// Retry-After. When Status is zero and Reset false, the handler's
	// answer is sent after the Delay.
	Status      int
	ContentType string
	Body        []byte
	Header      http.Header
	// Reset, instead of an answer, closes the connection with a TCP reset,
	// so that the client's read fails with ECONNRESET, as when a load
	// balancer drops a connection. It excludes Status. Go's http.Transport,
	// which the jam client uses by default, sends a GET again by itself,
	// once, when a reused connection is reset before any answer; Requests
	// counts both.
	Reset bool
	// AfterHandling handles the request before the fault applies, so that
	// its work is done whatever the client sees.
	AfterHandling bool
	// Times is how many requests the fault applies to (with a Rate, how
	// many it hits); zero means every request until ClearFaults or another
	// SetFault for the operation.
	Times int
	// Rate, when not zero, is the probability that the fault applies to a
	// request, between 0 and 1; zero means every request, like 1. The draws
	// come from a PCG generator seeded with Seed and the operation, so the
	// nth request for an operation meets the same fate in every run with
	// the same Seed: log the seed of a randomized test to replay a failure
	// (exactly, when its requests for an operation are sent one at a time).
	Rate float64
	Seed uint64
	// OneOf, when not empty, are the faults to apply instead of this one:
	// each request the fault applies to meets one of them, chosen uniformly
	// with the same seeded generator. This fault then only says which
	// requests (Times, Rate, Seed), and its members must not.
	OneOf []Fault

	rand *rand.Rand // set by SetFault; used under the server's lock
}

// GatewayError returns the answer of Amazon API Gateway, in front of JAM,
// when it fails with status: {"message": …} in API Gateway's words, for
// example "Internal server error" for a 502 (the function failed or gave no
// valid answer) and "Endpoint request timed out" for a 504.
func GatewayError(status int) Fault {
	msg := "Internal server error"
	switch status {
	case http.StatusTooManyRequests:
		msg = "Too Many Requests"
	case http.StatusServiceUnavailable:
		msg = "Service Unavailable"
	case http.StatusGatewayTimeout:
		msg = "Endpoint request timed out"
	}
	return Fault{
		Status:      status,
		ContentType: "application/json",
		Body:        []byte(`{"message":"` + msg + `"}`),
	}
}

// HTMLError returns the HTML page a proxy or CDN in front of an API answers
// with when it fails with status, such as "502 Bad Gateway".
func HTMLError(status int) Fault {
	title := strconv.Itoa(status) + " " + http.StatusText(status)
	return Fault{
		Status:      status,
		ContentType: "text/html",
		Body:        []byte("<html>\r\n<head><title>" + title + "</title></head>\r\n<body>\r\n<center><h1>" + title + "</h1></center>\r\n</body>\r\n</html>\r\n"),
	}
}

// Throttled returns GatewayError(status), typically 429 or 503, with a
// Retry-After header of retryAfter in seconds, rounded up. A test that
// wants Retry-After as an HTTP date sets Header itself.
func Throttled(status int, retryAfter time.Duration) Fault {
	f := GatewayError(status)
	secs := int64(math.Ceil(max(retryAfter, 0).Seconds()))
	f.Header = http.Header{"Retry-After": {strconv.FormatInt(secs, 10)}}
	return f
}

// SetFault makes the server answer requests for op as f says, replacing
// any fault op had. Like httptest.NewRequest, it panics on an unknown
// operation or a fault that makes no sense (a Status outside 200–599, both
// Status and Reset, a Rate outside 0–1), since either is a mistake in the
// test.
func (s *Server) SetFault(op Operation, f Fault) {
	i := slices.Index(operations, op)
	if i < 0 {
		panic(fmt.Sprintf("jamtest: SetFault: unknown operation %q", op))
	}
	if err := f.check(); err != nil {
		panic("jamtest: SetFault: " + err.Error())
	}
	f = f.clone()
	f.rand = rand.New(rand.NewPCG(f.Seed, uint64(i)))
	s.mu.Lock()
	s.faults[op] = &f
	s.mu.Unlock()
}

func (f *Fault) check() error {
	switch {
	case f.Status != 0 && (f.Status < 200 || f.Status > 599):
		return fmt.Errorf("status %d outside 200–599", f.Status)
	case f.Status != 0 && f.Reset:
		return errors.New("both a Status and a Reset")
	case f.Delay < 0 || f.Times < 0:
		return errors.New("negative Delay or Times")
	case !(f.Rate >= 0 && f.Rate <= 1): // NaN too
		return fmt.Errorf("rate %v outside 0–1", f.Rate)
	case len(f.OneOf) > 0 && (f.Delay != 0 || f.Status != 0 || f.ContentType != "" || f.Body != nil ||
		f.Header != nil || f.Reset || f.AfterHandling):
		return errors.New("a Fault with OneOf must only choose requests (Times, Rate, Seed)")
	}
	for _, m := range f.OneOf {
		if m.Times != 0 || m.Rate != 0 || m.Seed != 0 || m.OneOf != nil {
			return errors.New("a member of OneOf must not choose requests (Times, Rate, Seed, OneOf)")
		}
		if err := m.check(); err != nil {
			return err
		}
	}
	return nil
}

// clone copies what the test could change after SetFault.
func (f Fault) clone() Fault {
	f.Body = slices.Clone(f.Body)
	f.Header = f.Header.Clone()
	f.OneOf = slices.Clone(f.OneOf)
	for i := range f.OneOf {
		f.OneOf[i] = f.OneOf[i].clone()
	}
	return f
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

// Handled returns how many requests for op were handled: they passed the
// checks against openapi.yaml and ran, whatever they answered, including
// those whose answer a fault with AfterHandling replaced. The others of
// Requests were answered by a fault before handling, or refused with 400.
// For OpAuthenticate with a valid address, each handled request sent a
// magic link.
func (s *Server) Handled(op Operation) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.handled[op]
}

// handling counts a request for op that is about to be handled.
func (s *Server) handling(op Operation) {
	s.mu.Lock()
	s.handled[op]++
	s.mu.Unlock()
}

// admit counts a request for op and returns the fault to apply to it, if
// any, using up one of its Times.
func (s *Server) admit(op Operation) (Fault, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests[op]++
	f := s.faults[op]
	if f == nil || (f.Rate > 0 && f.rand.Float64() >= f.Rate) {
		return Fault{}, false
	}
	if f.Times > 0 {
		if f.Times--; f.Times == 0 {
			delete(s.faults, op)
		}
	}
	if len(f.OneOf) > 0 {
		return f.OneOf[f.rand.IntN(len(f.OneOf))], true
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
	switch {
	case f.Reset:
		reset(w)
		return true
	case f.Status == 0:
		return false
	}
	h := w.Header()
	for k, v := range f.Header {
		h[k] = slices.Clone(v)
	}
	if f.ContentType != "" {
		h.Set("Content-Type", f.ContentType)
	}
	h.Set(contract.FaultHeader, string(op))
	w.WriteHeader(f.Status)
	w.Write(f.Body)
	return true
}

// reset closes the request's connection with a TCP RST. With the default
// SO_LINGER, closing would send a FIN, and the client would read a clean
// EOF, which is not what a dropped connection looks like.
func reset(w http.ResponseWriter) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		// Not HTTP/1: end the stream without an answer instead.
		panic(http.ErrAbortHandler)
	}
	if tcp, ok := conn.(*net.TCPConn); ok {
		tcp.SetLinger(0)
	}
	conn.Close()
}
