package reports

import (
	"errors"
	"fmt"
	"sort"
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

// MergeShards merges reports into one. Reports that say which shard they
// are (Report.Shard) must be every shard of one count, each once; reports
// that do not (written without --shard) are merged as they come, and may
// not be mixed with shards.
func MergeShards(rs []NamedReport) (*Report, error) {
	if len(rs) == 0 {
		return nil, errors.New("merge: no reports")
	}
	var sharded, plain []string
	for _, r := range rs {
		if r.Report.Shard != nil {
			sharded = append(sharded, r.Name)
		} else {
			plain = append(plain, r.Name)
		}
	}
	if len(sharded) > 0 && len(plain) > 0 {
		return nil, fmt.Errorf("merge: %s are shards, %s not (written without --shard): %w",
			strings.Join(sharded, ", "), strings.Join(plain, ", "), ErrShards)
	}
	if len(sharded) > 0 {
		count := rs[0].Report.Shard.Count
		by := map[int]string{}
		for _, r := range rs {
			s := *r.Report.Shard
			if s.Count != count {
				return nil, fmt.Errorf("merge: %s is shard %v, %s shard %v: shards of one study share their count: %w",
					rs[0].Name, *rs[0].Report.Shard, r.Name, s, ErrShards)
			}
			if first, dup := by[s.Index]; dup {
				return nil, fmt.Errorf("merge: shard %v is given twice: %s and %s: %w", s, first, r.Name, ErrShards)
			}
			by[s.Index] = r.Name
		}
		var missing []string
		for i := range count {
			if _, ok := by[i]; !ok {
				missing = append(missing, Shard{i, count}.String())
			}
		}
		if len(missing) > 0 {
			return nil, fmt.Errorf("merge: shard %s missing (given: %d of %d): %w", strings.Join(missing, ", "), len(by), count, ErrShards)
		}
		// The study's order, whatever order the files came in: its k-th
		// run is shard k mod count's (k div count)-th.
		rs = append([]NamedReport(nil), rs...)
		sort.Slice(rs, func(a, b int) bool { return rs[a].Report.Shard.Index < rs[b].Report.Shard.Index })
		merged := *rs[0].Report
		merged.Shard, merged.Runs = nil, nil
		total := 0
		for _, x := range rs {
			total += len(x.Report.Runs)
		}
		for k := 0; len(merged.Runs) < total; k++ {
			if r, j := rs[k%count].Report, k/count; j < len(r.Runs) {
				merged.Runs = append(merged.Runs, r.Runs[j])
			}
		}
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
