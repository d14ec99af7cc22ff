// Package reports holds what a scenario run measured (probes, paths, checks,
// spawn timelines, table sizes) and renders comparisons of the generations as
// Markdown, HTML with SVG plots, JSON and JUnit XML.
package reports
