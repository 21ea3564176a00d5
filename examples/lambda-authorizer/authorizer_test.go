package main

import (
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/go-jam/go-jam/jam"
	"github.com/go-jam/go-jam/jam/jamtest"
)

// outcome is what the authorizer decided about a request.
type outcome string

const (
	allow  outcome = "allow"  // isAuthorized true; an Allow policy
	refuse outcome = "refuse" // isAuthorized false; the error Unauthorized
	fail   outcome = "fail"   // an error, API Gateway's 500
)

// requests are the Authorization headers of the cases every format is
// tested with: each returns the header, "" for none.
var requests = []struct {
	name   string
	header func(t *testing.T, e *env) string
	want   outcome
	reason string // logged for a refusal
}{
	{"valid", func(t *testing.T, e *env) string {
		id, _ := e.jam.IssueTokens(ann)
		return "Bearer " + id
	}, allow, ""},
	{"valid, scheme in lower case", func(t *testing.T, e *env) string {
		id, _ := e.jam.IssueTokens(ann)
		return "bearer " + id
	}, allow, ""},
	{"expired", func(t *testing.T, e *env) string {
		id, _ := e.jam.IssueTokens(ann)
		// Past the lifetime and the client's leeway of one minute.
		e.clock.Advance(tokenTTL + 2*time.Minute)
		return "Bearer " + id
	}, refuse, "token expired"},
	{"forged: signed by another JAM server's key", func(t *testing.T, e *env) string {
		other := jamtest.NewServer(jamtest.WithAppID(e.jam.AppID), jamtest.WithClock(e.clock.Now))
		defer other.Close()
		id, _ := other.IssueTokens(ann)
		return "Bearer " + id
	}, refuse, "unknown signing key"},
	{"missing", func(t *testing.T, e *env) string { return "" }, refuse, "no token in the request"},
	{"another scheme", func(t *testing.T, e *env) string {
		id, _ := e.jam.IssueTokens(ann)
		return "Token " + id
	}, refuse, "no token in the request"},
	{"Bearer without a token", func(t *testing.T, e *env) string { return "Bearer " }, refuse, "malformed credentials in the request"},
	{"two headers, joined by the HTTP API", func(t *testing.T, e *env) string {
		id, _ := e.jam.IssueTokens(ann)
		return "Bearer " + id + ",Bearer " + id
	}, refuse, "malformed credentials in the request"},
	{"not a JWT", func(t *testing.T, e *env) string { return "Bearer not-a-jwt" }, refuse, "malformed token"},
	{"JAM down", func(t *testing.T, e *env) string {
		e.jam.FailKeySet()
		id, _ := e.jam.IssueTokens(ann)
		return "Bearer " + id
	}, fail, ""},
}

func TestHTTPAPI(t *testing.T) {
	for _, tc := range requests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			header := tc.header(t, e)
			out, err := e.invoke(t, httpEvent(header))
			var res events.APIGatewayV2CustomAuthorizerSimpleResponse
			if err == nil {
				if derr := json.Unmarshal(out, &res); derr != nil {
					t.Fatalf("Invoke(HTTP API event) = %s, not a simple response: %v", out, derr)
				}
			}
			switch tc.want {
			case allow:
				if err != nil || !res.IsAuthorized || res.Context["email"] != ann || res.Context["sub"] != ann {
					t.Errorf("Invoke(HTTP API event, %s) = %s, %v; want isAuthorized true with %s as email and sub", tc.name, out, err, ann)
				}
			case refuse:
				if err != nil || res.IsAuthorized || res.Context != nil {
					t.Errorf("Invoke(HTTP API event, %s) = %s, %v; want isAuthorized false, no context", tc.name, out, err)
				}
				if !strings.Contains(string(out), `"isAuthorized":false`) {
					t.Errorf("Invoke(HTTP API event, %s) = %s; want isAuthorized false spelt out", tc.name, out)
				}
			case fail:
				if !errors.Is(err, jam.ErrKeySetUnavailable) {
					t.Errorf("Invoke(HTTP API event, %s) = %s, %v; want an error matching %v", tc.name, out, err, jam.ErrKeySetUnavailable)
				}
			}
			checkLogs(t, e, header, tc.reason)
		})
	}
}

func TestRESTToken(t *testing.T) {
	for _, tc := range requests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			header := tc.header(t, e)
			out, err := e.invoke(t, tokenEvent(header))
			switch tc.want {
			case allow:
				var res events.APIGatewayCustomAuthorizerResponse
				if err != nil {
					t.Fatalf("Invoke(TOKEN event, %s) = %v, want an Allow policy", tc.name, err)
				}
				if err := json.Unmarshal(out, &res); err != nil {
					t.Fatalf("Invoke(TOKEN event, %s) = %s, not a policy: %v", tc.name, out, err)
				}
				checkAllow(t, res)
			case refuse:
				if !errors.Is(err, errUnauthorized) || err.Error() != "Unauthorized" || out != nil {
					t.Errorf("Invoke(TOKEN event, %s) = %s, %v; want no policy and the error %q", tc.name, out, err, "Unauthorized")
				}
			case fail:
				if !errors.Is(err, jam.ErrKeySetUnavailable) || errors.Is(err, errUnauthorized) || err.Error() == "Unauthorized" {
					t.Errorf("Invoke(TOKEN event, %s) = %s, %v; want an error matching %v, not Unauthorized", tc.name, out, err, jam.ErrKeySetUnavailable)
				}
			}
			checkLogs(t, e, header, tc.reason)
		})
	}
}

// checkAllow checks an Allow policy for ann's token: the stage wildcard,
// so that the policy API Gateway caches serves the API's other routes.
func checkAllow(t *testing.T, res events.APIGatewayCustomAuthorizerResponse) {
	t.Helper()
	want := events.IAMPolicyStatement{Action: []string{"execute-api:Invoke"}, Effect: "Allow", Resource: []string{stageARN}}
	if res.PrincipalID != ann {
		t.Errorf("policy principalId = %q, want %q", res.PrincipalID, ann)
	}
	if res.PolicyDocument.Version != "2012-10-17" || len(res.PolicyDocument.Statement) != 1 {
		t.Fatalf("policy document = %+v, want version 2012-10-17 and one statement", res.PolicyDocument)
	}
	got := res.PolicyDocument.Statement[0]
	if got.Effect != want.Effect || !slices.Equal(got.Action, want.Action) || !slices.Equal(got.Resource, want.Resource) {
		t.Errorf("policy statement = %+v, want %+v", got, want)
	}
	if res.Context["email"] != ann || res.Context["sub"] != ann {
		t.Errorf("policy context = %v, want email and sub %q", res.Context, ann)
	}
}

// checkLogs checks that the logs hold the reason of a refusal, and
// neither the token nor an email address.
func checkLogs(t *testing.T, e *env, header, reason string) {
	t.Helper()
	logs := e.logs.String()
	_, token, _ := strings.Cut(header, " ")
	if len(token) > 10 && strings.Contains(logs, token) {
		t.Errorf("the logs hold the token:\n%s", logs)
	}
	if strings.Contains(logs, ann) || strings.Contains(logs, "@") {
		t.Errorf("the logs hold an email address:\n%s", logs)
	}
	if reason != "" && !strings.Contains(logs, `"reason":"`+reason+`"`) {
		t.Errorf("the logs do not give the reason %q:\n%s", reason, logs)
	}
}

// TestRecoversAfterOutage checks that a token refused for want of the
// key set is accepted once JAM is back, with no Deny in between.
func TestRecoversAfterOutage(t *testing.T) {
	for _, format := range []struct {
		name  string
		event func(string) []byte
	}{{"HTTP API", httpEvent}, {"REST TOKEN", tokenEvent}} {
		t.Run(format.name, func(t *testing.T) {
			e := newEnv(t)
			id, _ := e.jam.IssueTokens(ann)
			e.jam.FailKeySet()
			if _, err := e.invoke(t, format.event("Bearer "+id)); !errors.Is(err, jam.ErrKeySetUnavailable) {
				t.Fatalf("Invoke(%s event) while JAM is down = %v, want %v", format.name, err, jam.ErrKeySetUnavailable)
			}
			e.jam.ClearFaults()
			// The client waits a second after a failed fetch before the
			// next: that second passes on the test's clock.
			e.clock.Advance(2 * time.Second)
			out, err := e.invoke(t, format.event("Bearer "+id))
			if err != nil || !strings.Contains(string(out), ann) {
				t.Errorf("Invoke(%s event) once JAM is back = %s, %v; want %s allowed", format.name, out, err, ann)
			}
		})
	}
}

func TestUnsupportedEvents(t *testing.T) {
	for _, tc := range []struct {
		name  string
		event string
	}{
		{"REST REQUEST authorizer", `{"type":"REQUEST","methodArn":"` + methodARN + `","headers":{"Authorization":"Bearer x"}}`},
		{"HTTP API payload 1.0", `{"version":"1.0","type":"REQUEST","methodArn":"` + methodARN + `"}`},
		{"no type", `{"authorizationToken":"Bearer x"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			out, err := e.invoke(t, []byte(tc.event))
			if !errors.Is(err, errUnsupportedEvent) {
				t.Errorf("Invoke(%s) = %s, %v; want %v", tc.event, out, err, errUnsupportedEvent)
			}
		})
	}
	for _, event := range []string{`not JSON`, `[]`, `{"type":"TOKEN","authorizationToken":42}`} {
		e := newEnv(t)
		if out, err := e.invoke(t, []byte(event)); err == nil || errors.Is(err, errUnauthorized) {
			t.Errorf("Invoke(%s) = %s, %v; want an error other than Unauthorized", event, out, err)
		}
	}
}

// TestMethodARN checks that a TOKEN event whose methodArn is not one
// fails rather than allowing a resource nobody meant.
func TestMethodARN(t *testing.T) {
	e := newEnv(t)
	id, _ := e.jam.IssueTokens(ann)
	for _, arn := range []string{"", "*", "arn:aws:execute-api:eu-west-1:123456789012:abcdef123", "arn:aws:s3:::bucket/prod/GET/x"} {
		event := mustJSON(events.APIGatewayCustomAuthorizerRequest{Type: "TOKEN", AuthorizationToken: "Bearer " + id, MethodArn: arn})
		if out, err := e.invoke(t, event); err == nil || errors.Is(err, errUnauthorized) {
			t.Errorf("Invoke(TOKEN event for methodArn %q) = %s, %v; want an error other than Unauthorized", arn, out, err)
		}
	}
}

func TestStageWildcard(t *testing.T) {
	for _, tc := range []struct {
		arn, want string
	}{
		{methodARN, stageARN},
		{"arn:aws:execute-api:us-east-1:123456789012:a1b2c3/dev/POST/", "arn:aws:execute-api:us-east-1:123456789012:a1b2c3/dev/*"},
		{"arn:aws-cn:execute-api:cn-north-1:123456789012:a1b2c3/v1/GET/a/b/c", "arn:aws-cn:execute-api:cn-north-1:123456789012:a1b2c3/v1/*"},
		{"arn:aws:execute-api:us-east-1:123456789012:a1b2c3/dev", ""},
		{"arn:aws:execute-api:us-east-1:123456789012:a1b2c3//GET/", ""},
		{"arn:aws:execute-api:us-east-1:123456789012:/dev/GET/", ""},
		{"arn:aws:lambda:us-east-1:123456789012:a1b2c3/dev/GET/", ""},
		{"arn:aws:execute-api:us-east-1:a1b2c3/dev/GET/", ""},
	} {
		got, err := stageWildcard(tc.arn)
		if got != tc.want || (err == nil) != (tc.want != "") {
			t.Errorf("stageWildcard(%q) = %q, %v; want %q", tc.arn, got, err, tc.want)
		}
	}
}

// TestUnknownKidWhileRateLimited: a second token naming a kid the key set
// lacks, within the refetch rate limit, may be signed by a key JAM has
// just published: the authorizer fails (500, nothing cached) rather than
// refuse it, and logs a warning, not an error, since forged kids cause it
// too.
func TestUnknownKidWhileRateLimited(t *testing.T) {
	e := newEnv(t)
	id, _ := e.jam.IssueTokens(ann)
	if _, err := e.invoke(t, httpEvent("Bearer "+id)); err != nil {
		t.Fatalf("Invoke(valid) = %v", err)
	}
	other := jamtest.NewServer(jamtest.WithAppID(e.jam.AppID), jamtest.WithClock(e.clock.Now))
	defer other.Close()
	unknown, _ := other.IssueTokens(ann)

	// The first refetch is allowed, and proves the kid unknown: refused.
	out, err := e.invoke(t, httpEvent("Bearer "+unknown))
	var res events.APIGatewayV2CustomAuthorizerSimpleResponse
	if err != nil || json.Unmarshal(out, &res) != nil || res.IsAuthorized {
		t.Fatalf("Invoke(unknown kid, first) = %s, %v; want isAuthorized false", out, err)
	}
	// Within the rate limit, a kid the set lacks cannot be told from a new
	// key: an error in both formats.
	for _, event := range [][]byte{httpEvent("Bearer " + unknown), tokenEvent("Bearer " + unknown)} {
		out, err := e.invoke(t, event)
		if !errors.Is(err, jam.ErrKeySetUnavailable) || errors.Is(err, errUnauthorized) {
			t.Errorf("Invoke(%s) = %s, %v; want an error matching ErrKeySetUnavailable, not Unauthorized", event, out, err)
		}
	}
	if logs := e.logs.String(); !strings.Contains(logs, `"level":"WARN","msg":"cannot verify"`) || strings.Contains(logs, `"level":"ERROR"`) {
		t.Errorf("logs = %s, want cannot verify at WARN and no ERROR", logs)
	}
}
