package jamtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"sync"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"

	gojam "github.com/go-jam/go-jam"
)

// maxRequestBody bounds the request bodies the server reads; JAM's are a
// few hundred bytes.
const maxRequestBody = 64 << 10

// contract is openapi.yaml, ready to validate traffic.
type contract struct {
	// routes maps the ServeMux pattern the generated code registers for
	// each operation, "POST /{appId}/authenticate", to its route in the
	// spec. Taking the route from the pattern the request matched means
	// no second router that could disagree with the generated one, on
	// percent-encoded slashes in a refresh token for instance.
	routes  map[string]*route
	options *openapi3filter.Options
}

type route struct {
	op     Operation
	params []string // names of the path parameters
	spec   *routers.Route
}

var pathParam = regexp.MustCompile(`\{([^{}]+)\}`)

// loadContract parses and validates openapi.yaml once per process.
var loadContract = sync.OnceValues(func() (*contract, error) {
	doc, err := openapi3.NewLoader().LoadFromData(gojam.OpenAPI)
	if err != nil {
		return nil, fmt.Errorf("jamtest: openapi.yaml: %w", err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		return nil, fmt.Errorf("jamtest: openapi.yaml: %w", err)
	}
	c := &contract{
		routes: make(map[string]*route),
		options: &openapi3filter.Options{
			// The handlers check the bearer token themselves, to answer
			// 401 with JAM's {"message"} body.
			AuthenticationFunc:    openapi3filter.NoopAuthenticationFunc,
			IncludeResponseStatus: true,
			// Values that fail validation may be tokens or addresses.
			SchemaValidationOptions: []openapi3.SchemaValidationOption{openapi3.DisableSchemaErrorDetails()},
		},
	}
	for path, item := range doc.Paths.Map() {
		var params []string
		for _, m := range pathParam.FindAllStringSubmatch(path, -1) {
			params = append(params, m[1])
		}
		for method, op := range item.Operations() {
			c.routes[method+" "+path] = &route{
				op:     Operation(op.OperationID),
				params: params,
				spec:   &routers.Route{Spec: doc, Path: path, PathItem: item, Method: method, Operation: op},
			}
		}
	}
	return c, nil
})

// enforce is the middleware of every operation: it counts the request,
// applies a fault, validates the request, and validates the response the
// handler makes before sending it.
func (s *Server) enforce(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rt := s.contract.routes[r.Pattern]
		if rt == nil {
			s.violate(fmt.Errorf("jamtest: route %q is not in openapi.yaml", r.Pattern))
			writeError(w, http.StatusInternalServerError, "jamtest: route is not in openapi.yaml")
			return
		}
		if f, ok := s.admit(rt.op); ok && inject(w, r, f) {
			return
		}

		r.Body = http.MaxBytesReader(w, r.Body, maxRequestBody)
		params := make(map[string]string, len(rt.params))
		for _, name := range rt.params {
			params[name] = r.PathValue(name) // unescaped, as the handler sees it
		}
		in := &openapi3filter.RequestValidationInput{Request: r, PathParams: params, Route: rt.spec, Options: s.contract.options}
		if err := openapi3filter.ValidateRequest(r.Context(), in); err != nil {
			writeError(w, http.StatusBadRequest, "jamtest: request violates openapi.yaml: "+describe(err))
			return
		}

		resp := &bufferedResponse{header: make(http.Header)}
		next.ServeHTTP(resp, r)
		out := &openapi3filter.ResponseValidationInput{
			RequestValidationInput: in,
			Status:                 resp.statusCode(),
			Header:                 resp.header,
			Options:                s.contract.options,
		}
		out.SetBodyBytes(resp.body.Bytes())
		if err := openapi3filter.ValidateResponse(r.Context(), out); err != nil {
			msg := fmt.Sprintf("jamtest: response violates openapi.yaml: %s %d: %s", rt.op, resp.statusCode(), describe(err))
			s.violate(errors.New(msg))
			writeError(w, http.StatusInternalServerError, msg)
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

// describe says what is wrong in a validation error without the values
// that failed, which may be tokens or email addresses; kin-openapi's own
// messages quote them.
func describe(err error) string {
	var parts []string
	add := func(s string) {
		if s != "" {
			parts = append(parts, s)
		}
	}
	for err != nil {
		switch e := err.(type) {
		case *openapi3filter.RequestError:
			switch {
			case e.Parameter != nil:
				add(fmt.Sprintf("parameter %q in %s", e.Parameter.Name, e.Parameter.In))
			case e.RequestBody != nil:
				add("request body")
			}
			add(e.Reason)
			err = e.Err
		case *openapi3filter.ResponseError:
			add(e.Reason)
			err = e.Err
		case *openapi3filter.ParseError:
			add(e.Reason)
			err = e.Cause
		case *openapi3.SchemaError:
			if p := e.JSONPointer(); len(p) > 0 {
				add("at /" + strings.Join(p, "/"))
			}
			add(e.Reason)
			err = nil
		case openapi3.MultiError:
			if len(e) == 0 {
				return strings.Join(parts, ": ")
			}
			err = e[0]
		default:
			// Sentinels such as ErrInvalidRequired, and errors of
			// encoding/json and net/http, which quote no values.
			add(err.Error())
			err = nil
		}
	}
	if len(parts) == 0 {
		return "invalid"
	}
	return strings.Join(parts, ": ")
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
