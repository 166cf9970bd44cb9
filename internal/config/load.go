package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
)

// Load reads the YAML config file at path and decodes it over base, as
// Parse does. Every error names the file: "config /etc/herd.yaml: line 3:
// ports.htp: unknown field (...)". A missing file is an error that
// satisfies errors.Is(err, fs.ErrNotExist).
func Load(path string, base Config) (Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err // the path is in our prefix already
		}
		return Config{}, fmt.Errorf("config %s: %w", path, err)
	}
	c, err := Parse(data, base)
	if err != nil {
		return Config{}, prefixErrors("config "+path, err)
	}
	return c, nil
}

// Parse decodes the YAML config document in data over a copy of base:
// fields absent from the document keep base's values, and base itself is
// never modified. Decoding is strict (see UnmarshalStrict): unknown fields,
// values of the wrong type, invalid durations, duplicate keys and extra
// documents are errors, each a *DecodeError naming the line and the field's
// YAML path, e.g. "line 4: ports.http: expected an integer, got "abc"".
// An empty document returns base unchanged. Dev and Ephemeral cannot be
// set from YAML.
//
// Parse does not validate the result; call Finalize for that. On error it
// returns the zero Config.
func Parse(data []byte, base Config) (Config, error) {
	c := base
	if err := UnmarshalStrict(data, &c); err != nil {
		return Config{}, err
	}
	return c, nil
}

// prefixErrors prefixes err, or each of the errors joined in it, with
// prefix, keeping them inspectable with errors.As.
func prefixErrors(prefix string, err error) error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs := j.Unwrap()
		wrapped := make([]error, len(errs))
		for i, e := range errs {
			wrapped[i] = fmt.Errorf("%s: %w", prefix, e)
		}
		return errors.Join(wrapped...)
	}
	return fmt.Errorf("%s: %w", prefix, err)
}
