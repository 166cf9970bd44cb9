package health

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"time"
)

// userAgent identifies health check requests in backends' access logs.
const userAgent = "herd-health-check"

// newCheckClient returns the HTTP client a Group's checks share.
// Keep-alives are off: every check opens a new connection, so a check
// proves that the backend still accepts connections (a pooled connection
// can outlive a dead listener), and no idle connection or its goroutines
// outlive the Group. Environment proxies are ignored and redirects are not
// followed (a 3xx is judged by ExpectStatus).
func newCheckClient() *http.Client {
	return &http.Client{
		Transport: &http.Transport{
			Proxy:                  nil,
			DialContext:            (&net.Dialer{}).DialContext,
			DisableKeepAlives:      true,
			DisableCompression:     true,
			MaxResponseHeaderBytes: 64 << 10,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// prober returns the function that runs one active check of addr. The
// check's I/O runs in real time, bounded by s.Timeout, whatever the
// Group's Clock.
func (g *Group) prober(addr string, s *CheckSpec) func(ctx context.Context) error {
	switch s.Type {
	case CheckHTTP:
		return func(ctx context.Context) error { return httpCheck(ctx, g.client, addr, s) }
	case CheckTCP:
		return func(ctx context.Context) error { return tcpCheck(ctx, addr, s.Timeout) }
	default:
		return func(context.Context) error { return fmt.Errorf("unknown check type %q", s.Type) }
	}
}

// httpCheck GETs http://addr+s.Path and checks the status and body.
func httpCheck(ctx context.Context, client *http.Client, addr string, s *CheckSpec) error {
	ctx, cancel := context.WithTimeout(ctx, s.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+s.Path, nil)
	if err != nil {
		return fmt.Errorf("GET %s: %w", s.Path, err)
	}
	if s.Host != "" {
		req.Host = s.Host
	}
	req.Header.Set("User-Agent", userAgent)
	resp, err := client.Do(req)
	if err != nil {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return fmt.Errorf("GET %s: timed out after %s", s.Path, s.Timeout)
		}
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err // its message repeats the method and the whole URL
		}
		return fmt.Errorf("GET %s: %w", s.Path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode < s.ExpectStatus[0] || resp.StatusCode > s.ExpectStatus[1] {
		return fmt.Errorf("GET %s: status %d", s.Path, resp.StatusCode)
	}
	if s.BodyMatch == "" {
		return nil
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return fmt.Errorf("GET %s: reading body: timed out after %s", s.Path, s.Timeout)
		}
		return fmt.Errorf("GET %s: reading body: %w", s.Path, err)
	}
	if !bytes.Contains(body, []byte(s.BodyMatch)) {
		return fmt.Errorf("GET %s: body does not contain %q", s.Path, s.BodyMatch)
	}
	return nil
}

// tcpCheck connects to addr and closes the connection at once.
func tcpCheck(ctx context.Context, addr string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return fmt.Errorf("dial tcp %s: timed out after %s", addr, timeout)
		}
		return err // a *net.OpError: "dial tcp 127.0.0.1:81: connect: connection refused"
	}
	c.Close()
	return nil
}

// Prober runs single active checks outside a Group, as a node's supervisor
// does for its own replicas. The zero value is not usable: call NewProber.
type Prober struct{ client *http.Client }

// NewProber returns a Prober. Its client keeps no idle connections, so
// dropping it leaks nothing.
func NewProber() *Prober { return &Prober{client: newCheckClient()} }

// Probe runs one check of addr as s describes; nil means it passed.
func (p *Prober) Probe(ctx context.Context, addr string, s *CheckSpec) error {
	switch s.Type {
	case CheckHTTP:
		return httpCheck(ctx, p.client, addr, s)
	case CheckTCP:
		return tcpCheck(ctx, addr, s.Timeout)
	}
	return fmt.Errorf("unknown check type %q", s.Type)
}
