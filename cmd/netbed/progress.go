package main

import (
	"fmt"
	"io"

	"golang.org/x/term"
)

// progress writes a run's progress to w: on a terminal, one line redrawn
// in place (carriage return, erase to the end of the line); elsewhere (a
// file, a pipe, a CI log) one plain line per message, which no carriage
// return garbles.
type progress struct {
	w   io.Writer
	tty bool
}

func newProgress(w io.Writer) progress {
	f, ok := w.(interface{ Fd() uintptr })
	return progress{w: w, tty: ok && term.IsTerminal(int(f.Fd()))}
}

// line returns the function that shows message msg of the task prefix.
func (p progress) line(prefix string) func(msg string) {
	return func(msg string) {
		if p.tty {
			fmt.Fprintf(p.w, "\r\033[K%s: %s", prefix, msg)
			return
		}
		fmt.Fprintf(p.w, "%s: %s\n", prefix, msg)
	}
}

// done prints a task's last line, which stays.
func (p progress) done(format string, a ...any) {
	if p.tty {
		fmt.Fprint(p.w, "\r\033[K")
	}
	fmt.Fprintf(p.w, format+"\n", a...)
}
