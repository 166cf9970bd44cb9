package spec

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/herd-cluster/herd/api"
	"github.com/herd-cluster/herd/internal/config"
)

// Object is one document of an apply file.
type Object struct {
	// Kind is the document's kind: KindService or KindVIP.
	Kind string
	// Line is the 1-based line in the file where the document's content
	// starts (its first key, after any "---" and comments).
	Line int
	// Service is the service when Kind is KindService.
	Service *api.Service
	// VIP is the floating address when Kind is KindVIP.
	VIP *api.VIP
}

// DocumentError is one problem with one document of an apply file. Its
// message names the document, its line and its object, as in
// `document 2 (line 14): service "web": routes[0].host: "exa mple.com" is
// not a valid host name`.
type DocumentError struct {
	// Doc is the 1-based number of the document in the file; empty
	// documents count.
	Doc int
	// Line is the line where the document's content starts; 0 when it is
	// not known (a YAML syntax error).
	Line int
	// Kind and Name name the object when they are known.
	Kind, Name string
	// Err is the problem: a *FieldError, a *config.DecodeError (an unknown
	// field, a value of the wrong type, a repeated key) or a YAML syntax
	// error.
	Err error
}

// Error returns the problem prefixed with the document and object.
func (e *DocumentError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "document %d", e.Doc)
	if e.Line > 0 {
		fmt.Fprintf(&b, " (line %d)", e.Line)
	}
	if e.Kind != "" && e.Name != "" {
		fmt.Fprintf(&b, ": %s %q", e.Kind, e.Name)
	}
	b.WriteString(": ")
	b.WriteString(e.Err.Error())
	return b.String()
}

// Unwrap returns the problem.
func (e *DocumentError) Unwrap() error { return e.Err }

// maxProblems bounds how many problems Parse reports for one file.
const maxProblems = 100

// maxNameInError bounds how much of an object's name a DocumentError
// repeats.
const maxNameInError = 80

// Parse decodes every document of an apply file and validates each object.
// Documents are separated by "---"; empty ones (nothing, or only comments)
// are skipped. Every document needs a kind, today always "service".
// Decoding is strict (see config.UnmarshalStrict): unknown fields, values
// of the wrong type and repeated keys are errors. Parse also rejects two
// services of the same name in one file, and routes that two services of
// the file both claim (see RoutesConflict).
//
// Parse is all or nothing: when any document is invalid it returns no
// objects and an error listing every problem (up to 100), joined by
// errors.Join, each a *DocumentError naming the document, its line and the
// field. A file without objects is an error too.
func Parse(data []byte) ([]Object, error) {
	p := &parser{names: make(map[string]int)}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for doc := 1; ; doc++ {
		var n yaml.Node
		err := dec.Decode(&n)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			// The parser cannot resynchronise after a syntax error, so
			// this is the last document read.
			p.add(&DocumentError{Doc: doc, Err: errors.New(strings.TrimPrefix(err.Error(), "yaml: "))})
			break
		}
		p.document(doc, &n)
	}
	if len(p.errs) > 0 {
		return nil, errors.Join(p.errs...)
	}
	if len(p.objs) == 0 {
		return nil, errors.New("no objects in file")
	}
	return p.objs, nil
}

// parser holds the state of one Parse.
type parser struct {
	objs []Object
	errs []error
	// names maps each valid service's name to its document.
	names map[string]int
}

func (p *parser) add(err *DocumentError) {
	switch {
	case len(p.errs) < maxProblems:
		p.errs = append(p.errs, err)
	case len(p.errs) == maxProblems:
		p.errs = append(p.errs, errors.New("too many problems; fix these first"))
	}
}

// addAll adds each of the joined problems in err as a problem of the
// document d.
func (p *parser) addAll(d DocumentError, err error) {
	for _, e := range unjoin(err) {
		de := d
		de.Err = e
		p.add(&de)
	}
}

// document parses and checks the document n, the doc-th of the file.
func (p *parser) document(doc int, n *yaml.Node) {
	if n.Kind != yaml.DocumentNode || len(n.Content) != 1 {
		return
	}
	top := n.Content[0]
	if top.Kind == yaml.AliasNode && top.Alias != nil {
		top = top.Alias
	}
	if top.Kind == yaml.ScalarNode && top.ShortTag() == "!!null" {
		return // an empty document
	}
	d := DocumentError{Doc: doc, Line: top.Line}
	if top.Kind != yaml.MappingNode {
		// Let the strict decoder describe what the document is instead.
		p.addAll(d, config.DecodeNodeStrict(n, &api.Service{}))
		return
	}
	kind, err := kindOf(top)
	if err != nil {
		p.addAll(d, err)
		return
	}
	d.Kind = kind
	if name := lookup(top, "name"); name != nil && name.Kind == yaml.ScalarNode && name.ShortTag() != "!!null" {
		d.Name = truncate(name.Value, maxNameInError)
	}

	if kind == KindVIP {
		p.vip(doc, d, n, top.Line)
		return
	}
	s := new(api.Service)
	if err := config.DecodeNodeStrict(n, s); err != nil {
		p.addAll(d, err)
		return
	}
	if err := ValidateService(s); err != nil {
		p.addAll(d, err)
		return
	}
	if first, dup := p.names[s.Name]; dup {
		p.addAll(d, &FieldError{Field: "name", Msg: fmt.Sprintf("%q is already defined in document %d", s.Name, first)})
		return
	}
	var others []*api.Service
	for _, o := range p.objs {
		if o.Service != nil {
			others = append(others, o.Service)
		}
	}
	if c := RoutesConflict(s, others); c != "" {
		p.addAll(d, &FieldError{Field: "routes", Msg: c + " in this file"})
		return
	}
	p.names[s.Name] = doc
	p.objs = append(p.objs, Object{Kind: kind, Line: top.Line, Service: s})
}

// vip decodes and checks a kind: vip document.
func (p *parser) vip(doc int, d DocumentError, n *yaml.Node, line int) {
	v := new(api.VIP)
	if err := config.DecodeNodeStrict(n, v); err != nil {
		p.addAll(d, err)
		return
	}
	if err := ValidateVIP(v); err != nil {
		p.addAll(d, err)
		return
	}
	key := "vip/" + v.Name
	if first, dup := p.names[key]; dup {
		p.addAll(d, &FieldError{Field: "name", Msg: fmt.Sprintf("%q is already defined in document %d", v.Name, first)})
		return
	}
	p.names[key] = doc
	p.objs = append(p.objs, Object{Kind: KindVIP, Line: line, VIP: v})
}

// kindOf returns the kind of the document whose top node is the mapping
// top, or an error when it has none or an unknown one.
func kindOf(top *yaml.Node) (string, error) {
	want := strings.Join(kinds, ", ")
	n := lookup(top, "kind")
	if n == nil || n.Kind == yaml.ScalarNode && (n.ShortTag() == "!!null" || n.Value == "") {
		return "", &FieldError{Field: "kind", Msg: fmt.Sprintf("missing (want one of: %s)", want)}
	}
	if n.Kind != yaml.ScalarNode {
		return "", &FieldError{Field: "kind", Msg: fmt.Sprintf("must be a string (want one of: %s)", want)}
	}
	if !slices.Contains(kinds, n.Value) {
		return "", &FieldError{Field: "kind", Msg: fmt.Sprintf("%q is not a known kind (want one of: %s)", truncate(n.Value, maxNameInError), want)}
	}
	return n.Value, nil
}

// lookup returns the value of the first key named key in the mapping m,
// following an alias, or nil.
func lookup(m *yaml.Node, key string) *yaml.Node {
	for i := 0; i+1 < len(m.Content); i += 2 {
		k, v := m.Content[i], m.Content[i+1]
		if k.Kind == yaml.ScalarNode && k.ShortTag() == "!!str" && k.Value == key {
			if v.Kind == yaml.AliasNode && v.Alias != nil {
				v = v.Alias
			}
			return v
		}
	}
	return nil
}

// unjoin returns the errors joined in err, or err alone.
func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

// truncate shortens s to at most n bytes on a rune boundary, marking the
// cut with "...".
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n - 3
	for cut > 0 && !isRuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "..."
}

func isRuneStart(b byte) bool { return b&0xC0 != 0x80 }
