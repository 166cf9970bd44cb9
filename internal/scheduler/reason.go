package scheduler

import (
	"fmt"
	"slices"
	"strings"
)

// reason explains, over every node, why none can take one more replica of
// d: each node counts once, under the first filter it fails, and the
// reasons are listed by decreasing count. It is only called when a
// placement failed, so it may allocate.
func (c *Cluster) reason(d *demand, svc *serviceState) string {
	var counts [numVerdicts]int
	byConstraint := make([]int, len(d.constraints))
	// The largest free amount among the nodes short of it: what the
	// request would have to shrink to for one of them.
	var freeCPU, freeMem int64
	var freePorts int
	for i := range c.nodes {
		ns := &c.nodes[i]
		v, k := c.staticCheck(int32(i), d)
		if v == fits {
			v = dynamicCheck(ns, svc.nodes[int32(i)], d)
		}
		counts[v]++
		switch v {
		case failsConstraint:
			byConstraint[k]++
		case noCPU:
			freeCPU = max(freeCPU, ns.cpuCap-ns.cpuUsed)
		case noMemory:
			freeMem = max(freeMem, ns.memCap-ns.memUsed)
		case noPorts:
			freePorts = max(freePorts, ns.ports.free())
		}
	}

	type item struct {
		count int
		text  string
	}
	// Appended in the order of the checks.
	var items []item
	add := func(count int, text string) {
		if count > 0 {
			items = append(items, item{count: count, text: text})
		}
	}
	on := func(n int) string {
		if n == 1 {
			return "on 1 node"
		}
		return fmt.Sprintf("on %d nodes", n)
	}
	add(counts[notReady], "not ready "+on(counts[notReady]))
	add(counts[ineligible], "ineligible "+on(counts[ineligible]))
	add(counts[excluded], "excluded "+on(counts[excluded]))
	driver := d.driver
	if driver == "" {
		driver = `""`
	}
	add(counts[noDriver], fmt.Sprintf("driver %s unavailable %s", driver, on(counts[noDriver])))
	for k, n := range byConstraint {
		con := &d.constraints[k]
		nodes := "nodes"
		if n == 1 {
			nodes = "node"
		}
		add(n, fmt.Sprintf("constraint %s %s [%s] excludes %d %s",
			con.Attribute, con.Op, strings.Join(con.Values, ", "), n, nodes))
	}
	add(counts[noCPU], fmt.Sprintf("cpu %d millicores > free %d millicores %s", d.cpu, freeCPU, on(counts[noCPU])))
	add(counts[noMemory], fmt.Sprintf("memory %d MiB > free %d MiB %s", d.mem, freeMem, on(counts[noMemory])))
	add(counts[noPorts], fmt.Sprintf("ports %d > free %d %s", len(d.ports), freePorts, on(counts[noPorts])))
	add(counts[distinctHosts], "distinct_hosts: every feasible node already runs a replica")

	// Stable over the check order, so equal counts keep it.
	slices.SortStableFunc(items, func(a, b item) int { return b.count - a.count })
	texts := make([]string, len(items))
	for i, it := range items {
		texts[i] = it.text
	}
	return "no node satisfies: " + strings.Join(texts, "; ")
}
