package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// runtimeAPI stands in for Lambda's Runtime API (version 2018-06-01) on
// loopback: it hands the events a test queues to the function, one per
// GET .../invocation/next, and collects what the function posts back.
type runtimeAPI struct {
	srv     *httptest.Server
	events  chan invocation
	results chan result
	done    chan struct{} // closed when the test ends, to free waiting polls

	mu         sync.Mutex
	polls      int      // GET .../invocation/next received
	initErrors []posted // POST .../init/error received
	nextID     int
}

// invocation is an event for the function, with its request ID.
type invocation struct {
	id      string
	payload []byte
}

// posted is what the function sent to the Runtime API.
type posted struct {
	errorType string // the Lambda-Runtime-Function-Error-Type header
	body      []byte
}

// result is the function's answer to an invocation: a response, or an
// error whose body is {"errorMessage", "errorType"}.
type result struct {
	id      string
	failed  bool
	payload []byte
}

// errorBody is the JSON body of an invocation or init error.
type errorBody struct {
	Message string `json:"errorMessage"`
	Type    string `json:"errorType"`
}

func newRuntimeAPI(t *testing.T) *runtimeAPI {
	t.Helper()
	r := &runtimeAPI{
		events:  make(chan invocation),
		results: make(chan result, 16),
		done:    make(chan struct{}),
	}
	const base = "/2018-06-01/runtime"
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+base+"/invocation/next", r.next)
	mux.HandleFunc("POST "+base+"/invocation/{id}/response", func(w http.ResponseWriter, req *http.Request) {
		r.results <- result{id: req.PathValue("id"), payload: readBody(req)}
		w.WriteHeader(http.StatusAccepted)
	})
	mux.HandleFunc("POST "+base+"/invocation/{id}/error", func(w http.ResponseWriter, req *http.Request) {
		r.results <- result{id: req.PathValue("id"), failed: true, payload: readBody(req)}
		w.WriteHeader(http.StatusAccepted)
	})
	mux.HandleFunc("POST "+base+"/init/error", func(w http.ResponseWriter, req *http.Request) {
		p := posted{errorType: req.Header.Get("Lambda-Runtime-Function-Error-Type"), body: readBody(req)}
		r.mu.Lock()
		r.initErrors = append(r.initErrors, p)
		r.mu.Unlock()
		w.WriteHeader(http.StatusAccepted)
	})
	r.srv = httptest.NewServer(mux)
	t.Cleanup(func() {
		close(r.done)
		r.srv.Close()
	})
	return r
}

// addr is the value of AWS_LAMBDA_RUNTIME_API: host and port.
func (r *runtimeAPI) addr() string { return strings.TrimPrefix(r.srv.URL, "http://") }

// next hands the function the next event, waiting for the test to queue
// one, as Lambda does between invocations.
func (r *runtimeAPI) next(w http.ResponseWriter, req *http.Request) {
	r.mu.Lock()
	r.polls++
	r.mu.Unlock()
	select {
	case inv := <-r.events:
		h := w.Header()
		h.Set("Lambda-Runtime-Aws-Request-Id", inv.id)
		h.Set("Lambda-Runtime-Deadline-Ms", strconv.FormatInt(time.Now().Add(30*time.Second).UnixMilli(), 10))
		h.Set("Lambda-Runtime-Invoked-Function-Arn", "arn:aws:lambda:eu-west-1:123456789012:function:jam-authorizer")
		h.Set("Lambda-Runtime-Trace-Id", "Root=1-5bef4de7-ad49b0e87f6ef6c87fc2e700;Parent=9a9197af755a6419;Sampled=1")
		h.Set("Content-Type", "application/json")
		w.Write(inv.payload)
	case <-req.Context().Done():
	case <-r.done:
	}
}

// invoke sends the function an event and returns its answer.
func (r *runtimeAPI) invoke(t *testing.T, payload []byte) result {
	t.Helper()
	r.mu.Lock()
	r.nextID++
	id := "req-" + strconv.Itoa(r.nextID)
	r.mu.Unlock()
	timeout := time.After(30 * time.Second)
	select {
	case r.events <- invocation{id: id, payload: payload}:
	case <-timeout:
		t.Fatalf("the function asked for no invocation in 30s")
	}
	select {
	case res := <-r.results:
		if res.id != id {
			t.Fatalf("the function answered request %q, want %q", res.id, id)
		}
		return res
	case <-timeout:
		t.Fatalf("the function did not answer request %s in 30s", id)
	}
	return result{}
}

// polled reports how many times the function asked for an invocation.
func (r *runtimeAPI) polled() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.polls
}

// initErrorsPosted returns the init errors the function reported.
func (r *runtimeAPI) initErrorsPosted() []posted {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]posted(nil), r.initErrors...)
}

func readBody(req *http.Request) []byte {
	b, _ := io.ReadAll(io.LimitReader(req.Body, 6<<20))
	return b
}

// decodeError decodes the body of an invocation or init error.
func decodeError(t *testing.T, body []byte) errorBody {
	t.Helper()
	var e errorBody
	if err := json.Unmarshal(body, &e); err != nil {
		t.Fatalf("error body %s is not JSON: %v", body, err)
	}
	return e
}
