package main

import (
	"fmt"
	"strconv"
)

// The environment of a Kubernetes Indexed Job's pod: the controller sets
// JOB_COMPLETION_INDEX; the Job's completions are not in the pod's
// environment, so the manifest sets NETBED_SHARDS to them
// (docs/kubernetes/shards-job.yaml).
const (
	envJobIndex = "JOB_COMPLETION_INDEX"
	envShards   = "NETBED_SHARDS"
)

// resolveShard is the shard a command runs: --shard i/n when given, else
// the Indexed Job's index of --shards (or NETBED_SHARDS) when the job set
// one, else the whole study (0 of 1). fromEnv says the index came from
// the job's environment.
func resolveShard(flag string, shards int, getenv func(string) string) (i, n int, fromEnv bool, err error) {
	if flag != "" {
		i, n, err = parseShard(flag)
		if err == nil && shards != 0 && shards != n {
			err = usageErr("--shard %s and --shards %d disagree on the count", flag, shards)
		}
		return i, n, false, err
	}
	idx := getenv(envJobIndex)
	if idx == "" {
		if shards > 1 {
			return 0, 0, false, usageErr("--shards %d without --shard i/n or %s (set by a Kubernetes Indexed Job): which shard is this?", shards, envJobIndex)
		}
		return 0, 1, false, nil
	}
	i, err = strconv.Atoi(idx)
	if err != nil || i < 0 {
		return 0, 0, false, usageErr("%s=%q is not a shard index (0, 1, ...)", envJobIndex, idx)
	}
	n = shards
	if n == 0 {
		v := getenv(envShards)
		if v == "" {
			return 0, 0, false, usageErr("%s=%d is set but not the number of shards: give --shards N or %s=N (the Job's completions)", envJobIndex, i, envShards)
		}
		if n, err = strconv.Atoi(v); err != nil || n < 1 {
			return 0, 0, false, usageErr("%s=%q is not a number of shards", envShards, v)
		}
	}
	if i >= n {
		return 0, 0, false, usageErr("%s=%d is not below the %d shards (--shards or %s)", envJobIndex, i, n, envShards)
	}
	return i, n, true, nil
}

// shardNote says where a shard came from, for the progress display.
func shardNote(i, n int) string {
	return fmt.Sprintf("shard %d/%d (from %s)", i, n, envJobIndex)
}
