package proxy

import (
	"time"
)

// Director routes requests. The gateway implements it; it is called from
// many connection goroutines at once and must be safe for concurrent use.
type Director interface {
	// Direct is called once per request after its header is parsed. It
	// returns a Plan, or nil and a local response (for example 404 when no
	// route matches, or 503 when all backends are down). r and its strings
	// are valid only during the call and the later calls of the Plan.
	Direct(r *Request) (Plan, *LocalResponse)
}

// LocalResponse is an answer the engine writes itself, without a backend.
type LocalResponse struct {
	// Status is the HTTP status code; 0 means 503.
	Status int
	// Body is a short plain-text body.
	Body string
	// Header holds extra header fields (name, value) written as given.
	Header [][2]string
}

// Plan is one request's journey; the engine calls Next for each attempt and
// Done exactly once. A Plan is used by one goroutine at a time.
type Plan interface {
	// Next returns the upstream for attempt n (0 = first try). prev is the
	// outcome of the previous attempt (zero for n = 0). ok=false means stop:
	// the engine answers with the last failure (502 when the backend or the
	// connection failed, 504 on a timeout). When the previous attempt got a
	// 5xx response header, Next is called before the body is forwarded, so
	// the plan may retry it; if it returns ok=false that 5xx is forwarded.
	// The engine does not call Next again once a request body can no longer
	// be replayed (it was larger than the buffer and streaming started):
	// then the outcome passed to Done has BodySent set.
	Next(n int, prev Outcome) (u *Upstream, ok bool)
	// Done reports the final outcome once the response is fully written (or
	// the request failed), with the number of attempts made.
	Done(final Outcome, attempts int)
}

// FailureResponder is optionally implemented by a Plan to choose the answer
// when it gives up: Failure is called with the last outcome (zero when no
// attempt was made) before Done; a nil result keeps the engine's own answer
// (502 Bad Gateway, 504 Gateway Timeout, or 503 when no attempt was made or a
// circuit breaker refused).
type FailureResponder interface {
	Failure(last Outcome) *LocalResponse
}

// Outcome describes one attempt (or, passed to Plan.Done, the final one).
type Outcome struct {
	// Upstream is the upstream tried (nil if none).
	Upstream *Upstream
	// Status is the response status from the backend, 0 if none arrived.
	Status int
	// ConnectErr reports that nothing was sent: the connection could not be
	// made (refused, timeout) or the upstream refused it (circuit breaker,
	// closed upstream).
	ConnectErr bool
	// Timeout reports that the per-try response timeout expired.
	Timeout bool
	// Err is the failure, nil on success.
	Err error
	// BodySent reports that part of a request body that cannot be replayed
	// was sent upstream (bodies up to 64 KiB are buffered and replayable, so
	// for them BodySent stays false).
	BodySent bool
	// Duration is the time to the response header (or to the failure).
	Duration time.Duration
	// BytesOut is the number of response bytes written to the client
	// (header and body; final outcome only).
	BytesOut int64
}

// AccessEntry is passed to Config.AccessLog after each request. The entry
// and its strings are reused by the engine and are valid only during the
// call: clone what you keep.
type AccessEntry struct {
	// Time is when the request header started to be read.
	Time time.Time
	// Method, Host and Path describe the request.
	Method, Host, Path string
	// RemoteAddr is the client address.
	RemoteAddr string
	// Status is the status written to the client (0 if none was written).
	Status int
	// Bytes is the number of response bytes written to the client.
	Bytes int64
	// Duration is the time from the start of the request to the end of the
	// response.
	Duration time.Duration
	// Upstream is the address of the last upstream tried, "" if none.
	Upstream string
	// Attempts is the number of upstream attempts.
	Attempts int
	// RequestID is the X-Request-Id forwarded upstream.
	RequestID string
}
