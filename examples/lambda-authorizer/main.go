// Command lambda-authorizer is an AWS Lambda function that protects an
// Amazon API Gateway API with Just Authenticate Me (JAM) ID tokens: a
// Lambda authorizer that lets a request through when its Authorization
// header is "Bearer <ID token>" and the token verifies.
//
// One binary serves both kinds of API, telling the events apart by their
// type and version fields:
//
//   - an HTTP API's REQUEST authorizer, payload format 2.0 with simple
//     responses: {"isAuthorized": true, "context": {"email", "sub"}}, or
//     false;
//   - a REST API's TOKEN authorizer: an IAM policy allowing the whole
//     stage, with the email and sub in its context, or the error
//     "Unauthorized".
//
// When JAM's key set cannot be had, the token is neither valid nor
// invalid: the function fails the invocation, and API Gateway answers
// 500 without caching anything.
//
// It reads JAM_APP_ID and, when not the JAM service, JAM_BASE_URL. The
// JAM client is made in the init phase, which also fetches the key set,
// waiting at most two seconds, so that the first request does not wait
// for it. JAM being down then is logged, not fatal: the first
// verification fetches the set again. Only a configuration error (no
// JAM_APP_ID, an invalid JAM_BASE_URL) fails the init phase, reported
// through the Runtime API's init error endpoint.
//
// Logs are JSON on standard error, which Lambda sends to CloudWatch Logs:
// each refused token with the reason, each failure to verify with the
// cause, never a token or an email address. README.md says how to build
// and deploy it, and what clients see.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"time"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/go-jam/go-jam/jam"
)

// readyTimeout bounds the key-set fetch of the init phase, which Lambda
// limits to 10 seconds and which every cold start pays for.
const readyTimeout = 2 * time.Second

// envRuntimeAPI is the environment variable that gives the address of
// Lambda's Runtime API.
const envRuntimeAPI = "AWS_LAMBDA_RUNTIME_API"

func main() {
	log := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	client, err := jam.NewFromEnv(jam.WithLogger(log))
	if err != nil {
		log.Error("configuration", slog.String("error", err.Error()))
		if api := os.Getenv(envRuntimeAPI); api != "" {
			if err := reportInitError(api, err); err != nil {
				log.Error("reporting the init error", slog.String("error", err.Error()))
			}
		}
		// The Runtime API wants the process gone after an init error.
		os.Exit(1)
	}

	ctx, cancel := context.WithTimeout(context.Background(), readyTimeout)
	if err := client.Ready(ctx); err != nil {
		log.Warn("JAM's key set is not loaded; the first request will fetch it", slog.String("error", err.Error()))
	}
	cancel()

	lambda.Start(&authorizer{jam: client, log: log})
}

// reportInitError tells the Runtime API at addr (host:port) that the
// function cannot start, so that Lambda reports err itself to the
// invocation that waits, rather than an exit with no reason.
func reportInitError(addr string, err error) error {
	body, _ := json.Marshal(map[string]string{
		"errorMessage": err.Error(),
		"errorType":    "ConfigurationError",
	})
	req, rerr := http.NewRequest(http.MethodPost, "http://"+addr+"/2018-06-01/runtime/init/error", bytes.NewReader(body))
	if rerr != nil {
		return rerr
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Lambda-Runtime-Function-Error-Type", "Runtime.ConfigurationError")
	hc := &http.Client{Timeout: 5 * time.Second}
	res, rerr := hc.Do(req)
	if rerr != nil {
		return rerr
	}
	defer res.Body.Close()
	io.Copy(io.Discard, io.LimitReader(res.Body, 1<<20))
	if res.StatusCode != http.StatusAccepted {
		return fmt.Errorf("runtime API answered %s", res.Status)
	}
	return nil
}
