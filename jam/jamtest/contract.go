package jamtest

import (
	"bytes"
	"fmt"
	"net/http"
	"sync"

	gojam "github.com/go-jam/go-jam"
	"github.com/go-jam/go-jam/jam/internal/contract"
)

// maxRequestBody bounds the request bodies the server reads; JAM's are a
// few hundred bytes.
const maxRequestBody = 64 << 10

// loadContract parses and validates openapi.yaml once per process.
var loadContract = sync.OnceValues(func() (*contract.Spec, error) {
	spec, err := contract.Load(gojam.OpenAPI)
	if err != nil {
		return nil, fmt.Errorf("jamtest: %w", err)
	}
	return spec, nil
})

// enforce is the middleware of every operation: it counts the request,
// applies a fault, validates the request, and validates the response the
// handler makes before sending it, or a fault that replaces it.
func (s *Server) enforce(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		x, err := s.contract.Match(r)
		if err != nil {
			s.violate(fmt.Errorf("jamtest: %w", err))
			writeError(w, http.StatusInternalServerError, "jamtest: route is not in openapi.yaml")
			return
		}
		op := Operation(x.Op)
		f, faulted := s.admit(op)
		if faulted && !f.AfterHandling && inject(w, r, op, f) {
			return
		}

		r.Body = http.MaxBytesReader(w, r.Body, maxRequestBody)
		if err := s.contract.Request(x); err != nil {
			writeError(w, http.StatusBadRequest, "jamtest: request violates openapi.yaml: "+err.Error())
			return
		}

		s.handling(op)
		resp := &bufferedResponse{header: make(http.Header)}
		next.ServeHTTP(resp, r)
		if err := s.contract.Response(x, resp.statusCode(), resp.header, resp.body.Bytes()); err != nil {
			err = fmt.Errorf("jamtest: response violates openapi.yaml: %w", err)
			s.violate(err)
			writeError(w, http.StatusInternalServerError, err.Error())
			return
		}
		if faulted && f.AfterHandling && inject(w, r, op, f) {
			return
		}
		resp.sendTo(w)
	})
}

// violate records and logs a response that breaks the contract.
func (s *Server) violate(err error) {
	s.mu.Lock()
	s.violations = append(s.violations, err)
	s.mu.Unlock()
	s.cfg.logger.Error("jamtest: contract violation", "err", err)
}

// bufferedResponse holds a response until it is validated.
type bufferedResponse struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (b *bufferedResponse) Header() http.Header { return b.header }

func (b *bufferedResponse) WriteHeader(status int) {
	if b.status == 0 {
		b.status = status
	}
}

func (b *bufferedResponse) Write(p []byte) (int, error) {
	b.WriteHeader(http.StatusOK)
	return b.body.Write(p)
}

func (b *bufferedResponse) statusCode() int {
	if b.status == 0 {
		return http.StatusOK
	}
	return b.status
}

func (b *bufferedResponse) sendTo(w http.ResponseWriter) {
	for k, v := range b.header {
		w.Header()[k] = v
	}
	w.WriteHeader(b.statusCode())
	w.Write(b.body.Bytes())
}
