// Package api serves the controller over HTTP with JSON and is its Go
// client; errors cross the wire as {"code","message"} and come back as the
// sentinels they started as.
package api
