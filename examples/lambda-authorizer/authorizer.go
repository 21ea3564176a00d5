package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambdacontext"

	"github.com/go-jam/go-jam/jam"
)

// Event shapes, told apart by the event's type and version fields.
const (
	formatHTTPAPI   = "http-api"   // HTTP API, REQUEST authorizer, payload 2.0
	formatRESTToken = "rest-token" // REST API, TOKEN authorizer
)

// errUnauthorized makes API Gateway answer 401 to a REST API's client: a
// TOKEN authorizer's error whose message is exactly "Unauthorized".
var errUnauthorized error = unauthorized{}

// unauthorized is a type of its own, rather than errors.New, because API
// Gateway needs the capital U that Go's error-string convention forbids.
type unauthorized struct{}

func (unauthorized) Error() string { return "Unauthorized" }

// errUnsupportedEvent is the error for an event of neither shape: a REST
// REQUEST authorizer, or an HTTP API authorizer with payload 1.0. It is
// a deployment mistake, so API Gateway answers 500.
var errUnsupportedEvent = errors.New("authorizer: unsupported event: use a REST API TOKEN authorizer, or an HTTP API REQUEST authorizer with payload format 2.0 and simple responses")

// authorizer answers API Gateway's Lambda authorizer events with JAM: it
// lets a request through when its Authorization header carries a valid
// JAM ID token. It implements lambda.Handler.
type authorizer struct {
	jam *jam.Client
	log *slog.Logger
}

// Invoke answers one authorizer event, of either shape:
//
//   - HTTP API, payload 2.0 ("type": "REQUEST", "version": "2.0"): a
//     simple response, isAuthorized true with the token's email and sub
//     in its context, or false for a missing or invalid token;
//   - REST API TOKEN authorizer ("type": "TOKEN"): an IAM policy that
//     allows the whole stage, or the error Unauthorized for a missing or
//     invalid token.
//
// When the token can be neither accepted nor refused (JAM's key set is
// unavailable), or the event is of neither shape, it returns an error,
// which API Gateway answers with 500 and does not cache.
func (a *authorizer) Invoke(ctx context.Context, payload []byte) ([]byte, error) {
	var shape struct {
		Type    string `json:"type"`
		Version string `json:"version"`
	}
	if err := json.Unmarshal(payload, &shape); err != nil {
		return nil, fmt.Errorf("authorizer: event is not a JSON object: %w", err)
	}
	switch {
	case shape.Type == "TOKEN":
		return answer(ctx, payload, a.authorizeToken)
	case shape.Type == "REQUEST" && shape.Version == "2.0":
		return answer(ctx, payload, a.authorizeHTTP)
	}
	a.log.ErrorContext(ctx, "unsupported event", requestID(ctx), slog.String("type", shape.Type), slog.String("version", shape.Version))
	return nil, errUnsupportedEvent
}

// answer decodes the event as E, authorizes it with f and encodes f's
// response.
func answer[E, R any](ctx context.Context, payload []byte, f func(context.Context, E) (R, error)) ([]byte, error) {
	var event E
	if err := json.Unmarshal(payload, &event); err != nil {
		return nil, fmt.Errorf("authorizer: decoding the event: %w", err)
	}
	res, err := f(ctx, event)
	if err != nil {
		return nil, err
	}
	return json.Marshal(res)
}

// authorizeHTTP answers an HTTP API's REQUEST authorizer, payload 2.0,
// with a simple response. HTTP APIs give header names in lower case.
func (a *authorizer) authorizeHTTP(ctx context.Context, event events.APIGatewayV2CustomAuthorizerV2Request) (events.APIGatewayV2CustomAuthorizerSimpleResponse, error) {
	tok, err := a.verify(ctx, formatHTTPAPI, event.Headers["authorization"])
	switch {
	case err == nil:
		return events.APIGatewayV2CustomAuthorizerSimpleResponse{IsAuthorized: true, Context: identity(tok)}, nil
	case refused(err):
		return events.APIGatewayV2CustomAuthorizerSimpleResponse{IsAuthorized: false}, nil
	}
	return events.APIGatewayV2CustomAuthorizerSimpleResponse{}, err
}

// authorizeToken answers a REST API's TOKEN authorizer. The policy allows
// every method and path of the stage, not only the method ARN asked
// about: API Gateway caches the policy for the token (the authorizer's
// TTL) and applies it to the API's other routes too, where a policy for
// one route would answer 403.
func (a *authorizer) authorizeToken(ctx context.Context, event events.APIGatewayCustomAuthorizerRequest) (events.APIGatewayCustomAuthorizerResponse, error) {
	resource, err := stageWildcard(event.MethodArn)
	if err != nil {
		a.log.ErrorContext(ctx, "unexpected method ARN", requestID(ctx), slog.String("format", formatRESTToken))
		return events.APIGatewayCustomAuthorizerResponse{}, err
	}
	tok, err := a.verify(ctx, formatRESTToken, event.AuthorizationToken)
	switch {
	case err == nil:
		return events.APIGatewayCustomAuthorizerResponse{
			PrincipalID: tok.Claims.Subject,
			PolicyDocument: events.APIGatewayCustomAuthorizerPolicy{
				Version: "2012-10-17",
				Statement: []events.IAMPolicyStatement{{
					Action:   []string{"execute-api:Invoke"},
					Effect:   "Allow",
					Resource: []string{resource},
				}},
			},
			Context: identity(tok),
		}, nil
	case refused(err):
		return events.APIGatewayCustomAuthorizerResponse{}, errUnauthorized
	}
	return events.APIGatewayCustomAuthorizerResponse{}, err
}

// verify reads the token from an Authorization header's value, "Bearer
// <token>", and verifies it. It logs why a token was refused, or why it
// could not be verified, and never the token or its email address.
func (a *authorizer) verify(ctx context.Context, format, header string) (*jam.Token, error) {
	tok, err := a.verifyHeader(ctx, header)
	switch {
	case err == nil:
		a.log.DebugContext(ctx, "allowed", requestID(ctx), slog.String("format", format))
		return tok, nil
	case refused(err):
		a.log.InfoContext(ctx, "refused", requestID(ctx), slog.String("format", format), slog.String("reason", reason(err)))
		return nil, err
	}
	// jam's errors hold no token and no email address. A kid the key set
	// lacks while its refetch is rate-limited is a new key or a forgery,
	// not an outage: a flood of forged kids must not raise Error records.
	level := slog.LevelError
	if e, ok := errors.AsType[*jam.Error](err); ok && e.RetryAfter > 0 {
		level = slog.LevelWarn
	}
	a.log.Log(ctx, level, "cannot verify", requestID(ctx), slog.String("format", format), slog.String("error", err.Error()))
	return nil, fmt.Errorf("authorizer: cannot verify the token now: %w", err)
}

// verifyHeader is verify without the logs.
func (a *authorizer) verifyHeader(ctx context.Context, header string) (*jam.Token, error) {
	// jam.BearerToken parses the header as the library's middleware does:
	// the scheme in any case, one space, one RFC 6750 token. An HTTP API
	// joins repeated headers with commas, which it refuses too.
	h := http.Header{}
	if header != "" {
		h.Set("Authorization", header)
	}
	raw, err := jam.BearerToken(&http.Request{Header: h})
	if err != nil {
		return nil, err
	}
	return a.jam.VerifyToken(ctx, raw)
}

// refused reports whether err says the request has no valid token, as
// opposed to an outage that leaves the token neither valid nor invalid.
func refused(err error) bool {
	if errors.Is(err, jam.ErrKeySetUnavailable) {
		return false
	}
	return errors.Is(err, jam.ErrNotVerified) || errors.Is(err, jam.ErrNoToken) || errors.Is(err, jam.ErrInvalidRequest)
}

// reasons are the sentinels a refusal is logged by, most specific first.
var reasons = []error{
	jam.ErrNoToken, jam.ErrInvalidRequest,
	jam.ErrMalformedToken, jam.ErrAlgorithm, jam.ErrUnknownKey, jam.ErrSignature,
	jam.ErrExpired, jam.ErrNotYetValid, jam.ErrIssuer, jam.ErrAudience, jam.ErrTokenUse,
	jam.ErrNotVerified,
}

// reason names why a token was refused, for a log record.
func reason(err error) string {
	for _, r := range reasons {
		if errors.Is(err, r) {
			return strings.TrimPrefix(r.Error(), "jam: ")
		}
	}
	return "refused"
}

// identity is the authorizer context of an allowed request: a REST API's
// integration reads $context.authorizer.email, an HTTP API's Lambda
// integration requestContext.authorizer.lambda.email.
func identity(tok *jam.Token) map[string]any {
	return map[string]any{"email": tok.Claims.Email, "sub": tok.Claims.Subject}
}

// stageWildcard turns a method ARN,
// arn:PARTITION:execute-api:REGION:ACCOUNT:API/STAGE/METHOD/PATH, into the
// ARN of every method and path of its stage, .../API/STAGE/*.
func stageWildcard(methodARN string) (string, error) {
	parts := strings.SplitN(methodARN, "/", 3)
	fields := strings.Split(parts[0], ":")
	if len(parts) < 3 || parts[1] == "" || len(fields) != 6 || fields[0] != "arn" || fields[2] != "execute-api" || fields[5] == "" {
		return "", errors.New("authorizer: methodArn is not an execute-api method ARN")
	}
	return parts[0] + "/" + parts[1] + "/*", nil
}

// requestID is the Lambda request ID of the invocation, to find its log
// records among others.
func requestID(ctx context.Context) slog.Attr {
	if lc, ok := lambdacontext.FromContext(ctx); ok {
		return slog.String("request_id", lc.AwsRequestID)
	}
	return slog.Attr{}
}
