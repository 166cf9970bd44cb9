package server

import (
	"github.com/hashicorp/raft"
	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	leaderChanges prometheus.Counter
	commitLatency prometheus.Histogram
	fsmApply      prometheus.Histogram
	applyLatency  prometheus.Histogram
	forwarded     *prometheus.CounterVec
	packedSize    prometheus.Histogram
}

var latencyBuckets = []float64{.0005, .001, .002, .004, .008, .016, .032, .064, .128, .256, .512, 1.024, 2.048}

func newMetrics(reg prometheus.Registerer, r func() *raft.Raft, f *fsm) *metrics {
	m := &metrics{
		leaderChanges: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "herd_raft_leader_changes_total",
			Help: "Times this server saw the Raft leader change (including to no leader).",
		}),
		commitLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "herd_raft_commit_duration_seconds",
			Help:    "Time from the leader appending a log entry to this server starting to apply it.",
			Buckets: latencyBuckets,
		}),
		fsmApply: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "herd_raft_fsm_apply_duration_seconds",
			Help:    "Time to apply one committed log entry to the state store.",
			Buckets: latencyBuckets,
		}),
		applyLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "herd_raft_apply_duration_seconds",
			Help:    "Time for a write proposed on the leader to be committed and applied.",
			Buckets: latencyBuckets,
		}),
		forwarded: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "herd_rpc_forwarded_total",
			Help: "Requests this server forwarded to the leader, by kind (write, read_index) and result.",
		}, []string{"kind", "result"}),
		packedSize: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "herd_raft_entry_commands",
			Help:    "Commands the leader packed into one Raft log entry.",
			Buckets: []float64{1, 2, 4, 8, 16, 32, 64, 128, 256},
		}),
	}
	if reg == nil {
		return m
	}
	stat := func(name string) float64 {
		rf := r()
		if rf == nil {
			return 0
		}
		switch name {
		case "last":
			return float64(rf.LastIndex())
		case "applied":
			return float64(f.applied.Load())
		case "commit":
			return float64(rf.CommitIndex())
		case "leader":
			if rf.State() == raft.Leader {
				return 1
			}
		}
		return 0
	}
	reg.MustRegister(m.leaderChanges, m.commitLatency, m.fsmApply, m.applyLatency, m.forwarded, m.packedSize,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "herd_raft_last_index", Help: "Index of the last entry in this server's Raft log."}, func() float64 { return stat("last") }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "herd_raft_commit_index", Help: "Highest Raft index this server knows to be committed."}, func() float64 { return stat("commit") }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "herd_raft_applied_index", Help: "Highest Raft index applied to this server's state store."}, func() float64 { return stat("applied") }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "herd_raft_is_leader", Help: "1 if this server is the Raft leader, else 0."}, func() float64 { return stat("leader") }),
	)
	return m
}
