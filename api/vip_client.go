package api

import (
	"context"
	"net/http"
	"net/url"
)

// VIPPut creates or replaces a VIP and returns the index it was written at.
func (c *Client) VIPPut(ctx context.Context, v *VIP) (uint64, error) {
	var out struct{ Index uint64 }
	err := c.send(ctx, http.MethodPut, "/v1/vip/"+url.PathEscape(v.Name), v, &out)
	return out.Index, err
}

// VIPGet reads one VIP; nil when there is none.
func (c *Client) VIPGet(ctx context.Context, name string, q *QueryOptions) (*VIPEntry, *Meta, error) {
	v := url.Values{}
	q.values(v)
	var out VIPEntry
	meta, found, err := c.do(ctx, http.MethodGet, "/v1/vip/"+url.PathEscape(name), v, nil, &out)
	if err != nil || !found {
		if IsNotFound(err) {
			err = nil
		}
		return nil, meta, err
	}
	return &out, meta, nil
}

// VIPList reads every VIP, by name.
func (c *Client) VIPList(ctx context.Context, q *QueryOptions) ([]*VIPEntry, *Meta, error) {
	v := url.Values{}
	q.values(v)
	var out []*VIPEntry
	meta, _, err := c.do(ctx, http.MethodGet, "/v1/vips", v, nil, &out)
	return out, meta, err
}

// VIPDelete removes a VIP.
func (c *Client) VIPDelete(ctx context.Context, name string) error {
	_, _, err := c.do(ctx, http.MethodDelete, "/v1/vip/"+url.PathEscape(name), nil, nil, nil)
	return err
}

// VIPClaim asks for node to hold VIP name; reason is recorded with the
// move. Only a node (its certificate) or a management token may ask.
func (c *Client) VIPClaim(ctx context.Context, name, node, reason string) (*VIPLease, error) {
	return c.vipLease(ctx, name, "claim", node, reason)
}

// VIPRenew extends node's lease on VIP name.
func (c *Client) VIPRenew(ctx context.Context, name, node string) (*VIPLease, error) {
	return c.vipLease(ctx, name, "renew", node, "")
}

// VIPRelease gives up node's hold on VIP name; the node must have removed
// the address first.
func (c *Client) VIPRelease(ctx context.Context, name, node, reason string) (*VIPLease, error) {
	return c.vipLease(ctx, name, "release", node, reason)
}

func (c *Client) vipLease(ctx context.Context, name, op, node, reason string) (*VIPLease, error) {
	q := url.Values{"node": {node}}
	if reason != "" {
		q.Set("reason", reason)
	}
	var out VIPLease
	if _, _, err := c.do(ctx, http.MethodPut, "/v1/vip/"+url.PathEscape(name)+"/"+op, q, nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}
