package jam

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
)

// maxBodySize bounds what is read of any response body.
const maxBodySize = 1 << 20

// call sends one request through the generated client, reads at most
// maxBodySize of the answer and returns the body and header of a 2xx
// response. Any other outcome becomes an *Error for op; secrets are
// redacted from the server's message.
func call(ctx context.Context, op string, send func(context.Context) (*http.Response, error), secrets ...string) ([]byte, http.Header, error) {
	resp, err := send(ctx)
	if err != nil {
		return nil, nil, transportError(ctx, op, err)
	}
	defer resp.Body.Close()

	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBodySize+1))
	if err != nil {
		e := transportError(ctx, op, err)
		e.StatusCode = resp.StatusCode
		return nil, nil, e
	}
	if len(body) > maxBodySize {
		return nil, nil, &Error{Op: op, StatusCode: resp.StatusCode, Err: errors.New("response body over 1 MiB"), kinds: []error{ErrUnexpectedStatus}}
	}
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return body, resp.Header, nil
	}

	e := &Error{Op: op, StatusCode: resp.StatusCode, Message: serverMessage(body, secrets)}
	switch resp.StatusCode {
	case http.StatusBadRequest:
		e.kinds = []error{ErrBadRequest}
	case http.StatusUnauthorized:
		if op == opVerifyRemote {
			e.kinds = []error{ErrNotVerified}
		} else {
			e.kinds = []error{ErrUnauthorized}
		}
	case http.StatusNotFound:
		e.kinds = []error{ErrNotFound}
	default:
		e.kinds = []error{ErrUnexpectedStatus}
	}
	return nil, nil, e
}

// transportError is the *Error for a request that got no (complete)
// response. The *url.Error the HTTP client returns is unwrapped, because its
// text holds the URL, and a URL may hold a refresh token.
func transportError(ctx context.Context, op string, err error) *Error {
	if ue, ok := errors.AsType[*url.Error](err); ok {
		err = ue.Err
	}
	// The context's own error says best why a request was cut short.
	if ctxErr := ctx.Err(); ctxErr != nil && !errors.Is(err, ctxErr) {
		err = fmt.Errorf("%w (%v)", ctxErr, err)
	}
	return &Error{Op: op, Err: err}
}
