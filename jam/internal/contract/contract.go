// Package contract checks HTTP traffic against openapi.yaml, the contract
// of the JAM API, so that the spec, the client and the server cannot drift
// apart silently: jamtest validates what its server receives and sends, and
// the tests of jam and jamtest validate what the client sends and receives
// (Transport, CheckedClient).
package contract

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
)

// Spec is a loaded, validated OpenAPI document, ready to check traffic.
type Spec struct {
	// mux matches requests to operations with the spec's own paths, which
	// are ServeMux patterns as they stand. Matching with the ServeMux the
	// generated server uses, rather than a second router, means no
	// disagreement on a percent-encoded slash in a refresh token.
	mux     *http.ServeMux
	ops     []string
	options *openapi3filter.Options
}

// route is an operation of the spec.
type route struct {
	op     string
	params []string // names of the path parameters
	spec   *routers.Route
}

var pathParam = regexp.MustCompile(`\{([^{}]+)\}`)

// Load parses and validates an OpenAPI document.
func Load(data []byte) (*Spec, error) {
	doc, err := openapi3.NewLoader().LoadFromData(data)
	if err != nil {
		return nil, fmt.Errorf("openapi.yaml: %w", err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		return nil, fmt.Errorf("openapi.yaml: %w", err)
	}
	s := &Spec{
		mux: http.NewServeMux(),
		options: &openapi3filter.Options{
			// Servers check bearer tokens themselves, to answer 401 with
			// JAM's {"message"} body.
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
			rt := &route{
				op:     op.OperationID,
				params: params,
				spec:   &routers.Route{Spec: doc, Path: path, PathItem: item, Method: method, Operation: op},
			}
			s.mux.Handle(method+" "+path, rt)
			s.ops = append(s.ops, op.OperationID)
		}
	}
	slices.Sort(s.ops)
	return s, nil
}

// Operations returns the operationIds of the spec, sorted.
func (s *Spec) Operations() []string { return slices.Clone(s.ops) }

// ErrNoOperation is returned for a request that matches no operation.
var ErrNoOperation = errors.New("no operation of openapi.yaml has this method and path")

// Exchange is a request matched to its operation.
type Exchange struct {
	// Op is the operationId.
	Op    string
	input *openapi3filter.RequestValidationInput
}

type matchKey struct{}

// ServeHTTP records, for Match, which route a request matched and its
// path parameters as the ServeMux unescaped them.
func (rt *route) ServeHTTP(_ http.ResponseWriter, r *http.Request) {
	m := r.Context().Value(matchKey{}).(*match)
	m.route = rt
	m.params = make(map[string]string, len(rt.params))
	for _, name := range rt.params {
		m.params[name] = r.PathValue(name)
	}
}

type match struct {
	route  *route
	params map[string]string
}

// Match finds the operation of r. The error matches ErrNoOperation when
// there is none.
func (s *Spec) Match(r *http.Request) (*Exchange, error) {
	m := &match{}
	s.mux.ServeHTTP(discard{}, r.WithContext(context.WithValue(r.Context(), matchKey{}, m)))
	if m.route == nil {
		return nil, fmt.Errorf("%s %s: %w", r.Method, r.URL.EscapedPath(), ErrNoOperation)
	}
	return &Exchange{
		Op:    m.route.op,
		input: &openapi3filter.RequestValidationInput{Request: r, PathParams: m.params, Route: m.route.spec, Options: s.options},
	}, nil
}

// Request validates the request of x. It reads the body and puts it back.
func (s *Spec) Request(x *Exchange) error {
	if err := openapi3filter.ValidateRequest(x.input.Request.Context(), x.input); err != nil {
		return fmt.Errorf("request of %s: %s", x.Op, Describe(err))
	}
	return nil
}

// Response validates the response to the request of x.
func (s *Spec) Response(x *Exchange, status int, header http.Header, body []byte) error {
	in := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: x.input,
		Status:                 status,
		Header:                 header,
		Options:                s.options,
	}
	in.SetBodyBytes(body)
	if err := openapi3filter.ValidateResponse(x.input.Request.Context(), in); err != nil {
		return fmt.Errorf("response of %s %d: %s", x.Op, status, Describe(err))
	}
	return nil
}

// Describe says what is wrong in a validation error without the values
// that failed, which may be tokens or email addresses: kin-openapi's own
// messages quote them.
func Describe(err error) string {
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
				err = nil
			} else {
				err = e[0]
			}
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

// discard is the ResponseWriter of a match, which writes nothing.
type discard struct{}

func (discard) Header() http.Header         { return http.Header{} }
func (discard) Write(p []byte) (int, error) { return len(p), nil }
func (discard) WriteHeader(int)             {}
