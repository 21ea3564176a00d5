package jam

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// maxBodySize bounds what is read of any response body.
const maxBodySize = 1 << 20

// Retries: how many by default, and the waits between attempts. The
// waits of one call add up to at most maxRetryWait; a Retry-After that
// would take longer ends the call instead.
const (
	defaultRetries   = 2
	retryBase        = 100 * time.Millisecond
	maxBackoff       = time.Second
	maxRetryWait     = 2 * time.Second
	maxRetryAfterLen = 64
)

// A request is one operation's call to JAM.
type request struct {
	op   string
	send func(context.Context) (*http.Response, error)
	// secrets are the request's tokens and address, redacted from JAM's
	// messages.
	secrets []string
	// once marks a request that must not run twice, such as one that
	// sends an email: it is retried only when JAM provably did not run it.
	once bool
}

// call sends r through the generated client, retrying where a repeat can
// do no harm (retryDelay), and returns the body and header of a 2xx
// response. Any other outcome becomes an *Error for r.op.
func (c *Client) call(ctx context.Context, r request) ([]byte, http.Header, error) {
	var waited time.Duration
	mayHaveRun := false // an earlier attempt may have run, its answer lost
	for attempt := 1; ; attempt++ {
		body, header, err := roundTrip(ctx, r)
		if err == nil {
			return body, header, nil
		}
		err.Attempts, err.earlierMayHaveRun = attempt, mayHaveRun
		wait, ok := retryDelay(ctx, r, err, header, attempt, c.now())
		if !ok || attempt > c.retries || waited+wait > maxRetryWait {
			if err.StatusCode == http.StatusTooManyRequests || err.StatusCode == http.StatusServiceUnavailable {
				// JAM, or its gateway, said when to come back: pass it on.
				err.RetryAfter, _ = retryAfter(header, c.now())
			}
			return nil, nil, err
		}
		mayHaveRun = mayHaveRun || ran(err)
		c.stats.retries.Add(1)
		c.log.Debug("retrying", "op", r.op, "attempt", attempt+1, "after", err.cause(), "wait", wait)
		if err := c.wait(ctx, wait); err != nil {
			e := transportError(ctx, r.op, err)
			e.Attempts, e.earlierMayHaveRun = attempt, mayHaveRun
			return nil, nil, e
		}
		waited += wait
	}
}

// sleep waits for d, or until ctx is done.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// retryDelay says whether the failure err of an attempt may be retried,
// and after how long. Connection failures and 429, 502, 503 and 504 are
// retried, with exponential backoff and full jitter, or after the
// Retry-After JAM asks for. A request marked once is retried only when JAM
// provably did not run it: it could not be sent (the connection was never
// made), or JAM refused it for now with a Retry-After (429, 503).
func retryDelay(ctx context.Context, r request, err *Error, h http.Header, attempt int, now time.Time) (time.Duration, bool) {
	if ctx.Err() != nil {
		return 0, false
	}
	backoff := rand.N(min(retryBase<<min(attempt-1, 10), maxBackoff))
	if err.noAnswer() {
		return backoff, !r.once || neverSent(err.Err)
	}
	switch err.StatusCode {
	case http.StatusTooManyRequests, http.StatusServiceUnavailable:
		if d, ok := retryAfter(h, now); ok {
			return d, true
		}
		return backoff, !r.once
	case http.StatusBadGateway, http.StatusGatewayTimeout:
		return backoff, !r.once
	}
	return 0, false
}

// retryAfter reads a Retry-After header, in seconds or as an HTTP date.
func retryAfter(h http.Header, now time.Time) (time.Duration, bool) {
	v := h.Get("Retry-After")
	if v == "" || len(v) > maxRetryAfterLen {
		return 0, false
	}
	if secs, err := strconv.ParseUint(v, 10, 32); err == nil {
		return time.Duration(secs) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now), 0), true
	}
	return 0, false
}

// neverSent reports whether a request failed before any of it was sent:
// no connection could be made (DNS, refused, unreachable, dial timeout).
func neverSent(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

// ran reports whether the attempt that failed with err may have run on
// JAM's side although its answer was lost: a connection that failed after
// the request was sent, or a gateway error, which may come after the
// function behind it ran.
func ran(err *Error) bool {
	switch {
	case err.noAnswer():
		return !neverSent(err.Err)
	case err.StatusCode == http.StatusTooManyRequests, err.StatusCode == http.StatusServiceUnavailable:
		return false
	}
	return err.StatusCode >= 500
}

// roundTrip sends r once, reads at most maxBodySize of the answer and
// returns the body and header of a 2xx response, or the *Error for any
// other outcome, with the header of the answer if there was one.
func roundTrip(ctx context.Context, r request) ([]byte, http.Header, *Error) {
	resp, err := r.send(ctx)
	if err != nil {
		return nil, nil, transportError(ctx, r.op, err)
	}
	defer resp.Body.Close()

	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBodySize+1))
	if err != nil {
		e := transportError(ctx, r.op, err)
		e.StatusCode = resp.StatusCode
		return nil, resp.Header, e
	}
	if len(body) > maxBodySize {
		return nil, resp.Header, &Error{Op: r.op, StatusCode: resp.StatusCode, Err: errors.New("response body over 1 MiB"), kinds: []error{ErrUnexpectedStatus}}
	}
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		return body, resp.Header, nil
	case resp.StatusCode >= 300 && resp.StatusCode < 400:
		// The Location, which may hold anything, is neither followed nor
		// told.
		return nil, resp.Header, &Error{Op: r.op, StatusCode: resp.StatusCode, Err: errRedirect, kinds: []error{ErrUnexpectedStatus}}
	}

	e := &Error{Op: r.op, StatusCode: resp.StatusCode, Message: serverMessage(body, r.secrets)}
	switch resp.StatusCode {
	case http.StatusBadRequest:
		e.kinds = []error{ErrBadRequest}
	case http.StatusUnauthorized:
		if r.op == opVerifyRemote {
			e.kinds = []error{ErrNotVerified}
		} else {
			e.kinds = []error{ErrUnauthorized}
		}
	case http.StatusNotFound:
		e.kinds = []error{ErrNotFound}
	default:
		e.kinds = []error{ErrUnexpectedStatus}
	}
	return nil, resp.Header, e
}

// errRedirect is the cause of the error for a redirect, which JAM's API
// never answers.
var errRedirect = errors.New("redirect not followed: JAM's API never redirects")

// refuseRedirect is the CheckRedirect of the Client's HTTP client: the
// redirect is returned as the response, which roundTrip refuses.
func refuseRedirect(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

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
