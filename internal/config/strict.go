package config

import (
	"bytes"
	"encoding"
	"errors"
	"fmt"
	"io"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"
)

// DecodeError is one problem found while decoding a YAML document. It names
// the offending field by its YAML path, e.g. "ports.http", "join[2]" or
// "labels.rack", and the line it is on.
type DecodeError struct {
	// Line is the 1-based line of the offending node; 0 when unknown.
	Line int
	// Column is the 1-based column of the offending node; 0 when unknown.
	Column int
	// Path is the YAML path of the field; empty for document-level
	// problems such as syntax errors.
	Path string
	// Msg describes the problem.
	Msg string
}

func (e *DecodeError) Error() string {
	var b strings.Builder
	if e.Line > 0 {
		fmt.Fprintf(&b, "line %d: ", e.Line)
	}
	if e.Path != "" {
		b.WriteString(e.Path)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// maxErrors bounds how many problems one decode reports.
const maxErrors = 20

// maxVisits bounds how many nodes one decode visits, so that aliases
// cannot make a small document expensive to decode.
const maxVisits = 1 << 20

// UnmarshalStrict decodes the single YAML document in data into the value
// v points to, strictly:
//
//   - a mapping key that matches no field is an error, and so are fields
//     tagged `yaml:"-"`, which cannot be set from YAML;
//   - a value of the wrong kind is an error (a quoted "80" is not an
//     integer, "yes" is not a boolean, a list is not a map);
//   - a key repeated in one mapping is an error;
//   - more than one document is an error, and so are merge keys (<<).
//
// Fields absent from the document keep the values they had in *v. A
// document that is empty or null leaves *v unchanged. An explicit null
// leaves a scalar or struct field unchanged and sets a slice, map, pointer
// or interface field to nil, as encoding/json does. A list or a map in the
// document replaces the field's value as a whole; it is never merged into
// it, and the old slice or map is not modified.
//
// Field names come from `yaml` struct tags, or are the lower-cased Go field
// name when there is no tag; `yaml:",inline"` on an embedded struct lifts its
// fields into the parent. Supported field types are strings, booleans,
// integers, floats, slices, maps with string keys, structs, pointers to
// these, interface{} (decoded leniently), and any type whose pointer
// implements yaml.Unmarshaler or encoding.TextUnmarshaler.
//
// Every problem is a *DecodeError; when there are several they are
// returned joined by errors.Join, in document order. On error *v may be
// partially updated.
func UnmarshalStrict(data []byte, v any) error {
	rv, err := strictTarget("unmarshal strict", v)
	if err != nil {
		return err
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil
		}
		return syntaxError(err)
	}
	var extra yaml.Node
	switch err := dec.Decode(&extra); {
	case errors.Is(err, io.EOF):
	case err != nil:
		return syntaxError(err)
	default:
		return &DecodeError{Line: extra.Line, Column: extra.Column, Msg: "a second YAML document; expected exactly one"}
	}
	return decodeTop(&doc, rv)
}

// DecodeNodeStrict decodes one already-parsed YAML document into the value v
// points to, by the same rules as UnmarshalStrict. n is either a
// yaml.DocumentNode, as yaml.Decoder.Decode returns for each document of a
// multi-document stream, or the document's top node. A nil, empty or null
// document leaves *v unchanged. Errors are *DecodeError values, joined by
// errors.Join, whose lines are those recorded in n: for a document of a
// stream, lines of the whole stream.
func DecodeNodeStrict(n *yaml.Node, v any) error {
	rv, err := strictTarget("decode node strict", v)
	if err != nil {
		return err
	}
	if n == nil {
		return nil
	}
	return decodeTop(n, rv)
}

// strictTarget checks that v is a non-nil pointer and returns its value.
func strictTarget(op string, v any) (reflect.Value, error) {
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Pointer || rv.IsNil() {
		return reflect.Value{}, fmt.Errorf("%s: need a non-nil pointer, got %T", op, v)
	}
	return rv, nil
}

// decodeTop decodes the document n (a DocumentNode or its top node) into
// the value the pointer rv points to.
func decodeTop(n *yaml.Node, rv reflect.Value) error {
	top := n
	if n.Kind == yaml.DocumentNode {
		if len(n.Content) != 1 {
			return nil
		}
		top = n.Content[0]
	}
	if isNull(top) {
		return nil
	}
	target := rv.Elem()
	for target.Kind() == reflect.Pointer && !target.IsNil() {
		target = target.Elem()
	}
	if k := target.Kind(); (k == reflect.Struct || k == reflect.Map) && top.Kind != yaml.MappingNode && top.Kind != yaml.AliasNode {
		return &DecodeError{Line: top.Line, Column: top.Column,
			Msg: fmt.Sprintf("the document must be a map of field names to values, got %s", describe(top))}
	}
	d := &decoder{active: make(map[*yaml.Node]bool)}
	d.decode(top, rv.Elem(), "")
	return errors.Join(d.errs...)
}

var yamlLineRe = regexp.MustCompile(`^line (\d+): (.*)$`)

// syntaxError turns an error from the YAML parser, such as
// "yaml: line 3: did not find expected key", into a *DecodeError.
func syntaxError(err error) error {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	if m := yamlLineRe.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		return &DecodeError{Line: line, Msg: m[2]}
	}
	return &DecodeError{Msg: msg}
}

// decoder walks a yaml.Node tree against a Go value.
type decoder struct {
	errs   []error
	visits int
	// active holds the anchored nodes being decoded through an alias, to
	// catch an alias that refers to an enclosing node.
	active map[*yaml.Node]bool
}

func (d *decoder) fail(n *yaml.Node, path, format string, args ...any) {
	switch {
	case len(d.errs) < maxErrors:
		d.errs = append(d.errs, &DecodeError{Line: n.Line, Column: n.Column, Path: path, Msg: fmt.Sprintf(format, args...)})
	case len(d.errs) == maxErrors:
		d.errs = append(d.errs, &DecodeError{Msg: "too many errors"})
	}
}

func (d *decoder) typeError(n *yaml.Node, path, want string) {
	d.fail(n, path, "expected %s, got %s", want, describe(n))
}

var (
	yamlUnmarshalerType = reflect.TypeFor[yaml.Unmarshaler]()
	textUnmarshalerType = reflect.TypeFor[encoding.TextUnmarshaler]()
)

// decode stores the value of n in v, which must be settable. path is the
// YAML path of v, for error messages.
func (d *decoder) decode(n *yaml.Node, v reflect.Value, path string) {
	d.visits++
	if d.visits > maxVisits {
		if d.visits == maxVisits+1 {
			d.fail(n, path, "document too complex (too many nodes, or aliases expanding to too many)")
		}
		return
	}
	if n.Kind == yaml.AliasNode {
		target := n.Alias
		if target == nil {
			d.fail(n, path, "unknown alias *%s", n.Value)
			return
		}
		if d.active[target] {
			d.fail(n, path, "alias *%s refers to a value that contains it", n.Value)
			return
		}
		d.active[target] = true
		d.decode(target, v, path)
		delete(d.active, target)
		return
	}
	if isNull(n) {
		switch v.Kind() {
		case reflect.Slice, reflect.Map, reflect.Pointer, reflect.Interface:
			v.SetZero()
		}
		return
	}
	if v.Kind() == reflect.Pointer {
		// Decode into a fresh value so that whatever the old pointer
		// points to is left alone.
		p := reflect.New(v.Type().Elem())
		if !v.IsNil() {
			p.Elem().Set(v.Elem())
		}
		d.decode(n, p.Elem(), path)
		v.Set(p)
		return
	}
	if v.CanAddr() {
		pt := v.Addr().Type()
		if pt.Implements(yamlUnmarshalerType) {
			u := v.Addr().Interface().(yaml.Unmarshaler)
			if err := u.UnmarshalYAML(n); err != nil {
				d.fail(n, path, "%s", strings.TrimPrefix(err.Error(), "yaml: "))
			}
			return
		}
		if pt.Implements(textUnmarshalerType) {
			if n.Kind != yaml.ScalarNode {
				d.typeError(n, path, "a string")
				return
			}
			u := v.Addr().Interface().(encoding.TextUnmarshaler)
			if err := u.UnmarshalText([]byte(n.Value)); err != nil {
				d.fail(n, path, "%v", err)
			}
			return
		}
	}
	if tag := n.ShortTag(); !strings.HasPrefix(tag, "!!") {
		d.fail(n, path, "unsupported tag %q", tag)
		return
	}

	switch v.Kind() {
	case reflect.String:
		if n.Kind != yaml.ScalarNode {
			d.typeError(n, path, "a string")
			return
		}
		v.SetString(n.Value)

	case reflect.Bool:
		var b bool
		if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!bool" || n.Decode(&b) != nil {
			d.typeError(n, path, "true or false")
			return
		}
		v.SetBool(b)

	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		var i int64
		if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!int" || n.Decode(&i) != nil {
			d.typeError(n, path, "an integer")
			return
		}
		if v.OverflowInt(i) {
			bits := v.Type().Bits()
			d.fail(n, path, "%s is out of range (%d to %d)", n.Value, -1<<(bits-1), 1<<(bits-1)-1)
			return
		}
		v.SetInt(i)

	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		var u uint64
		if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!int" || n.Decode(&u) != nil {
			d.typeError(n, path, "a non-negative integer")
			return
		}
		if v.OverflowUint(u) {
			d.fail(n, path, "%s is out of range (0 to %d)", n.Value, uint64(1)<<v.Type().Bits()-1)
			return
		}
		v.SetUint(u)

	case reflect.Float32, reflect.Float64:
		var f float64
		tag := n.ShortTag()
		if n.Kind != yaml.ScalarNode || (tag != "!!float" && tag != "!!int") || n.Decode(&f) != nil {
			d.typeError(n, path, "a number")
			return
		}
		if v.OverflowFloat(f) {
			d.fail(n, path, "%s is out of range", n.Value)
			return
		}
		v.SetFloat(f)

	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			d.typeError(n, path, "a list")
			return
		}
		s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
		for i, item := range n.Content {
			d.decode(item, s.Index(i), fmt.Sprintf("%s[%d]", path, i))
		}
		v.Set(s)

	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			d.typeError(n, path, "a map")
			return
		}
		kt := v.Type().Key()
		if kt.Kind() != reflect.String {
			d.fail(n, path, "cannot decode into a map with %s keys", kt)
			return
		}
		m := reflect.MakeMapWithSize(v.Type(), len(n.Content)/2)
		d.eachPair(n, path, func(name string, _, val *yaml.Node) {
			ev := reflect.New(v.Type().Elem()).Elem()
			d.decode(val, ev, joinPath(path, name))
			m.SetMapIndex(reflect.ValueOf(name).Convert(kt), ev)
		})
		v.Set(m)

	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			d.typeError(n, path, "a map")
			return
		}
		fields := fieldsOf(v.Type())
		d.eachPair(n, path, func(name string, key, val *yaml.Node) {
			index, ok := fields.byName[name]
			if !ok {
				d.fail(key, joinPath(path, name), "unknown field (known fields: %s)", strings.Join(fields.names, ", "))
				return
			}
			d.decode(val, v.FieldByIndex(index), joinPath(path, name))
		})

	case reflect.Interface:
		if v.NumMethod() != 0 {
			d.fail(n, path, "cannot decode into %s", v.Type())
			return
		}
		var x any
		if err := n.Decode(&x); err != nil {
			d.fail(n, path, "%s", strings.TrimPrefix(err.Error(), "yaml: "))
			return
		}
		if x == nil {
			v.SetZero()
		} else {
			v.Set(reflect.ValueOf(x))
		}

	default:
		d.fail(n, path, "cannot decode into %s", v.Type())
	}
}

// eachPair calls fn for each key/value pair of the mapping n, after checking
// that the key is a string and has not been seen before in n.
func (d *decoder) eachPair(n *yaml.Node, path string, fn func(name string, key, val *yaml.Node)) {
	seen := make(map[string]int, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		key, val := n.Content[i], n.Content[i+1]
		if key.Kind == yaml.AliasNode && key.Alias != nil {
			key = key.Alias
		}
		switch {
		case key.Kind == yaml.ScalarNode && key.ShortTag() == "!!merge":
			d.fail(key, path, "merge keys (<<) are not supported")
			continue
		case key.Kind != yaml.ScalarNode || isNull(key):
			d.fail(key, path, "keys must be strings, got %s", describe(key))
			continue
		}
		name := key.Value
		if first, dup := seen[name]; dup {
			d.fail(key, joinPath(path, name), "duplicate key (first set on line %d)", first)
			continue
		}
		seen[name] = key.Line
		fn(name, key, val)
	}
}

func joinPath(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

// describe names what a node holds, for "expected X, got Y" messages.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.AliasNode:
		if n.Alias != nil {
			return describe(n.Alias)
		}
		return "an alias"
	case yaml.SequenceNode:
		return "a list"
	case yaml.MappingNode:
		return "a map"
	case yaml.DocumentNode:
		return "a document"
	case yaml.ScalarNode:
		switch n.ShortTag() {
		case "!!null":
			return "null"
		case "!!str", "!!binary", "!!timestamp":
			return strconv.Quote(truncate(n.Value, 40))
		case "!!int", "!!float", "!!bool":
			return truncate(n.Value, 40)
		default:
			return fmt.Sprintf("%s %s", n.ShortTag(), strconv.Quote(truncate(n.Value, 40)))
		}
	}
	return "nothing"
}

// truncate shortens s to at most max runes, marking the cut with "...".
func truncate(s string, max int) string {
	if utf8.RuneCountInString(s) <= max {
		return s
	}
	r := []rune(s)
	return string(r[:max-3]) + "..."
}

// structFields maps the YAML names of a struct type's fields to their
// indexes.
type structFields struct {
	byName map[string][]int
	names  []string // sorted
}

var fieldCache sync.Map // reflect.Type -> *structFields

func fieldsOf(t reflect.Type) *structFields {
	if f, ok := fieldCache.Load(t); ok {
		return f.(*structFields)
	}
	f := &structFields{byName: make(map[string][]int)}
	collectFields(t, nil, f)
	sort.Strings(f.names)
	actual, _ := fieldCache.LoadOrStore(t, f)
	return actual.(*structFields)
}

func collectFields(t reflect.Type, index []int, f *structFields) {
	for i := range t.NumField() {
		sf := t.Field(i)
		tag := sf.Tag.Get("yaml")
		if tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		idx := append(slices.Clip(index), i)
		if sf.Anonymous && sf.Type.Kind() == reflect.Struct && slices.Contains(strings.Split(opts, ","), "inline") {
			collectFields(sf.Type, idx, f)
			continue
		}
		if !sf.IsExported() {
			continue
		}
		if name == "" {
			name = strings.ToLower(sf.Name)
		}
		if _, dup := f.byName[name]; dup {
			continue // the first field with a name wins
		}
		f.byName[name] = idx
		f.names = append(f.names, name)
	}
}
