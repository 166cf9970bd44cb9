package spec

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"sort"
	"strconv"
	"strings"

	"github.com/herd-cluster/herd/api"
)

// ParseJSONService decodes one service from a JSON body, as the service API
// receives it, and validates it. Decoding is strict: unknown fields are
// rejected, field names must match exactly (encoding/json alone would
// match them case-insensitively), a key may appear only once in an object,
// every value must have its field's type, and nothing may follow the
// object. Kind may be omitted.
//
// Problems are *FieldError values naming the field by its JSON path, such
// as "backends[0].weight", joined by errors.Join; a body that does not
// decode is not validated.
func ParseJSONService(data []byte) (*api.Service, error) {
	if err := checkJSON(data, reflect.TypeFor[api.Service]()); err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	s := new(api.Service)
	if err := dec.Decode(s); err != nil {
		// checkJSON accepts only what encoding/json does; this is a
		// safety net.
		return nil, fmt.Errorf("decode service: %w", err)
	}
	if err := ValidateService(s); err != nil {
		return nil, err
	}
	return s, nil
}

// maxJSONErrors bounds how many decoding problems checkJSON reports.
const maxJSONErrors = 20

var jsonUnmarshalerType = reflect.TypeFor[json.Unmarshaler]()

// jsonChecker walks a JSON document against a Go type, token by token,
// reporting each problem encoding/json would ignore or report without the
// field's path. It decodes nothing: encoding/json does that afterwards.
type jsonChecker struct {
	dec  *json.Decoder
	errs []error
}

// checkJSON checks that data holds exactly one JSON value that decodes
// into type t strictly, and returns the problems as joined *FieldError
// values.
func checkJSON(data []byte, t reflect.Type) error {
	c := &jsonChecker{dec: json.NewDecoder(bytes.NewReader(data))}
	c.dec.UseNumber()
	if err := c.value(t, ""); err != nil {
		var syn *json.SyntaxError
		switch {
		case errors.Is(err, io.EOF) && len(bytes.TrimSpace(data)) == 0:
			c.errs = append(c.errs, &FieldError{Msg: "empty body; want a JSON object"})
		case errors.As(err, &syn):
			c.errs = append(c.errs, &FieldError{Msg: fmt.Sprintf("invalid JSON at byte %d: %v", syn.Offset, err)})
		default:
			c.errs = append(c.errs, &FieldError{Msg: fmt.Sprintf("invalid JSON: %v", err)})
		}
		return errors.Join(c.errs...)
	}
	if _, err := c.dec.Token(); !errors.Is(err, io.EOF) {
		c.fail("", "unexpected data after the JSON object")
	}
	return errors.Join(c.errs...)
}

func (c *jsonChecker) fail(path, format string, args ...any) {
	switch {
	case len(c.errs) < maxJSONErrors:
		c.errs = append(c.errs, &FieldError{Field: path, Msg: fmt.Sprintf(format, args...)})
	case len(c.errs) == maxJSONErrors:
		c.errs = append(c.errs, &FieldError{Msg: "too many errors"})
	}
}

// value checks the next JSON value against type t; path is its field path.
// It returns only errors that stop the walk: bad JSON syntax.
func (c *jsonChecker) value(t reflect.Type, path string) error {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if reflect.PointerTo(t).Implements(jsonUnmarshalerType) {
		// encoding/json hands such a type the raw value, null included,
		// and reports its error without the path.
		var raw json.RawMessage
		if err := c.dec.Decode(&raw); err != nil {
			return err
		}
		if err := reflect.New(t).Interface().(json.Unmarshaler).UnmarshalJSON(raw); err != nil {
			c.fail(path, "%v", err)
		}
		return nil
	}
	tok, err := c.dec.Token()
	if err != nil {
		return err
	}
	if tok == nil {
		if path == "" {
			c.fail(path, "want a JSON object, got null")
		}
		return nil // null leaves the field alone or sets it to nil
	}
	switch t.Kind() {
	case reflect.Struct:
		if tok != json.Delim('{') {
			return c.mismatch(tok, path, "an object")
		}
		return c.object(path, t)
	case reflect.Map:
		if tok != json.Delim('{') {
			return c.mismatch(tok, path, "an object")
		}
		if t.Key().Kind() != reflect.String {
			c.fail(path, "cannot decode into %s", t)
			return c.skipRest()
		}
		return c.object(path, t)
	case reflect.Slice, reflect.Array:
		if tok != json.Delim('[') {
			return c.mismatch(tok, path, "a list")
		}
		for i := 0; c.dec.More(); i++ {
			if err := c.value(t.Elem(), fmt.Sprintf("%s[%d]", path, i)); err != nil {
				return err
			}
		}
		_, err := c.dec.Token() // ]
		return err
	case reflect.String:
		if _, ok := tok.(string); !ok {
			return c.mismatch(tok, path, "a string")
		}
	case reflect.Bool:
		if _, ok := tok.(bool); !ok {
			return c.mismatch(tok, path, "true or false")
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n, ok := tok.(json.Number)
		if !ok {
			return c.mismatch(tok, path, "an integer")
		}
		i, err := strconv.ParseInt(string(n), 10, 64)
		if err != nil || reflect.Zero(t).OverflowInt(i) {
			bits := t.Bits()
			if err != nil && !errors.Is(err, strconv.ErrRange) {
				c.fail(path, "expected an integer, got %s", n)
			} else {
				c.fail(path, "%s is out of range (%d to %d)", n, -1<<(bits-1), 1<<(bits-1)-1)
			}
		}
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		n, ok := tok.(json.Number)
		if !ok {
			return c.mismatch(tok, path, "a non-negative integer")
		}
		if u, err := strconv.ParseUint(string(n), 10, 64); err != nil || reflect.Zero(t).OverflowUint(u) {
			c.fail(path, "expected a non-negative integer of at most %d bits, got %s", t.Bits(), n)
		}
	case reflect.Float32, reflect.Float64:
		n, ok := tok.(json.Number)
		if !ok {
			return c.mismatch(tok, path, "a number")
		}
		if f, err := strconv.ParseFloat(string(n), t.Bits()); err != nil || reflect.Zero(t).OverflowFloat(f) {
			c.fail(path, "%s is out of range", n)
		}
	case reflect.Interface:
		if d, ok := tok.(json.Delim); ok && (d == '{' || d == '[') {
			return c.skipRest()
		}
	default:
		c.fail(path, "cannot decode into %s", t)
		if d, ok := tok.(json.Delim); ok && (d == '{' || d == '[') {
			return c.skipRest()
		}
	}
	return nil
}

// object checks the members of an object whose '{' has been read, against
// the struct or map type t.
func (c *jsonChecker) object(path string, t reflect.Type) error {
	var fields map[string]reflect.Type
	if t.Kind() == reflect.Struct {
		fields = jsonFields(t)
	}
	seen := make(map[string]bool)
	for c.dec.More() {
		tok, err := c.dec.Token()
		if err != nil {
			return err
		}
		key, _ := tok.(string) // object keys are always strings
		field := joinPath(path, key)
		elem := t
		if t.Kind() == reflect.Map {
			elem = t.Elem()
		} else if ft, ok := fields[key]; ok {
			elem = ft
		} else {
			c.unknown(field, key, fields)
			if err := c.skip(); err != nil {
				return err
			}
			continue
		}
		if seen[key] {
			c.fail(field, "repeated key")
			if err := c.skip(); err != nil {
				return err
			}
			continue
		}
		seen[key] = true
		if err := c.value(elem, field); err != nil {
			return err
		}
	}
	_, err := c.dec.Token() // }
	return err
}

// unknown reports the unknown field key, suggesting the field it differs
// from only in case, which encoding/json alone would accept.
func (c *jsonChecker) unknown(field, key string, fields map[string]reflect.Type) {
	names := make([]string, 0, len(fields))
	for name := range fields {
		if strings.EqualFold(name, key) {
			c.fail(field, "unknown field (field names are case-sensitive: did you mean %q?)", name)
			return
		}
		names = append(names, name)
	}
	sort.Strings(names)
	c.fail(field, "unknown field (known fields: %s)", strings.Join(names, ", "))
}

// mismatch reports a value of the wrong type and skips it.
func (c *jsonChecker) mismatch(tok json.Token, path, want string) error {
	c.fail(path, "expected %s, got %s", want, describeToken(tok))
	if d, ok := tok.(json.Delim); ok && (d == '{' || d == '[') {
		return c.skipRest()
	}
	return nil
}

// skip skips the next value.
func (c *jsonChecker) skip() error {
	var raw json.RawMessage
	return c.dec.Decode(&raw)
}

// skipRest skips the rest of the object or list whose opening delimiter
// has been read.
func (c *jsonChecker) skipRest() error {
	for depth := 1; depth > 0; {
		tok, err := c.dec.Token()
		if err != nil {
			return err
		}
		switch tok {
		case json.Delim('{'), json.Delim('['):
			depth++
		case json.Delim('}'), json.Delim(']'):
			depth--
		}
	}
	return nil
}

func describeToken(tok json.Token) string {
	switch v := tok.(type) {
	case json.Delim:
		if v == '{' {
			return "an object"
		}
		return "a list"
	case string:
		return strconv.Quote(truncate(v, 40))
	case json.Number:
		return truncate(string(v), 40)
	case bool:
		return strconv.FormatBool(v)
	}
	return fmt.Sprint(tok)
}

// jsonFields maps the JSON names of the fields of the struct type t to
// their types, as encoding/json names them: the json tag's name, else the
// Go name; fields of untagged embedded structs count as t's own.
func jsonFields(t reflect.Type) map[string]reflect.Type {
	fields := make(map[string]reflect.Type)
	var collect func(t reflect.Type)
	collect = func(t reflect.Type) {
		for i := range t.NumField() {
			sf := t.Field(i)
			tag := sf.Tag.Get("json")
			if tag == "-" {
				continue
			}
			name, _, _ := strings.Cut(tag, ",")
			if sf.Anonymous && name == "" {
				ft := sf.Type
				if ft.Kind() == reflect.Pointer {
					ft = ft.Elem()
				}
				if ft.Kind() == reflect.Struct {
					collect(ft)
					continue
				}
			}
			if !sf.IsExported() {
				continue
			}
			if name == "" {
				name = sf.Name
			}
			if _, dup := fields[name]; !dup {
				fields[name] = sf.Type
			}
		}
	}
	collect(t)
	return fields
}

func joinPath(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

// ParseJSONVIP decodes a VIP from the JSON API strictly and validates it,
// with the same messages as ParseJSONService.
func ParseJSONVIP(data []byte) (*api.VIP, error) {
	if err := checkJSON(data, reflect.TypeFor[api.VIP]()); err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	v := new(api.VIP)
	if err := dec.Decode(v); err != nil {
		return nil, fmt.Errorf("decode vip: %w", err)
	}
	if err := ValidateVIP(v); err != nil {
		return nil, err
	}
	return v, nil
}
