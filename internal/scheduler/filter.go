package scheduler

import (
	"slices"
	"strings"

	"github.com/herd-cluster/herd/api"
)

// verdict is why a node cannot take a replica, or fits. The order of the
// checks, and of equal counts in a reason, is the order of the constants.
type verdict int8

const (
	fits verdict = iota
	notReady
	ineligible
	excluded
	noDriver
	failsConstraint
	noCPU
	noMemory
	noPorts
	distinctHosts
	numVerdicts
)

// demand is one replica of a request, as the filters and scores use it.
type demand struct {
	res         api.Resources
	cpu, mem    int64
	ports       []string
	driver      string
	driverBit   uint64
	binpack     bool
	zoneSpread  bool
	distinct    bool
	constraints []api.Constraint
}

// newDemand reads a request's run section (which must not be nil).
func (c *Cluster) newDemand(run *api.Run) demand {
	res := ReplicaResources(run)
	return demand{
		res:         res,
		cpu:         amount(res.CPU),
		mem:         amount(res.MemoryMB),
		ports:       PortNames(run),
		driver:      run.Driver,
		driverBit:   c.driverBits[run.Driver],
		binpack:     run.Placement == "binpack",
		zoneSpread:  run.Spread == "zone",
		distinct:    run.DistinctHosts,
		constraints: run.Constraints,
	}
}

// staticCheck applies the filters that no placement of the current call
// changes: status, eligibility, exclusion, driver and constraints. For
// failsConstraint it also returns the index of the first constraint the
// node fails.
func (c *Cluster) staticCheck(i int32, d *demand) (verdict, int) {
	ns := &c.nodes[i]
	switch {
	case ns.status != api.NodeReady:
		return notReady, 0
	case !ns.open:
		return ineligible, 0
	case c.mark[i] == c.gen:
		return excluded, 0
	case !c.driverUsable(ns, d.driver, d.driverBit):
		return noDriver, 0
	}
	for k := range d.constraints {
		if !c.satisfies(ns, &d.constraints[k]) {
			return failsConstraint, k
		}
	}
	return fits, 0
}

// dynamicCheck applies the filters that placements change: free CPU,
// memory and ports, and distinct_hosts given count replicas of the
// service on the node.
func dynamicCheck(ns *nodeState, count int32, d *demand) verdict {
	switch {
	case ns.cpuCap-ns.cpuUsed < d.cpu:
		return noCPU
	case ns.memCap-ns.memUsed < d.mem:
		return noMemory
	case ns.ports.free() < len(d.ports):
		return noPorts
	case d.distinct && count > 0:
		return distinctHosts
	}
	return fits
}

// driverUsable reports whether the node can run the named driver; bit is
// the driver's bit, or 0 when it has none.
func (c *Cluster) driverUsable(ns *nodeState, name string, bit uint64) bool {
	if bit != 0 {
		return ns.drivers&bit != 0
	}
	if len(c.driverBits) < 64 {
		// Every usable driver has a bit, so this one is usable nowhere.
		return false
	}
	reason, ok := ns.drvMap[name]
	return ok && reason == ""
}

// satisfies reports whether the node meets a constraint. A missing label
// (or an empty zone) fails equals and in and passes not; an unknown
// operator fails.
func (c *Cluster) satisfies(ns *nodeState, con *api.Constraint) bool {
	switch con.Attribute {
	case "zone":
		zone := c.zones[ns.zone]
		return match(con, zone, zone != "")
	case "node":
		return match(con, ns.name, true)
	case "driver":
		// The node's usable drivers are a set of values.
		has := func(v string) bool { return c.driverUsable(ns, v, c.driverBits[v]) }
		switch con.Op {
		case api.ConstraintEquals:
			return len(con.Values) > 0 && has(con.Values[0])
		case api.ConstraintIn:
			return slices.ContainsFunc(con.Values, has)
		case api.ConstraintNot:
			return !slices.ContainsFunc(con.Values, has)
		}
		return false
	}
	v, ok := ns.labels[strings.TrimPrefix(con.Attribute, "labels.")]
	return match(con, v, ok)
}

// match applies a constraint's operator to one value, present or not.
func match(con *api.Constraint, v string, present bool) bool {
	switch con.Op {
	case api.ConstraintEquals:
		return present && len(con.Values) > 0 && v == con.Values[0]
	case api.ConstraintIn:
		return present && slices.Contains(con.Values, v)
	case api.ConstraintNot:
		return !present || !slices.Contains(con.Values, v)
	}
	return false
}
