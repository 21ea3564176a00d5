package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/go-jam/go-jam/jam/jamtest"
)

// TestBinary builds the function and runs it as Lambda would, through
// aws-lambda-go's lambda.Start and a Runtime API on loopback, against a
// jamtest server.
func TestBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the function")
	}
	bin := filepath.Join(t.TempDir(), "bootstrap")
	build := exec.Command("go", "build", "-tags", "lambda.norpc", "-o", bin, ".")
	// As README.md builds it for provided.al2023: static, without the RPC
	// mode of the retired go1.x runtime.
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}

	t.Run("both formats", func(t *testing.T) {
		srv := jamtest.NewServer()
		defer srv.Close()
		api := newRuntimeAPI(t)
		fn := start(t, bin, api, srv.AppID, srv.URL)
		fn.waitPolling(t)
		if posted := api.initErrorsPosted(); len(posted) != 0 {
			t.Fatalf("the function reported init errors: %q", posted)
		}
		// The init phase fetched the key set, so the first request does
		// not wait for it.
		if n := srv.Requests(jamtest.OpGetJWKS); n != 1 {
			t.Errorf("key-set requests during init = %d, want 1", n)
		}

		id, _ := srv.IssueTokens(ann)
		forger := jamtest.NewServer(jamtest.WithAppID(srv.AppID))
		defer forger.Close()
		// A forger's own key, under the kid of the app's key: refused for
		// its signature, however often it comes. (A kid the set lacks
		// would be refused once, then answered "cannot verify now" while
		// the refetch rate limit holds: jam cannot tell it from a key JAM
		// has just published.)
		signed, _ := forger.IssueTokens(ann)
		forged := id[:strings.IndexByte(id, '.')] + signed[strings.IndexByte(signed, '.'):]

		for _, tc := range []struct {
			name, token string
			want        bool
		}{{"valid", id, true}, {"forged", forged, false}} {
			res := api.invoke(t, httpEvent("Bearer "+tc.token))
			var got events.APIGatewayV2CustomAuthorizerSimpleResponse
			if res.failed || json.Unmarshal(res.payload, &got) != nil || got.IsAuthorized != tc.want {
				t.Errorf("HTTP API event with a %s token: the function answered %s (failed: %t), want isAuthorized %t", tc.name, res.payload, res.failed, tc.want)
			}
			if tc.want && (got.Context["email"] != ann || got.Context["sub"] != ann) {
				t.Errorf("HTTP API event with a %s token: context %v, want email and sub %q", tc.name, got.Context, ann)
			}
		}

		res := api.invoke(t, tokenEvent("Bearer "+id))
		var policy events.APIGatewayCustomAuthorizerResponse
		if res.failed || json.Unmarshal(res.payload, &policy) != nil {
			t.Fatalf("TOKEN event with a valid token: the function answered %s (failed: %t), want a policy", res.payload, res.failed)
		}
		checkAllow(t, policy)

		for _, header := range []string{"Bearer " + forged, "Bearer not-a-jwt", "Basic YW5uOnB3"} {
			res := api.invoke(t, tokenEvent(header))
			if !res.failed || decodeError(t, res.payload).Message != "Unauthorized" {
				t.Errorf("TOKEN event with %.12q…: the function answered %s (failed: %t), want the error Unauthorized", header, res.payload, res.failed)
			}
		}
		fn.checkLogs(t, id, forged)
	})

	t.Run("JAM down at start", func(t *testing.T) {
		srv := jamtest.NewServer()
		defer srv.Close()
		srv.FailKeySet()
		api := newRuntimeAPI(t)
		fn := start(t, bin, api, srv.AppID, srv.URL)
		fn.waitPolling(t)
		if posted := api.initErrorsPosted(); len(posted) != 0 {
			t.Fatalf("with JAM down, the function reported init errors: %q", posted)
		}
		if !strings.Contains(fn.stderr.String(), "key set is not loaded") {
			t.Errorf("with JAM down, the function did not log that its key set is not loaded")
		}

		id, _ := srv.IssueTokens(ann)
		res := api.invoke(t, httpEvent("Bearer "+id))
		if !res.failed {
			t.Errorf("HTTP API event while JAM is down: the function answered %s, want an error", res.payload)
		}
		res = api.invoke(t, tokenEvent("Bearer "+id))
		if !res.failed || decodeError(t, res.payload).Message == "Unauthorized" {
			t.Errorf("TOKEN event while JAM is down: the function answered %s (failed: %t), want an error other than Unauthorized", res.payload, res.failed)
		}

		srv.ClearFaults()
		// After a failed fetch the client waits a second before the
		// next; until then it fails fast, and never refuses the token.
		deadline := time.Now().Add(30 * time.Second)
		for {
			res := api.invoke(t, httpEvent("Bearer "+id))
			var got events.APIGatewayV2CustomAuthorizerSimpleResponse
			if !res.failed {
				if json.Unmarshal(res.payload, &got) != nil || !got.IsAuthorized {
					t.Fatalf("HTTP API event once JAM is back: the function answered %s, want isAuthorized true", res.payload)
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("30s after JAM came back, the function still fails: %s", res.payload)
			}
			time.Sleep(100 * time.Millisecond)
		}
		fn.checkAlive(t)
		fn.checkLogs(t, id)
	})

	t.Run("no JAM_APP_ID", func(t *testing.T) {
		api := newRuntimeAPI(t)
		fn := start(t, bin, api, "", "")
		select {
		case <-fn.exited:
		case <-time.After(30 * time.Second):
			t.Fatal("without JAM_APP_ID the function did not exit in 30s")
		}
		posted := api.initErrorsPosted()
		if len(posted) != 1 {
			t.Fatalf("without JAM_APP_ID, init errors reported = %d, want 1; stderr:\n%s", len(posted), fn.stderr)
		}
		if e := decodeError(t, posted[0].body); !strings.Contains(e.Message, "JAM_APP_ID") || posted[0].errorType == "" {
			t.Errorf("init error = %s (type %q), want one naming JAM_APP_ID, with a type", posted[0].body, posted[0].errorType)
		}
		if n := api.polled(); n != 0 {
			t.Errorf("without JAM_APP_ID, the function asked for %d invocations, want none", n)
		}
	})
}

// function is the built function running in a process of its own.
type function struct {
	api    *runtimeAPI
	cmd    *exec.Cmd
	stderr *lockedBuffer
	exited chan struct{} // closed once the process has exited
}

// start runs the function with the Runtime API and JAM configuration in
// its environment (none of JAM's when appID is ""), and kills it when the
// test ends.
func start(t *testing.T, bin string, api *runtimeAPI, appID, baseURL string) *function {
	t.Helper()
	env := []string{"AWS_LAMBDA_RUNTIME_API=" + api.addr(), "AWS_LAMBDA_FUNCTION_NAME=jam-authorizer"}
	if appID != "" {
		env = append(env, "JAM_APP_ID="+appID, "JAM_BASE_URL="+baseURL)
	}
	fn := &function{api: api, cmd: exec.Command(bin), stderr: &lockedBuffer{}, exited: make(chan struct{})}
	fn.cmd.Env = env
	fn.cmd.Stderr = fn.stderr
	if err := fn.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		fn.cmd.Wait()
		close(fn.exited)
	}()
	t.Cleanup(func() {
		fn.cmd.Process.Kill()
		<-fn.exited
		if t.Failed() {
			t.Logf("the function's stderr:\n%s", fn.stderr)
		}
	})
	return fn
}

// waitPolling waits until the function has finished its init phase and
// asks the Runtime API for an invocation.
func (fn *function) waitPolling(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for fn.api.polled() == 0 {
		select {
		case <-fn.exited:
			t.Fatalf("the function exited during init: %v", fn.cmd.ProcessState)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("the function did not ask for an invocation in 30s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// checkAlive checks that the process has not exited.
func (fn *function) checkAlive(t *testing.T) {
	t.Helper()
	select {
	case <-fn.exited:
		t.Errorf("the function exited: %v", fn.cmd.ProcessState)
	default:
	}
}

// checkLogs checks that the function logged JSON, and none of the tokens
// or an email address.
func (fn *function) checkLogs(t *testing.T, tokens ...string) {
	t.Helper()
	logs := fn.stderr.String()
	for _, line := range strings.Split(strings.TrimSpace(logs), "\n") {
		// aws-lambda-go logs each invocation error with log.Printf.
		if !json.Valid([]byte(line)) && !strings.Contains(line, `"errorMessage"`) {
			t.Errorf("the function logged a line that is not JSON: %q", line)
		}
	}
	if strings.Contains(logs, "@") || slices.ContainsFunc(tokens, func(tok string) bool { return strings.Contains(logs, tok) }) {
		t.Errorf("the function logged a token or an email address:\n%s", logs)
	}
}
