package reports

import (
	"errors"
	"fmt"
	"strings"
)

// Shard says which part of a study a report holds: the runs whose place
// in the study's list of scenario × generation runs is Index modulo Count.
type Shard struct {
	Index int `json:"index"`
	Count int `json:"count"`
}

func (s Shard) String() string { return fmt.Sprintf("%d/%d", s.Index, s.Count) }

// ErrShards is returned by MergeShards for a set of shards that is not
// one whole study.
var ErrShards = errors.New("shards do not make one study")

// NamedReport is a report and the file it was read from, for errors.
type NamedReport struct {
	Name   string
	Report *Report
}

// CheckShards checks that shards (shards[i] read from names[i]; nil for
// a file written without --shard) are one whole study: either none is a
// shard, or every shard of one count is given once. It returns the order
// that puts them in shard order, or nil when none is a shard.
func CheckShards(names []string, shards []*Shard) ([]int, error) {
	var sharded, plain []string
	for i, s := range shards {
		if s != nil {
			sharded = append(sharded, names[i])
		} else {
			plain = append(plain, names[i])
		}
	}
	if len(sharded) > 0 && len(plain) > 0 {
		return nil, fmt.Errorf("merge: %s are shards, %s not (written without --shard): %w",
			strings.Join(sharded, ", "), strings.Join(plain, ", "), ErrShards)
	}
	if len(sharded) == 0 {
		return nil, nil
	}
	count := shards[0].Count
	by := map[int]int{}
	for i, s := range shards {
		if s.Count != count {
			return nil, fmt.Errorf("merge: %s is shard %v, %s shard %v: shards of one study share their count: %w",
				names[0], *shards[0], names[i], *s, ErrShards)
		}
		if first, dup := by[s.Index]; dup {
			return nil, fmt.Errorf("merge: shard %v is given twice: %s and %s: %w", *s, names[first], names[i], ErrShards)
		}
		by[s.Index] = i
	}
	var missing []string
	order := make([]int, 0, count)
	for i := range count {
		k, ok := by[i]
		if !ok {
			missing = append(missing, Shard{i, count}.String())
		}
		order = append(order, k)
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("merge: shard %s missing (given: %d of %d): %w", strings.Join(missing, ", "), len(by), count, ErrShards)
	}
	return order, nil
}

// Interleave puts the shards' items (parts[i] is shard i's, in shard
// order) back in the study's order: its k-th item is shard k mod n's
// (k div n)-th, as a shard takes every n-th.
func Interleave[T any](parts [][]T) []T {
	total := 0
	for _, p := range parts {
		total += len(p)
	}
	out := make([]T, 0, total)
	for k := 0; len(out) < total; k++ {
		if p, j := parts[k%len(parts)], k/len(parts); j < len(p) {
			out = append(out, p[j])
		}
	}
	return out
}

// MergeShards merges reports into one. Reports that say which shard they
// are (Report.Shard) must be every shard of one count, each once; reports
// that do not (written without --shard) are merged as they come, and may
// not be mixed with shards.
func MergeShards(rs []NamedReport) (*Report, error) {
	if len(rs) == 0 {
		return nil, errors.New("merge: no reports")
	}
	names := make([]string, len(rs))
	shards := make([]*Shard, len(rs))
	for i, r := range rs {
		names[i], shards[i] = r.Name, r.Report.Shard
	}
	order, err := CheckShards(names, shards)
	if err != nil {
		return nil, err
	}
	if order != nil {
		parts := make([][]*Run, len(order))
		for i, k := range order {
			parts[i] = rs[k].Report.Runs
		}
		merged := *rs[order[0]].Report
		merged.Shard, merged.Runs = nil, Interleave(parts)
		return &merged, nil
	}
	merged := *rs[0].Report
	merged.Runs = append([]*Run(nil), merged.Runs...)
	merged.Shard = nil
	for _, r := range rs[1:] {
		merged.Merge(r.Report)
	}
	return &merged, nil
}
