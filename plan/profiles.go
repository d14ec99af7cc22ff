package plan

import (
	_ "embed"
	"fmt"
	"os"
	"slices"

	"sigs.k8s.io/yaml"
)

// Profile is a device class's table limits.
type Profile struct {
	Name   string         `json:"name"`
	Roles  []string       `json:"roles"`
	Limits map[string]int `json:"limits"`
}

//go:embed profiles.yaml
var defaultProfiles []byte

// DefaultProfiles are the profiles shipped in profiles.yaml.
func DefaultProfiles() []Profile {
	ps, err := ParseProfiles("profiles.yaml", defaultProfiles)
	if err != nil {
		panic(err) // the embedded file is tested
	}
	return ps
}

// LoadProfiles reads a profiles file.
func LoadProfiles(path string) ([]Profile, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("switch profiles: %w", err)
	}
	return ParseProfiles(path, b)
}

// ParseProfiles parses a profiles file; file names it in errors.
func ParseProfiles(file string, data []byte) ([]Profile, error) {
	var doc struct {
		Profiles []Profile `json:"profiles"`
	}
	if err := yaml.UnmarshalStrict(data, &doc); err != nil {
		return nil, fmt.Errorf("switch profiles %s: %w", file, err)
	}
	for i, p := range doc.Profiles {
		if p.Name == "" || len(p.Roles) == 0 {
			return nil, fmt.Errorf("switch profiles %s: profiles[%d]: give a name and the roles it applies to", file, i)
		}
		for t, n := range p.Limits {
			if n <= 0 {
				return nil, fmt.Errorf("switch profiles %s: %s: limit of %q is %d; want a positive number of entries", file, p.Name, t, n)
			}
		}
	}
	return doc.Profiles, nil
}

// limit is the limit of table on a device of role, and the profile's
// name; 0 when no profile speaks of it.
func limit(ps []Profile, role, table string) (int, string) {
	for _, p := range ps {
		if slices.Contains(p.Roles, role) {
			if n, ok := p.Limits[table]; ok {
				return n, p.Name
			}
		}
	}
	return 0, ""
}
