package spec

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// addSeeds adds the YAML files of testdata and a few tricky documents.
func addSeeds(f *testing.F) {
	files, err := filepath.Glob(filepath.Join("testdata", "*.yaml"))
	if err != nil {
		f.Fatal(err)
	}
	for _, name := range files {
		data, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	for _, s := range []string{
		"",
		"---\n---\n",
		svc(""),
		svc("routes: [{host: A.com}, {host: \"*.a.com\", path_prefix: /x}]\n"),
		svc("a: &a [*a]\n"),
		svc("backends: &b [{address: \"a:1\"}]\nhealth_check: *b\n"),
		"kind: service\nname: db\nprotocol: tcp\nroutes: [{port: 1}]\nhealth_check: {type: tcp}\n",
		"- [\n",
		"kind: {a: b}\n",
		svc("retry: {per_try_timeout: 1ns, on: [timeout]}\ntimeouts: {request: 1ns}\n"),
	} {
		f.Add([]byte(s))
	}
}

// FuzzParse checks that Parse never panics, that every problem it reports
// names its document, and that every service it accepts is accepted again
// after a JSON round trip, as the CLI sends it to the server, and with its
// defaults filled in.
func FuzzParse(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		objs, err := Parse(data)
		if err != nil {
			if objs != nil {
				t.Fatalf("Parse returned objects and an error: %v", err)
			}
			if msg := err.Error(); msg != "no objects in file" {
				for _, line := range strings.Split(msg, "\n") {
					if !strings.HasPrefix(line, "document ") && line != "too many problems; fix these first" {
						t.Fatalf("problem %q does not name its document", line)
					}
				}
			}
			return
		}
		for _, o := range objs {
			if err := ValidateService(o.Service); err != nil {
				t.Fatalf("Parse accepted an invalid service: %v", err)
			}
			for _, s := range []any{o.Service, new(Defaults(*o.Service))} {
				body, err := json.Marshal(s)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := ParseJSONService(body); err != nil {
					t.Fatalf("round trip of %s: %v", body, err)
				}
			}
		}
	})
}

// FuzzJSONService checks that ParseJSONService never panics and that
// what it accepts survives a round trip.
func FuzzJSONService(f *testing.F) {
	body, err := json.Marshal(fullService)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(body)
	f.Add([]byte(`{"name":"a","routes":[{}],"backends":[{"address":"a:1","weight":"2"}],"x":{"y":[1,{}]}}`))
	f.Add([]byte(`{"name":"a","Name":"b","routes":[{"port":1}],"protocol":"tcp"}`))
	f.Add([]byte(`[{"name":{}}]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := ParseJSONService(data)
		if err != nil {
			return
		}
		body, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ParseJSONService(body); err != nil {
			t.Fatalf("round trip of %s: %v", body, err)
		}
	})
}
