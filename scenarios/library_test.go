package scenarios

import (
	"path/filepath"
	"testing"
)

// TestLibraryParses keeps the shipped scenarios valid.
func TestLibraryParses(t *testing.T) {
	files, err := filepath.Glob("library/*.yaml")
	if err != nil || len(files) < 9 {
		t.Fatalf("library: %d files, %v", len(files), err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			s, err := Load(f)
			if err != nil {
				t.Fatal(err)
			}
			if s.Description == "" {
				t.Error("no description")
			}
			for _, g := range s.Generations {
				if _, err := s.TopologyFor(g).Build(s.File); err != nil {
					t.Errorf("%s: %v", g, err)
				}
			}
		})
	}
}
