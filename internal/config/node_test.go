package config

import (
	"bytes"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// TestDecodeNodeStrict decodes each document of a multi-document stream and
// checks that errors carry the lines of the whole stream.
func TestDecodeNodeStrict(t *testing.T) {
	const stream = `id: a
title: first
---
# an empty document follows
---
id: b
items:
  - name: x
    count: 300
  - nmae: y
`
	dec := yaml.NewDecoder(strings.NewReader(stream))
	var docs []*yaml.Node
	for {
		var n yaml.Node
		err := dec.Decode(&n)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		docs = append(docs, &n)
	}
	if len(docs) != 3 {
		t.Fatalf("got %d documents, want 3", len(docs))
	}

	var first genericSpec
	if err := DecodeNodeStrict(docs[0], &first); err != nil {
		t.Fatalf("document 1: %v", err)
	}
	if want := (genericSpec{genericCommon: genericCommon{ID: "a"}, Title: "first"}); !reflect.DeepEqual(first, want) {
		t.Errorf("document 1 = %+v, want %+v", first, want)
	}

	// An empty document leaves the value alone.
	kept := genericSpec{Title: "kept"}
	if err := DecodeNodeStrict(docs[1], &kept); err != nil || kept.Title != "kept" {
		t.Errorf("empty document: %v, %+v", err, kept)
	}

	var third genericSpec
	err := DecodeNodeStrict(docs[2], &third)
	for _, want := range []string{
		"line 9: items[0].count: 300 is out of range (0 to 255)",
		"line 10: items[1].nmae: unknown field (known fields: count, name, tags)",
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("document 3: error %v, want it to contain %q", err, want)
		}
	}
	var de *DecodeError
	if !errors.As(err, &de) {
		t.Errorf("document 3: error %T is not a *DecodeError", err)
	}

	// The top node of a document works as well as the document node, and
	// the same strict rules apply.
	var top genericSpec
	if err := DecodeNodeStrict(docs[2].Content[0], &top); err == nil || !strings.Contains(err.Error(), "items[1].nmae") {
		t.Errorf("top node: error %v, want the unknown field", err)
	}
	var dup yaml.Node
	if err := yaml.NewDecoder(bytes.NewReader([]byte("id: a\nid: b\n"))).Decode(&dup); err != nil {
		t.Fatal(err)
	}
	if err := DecodeNodeStrict(&dup, &top); err == nil || !strings.Contains(err.Error(), "line 2: id: duplicate key (first set on line 1)") {
		t.Errorf("duplicate key: error %v", err)
	}

	if err := DecodeNodeStrict(docs[0], genericSpec{}); err == nil {
		t.Error("DecodeNodeStrict into a non-pointer succeeded")
	}
	if err := DecodeNodeStrict(nil, &top); err != nil {
		t.Errorf("nil node: %v", err)
	}
}
