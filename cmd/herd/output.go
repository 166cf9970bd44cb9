package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"text/tabwriter"
	"unicode"
	"unicode/utf8"

	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v3"
)

// outputFormat is the value of -o/--output. Set rejects anything but
// "table" and "json", which makes a bad value a flag (usage) error.
type outputFormat string

const (
	outputTable outputFormat = "table"
	outputJSON  outputFormat = "json"
	outputYAML  outputFormat = "yaml"
)

func (o *outputFormat) String() string { return string(*o) }
func (o *outputFormat) Type() string   { return "format" }

func (o *outputFormat) Set(s string) error {
	switch outputFormat(s) {
	case outputTable, outputJSON, outputYAML:
		*o = outputFormat(s)
		return nil
	}
	return fmt.Errorf("must be %q, %q or %q", outputTable, outputJSON, outputYAML)
}

// addOutputFlag gives cmd the -o/--output flag.
func addOutputFlag(cmd *cobra.Command) *outputFormat {
	o := outputTable
	cmd.Flags().VarP(&o, "output", "o", `output format: "table", "json" or "yaml"`)
	return &o
}

// printOut writes v as JSON or YAML. YAML keeps the JSON field names (v
// goes through JSON first), with keys sorted.
func printOut(w io.Writer, format outputFormat, v any) error {
	if format != outputYAML {
		return printJSON(w, v)
	}
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	var generic any
	if err := json.Unmarshal(data, &generic); err != nil {
		return err
	}
	out, err := yaml.Marshal(generic)
	if err != nil {
		return err
	}
	_, err = w.Write(out)
	return err
}

// printJSON writes v as indented JSON followed by a newline.
func printJSON(w io.Writer, v any) error {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%s\n", data)
	return err
}

// table writes aligned columns: add rows, then flush. On a terminal
// (unless NO_COLOR is set) it colours the words that say a state: green
// for good ones, red for bad ones, yellow for in-between ones.
type table struct {
	tw     *tabwriter.Writer
	out    io.Writer
	buf    bytes.Buffer
	colour bool
}

func newTable(w io.Writer, headers ...string) *table {
	t := &table{out: w, colour: colourOn(w)}
	t.tw = tabwriter.NewWriter(&t.buf, 0, 8, 2, ' ', 0)
	if len(headers) > 0 {
		t.row(headers...)
	}
	return t
}

// colourOn reports whether w is a terminal that wants colour: not when
// NO_COLOR is set (https://no-color.org) or TERM is dumb.
func colourOn(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok || os.Getenv("NO_COLOR") != "" || os.Getenv("TERM") == "dumb" {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// stateColours maps state words to ANSI colours.
var stateColours = map[string]string{
	"alive": "32", "ready": "32", "running": "32", "healthy": "32", "complete": "32", "yes": "32",
	"failed": "31", "down": "31", "lost": "31", "unhealthy": "31", "crash-loop": "31", "PANIC": "31",
	"left": "33", "draining": "33", "stopped": "33", "starting": "33", "pending": "33", "backoff": "33", "progress": "33", "unknown": "33",
}

// paint colours the state words of an aligned line; the padding after a
// word stays outside the colour, so the columns stay aligned.
func paint(line string) string {
	var b strings.Builder
	for i, f := range strings.SplitAfter(line, " ") {
		word := strings.TrimRight(f, " ")
		if c, ok := stateColours[word]; ok && i > 0 {
			b.WriteString("\x1b[" + c + "m" + word + "\x1b[0m" + f[len(word):])
			continue
		}
		b.WriteString(f)
	}
	return b.String()
}

// row adds one line; empty cells print as "-" so columns stay readable.
func (t *table) row(cells ...string) {
	for i, c := range cells {
		if c == "" {
			c = "-"
		}
		// A tab or newline in a cell would break the alignment.
		c = strings.Map(func(r rune) rune {
			if r == '\t' || r == '\n' || r == '\r' {
				return ' '
			}
			return r
		}, c)
		if i > 0 {
			fmt.Fprint(t.tw, "\t")
		}
		fmt.Fprint(t.tw, c)
	}
	fmt.Fprintln(t.tw)
}

func (t *table) flush() error {
	if err := t.tw.Flush(); err != nil {
		return err
	}
	text := t.buf.String()
	t.buf.Reset()
	if t.colour {
		lines := strings.SplitAfter(text, "\n")
		for i := 1; i < len(lines); i++ { // not the header
			lines[i] = paint(lines[i])
		}
		text = strings.Join(lines, "")
	}
	_, err := io.WriteString(t.out, text)
	return err
}

// displayValue shows a value in a table cell: the text itself when it is
// short printable UTF-8, else its size.
func displayValue(v []byte) string {
	const maxShown = 40
	if len(v) == 0 {
		return `""`
	}
	if len(v) <= maxShown && utf8.Valid(v) {
		printable := true
		for _, r := range string(v) {
			if !unicode.IsPrint(r) {
				printable = false
				break
			}
		}
		if printable {
			return string(v)
		}
	}
	return fmt.Sprintf("<%d bytes>", len(v))
}

// syncWriter makes w safe for concurrent writers. An *os.File already is,
// and is returned as is so that a child process can be given it directly.
func syncWriter(w io.Writer) io.Writer {
	if _, ok := w.(*os.File); ok {
		return w
	}
	return &lockedWriter{w: w}
}

type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
