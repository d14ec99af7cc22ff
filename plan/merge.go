package plan

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"

	"github.com/netbed/netbed/reports"
)

// Named is a plan and the file it was read from, for errors.
type Named struct {
	Name string
	Plan *Plan
}

// ReadJSON reads a plan.json.
func ReadJSON(data []byte) (*Plan, error) {
	var p Plan
	if err := json.Unmarshal(data, &p); err != nil {
		return nil, err
	}
	if len(p.Gens) == 0 && p.Shard == nil && p.Cloud == nil {
		return nil, errors.New("no generation planned: not a plan.json")
	}
	return &p, nil
}

// Merge joins plans of one study: the shards of one `plan --shard` set,
// each once, or plans written without --shard, each of other
// generations. Every plan must have the same parameters and profiles;
// an error names the files that differ, or the shard or generation that
// is missing or given twice.
func Merge(ps []Named) (*Plan, error) {
	if len(ps) == 0 {
		return nil, errors.New("merge: no plans")
	}
	names := make([]string, len(ps))
	shards := make([]*reports.Shard, len(ps))
	for i, p := range ps {
		names[i], shards[i] = p.Name, p.Plan.Shard
		if !reflect.DeepEqual(p.Plan.Params, ps[0].Plan.Params) {
			return nil, fmt.Errorf("merge: %s and %s were planned with other parameters (%+v, %+v)", ps[0].Name, p.Name, ps[0].Plan.Params, p.Plan.Params)
		}
		if !reflect.DeepEqual(p.Plan.Profiles, ps[0].Plan.Profiles) {
			return nil, fmt.Errorf("merge: %s and %s were planned against other switch profiles", ps[0].Name, p.Name)
		}
	}
	order, err := reports.CheckShards(names, shards)
	if err != nil {
		return nil, err
	}
	if order == nil {
		order = make([]int, len(ps))
		for i := range order {
			order[i] = i
		}
	}
	parts := make([][]Gen, len(order))
	for i, k := range order {
		parts[i] = ps[k].Plan.Gens
	}
	merged := *ps[order[0]].Plan
	merged.Shard = nil
	for _, k := range order {
		if c := ps[k].Plan.Cloud; c != nil {
			merged.Cloud = c // planned by one shard
		}
	}
	if shards[0] != nil {
		merged.Gens = reports.Interleave(parts)
	} else {
		merged.Gens = nil
		for _, p := range parts {
			merged.Gens = append(merged.Gens, p...)
		}
	}
	from := map[string]string{}
	for _, k := range order {
		for _, g := range ps[k].Plan.Gens {
			if first, dup := from[g.Generation]; dup {
				return nil, fmt.Errorf("merge: generation %s is planned twice: in %s and %s", g.Generation, first, ps[k].Name)
			}
			from[g.Generation] = ps[k].Name
		}
	}
	return &merged, nil
}
