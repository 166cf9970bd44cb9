package api

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// Events returns the events after index (0: the oldest kept) of the given
// types (none: all). With q.WaitIndex set it blocks until there are newer
// ones. Meta.Index is the last event's index.
func (c *Client) Events(ctx context.Context, after uint64, types []string, q *QueryOptions) ([]*Event, *Meta, error) {
	v := url.Values{}
	if after > 0 {
		v.Set("index", strconv.FormatUint(after, 10))
	}
	if len(types) > 0 {
		v.Set("type", strings.Join(types, ","))
	}
	q.values(v)
	var out []*Event
	meta, _, err := c.do(ctx, http.MethodGet, "/v1/events", v, nil, &out)
	return out, meta, err
}

// FollowEvents streams the events after index (of the given types) to fn
// as they are recorded, until ctx ends, fn returns an error, or the
// stream breaks. An EventsLost event says the reader fell behind.
func (c *Client) FollowEvents(ctx context.Context, after uint64, types []string, fn func(*Event) error) error {
	v := url.Values{"follow": {""}}
	if after > 0 {
		v.Set("index", strconv.FormatUint(after, 10))
	}
	if len(types) > 0 {
		v.Set("type", strings.Join(types, ","))
	}
	return c.streamLines(ctx, "following events", "/v1/events", v, func(line []byte) error {
		var ev Event
		if err := json.Unmarshal(line, &ev); err != nil {
			return fmt.Errorf("following events: decoding %q: %w", line, err)
		}
		return fn(&ev)
	})
}

// PostEvent reports an event about this node's gateway (agents only:
// backend.ejected, backend.restored, gateway.panic).
func (c *Client) PostEvent(ctx context.Context, ev *Event) error {
	return c.send(ctx, http.MethodPost, "/v1/events", ev, nil)
}

// Monitor streams the agent's own log records at level ("debug", "info",
// "warn", "error"; "" is info) and above to fn as JSON lines, until ctx
// ends, fn returns an error, or the stream breaks.
func (c *Client) Monitor(ctx context.Context, level string, fn func(line []byte) error) error {
	v := url.Values{}
	if level != "" {
		v.Set("level", level)
	}
	return c.streamLines(ctx, "monitor", "/v1/agent/monitor", v, fn)
}

// streamLines GETs a stream of lines and hands fn each one that is not
// blank (blank lines are the agent's heartbeats), until ctx ends, fn
// returns an error, or the stream breaks; what names it in errors.
func (c *Client) streamLines(ctx context.Context, what, path string, query url.Values, fn func(line []byte) error) error {
	req, err := c.newRequest(ctx, http.MethodGet, path, query, nil)
	if err != nil {
		return err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		var buf bytes.Buffer
		_, _ = buf.ReadFrom(resp.Body)
		return statusError(resp.StatusCode, buf.Bytes())
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	for sc.Scan() {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		if err := fn(line); err != nil {
			return err
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return fmt.Errorf("%s: the agent closed the stream", what)
}
