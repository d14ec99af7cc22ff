// Package scenarios reads scenario files (YAML), validates them with errors
// that name the file, line and field, and replays them on a backend for each
// generation being compared.
package scenarios
