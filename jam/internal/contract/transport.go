package contract

import (
	"bytes"
	"io"
	"net/http"
)

// FaultHeader marks a response a test server sends off-contract on purpose,
// such as an HTML 502 or truncated JSON: Transport does not validate it.
// jamtest sets it, to the operation, on every response a Fault makes.
const FaultHeader = "Jamtest-Fault"

// Transport is an http.RoundTripper that checks every request it sends and
// every response it receives against Spec, and reports each violation.
type Transport struct {
	Spec   *Spec
	Base   http.RoundTripper // nil means http.DefaultTransport
	Report func(error)
}

// RoundTrip sends r through Base, validating both ways. A violation does
// not stop the exchange: the caller gets what the server answered.
func (t *Transport) RoundTrip(r *http.Request) (*http.Response, error) {
	base := t.Base
	if base == nil {
		base = http.DefaultTransport
	}
	var body []byte
	if r.Body != nil {
		var err error
		body, err = io.ReadAll(r.Body)
		r.Body.Close()
		if err != nil {
			return nil, err
		}
	}
	// Validation reads a body, and so does sending: each gets a copy.
	withBody := func() *http.Request {
		c := r.Clone(r.Context())
		if r.Body != nil {
			c.Body = io.NopCloser(bytes.NewReader(body))
			c.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
		}
		return c
	}

	x, err := t.Spec.Match(withBody())
	if err == nil {
		err = t.Spec.Request(x)
	}
	if err != nil {
		t.Report(err)
	}

	resp, err := base.RoundTrip(withBody())
	if err != nil || x == nil || resp.Header.Get(FaultHeader) != "" {
		return resp, err
	}
	got, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	resp.Body = io.NopCloser(io.MultiReader(bytes.NewReader(got), errReader{err}))
	if err == nil {
		if err := t.Spec.Response(x, resp.StatusCode, resp.Header, got); err != nil {
			t.Report(err)
		}
	}
	return resp, nil
}

// errReader hands the caller the error reading the body ended with, after
// the bytes read before it.
type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) {
	if e.err == nil {
		return 0, io.EOF
	}
	return 0, e.err
}
