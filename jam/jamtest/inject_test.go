package jamtest_test

import (
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/go-jam/go-jam/jam"
	"github.com/go-jam/go-jam/jam/jamtest"
)

// freshConns is a client that opens a connection per request, so that
// net/http never sends a request again by itself after a reset.
func freshConns(t *testing.T) *http.Client {
	tr := &http.Transport{DisableKeepAlives: true}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

// rawRequest makes a valid request for op, whose answer, unfaulted, is
// 200 for authenticate and getJWKS and 401 for the others.
func rawRequest(t *testing.T, srv *jamtest.Server, op jamtest.Operation) *http.Request {
	t.Helper()
	base := srv.URL + "/" + srv.AppID
	var method, path, body string
	switch op {
	case jamtest.OpAuthenticate:
		method, path, body = "POST", "/authenticate", `{"email":"`+ann+`"}`
	case jamtest.OpGetJWKS:
		method, path = "GET", "/.well-known/jwks.json"
	case jamtest.OpVerifyRemote:
		method, path, body = "POST", "/verify", `{"idToken":"x"}`
	case jamtest.OpRefreshToken:
		method, path, body = "POST", "/refresh", `{"refreshToken":"x"}`
	default:
		t.Fatalf("rawRequest(%q): no such request here", op)
	}
	r, err := http.NewRequestWithContext(t.Context(), method, base+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		r.Header.Set("Content-Type", "application/json")
	}
	return r
}

// answer is what a client saw of one request.
type answer struct {
	status int // 0 when the connection was reset
	header http.Header
	body   string
}

// fate names an answer: its status, or "reset".
func (a answer) fate() string {
	if a.status == 0 {
		return "reset"
	}
	return strconv.Itoa(a.status)
}

// send sends r; a connection reset is an answer, any other error fails t.
func send(t *testing.T, c *http.Client, r *http.Request) answer {
	t.Helper()
	resp, err := c.Do(r)
	if errors.Is(err, syscall.ECONNRESET) {
		return answer{}
	}
	if err != nil {
		t.Fatalf("%s %s = %v, want an answer or a reset", r.Method, r.URL.Path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading body: %v", r.Method, r.URL.Path, err)
	}
	return answer{resp.StatusCode, resp.Header, string(body)}
}

// TestFaultAnswers sends one raw request to a faulted authenticate and
// checks what the client sees and what happened on the server: whether the
// request was handled, which for authenticate means a magic link was sent.
func TestFaultAnswers(t *testing.T) {
	date := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC).Format(http.TimeFormat)
	after := func(f jamtest.Fault) jamtest.Fault { f.AfterHandling = true; return f }
	tests := []struct {
		name        string
		fault       jamtest.Fault
		wantStatus  int // 0: a reset
		wantType    string
		wantBody    string // a part of it
		wantHeader  http.Header
		wantHandled bool
	}{
		{name: "reset before handling", fault: jamtest.Fault{Reset: true}},
		{name: "reset after handling", fault: jamtest.Fault{Reset: true, AfterHandling: true}, wantHandled: true},
		{name: "API Gateway 502", fault: jamtest.GatewayError(502),
			wantStatus: 502, wantType: "application/json", wantBody: `{"message":"Internal server error"}`},
		{name: "API Gateway 504 after handling", fault: after(jamtest.GatewayError(504)),
			wantStatus: 504, wantType: "application/json", wantBody: `{"message":"Endpoint request timed out"}`, wantHandled: true},
		{name: "HTML 502", fault: jamtest.HTMLError(502),
			wantStatus: 502, wantType: "text/html", wantBody: "<title>502 Bad Gateway</title>"},
		{name: "HTML 504 after handling", fault: after(jamtest.HTMLError(504)),
			wantStatus: 504, wantType: "text/html", wantBody: "<h1>504 Gateway Timeout</h1>", wantHandled: true},
		{name: "429 with Retry-After", fault: jamtest.Throttled(429, 1500*time.Millisecond),
			wantStatus: 429, wantType: "application/json", wantBody: `{"message":"Too Many Requests"}`,
			wantHeader: http.Header{"Retry-After": {"2"}}},
		{name: "503 with Retry-After 0", fault: jamtest.Throttled(503, -time.Second),
			wantStatus: 503, wantBody: `{"message":"Service Unavailable"}`, wantHeader: http.Header{"Retry-After": {"0"}}},
		{name: "503 with Retry-After a date", fault: jamtest.Fault{Status: 503, Header: http.Header{"Retry-After": {date}}},
			wantStatus: 503, wantHeader: http.Header{"Retry-After": {date}}},
		{name: "a fault header cannot hide the fault", fault: jamtest.Fault{Status: 500, Header: http.Header{"Jamtest-Fault": {"no"}}},
			wantStatus: 500},
		{name: "delay, then handled", fault: jamtest.Fault{Delay: time.Millisecond, AfterHandling: true},
			wantStatus: 200, wantHandled: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newServer(t)
			srv.SetFault(jamtest.OpAuthenticate, tt.fault)
			got := send(t, freshConns(t), rawRequest(t, srv, jamtest.OpAuthenticate))

			if got.status != tt.wantStatus {
				t.Fatalf("POST authenticate = %s, want %d (0: reset)", got.fate(), tt.wantStatus)
			}
			if got.status != 0 {
				wantFault := string(jamtest.OpAuthenticate)
				if tt.fault.Status == 0 {
					wantFault = "" // no fault answered: the handler did
				}
				if h := got.header.Get("Jamtest-Fault"); h != wantFault {
					t.Errorf("Jamtest-Fault = %q, want %q", h, wantFault)
				}
				if ct := got.header.Get("Content-Type"); tt.wantType != "" && ct != tt.wantType {
					t.Errorf("Content-Type = %q, want %q", ct, tt.wantType)
				}
				if !strings.Contains(got.body, tt.wantBody) {
					t.Errorf("body = %q, want it to hold %q", got.body, tt.wantBody)
				}
				for k := range tt.wantHeader {
					if g, w := got.header.Get(k), tt.wantHeader.Get(k); g != w {
						t.Errorf("%s = %q, want %q", k, g, w)
					}
				}
			}
			if got := srv.Requests(jamtest.OpAuthenticate); got != 1 {
				t.Errorf("Requests(authenticate) = %d, want 1", got)
			}
			wantHandled := 0
			if tt.wantHandled {
				wantHandled = 1
			}
			if got := srv.Handled(jamtest.OpAuthenticate); got != wantHandled {
				t.Errorf("Handled(authenticate) = %d, want %d", got, wantHandled)
			}
			if _, sent := srv.MagicLink(ann); sent != tt.wantHandled {
				t.Errorf("MagicLink(ann) sent = %v, want %v", sent, tt.wantHandled)
			}
		})
	}
}

// TestFaultThroughClient checks that the jam client sees a reset as a
// network failure, with no status, for every call, and that a reset after
// handling leaves the work done. The faults hit every request, so the
// outcome does not depend on how often the client tries.
func TestFaultThroughClient(t *testing.T) {
	calls := []struct {
		name string
		op   jamtest.Operation
		call func(*testing.T, *jamtest.Server, *jam.Client) error
	}{
		{"Authenticate", jamtest.OpAuthenticate, func(t *testing.T, _ *jamtest.Server, c *jam.Client) error {
			return c.Authenticate(t.Context(), ann)
		}},
		{"VerifyToken", jamtest.OpGetJWKS, func(t *testing.T, srv *jamtest.Server, c *jam.Client) error {
			id, _ := srv.IssueTokens(ann)
			_, err := c.VerifyToken(t.Context(), id)
			return err
		}},
		{"VerifyRemote", jamtest.OpVerifyRemote, func(t *testing.T, srv *jamtest.Server, c *jam.Client) error {
			id, _ := srv.IssueTokens(ann)
			_, err := c.VerifyRemote(t.Context(), id)
			return err
		}},
		{"Refresh", jamtest.OpRefreshToken, func(t *testing.T, srv *jamtest.Server, c *jam.Client) error {
			_, refresh := srv.IssueTokens(ann)
			_, err := c.Refresh(t.Context(), refresh)
			return err
		}},
		{"DeleteRefreshToken", jamtest.OpDeleteRefreshToken, func(t *testing.T, srv *jamtest.Server, c *jam.Client) error {
			id, refresh := srv.IssueTokens(ann)
			return c.DeleteRefreshToken(t.Context(), id, refresh)
		}},
		{"DeleteAllRefreshTokens", jamtest.OpDeleteAllRefreshTokens, func(t *testing.T, srv *jamtest.Server, c *jam.Client) error {
			id, _ := srv.IssueTokens(ann)
			return c.DeleteAllRefreshTokens(t.Context(), id)
		}},
	}
	for _, c := range calls {
		for _, afterHandling := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/after handling %v", c.name, afterHandling), func(t *testing.T) {
				t.Parallel()
				srv := newServer(t)
				srv.SetFault(c.op, jamtest.Fault{Reset: true, AfterHandling: afterHandling})
				err := c.call(t, srv, srv.Client(checked(t)))

				e, ok := errors.AsType[*jam.Error](err)
				if !ok || e.StatusCode != 0 || !errors.Is(err, syscall.ECONNRESET) || errors.Is(err, jam.ErrUnexpectedStatus) {
					t.Errorf("%s(reset) = %v, want a *jam.Error with no status, caused by ECONNRESET", c.name, err)
				}
				requests, handled := srv.Requests(c.op), srv.Handled(c.op)
				wantHandled := 0
				if afterHandling {
					wantHandled = requests
				}
				if requests == 0 || handled != wantHandled {
					t.Errorf("Requests(%q), Handled(%q) = %d, %d, want n > 0, %d", c.op, c.op, requests, handled, wantHandled)
				}
			})
		}
	}
}

// TestResetOfReusedGET documents what Fault.Reset warns of: net/http
// itself sends a GET again, once, when a reused connection is reset before
// an answer, so the client sees no error and the server two requests.
func TestResetOfReusedGET(t *testing.T) {
	srv := newServer(t)
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}

	if got := send(t, client, rawRequest(t, srv, jamtest.OpGetJWKS)); got.status != 200 {
		t.Fatalf("GET jwks = %s, want 200", got.fate())
	}
	srv.SetFault(jamtest.OpGetJWKS, jamtest.Fault{Reset: true, Times: 1})
	if got := send(t, client, rawRequest(t, srv, jamtest.OpGetJWKS)); got.status != 200 {
		t.Errorf("GET jwks on a reused connection, reset once = %s, want 200", got.fate())
	}
	if got := srv.Requests(jamtest.OpGetJWKS); got != 3 {
		t.Errorf("Requests(getJWKS) = %d, want 3", got)
	}

	srv.SetFault(jamtest.OpGetJWKS, jamtest.Fault{Reset: true, Times: 1})
	if got := send(t, freshConns(t), rawRequest(t, srv, jamtest.OpGetJWKS)); got.status != 0 {
		t.Errorf("GET jwks on a new connection, reset once = %s, want reset", got.fate())
	}
}

// soakMix is the fault of the soak test: some requests fail, with a reset
// or a gateway's error, before or after handling.
func soakMix(rate float64, seed uint64) jamtest.Fault {
	after := jamtest.GatewayError(504)
	after.AfterHandling = true
	return jamtest.Fault{Rate: rate, Seed: seed, OneOf: []jamtest.Fault{
		{Reset: true},
		{Reset: true, AfterHandling: true},
		jamtest.GatewayError(502),
		jamtest.Throttled(503, time.Second),
		after,
	}}
}

// fates sends n requests for op, one after the other, and returns what
// each met.
func fates(t *testing.T, srv *jamtest.Server, op jamtest.Operation, n int) []string {
	t.Helper()
	client := freshConns(t)
	got := make([]string, n)
	for i := range got {
		got[i] = send(t, client, rawRequest(t, srv, op)).fate()
	}
	return got
}

// TestFaultRate checks that a seeded rate is replayable, exactly, and with
// its deterministic seed close to the rate; and that the seed and the
// operation each change the sequence.
func TestFaultRate(t *testing.T) {
	const n, rate, seed = 400, 0.25, 15
	run := func(seed uint64, op jamtest.Operation) []string {
		srv := newServer(t)
		srv.SetFault(op, soakMix(rate, seed))
		got := fates(t, srv, op, n)
		if r := srv.Requests(op); r != n {
			t.Errorf("Requests(%q) = %d, want %d", op, r, n)
		}
		return got
	}
	first := run(seed, jamtest.OpVerifyRemote)
	if again := run(seed, jamtest.OpVerifyRemote); !equal(first, again) {
		t.Errorf("fates(seed %d) differ between two servers:\n%v\n%v", seed, first, again)
	}
	if other := run(seed+1, jamtest.OpVerifyRemote); equal(first, other) {
		t.Errorf("fates(seed %d) = fates(seed %d), want different sequences", seed, seed+1)
	}
	// The refresh answers 401 unfaulted, like verify: only the faults differ.
	if other := run(seed, jamtest.OpRefreshToken); equal(first, other) {
		t.Errorf("fates(verify, seed %d) = fates(refresh, seed %d), want different sequences", seed, seed)
	}

	counts := make(map[string]int)
	for _, f := range first {
		counts[f]++
	}
	faulted := n - counts["401"]
	t.Logf("fates of %d requests at rate %v, seed %d: %v", n, rate, seed, counts)
	if math.Abs(float64(faulted)/n-rate) > 0.05 {
		t.Errorf("faulted %d of %d with rate %v (seed %d), want about %v", faulted, n, rate, seed, rate*n)
	}
	for _, kind := range []string{"reset", "502", "503", "504"} {
		if counts[kind] == 0 {
			t.Errorf("no request met %s among %v, want every kind of the mix", kind, counts)
		}
	}
	if len(counts) != 5 {
		t.Errorf("fates = %v, want only 401 and the faults", counts)
	}
}

func equal(a, b []string) bool { return strings.Join(a, ",") == strings.Join(b, ",") }

// TestFaultRateTimes: with a rate, Times counts the requests the fault
// hit, and the hits are those the rate alone would have made.
func TestFaultRateTimes(t *testing.T) {
	const n = 40
	hits := func(f jamtest.Fault) []int {
		srv := newServer(t)
		srv.SetFault(jamtest.OpRefreshToken, f)
		var hit []int
		for i, f := range fates(t, srv, jamtest.OpRefreshToken, n) {
			if f == "503" {
				hit = append(hit, i)
			}
		}
		if got, want := srv.Handled(jamtest.OpRefreshToken), n-len(hit); got != want {
			t.Errorf("Handled(refreshToken) = %d, want %d", got, want)
		}
		return hit
	}
	limited := hits(jamtest.Fault{Status: 503, Rate: 0.5, Times: 3})
	unlimited := hits(jamtest.Fault{Status: 503, Rate: 0.5})
	if len(unlimited) < 4 || len(limited) != 3 || !slices.Equal(limited, unlimited[:3]) {
		t.Errorf("503s at %v with Times 3, want the first three of %v, those without Times", limited, unlimited)
	}
}

// TestFaultConcurrent runs a random mix of faults from many goroutines
// and checks the books: every request counted once, every handled
// authenticate one magic link, and no other.
func TestFaultConcurrent(t *testing.T) {
	const workers, each = 8, 40
	var mu sync.Mutex
	links := 0
	srv := newServer(t, jamtest.WithMailer(func(string, string) {
		mu.Lock()
		links++
		mu.Unlock()
	}))
	after := jamtest.GatewayError(504)
	after.AfterHandling = true
	// Only 504 comes after handling, so the client can tell which ran.
	srv.SetFault(jamtest.OpAuthenticate, jamtest.Fault{Rate: 0.3, OneOf: []jamtest.Fault{{Reset: true}, jamtest.GatewayError(502), after}})

	counts := make(map[string]int)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			client := freshConns(t)
			for range each {
				f := send(t, client, rawRequest(t, srv, jamtest.OpAuthenticate)).fate()
				mu.Lock()
				counts[f]++
				mu.Unlock()
			}
		})
	}
	wg.Wait()

	if got := srv.Requests(jamtest.OpAuthenticate); got != workers*each {
		t.Errorf("Requests(authenticate) = %d, want %d", got, workers*each)
	}
	ran := counts["200"] + counts["504"]
	if got := srv.Handled(jamtest.OpAuthenticate); got != ran {
		t.Errorf("Handled(authenticate) = %d, want %d (200s and 504s of %v)", got, ran, counts)
	}
	if links != ran {
		t.Errorf("links sent = %d, want %d (200s and 504s of %v)", links, ran, counts)
	}
	if counts["200"] == workers*each || counts["200"] == 0 {
		t.Errorf("fates = %v, want some requests faulted and some not", counts)
	}
}

// TestHandledExcludesRefused: a request refused for violating openapi.yaml
// was not handled; one the handler refused was.
func TestHandledExcludesRefused(t *testing.T) {
	srv := newServer(t)
	client := freshConns(t)
	bad := rawRequest(t, srv, jamtest.OpAuthenticate)
	bad.Body = io.NopCloser(strings.NewReader(`{"mail":"x"}`))
	bad.ContentLength = -1
	if got := send(t, client, bad); got.status != 400 {
		t.Fatalf("POST authenticate without email = %s, want 400", got.fate())
	}
	if got := send(t, client, rawRequest(t, srv, jamtest.OpVerifyRemote)); got.status != 401 {
		t.Fatalf("POST verify with a bad token = %s, want 401", got.fate())
	}
	for op, want := range map[jamtest.Operation]int{jamtest.OpAuthenticate: 0, jamtest.OpVerifyRemote: 1, jamtest.OpGetJWKS: 0} {
		if got := srv.Handled(op); got != want {
			t.Errorf("Handled(%q) = %d, want %d", op, got, want)
		}
	}
}

// TestSetFaultCopies: changing a fault after SetFault changes nothing.
func TestSetFaultCopies(t *testing.T) {
	srv := newServer(t)
	f := jamtest.Throttled(429, time.Second)
	mix := jamtest.Fault{OneOf: []jamtest.Fault{f}}
	srv.SetFault(jamtest.OpVerifyRemote, mix)
	f.Header.Set("Retry-After", "60")
	f.Body[2] = 'X'
	mix.OneOf[0].Status = 500

	got := send(t, freshConns(t), rawRequest(t, srv, jamtest.OpVerifyRemote))
	if got.status != 429 || got.header.Get("Retry-After") != "1" || got.body != `{"message":"Too Many Requests"}` {
		t.Errorf("POST verify = %d %q %q, want 429 with Retry-After 1 and API Gateway's body", got.status, got.header.Get("Retry-After"), got.body)
	}
}

func TestSetFaultRejects(t *testing.T) {
	srv := newServer(t)
	tests := []struct {
		name string
		f    jamtest.Fault
	}{
		{"status and reset", jamtest.Fault{Status: 502, Reset: true}},
		{"negative rate", jamtest.Fault{Status: 502, Rate: -0.1}},
		{"rate over 1", jamtest.Fault{Status: 502, Rate: 1.5}},
		{"NaN rate", jamtest.Fault{Status: 502, Rate: math.NaN()}},
		{"negative times", jamtest.Fault{Status: 502, Times: -1}},
		{"negative delay", jamtest.Fault{Delay: -time.Second}},
		{"OneOf with a status of its own", jamtest.Fault{Status: 502, OneOf: []jamtest.Fault{{Reset: true}}}},
		{"OneOf after handling", jamtest.Fault{AfterHandling: true, OneOf: []jamtest.Fault{{Reset: true}}}},
		{"member with a rate", jamtest.Fault{OneOf: []jamtest.Fault{{Reset: true, Rate: 0.5}}}},
		{"member with times", jamtest.Fault{OneOf: []jamtest.Fault{{Reset: true, Times: 1}}}},
		{"member with a seed", jamtest.Fault{OneOf: []jamtest.Fault{{Reset: true, Seed: 1}}}},
		{"nested OneOf", jamtest.Fault{OneOf: []jamtest.Fault{{OneOf: []jamtest.Fault{{Reset: true}}}}}},
		{"member with a bad status", jamtest.Fault{OneOf: []jamtest.Fault{{Status: 999}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Errorf("SetFault(verifyToken, %+v) did not panic", tt.f)
				}
			}()
			srv.SetFault(jamtest.OpVerifyRemote, tt.f)
		})
	}
	// Nothing was set: the server still answers as JAM does.
	if got := send(t, freshConns(t), rawRequest(t, srv, jamtest.OpVerifyRemote)); got.status != 401 {
		t.Errorf("POST verify after rejected faults = %s, want 401", got.fate())
	}
}
