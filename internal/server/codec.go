package server

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/herd-cluster/herd/api"
)

// Commands travel (forwarded to the leader, and in log entries) in one of
// two encodings. Single-key KV writes, nearly all of the traffic, use a
// compact binary form that costs a fraction of JSON to read and write;
// every other command, and any KV command the binary form cannot carry
// exactly, is JSON (which starts with '{'). Both are part of the log
// format: never change a code, only add.

// kvMagic starts a binary KV command.
const kvMagic byte = 0xC1

// Binary operation codes.
var (
	opCodes = map[Op]byte{OpKVSet: 1, OpKVCAS: 2, OpKVDelete: 3, OpKVDeleteCAS: 4, OpKVLock: 5, OpKVUnlock: 6}
	codeOps = func() map[byte]Op {
		m := map[byte]Op{}
		for op, c := range opCodes {
			m[c] = op
		}
		return m
	}()
)

// What follows the key in a binary command: no KV pair (a delete), a pair
// with a nil value, or a pair with a value.
const (
	kvNone byte = iota
	kvNilValue
	kvValue
)

// EncodeCommand encodes c for forwarding and for the log.
func EncodeCommand(c *Command) ([]byte, error) {
	code, ok := opCodes[c.Op]
	if !ok || c.Session != nil || c.Member != nil || c.Service != nil || c.Drain || (c.KV != nil && (c.KV.CreateIndex != 0 || c.KV.ModifyIndex != 0 || c.KV.LockIndex != 0)) {
		data, err := json.Marshal(c)
		if err != nil {
			return nil, fmt.Errorf("encoding command: %w", err)
		}
		return data, nil
	}
	key, kind, flags, session := c.Key, kvNone, uint64(0), ""
	var value []byte
	if c.KV != nil {
		if c.Key != "" {
			// Both a pair and a bare key: no single-key command has that.
			return json.Marshal(c)
		}
		key, flags, session, value, kind = c.KV.Key, c.KV.Flags, c.KV.Session, c.KV.Value, kvValue
		if value == nil {
			kind = kvNilValue
		}
	}
	n := 2 + 3*binary.MaxVarintLen64 + len(key) + len(c.ID) + len(session) + 1 + binary.MaxVarintLen64 + len(value)
	buf := make([]byte, 0, n)
	buf = append(buf, kvMagic, code)
	buf = binary.AppendUvarint(buf, c.CAS)
	buf = binary.AppendUvarint(buf, flags)
	buf = appendString(buf, key)
	buf = appendString(buf, c.ID)
	buf = appendString(buf, session)
	buf = append(buf, kind)
	if kind == kvValue {
		buf = binary.AppendUvarint(buf, uint64(len(value)))
		buf = append(buf, value...)
	}
	return buf, nil
}

func appendString(buf []byte, s string) []byte {
	buf = binary.AppendUvarint(buf, uint64(len(s)))
	return append(buf, s...)
}

// DecodeCommand decodes a command written by EncodeCommand.
func DecodeCommand(data []byte) (*Command, error) {
	if len(data) == 0 {
		return nil, errors.New("empty command")
	}
	if data[0] != kvMagic {
		var c Command
		if err := json.Unmarshal(data, &c); err != nil {
			return nil, fmt.Errorf("decoding command: %w", err)
		}
		return &c, nil
	}
	d := decoder{data: data[1:]}
	op, ok := codeOps[d.byte()]
	c := &Command{Op: op}
	c.CAS = d.uvarint()
	flags := d.uvarint()
	key := d.string()
	c.ID = d.string()
	session := d.string()
	kind := d.byte()
	switch kind {
	case kvNone:
		c.Key = key
	case kvNilValue, kvValue:
		c.KV = &api.KVPair{Key: key, Flags: flags, Session: session}
		if kind == kvValue {
			c.KV.Value = d.bytes()
		}
	default:
		d.fail("unknown value kind")
	}
	switch {
	case d.err != nil:
		return nil, fmt.Errorf("decoding command: %w", d.err)
	case !ok:
		return nil, errors.New("decoding command: unknown operation code")
	case len(d.data) != 0:
		return nil, fmt.Errorf("decoding command: %d trailing bytes", len(d.data))
	}
	return c, nil
}

// decoder reads a binary command; the first problem sticks in err and
// later reads return zero values.
type decoder struct {
	data []byte
	err  error
}

func (d *decoder) fail(msg string) {
	if d.err == nil {
		d.err = errors.New(msg)
	}
	d.data = nil
}

func (d *decoder) byte() byte {
	if len(d.data) < 1 {
		d.fail("truncated")
		return 0
	}
	b := d.data[0]
	d.data = d.data[1:]
	return b
}

func (d *decoder) uvarint() uint64 {
	v, n := binary.Uvarint(d.data)
	if n <= 0 {
		d.fail("bad number")
		return 0
	}
	d.data = d.data[n:]
	return v
}

func (d *decoder) bytes() []byte {
	l := d.uvarint()
	if l > uint64(len(d.data)) {
		d.fail("truncated")
		return nil
	}
	b := make([]byte, l)
	copy(b, d.data)
	d.data = d.data[l:]
	return b
}

func (d *decoder) string() string {
	l := d.uvarint()
	if l > uint64(len(d.data)) {
		d.fail("truncated")
		return ""
	}
	s := string(d.data[:l])
	d.data = d.data[l:]
	return s
}
