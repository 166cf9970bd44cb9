package main

import (
	"os"
	"strings"
	"testing"
)

func TestPaintKeepsColumnsAligned(t *testing.T) {
	line := "web-1  running  healthy  node1\n"
	got := paint(line)
	if !strings.Contains(got, "\x1b[32mrunning\x1b[0m  ") || !strings.Contains(got, "\x1b[32mhealthy\x1b[0m  ") {
		t.Fatalf("paint(%q) = %q", line, got)
	}
	plain := strings.NewReplacer("\x1b[32m", "", "\x1b[0m", "").Replace(got)
	if plain != line {
		t.Fatalf("painting changed the text: %q", plain)
	}
	if p := paint("alive  x\n"); strings.Contains(p, "\x1b") {
		t.Fatalf("the first column (a name) was painted: %q", p)
	}
}

func TestNoColourOffATerminal(t *testing.T) {
	var b strings.Builder
	tb := newTable(&b, "NAME", "STATUS")
	tb.row("s1", "failed")
	if err := tb.flush(); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(b.String(), "\x1b") || !strings.Contains(b.String(), "failed") {
		t.Fatalf("colour in a non-terminal table: %q", b.String())
	}
	// A character device (as a terminal is) gets colour, unless NO_COLOR
	// or TERM=dumb says otherwise.
	dev, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer dev.Close()
	t.Setenv("TERM", "xterm")
	t.Setenv("NO_COLOR", "")
	if !colourOn(dev) {
		t.Fatal("no colour on a character device")
	}
	t.Setenv("NO_COLOR", "1")
	if colourOn(dev) {
		t.Fatal("colour with NO_COLOR set")
	}
	t.Setenv("NO_COLOR", "")
	t.Setenv("TERM", "dumb")
	if colourOn(dev) {
		t.Fatal("colour with TERM=dumb")
	}
}
