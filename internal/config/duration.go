package config

import (
	"fmt"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// UnmarshalYAML decodes a Go duration string such as "250ms" or "1m30s".
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("expected a duration such as \"30s\", got %s", describe(n))
	}
	v, err := time.ParseDuration(n.Value)
	if err != nil {
		return fmt.Errorf("invalid duration %q: %s", n.Value, durationHint(n.Value, err))
	}
	*d = Duration(v)
	return nil
}

// MarshalYAML encodes the duration as a Go duration string.
func (d Duration) MarshalYAML() (any, error) { return d.String(), nil }

// durationHint rewords a time.ParseDuration error about s, whose message
// repeats the input, into a short explanation with examples.
func durationHint(s string, err error) string {
	const want = `use a number with a unit, such as "250ms", "30s" or "5m"`
	msg := strings.TrimPrefix(err.Error(), "time: ")
	msg = strings.TrimSuffix(msg, fmt.Sprintf(" in duration %q", s))
	if strings.HasPrefix(msg, "invalid duration") {
		return want
	}
	return msg + "; " + want
}
