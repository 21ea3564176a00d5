package main

import (
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"go.uber.org/goleak"

	"github.com/go-jam/go-jam/jam"
	"github.com/go-jam/go-jam/jam/jamtest"
)

// TestMain fails the tests if a goroutine outlives them: a server, a
// connection, or the reader of a process left running.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

const (
	ann = "ann@example.com"
	// methodARN is the method a REST API's TOKEN event asks about.
	methodARN = "arn:aws:execute-api:eu-west-1:123456789012:abcdef123/prod/GET/pets/42"
	// stageARN is what the policy must allow: all of methodARN's stage.
	stageARN = "arn:aws:execute-api:eu-west-1:123456789012:abcdef123/prod/*"
	// tokenTTL is the lifetime of the test servers' ID tokens.
	tokenTTL = 5 * time.Minute
)

// clock is the time of a test's JAM server and client, which only the
// test moves.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// lockedBuffer collects logs, written from any goroutine.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// env is an authorizer whose JAM client talks to a jamtest server, both
// on the test's clock, with the authorizer's logs kept, at Debug level.
type env struct {
	jam   *jamtest.Server
	clock *clock
	auth  *authorizer
	logs  *lockedBuffer
}

func newEnv(t *testing.T) *env {
	t.Helper()
	clk := &clock{now: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	srv := jamtest.NewServer(jamtest.WithClock(clk.Now), jamtest.WithTokenTTL(tokenTTL),
		jamtest.WithLogger(slog.New(slog.DiscardHandler)))
	t.Cleanup(srv.Close)
	logs := &lockedBuffer{}
	log := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	// No retries: an outage fails at once instead of after the backoff.
	client := srv.Client(jam.WithRetries(0), jam.WithLogger(log))
	return &env{jam: srv, clock: clk, auth: &authorizer{jam: client, log: log}, logs: logs}
}

// httpEvent is an HTTP API authorizer's event, payload 2.0, for a request
// with the Authorization header, or without one when header is "".
func httpEvent(header string) []byte {
	ev := events.APIGatewayV2CustomAuthorizerV2Request{
		Version:  "2.0",
		Type:     "REQUEST",
		RouteArn: "arn:aws:execute-api:eu-west-1:123456789012:abcdef123/$default/GET/pets/42",
		RouteKey: "GET /pets/{id}",
		RawPath:  "/pets/42",
		Headers:  map[string]string{"host": "abcdef123.execute-api.eu-west-1.amazonaws.com"},
	}
	if header != "" {
		ev.Headers["authorization"] = header
		ev.IdentitySource = []string{header}
	}
	return mustJSON(ev)
}

// tokenEvent is a REST API TOKEN authorizer's event for methodARN.
func tokenEvent(header string) []byte {
	return mustJSON(events.APIGatewayCustomAuthorizerRequest{Type: "TOKEN", AuthorizationToken: header, MethodArn: methodARN})
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

// invoke runs the authorizer on an event, as lambda.Start would.
func (e *env) invoke(t *testing.T, event []byte) ([]byte, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return e.auth.Invoke(ctx, event)
}
