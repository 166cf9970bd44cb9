package spec

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestParseJSONService(t *testing.T) {
	// The full service survives a round trip through JSON.
	body, err := json.Marshal(fullService)
	if err != nil {
		t.Fatal(err)
	}
	s, err := ParseJSONService(body)
	if err != nil {
		t.Fatalf("ParseJSONService(full): %v", err)
	}
	if !reflect.DeepEqual(*s, fullService) {
		t.Errorf("got\n%+v\nwant\n%+v", *s, fullService)
	}

	// Kind may be omitted in the API.
	s, err = ParseJSONService([]byte(`{"name": "api", "routes": [{"host": "a.com"}], "backends": [{"address": "a:80", "weight": 2}], "slow_start": "5s", "algorithm": "random"}`))
	if err != nil {
		t.Fatal(err)
	}
	if s.Name != "api" || s.Kind != "" || s.Backends[0].Weight != 2 || s.SlowStart.String() != "5s" {
		t.Errorf("decoded %+v", s)
	}
}

func TestParseJSONServiceErrors(t *testing.T) {
	const minimal = `"name": "web", "routes": [{"host": "a.com"}]`
	tests := []struct {
		name string
		in   string
		want []string
	}{
		{name: "unknown field", in: `{` + minimal + `, "backends": [{"address": "a:80", "weigth": 2}]}`,
			want: []string{"backends[0].weigth: unknown field (known fields: address, drain, labels, weight, zone)"}},
		{name: "unknown top-level field", in: `{` + minimal + `, "backend": []}`, want: []string{"backend: unknown field (known fields: algorithm, backend_protocol, backends,"}},
		{name: "field in wrong case", in: `{` + minimal + `, "Algorithm": "random"}`, want: []string{`Algorithm: unknown field (field names are case-sensitive: did you mean "algorithm"?)`}},
		{name: "wrong type", in: `{` + minimal + `, "backends": [{"address": "a:80", "weight": "2"}]}`, want: []string{`backends[0].weight: expected an integer, got "2"`}},
		{name: "fraction", in: `{` + minimal + `, "panic_threshold": 1.5}`, want: []string{"panic_threshold: expected an integer, got 1.5"}},
		{name: "int overflow", in: `{` + minimal + `, "panic_threshold": 1e400}`, want: []string{"panic_threshold: expected an integer, got 1e400"}},
		{name: "huge int", in: `{` + minimal + `, "panic_threshold": 99999999999999999999}`, want: []string{"panic_threshold: 99999999999999999999 is out of range"}},
		{name: "string for list", in: `{` + minimal + `, "retry": {"on": "5xx"}}`, want: []string{`retry.on: expected a list, got "5xx"`}},
		{name: "object for string", in: `{"name": {"x": [1, {"y": 2}]}, "routes": [{"host": "a.com"}]}`, want: []string{"name: expected a string, got an object"}},
		{name: "bool", in: `{` + minimal + `, "zone_aware": "yes"}`, want: []string{`zone_aware: expected true or false, got "yes"`}},
		{name: "bad duration", in: `{` + minimal + `, "health_check": {"interval": "5 seconds"}}`, want: []string{`health_check.interval: "5 seconds" is not a duration`}},
		{name: "duration as number", in: `{` + minimal + `, "drain_timeout": 5}`, want: []string{`drain_timeout: a duration must be a string such as "5s", got 5`}},
		{name: "repeated key", in: `{` + minimal + `, "name": "other"}`, want: []string{"name: repeated key"}},
		{name: "labels not strings", in: `{` + minimal + `, "backends": [{"address": "a:80", "labels": {"a": 1}}]}`, want: []string{"backends[0].labels.a: expected a string, got 1"}},
		{name: "several problems", in: `{` + minimal + `, "weigth": 1, "protocol": 7}`, want: []string{"weigth: unknown field", "protocol: expected a string, got 7"}},
		{name: "null body", in: `null`, want: []string{"want a JSON object, got null"}},
		{name: "list body", in: `[]`, want: []string{"expected an object, got a list"}},
		{name: "empty body", in: ``, want: []string{"empty body; want a JSON object"}},
		{name: "syntax error", in: `{"name": "web",}`, want: []string{"invalid JSON at byte"}},
		{name: "truncated", in: `{"name": "web"`, want: []string{"invalid JSON"}},
		{name: "trailing data", in: `{` + minimal + `} {}`, want: []string{"unexpected data after the JSON object"}},
		{name: "validation", in: `{"kind": "deployment", "name": "Web", "routes": [{"host": "exa mple.com"}]}`,
			want: []string{`kind: "deployment" is not a known kind`, `name: "Web" must be`, `routes[0].host: "exa mple.com" is not a valid host name`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := ParseJSONService([]byte(tc.in))
			if err == nil {
				t.Fatalf("ParseJSONService(%s) = %+v, want an error", tc.in, s)
			}
			if s != nil {
				t.Errorf("got a service with the error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error\n%v\ndoes not contain %q", err, w)
				}
			}
			var fe *FieldError
			if !errors.As(err, &fe) {
				t.Errorf("error %v holds no *FieldError", err)
			}
		})
	}
}
