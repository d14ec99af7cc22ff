package main

import "errors"

// netnsBackend returns the netns backend: the fabric's node models on real
// namespaces. The userspace runtime it needs is not in this build yet.
func netnsBackend() (backendChoice, error) {
	return backendChoice{}, errors.New("the netns runtime is not part of this build yet; use --backend sim")
}
