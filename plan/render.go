package plan

import (
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"strings"
	"time"

	"github.com/netbed/netbed/reports"
)

// WriteJSON writes the plan as indented JSON.
func WriteJSON(w io.Writer, p *Plan) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(p)
}

func dur(d time.Duration) string {
	switch {
	case d >= time.Minute:
		return d.Round(time.Second).String()
	case d >= time.Second:
		return d.Round(10 * time.Millisecond).String()
	}
	return d.Round(time.Microsecond).String()
}

// WriteMarkdown writes the plan as Markdown: per generation its scale,
// segments, flood domain, spawn storm, tables against the profiles, blast
// radius and where it runs out first.
func WriteMarkdown(w io.Writer, p *Plan) error {
	var b strings.Builder
	pp := p.Params
	b.WriteString("# netbed plan\n")
	if len(p.Gens) > 0 {
		fmt.Fprintf(&b, "\n%d zones of %d nodes; %d instances a zone (gens 1 and 2, %d a network), %d pods a node (gen 3); on sim, controller calls at %s.\n",
			pp.Zones, pp.NodesPerZone, pp.InstancesPerZone, pp.InstancesPerNetwork, pp.PodsPerNode, dur(pp.ControllerLatency))
	}
	if len(p.Gens) > 0 {
		b.WriteString("\n| generation | hosts | instances | VLANs used (of 4,094) | VNIs | flood domain | runs out first |\n|---|---|---|---|---|---|---|\n")
	}
	for _, g := range p.Gens {
		first := "-"
		if e := g.RunsOutFirst; e != nil {
			first = fmt.Sprintf("%s on a %s at %.1f instances a host (limit %d)", e.Table, e.Role, e.Density, e.Limit)
		}
		if g.Error != "" {
			first = "**limit reached**: " + g.Error
		}
		fmt.Fprintf(&b, "| %s | %d | %d | %d | %d | %d | %s |\n", g.Generation, g.Hosts, g.Instances, g.VLANs, g.VNIs, g.FloodDomain, first)
	}
	for _, g := range p.Gens {
		fmt.Fprintf(&b, "\n## %s\n\n%s; %d instances on %d hosts (planned in %s).\n", g.Generation, g.Topology, g.Instances, g.Hosts, dur(g.Elapsed))
		if g.Error != "" {
			fmt.Fprintf(&b, "\n**Limit reached**: %s\n", g.Error)
			continue
		}
		fmt.Fprintf(&b, "\nFlood domain: %d, %s.\n", g.FloodDomain, g.FloodDomainWhat)
		s := g.Storm
		if s.ControllerCalls > 0 {
			fmt.Fprintf(&b, "\nSpawn storm: %d IPAM calls through the controller, %d controller calls in all, %s one after another (%.1f calls/s); a zone: %d calls, %s; at Neutron's ~100 ms a call the storm's controller time is %s.\n",
				s.IPAMCalls, s.ControllerCalls, dur(s.Duration), s.CallsPerSecond, s.PerZoneCalls, dur(s.PerZoneDuration), dur(s.AtNeutron))
		} else {
			fmt.Fprintf(&b, "\nSpawn storm: %d addresses from the nodes' local IPAM, no controller call (%s of virtual time one after another).\n", s.LocalAllocations, dur(s.Duration))
		}
		b.WriteString("\n| table | devices | min | p50 | max (device) | limit (profile) | use |\n|---|---|---|---|---|---|---|\n")
		for _, t := range g.Tables {
			lim, use := "-", "-"
			if t.Limit > 0 {
				lim, use = fmt.Sprintf("%d (%s)", t.Limit, t.Profile), fmt.Sprintf("%.1f %%", 100*t.Use)
			}
			fmt.Fprintf(&b, "| %s on %s | %d | %d | %d | %d (%s) | %s | %s |\n", t.Name, t.Role, t.Devices, t.Min, t.P50, t.Max, t.Largest, lim, use)
		}
		b.WriteString("\nBlast radius (the device of each class whose failure costs most):\n\n| class | device | instances cut off | ports affected |\n|---|---|---|---|\n")
		for _, x := range g.Blast {
			fmt.Fprintf(&b, "| %s | %s | %d | %d |\n", x.Role, x.Device, x.CutOff, x.Ports)
		}
	}
	if p.Cloud != nil {
		writeCloudMarkdown(&b, p.Cloud)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

var htmlTmpl = template.Must(template.New("plan").Parse(`<!doctype html>
<html><head><meta charset="utf-8"><title>netbed plan</title>
<style>body{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222}table{border-collapse:collapse}
td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}th{background:#f4f4f4}.plots{display:flex;flex-wrap:wrap;gap:8px}</style></head><body>
<h1>netbed plan</h1>
<p>Largest table of each kind per device class, as a share of the switch profile's limit (100 %: full); the full figures follow.</p>
<div class="plots">{{range .Plots}}{{.}}{{end}}</div>
<pre>{{.Markdown}}</pre>
</body></html>
`))

// WriteHTML writes the plan with a plot per generation of each table's
// largest size against its limit.
func WriteHTML(w io.Writer, p *Plan) error {
	var data struct {
		Plots    []template.HTML
		Markdown string
	}
	for _, g := range p.Gens {
		var bars []reports.Bar
		for _, t := range g.Tables {
			if t.Limit > 0 {
				bars = append(bars, reports.Bar{Label: t.Name + " on " + t.Role, Value: 100 * t.Use,
					Text: fmt.Sprintf("%.1f %% (%d of %d)", 100*t.Use, t.Max, t.Limit), Gen: g.Generation})
			}
		}
		if len(bars) == 0 {
			continue
		}
		svg, err := reports.BarsSVG(g.Generation+": largest table, % of the profile's limit", "% of limit", bars)
		if err != nil {
			return err
		}
		data.Plots = append(data.Plots, template.HTML(svg))
	}
	if c := p.Cloud; c != nil && len(c.Storms) > 0 {
		var bars []reports.Bar
		for _, st := range c.Storms {
			bars = append(bars, reports.Bar{Label: st.Pool + ": p50", Value: st.P50.Seconds(), Text: dur(st.P50), Gen: "vpc"},
				reports.Bar{Label: st.Pool + ": max", Value: st.Max.Seconds(), Text: dur(st.Max), Gen: "vpc"})
		}
		svg, err := reports.BarsSVG(fmt.Sprintf("vpc: a zone's spawn storm (%d pods), wait for an address", c.Params.Nodes*c.Params.PodsPerNode), "seconds (virtual time)", bars)
		if err != nil {
			return err
		}
		data.Plots = append(data.Plots, template.HTML(svg))
	}
	var md strings.Builder
	if err := WriteMarkdown(&md, p); err != nil {
		return err
	}
	data.Markdown = md.String()
	return htmlTmpl.Execute(w, data)
}
