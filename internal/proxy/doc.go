// Package proxy is the byte-level HTTP/1.1 and TCP reverse-proxy engine of
// the herd gateway.
//
// A Server reads requests straight from a bufio.Reader over each client
// connection (one goroutine per connection, none per request), validates
// them strictly (request-smuggling defence: conflicting framing, bad chunked
// encoding, control bytes and obsolete syntax are rejected before anything
// is forwarded), asks a Director where each request goes, and forwards the
// header block mostly as raw bytes over a pooled keep-alive connection of an
// Upstream. Buffers are reused, so a proxied request on the fast path does
// not allocate.
//
// Routing policy (load balancing, retries, health) lives in the gateway: the
// engine only reports what happened to each attempt in an Outcome and lets
// the Plan decide whether to try again.
//
// Decisions worth knowing:
//   - Expect: 100-continue is answered by the engine itself (after the
//     Director accepted the request) and the Expect header is not forwarded;
//     1xx interim responses from a backend other than 101 are dropped.
//   - Transfer-Encoding other than exactly "chunked" is answered with 501.
//   - Chunked bodies are re-encoded canonically in both directions (chunk
//     extensions are dropped, trailers are validated and passed on; the
//     Trailer header is forwarded as is). HTTP/1.0 clients get chunked
//     responses de-chunked and close-delimited.
//   - Request bodies up to 64 KiB are buffered before the first attempt so
//     that retries can replay them; larger ones are streamed.
//   - A close-delimited response closes the client connection after it.
//   - Strings in Request (and AccessEntry) point into per-connection buffers
//     and are valid only during the call that receives them; use
//     strings.Clone to keep one.
package proxy
