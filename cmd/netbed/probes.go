package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"

	"github.com/netbed/netbed/reports"
)

// probeFile is `netbed run --probes out.jsonl`: every probe of every run,
// one JSON object a line, written as the runs go (a report keeps a sample
// of its probes in full and figures of them all).
type probeFile struct {
	fh  *os.File
	w   *bufio.Writer
	enc *json.Encoder
	err error
}

// probeLine is one line of a probe file: the run it belongs to, and the
// probe as reports.Probe marshals it (its expect field is absent: the
// expectations speak of a probe after it was written).
type probeLine struct {
	Scenario   string `json:"scenario"`
	Generation string `json:"generation"`
	Backend    string `json:"backend"`
	reports.Probe
}

func createProbeFile(path string) (*probeFile, error) {
	fh, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("--probes: %w", err)
	}
	w := bufio.NewWriterSize(fh, 1<<16)
	return &probeFile{fh: fh, w: w, enc: json.NewEncoder(w)}, nil
}

// sink is the scenarios.Options.OnProbe of one run.
func (f *probeFile) sink(scenario, gen, backend string) func(reports.Probe) {
	return func(p reports.Probe) {
		if f.err == nil {
			f.err = f.enc.Encode(probeLine{scenario, gen, backend, p})
		}
	}
}

// Close flushes the file and says whether every line was written.
func (f *probeFile) Close() error {
	err := f.err
	if ferr := f.w.Flush(); err == nil {
		err = ferr
	}
	if cerr := f.fh.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write probes to %s: %w", f.fh.Name(), err)
	}
	return nil
}
