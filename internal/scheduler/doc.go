// Package scheduler decides on which nodes the replicas of a service run.
//
// A planning round builds one Cluster from the nodes and every replica that
// holds resources (see HoldsResources), then asks it to Place new replicas,
// Replace lost ones and PickStop replicas when a service scales down. Place
// filters the nodes (status, eligibility, driver, free CPU, memory and
// ports, constraints, distinct_hosts), scores the ones that fit (spread or
// binpack, always with anti-affinity between replicas of one service, and
// optionally spread over zones) and allocates host ports. Every placement
// is added to the Cluster's accounting at once, so the next placement of
// the same call and every later call sees it: a Cluster never places more
// on a node than the node offers.
//
// The package is pure: no I/O, no clock, no randomness and no goroutines.
// The same nodes, replicas and calls always give the same plan; ties are
// broken by node name. A Cluster is not safe for concurrent use.
package scheduler
